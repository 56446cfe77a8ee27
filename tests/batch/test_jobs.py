"""Job lists: CSV and JSON Lines rows, the short form, validation of every row before anything runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lipsync_core.batch import JobListError, jobs_from_folder, load_jobs, run_batch
from lipsync_core.batch.jobs import Job, resolve_jobs
from lipsync_core.support.errors import LipsyncError


@pytest.fixture
def media(tmp_path) -> Path:
    """Empty stand-ins: parsing and validation only look at whether the files exist."""
    for name in ("face.mp4", "a1.wav", "a2.mp3", "notes.txt", ".hidden.wav"):
        (tmp_path / name).touch()
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_cells_are_typed_by_the_option_and_empty_cells_are_unset(media):
    jobs = load_jobs(write(media / "jobs.csv", "face,audio,outfile,pads,static,crf,start,box\n"
                                               "face.mp4,a1.wav,out/1.mp4,0 20 0 0,true,20,1:02.5,\n"
                                               "face.mp4,a2.mp3,out/2.mp4,,false,,,\n"))
    assert jobs[0].options == {"pads": (0, 20, 0, 0), "static": True, "crf": 20, "start": "1:02.5"}
    assert jobs[1].options == {"static": False}
    assert (jobs[0].row, jobs[0].line, jobs[1].row, jobs[1].line) == (1, 2, 2, 3)


def test_relative_paths_are_taken_from_the_job_lists_folder(media, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    job, = load_jobs(write(media / "jobs.csv", "face,audio,outfile\nface.mp4,a1.wav,out/1.mp4\n"))
    assert (job.face, job.audio, job.outfile) == (str(media / "face.mp4"), str(media / "a1.wav"),
                                                  str(media / "out" / "1.mp4"))


def test_json_lines_use_native_types(media):
    rows = [{"face": "face.mp4", "audio": "a1.wav", "outfile": "o.mp4", "pads": [0, 5, 0, 0], "nosmooth": True,
             "audio_offset_ms": 40}]
    job, = load_jobs(write(media / "jobs.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n"))
    assert job.options == {"pads": (0, 5, 0, 0), "nosmooth": True, "audio_offset_ms": 40.0}


def test_keyframe_options_take_one_box_or_several(media):
    """Repeatable options (--track_box, --mouth_box): a text or a list natively, ';'-separated in a CSV cell."""
    rows = [{"face": "face.mp4", "audio": "a1.wav", "outfile": "o.mp4", "variant": "chart",
             "mouth_box": ["10 30 10 40", "12 32 11 41 @1"]},
            {"face": "face.mp4", "audio": "a1.wav", "outfile": "p.mp4", "track_box": "0 60 0 60"}]
    native = load_jobs(write(media / "jobs.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n"))
    assert native[0].options["mouth_box"] == ("10 30 10 40", "12 32 11 41 @1")
    assert native[1].options["track_box"] == ("0 60 0 60",)
    cell, = load_jobs(write(media / "jobs.csv", "face,audio,outfile,variant,mouth_box\n"
                                                "face.mp4,a1.wav,o.mp4,chart,10 30 10 40; 12 32 11 41 @1\n"))
    assert cell.options["mouth_box"] == native[0].options["mouth_box"]
    cfg, = resolve_jobs(native[:1], defaults={"hold_frames": 2})
    assert cfg.mouth_box == ("10 30 10 40", "12 32 11 41 @1") and cfg.hold_frames == 2
    bad, = load_jobs(write(media / "bad.jsonl", json.dumps({**rows[1], "track_box": [0, 60, 0, 60]}) + "\n"))
    with pytest.raises(JobListError, match="track_box .*several"):
        resolve_jobs([bad])


def test_every_bad_row_is_reported_at_once_and_nothing_runs(media):
    path = write(media / "jobs.csv", "face,audio,outfile,pads,static,variant\n"
                                     "face.mp4,a1.wav,o1.mp4,0 20 0,,\n"  # three numbers for four
                                     "face.mp4,a1.wav,o2.mp4,,maybe,\n"  # not a boolean
                                     "missing.mp4,a1.wav,o3.mp4,,,\n"
                                     "face.mp4,a2.mp3,o4.mp4,,,best\n"  # no such variant
                                     "face.mp4,a2.mp3,o4.mp4,,,\n"  # the same output as row 4
                                     "face.mp4,a2.mp3,o6.mp4,,,\n")  # fine
    with pytest.raises(JobListError) as err:
        run_batch(load_jobs(path), state=media / "state.json")
    where = [p.split(":")[0] for p in err.value.problems]
    assert where == ["row 1 (line 2)", "row 2 (line 3)", "row 3 (line 4)", "row 4 (line 5)", "row 5 (line 6)"]
    assert "--pads" in err.value.problems[0] and "--static" in err.value.problems[1]
    assert "file not found" in err.value.problems[2] and "variant" in err.value.problems[3]
    assert "also the output of row 4" in err.value.problems[4]
    assert str(err.value).count("\n") == 5  # a heading, then one line per problem
    assert not (media / "state.json").exists() and not list(media.glob("o*.mp4"))


def test_unknown_columns_are_refused_by_name(media):
    with pytest.raises(JobListError, match="unknown column.*paddings"):
        load_jobs(write(media / "jobs.csv", "face,audio,outfile,paddings\nface.mp4,a1.wav,o.mp4,1\n"))


def test_a_rows_value_beats_the_command_line_which_beats_the_variant_preset(media):
    face, audio = str(media / "face.mp4"), str(media / "a1.wav")
    cli = {"detector": "haar", "crf": 30}
    own, from_cli = resolve_jobs([Job(face, audio, "1.mp4", {"variant": "codeformer", "detector": "s3fd"}),
                                  Job(face, audio, "2.mp4", {"variant": "codeformer"})], defaults=cli)
    assert (own.detector, from_cli.detector, own.crf) == ("s3fd", "haar", 30)
    preset, plain = resolve_jobs([Job(face, audio, "3.mp4", {"variant": "codeformer"}), Job(face, audio, "4.mp4")])
    assert (preset.detector, plain.detector) == ("retinaface", "s3fd")  # the variants' presets
    assert plain.pads == (0, 10, 0, 0) and plain.crf == 18  # RunOptions's defaults


def test_weight_roles_are_options_by_their_flag_name(media):
    cfg, = resolve_jobs([Job(str(media / "face.mp4"), str(media / "a1.wav"), "o.mp4",
                             {"checkpoint_path": "wav2lip_gan"})])
    assert cfg.weights == {"checkpoint": "wav2lip_gan"}


def test_boolean_flags_are_options_too(media):
    cfg, = resolve_jobs([Job(str(media / "face.mp4"), str(media / "a1.wav"), "o.mp4", {"no_track_cache": True})])
    assert cfg.no_track_cache is True


def test_short_form_one_face_and_a_folder_of_audio(media, tmp_path):
    (tmp_path / "audio").mkdir()
    for name in ("b.wav", "a.mp3", ".x.wav", "readme.txt"):
        (tmp_path / "audio" / name).touch()
    jobs = jobs_from_folder(media / "face.mp4", tmp_path / "audio", tmp_path / "out")
    assert [(Path(j.audio).name, Path(j.outfile)) for j in jobs] == [("a.mp3", tmp_path / "out" / "a.mp4"),
                                                                    ("b.wav", tmp_path / "out" / "b.mp4")]
    assert {j.face for j in jobs} == {str(media / "face.mp4")}


def test_short_form_a_folder_of_faces_and_one_audio(media, tmp_path):
    (tmp_path / "faces").mkdir()
    for name in ("x.mp4", "y.png", "z.wav"):
        (tmp_path / "faces" / name).touch()
    jobs = jobs_from_folder(tmp_path / "faces", media / "a1.wav", tmp_path / "out")
    assert [Path(j.face).name for j in jobs] == ["x.mp4", "y.png"]
    assert [Path(j.outfile).name for j in jobs] == ["x.mp4", "y.mp4"]


def test_ray_missing_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "from lipsync_core.batch.pools import RayPool\n"
            "try:\n    RayPool('', 1)\nexcept Exception as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().count("\n") == 0 and 'pip install "lipsync_core[ray]"' in out


def test_a_job_list_of_another_kind_is_refused(media):
    with pytest.raises(LipsyncError, match=r"\.csv or \.jsonl"):
        load_jobs(write(media / "jobs.txt", "face.mp4 a1.wav o.mp4\n"))
