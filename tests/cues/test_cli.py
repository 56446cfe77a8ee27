"""``lipsync cues``: outputs, default paths and one-line errors for bad options and inputs."""
from __future__ import annotations

import json
import shutil

import pytest

from lipsync_core.front.cli import main


@pytest.fixture()
def clip(speech, tmp_path):
    path = tmp_path / "clip.wav"
    shutil.copy(speech.wav, path)
    return path


def test_default_output_is_a_tsv_beside_the_audio_and_its_path_is_printed(clip, capsys):
    assert main(["cues", str(clip), "--no_progress"]) == 0
    out = clip.with_name("clip.cues.tsv")
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text().splitlines()[-1].endswith("\tX")


def test_format_follows_out_extension_and_records_the_transcript(clip, speech, tmp_path):
    dialog = tmp_path / "words.txt"
    dialog.write_text(speech.text)
    out = tmp_path / "o" / "cues.json"
    assert main(["cues", str(clip), "--out", str(out), "--dialog_file", str(dialog), "--quiet"]) == 0
    meta = json.loads(out.read_text())["metadata"]
    assert meta["soundFile"] == str(clip.resolve()) and meta["dialog"] is True


def test_dat_with_preston_blair_names(clip, tmp_path):
    out = tmp_path / "m.dat"
    assert main(["cues", str(clip), "--out", str(out), "--preston_blair", "--dat_fps", "30", "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "MohoSwitch1" and lines[-1].endswith(" rest")


@pytest.mark.parametrize("args, option", [(["--dat_fps", "12", "--format", "dat"], "--dat_fps"),
                                          (["--preston_blair"], "--preston_blair"),
                                          (["--extended_shapes", "GQ"], "extended shapes")])
def test_bad_option_is_one_line_exit_2_and_nothing_written(clip, tmp_path, capsys, args, option):
    out = tmp_path / "x.tsv"
    with pytest.raises(SystemExit) as e:
        main(["cues", str(clip), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and option in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_unreadable_audio_is_one_line_exit_1_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\0" * 100)
    assert main(["cues", str(bad)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [bad]


def test_empty_transcript_warns_and_recognises(clip, tmp_path, caplog):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert main(["cues", str(clip), "--dialog_file", str(empty), "--no_progress"]) == 0
    assert "no words" in caplog.text
    assert clip.with_name("clip.cues.tsv").exists()


def test_output_never_replaces_the_input_audio(clip, capsys):
    before = clip.read_bytes()
    assert main(["cues", str(clip), "--out", str(clip), "--format", "tsv"]) == 1
    assert clip.read_bytes() == before
