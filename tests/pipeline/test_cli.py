"""The command line: original flags, one-line errors, exit codes, nothing left behind."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lipsync_core.engine.plan import Plan, make_config
from lipsync_core.front.cli import build_parser, main
from lipsync_core.media.probe import probe
from tests.conftest import REPO

ORIGINAL_FLAGS = ["--checkpoint_path", "ck.pth", "--face", "f.mp4", "--audio", "a.wav", "--outfile", "o.mp4",
                  "--static", "True", "--fps", "30", "--pads", "0", "20", "0", "0", "--face_det_batch_size", "8",
                  "--wav2lip_batch_size", "64", "--resize_factor", "2", "--crop", "0", "-1", "10", "-1",
                  "--box", "-1", "-1", "-1", "-1", "--rotate", "--nosmooth"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lipsync_core", *args], capture_output=True, text=True, cwd=cwd)


def test_every_original_inference_flag_parses_with_its_meaning():
    a = build_parser().parse_args(ORIGINAL_FLAGS)
    assert (a.checkpoint_path, a.face, a.audio, a.outfile) == ("ck.pth", "f.mp4", "a.wav", "o.mp4")
    assert a.static is True and a.fps == 30 and a.pads == [0, 20, 0, 0]
    assert (a.face_det_batch_size, a.wav2lip_batch_size, a.resize_factor) == (8, 64, 2)
    assert a.crop == [0, -1, 10, -1] and a.box == [-1, -1, -1, -1] and a.rotate and a.nosmooth


def test_static_false_means_false_unlike_the_original():
    assert build_parser().parse_args(["--face", "f", "--audio", "a", "--static", "False"]).static is False
    assert build_parser().parse_args(["--face", "f", "--audio", "a", "--static"]).static is True


def test_variant_presets_pick_their_detector_and_stages():
    assert make_config("original").detector == "s3fd"
    assert [s.name for s in Plan.from_options(make_config("hq")).stages] == ["sync", "sr", "segmentation", "blend"]
    assert make_config("codeformer").detector == "retinaface"
    assert make_config("original", detector="haar").detector == "haar"


def test_the_originals_no_box_means_no_box():
    assert make_config("original", box=[-1, -1, -1, -1]).box is None


@pytest.mark.parametrize("args, message", [
    (["--face", "missing.mp4", "--audio", "missing.wav"], "missing.mp4"),
    (["--face", "f.mp4", "--audio", "a.wav", "--variant", "original", "--fidelity", "2"], "--fidelity"),
    (["--face", "f.mp4", "--audio", "a.wav", "--box", "10", "5", "0", "10"], "--box"),
])
def test_expected_errors_print_one_line_and_exit_1(tmp_path, args, message):
    res = cli(*args, "--outfile", str(tmp_path / "o.mp4"), cwd=tmp_path)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("lipsync: error:")]
    assert len(lines) == 1 and message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_argument_errors_exit_2(tmp_path):
    assert cli("--face", "f.mp4", cwd=tmp_path).returncode == 2


def test_face_without_video_stream_is_a_clear_error(tmp_path, speech, w2l_checkpoint):
    code = main(["--face", str(speech), "--audio", str(speech), "--checkpoint_path", str(w2l_checkpoint),
                 "--detector", "haar", "--outfile", str(tmp_path / "o.mp4"), "--device", "cpu"])
    assert code == 1 and not (tmp_path / "o.mp4").exists()


def test_audio_without_audio_stream_is_a_clear_error(tmp_path, face_clip, w2l_checkpoint, capsys):
    face, _ = face_clip
    silent = tmp_path / "silent.mp4"
    from lipsync_core.media.ffmpeg import run_ffmpeg

    run_ffmpeg(["-y", "-i", str(face), "-an", "-c:v", "copy", str(silent)], what="strip audio")
    code = main(["--face", str(face), "--audio", str(silent), "--checkpoint_path", str(w2l_checkpoint),
                 "--detector", "haar", "--outfile", str(tmp_path / "o.mp4"), "--device", "cpu"])
    assert code == 1 and "no audio" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_html_page_saved_as_checkpoint_names_the_file(tmp_path, face_clip, speech, capsys):
    face, _ = face_clip
    page = tmp_path / "wav2lip.pth"
    page.write_text("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head></html>")
    code = main(["--face", str(face), "--audio", str(speech), "--checkpoint_path", str(page),
                 "--detector", "haar", "--outfile", str(tmp_path / "o.mp4"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "wav2lip.pth" in err and "HTML" in err.upper()


def test_cli_run_writes_the_output(tmp_path, face_clip, speech, w2l_checkpoint):
    face, box = face_clip
    out = tmp_path / "sub" / "out.mp4"
    res = cli("run", "--face", str(face), "--audio", str(speech), "--checkpoint_path", str(w2l_checkpoint),
              "--box", *map(str, box), "--outfile", str(out), "--device", "cpu", "--no_progress",
              "--preset", "ultrafast")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    assert probe(out).has_audio


@pytest.mark.parametrize("options, message", [
    ({"mask_lower_face": 0.0}, "--mask_lower_face"),
    ({"det_size": -5}, "--det_size"),
    ({"crop": (100, 50, 0, -1)}, "--crop"),
    ({"upscale": 2}, "--upscale needs --variant codeformer"),
    ({"sharpen": 0.5}, "--sharpen needs --variant codeformer"),
])
def test_options_out_of_range_are_refused_before_any_work(options, message):
    from lipsync_core.support.errors import LipsyncError

    with pytest.raises(LipsyncError, match=message):
        make_config("hq", **options)


def test_a_crop_outside_the_frame_is_a_clear_error(tmp_path, face_clip):
    from lipsync_core.media.face_video import FaceVideo
    from lipsync_core.support.errors import LipsyncError

    face, _ = face_clip
    w, h = probe(face).frame_size
    with pytest.raises(LipsyncError, match="--crop"):
        FaceVideo.open(face, still_fps=25, static=False, crop=(0, h + 10, 0, -1))
    assert FaceVideo.open(face, still_fps=25, static=False, crop=(10, h, 0, -1)).frame_size == (w, h - 10)


def test_help_and_a_bad_flag_answer_without_loading_torch():
    code = ("import sys\nfrom lipsync_core.front.cli import main\n"
            "for argv in (['--help'], ['--variant', 'hq', '--help'], ['--face', 'f', '--audio', 'a', '--pads']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
