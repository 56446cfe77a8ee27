"""Notebooks with several audio files for one face: one video each, through the batch runner, resumable."""
from __future__ import annotations

import json
import shutil

from lipsync_core.front import notebook as ln
from tests.batch.conftest import BOX, clip, speeches  # noqa: F401 - fixtures
from tests.notebooks.test_helpers import colab  # noqa: F401 - fixture
from tests.pipeline.conftest import w2l_checkpoint  # noqa: F401 - fixture


def test_an_audio_folder_makes_one_video_per_file_and_a_results_table(tmp_path, clip, speeches,  # noqa: F811
                                                                      w2l_checkpoint, capsys):  # noqa: F811
    takes = tmp_path / "takes"
    takes.mkdir()
    for name, src in (("intro.wav", speeches[0]), ("outro.wav", speeches[1])):
        shutil.copy(src, takes / name)
    job = ln.Job("original", tmp_path / "work")
    job.set_inputs(str(clip), str(takes))
    assert "2 audio sources, one video each: 01_intro, 02_outro" in capsys.readouterr().out
    job.weights = {"checkpoint_path": str(w2l_checkpoint)}
    job.options = {"device": "cpu", "no_progress": True, "preset": "ultrafast"}
    job.box = BOX
    made = job.run(preview=False)
    folder = tmp_path / "work" / "results" / "face_original"
    assert made == [folder / "01_intro.mp4", folder / "02_outro.mp4"] and all(p.is_file() for p in made)
    out = capsys.readouterr().out
    assert "[1/2] done" in out and "[2/2] done" in out
    state = json.loads((folder / "lipsync-batch.state.json").read_text())["jobs"]
    assert sorted(r["status"] for r in state.values()) == ["done", "done"]
    table = ln.results_html(job.results)
    assert table.count("<tr>") == 3 and "01_intro.mp4" in table
    job.run(preview=False)  # run again: nothing is redone
    assert "[2/2] skipped" in capsys.readouterr().out


def test_several_audio_sources_can_be_listed_with_semicolons(tmp_path, clip, speeches):  # noqa: F811
    job = ln.Job("original", tmp_path / "work")
    job.set_inputs(str(clip), f"{speeches[0]} ; {speeches[1]}", audio_end="0.2")
    assert job.audios == [str(speeches[0]), str(speeches[1])] and job.audio is None
    assert job.audio_options["audio_end"] == "0.2"


def test_with_weights_cached_in_drive_the_batch_and_its_state_live_in_drive(tmp_path, clip, colab):  # noqa: F811
    job = ln.Job("original", tmp_path / "work")
    job.set_weights(cache_in_drive=True)
    job.face = clip
    job.audios = ["a.wav", "b.wav"]
    assert job.batch_folder() == colab.root / "MyDrive" / ln.DRIVE_RESULTS_FOLDER / "face_original"


def test_a_2d_batch_runs_the_chart_variant_and_offers_each_videos_cues(tmp_path, clip, speeches):  # noqa: F811
    import cv2
    import numpy as np

    drawings = tmp_path / "mouths"
    drawings.mkdir()
    for shape, height in (("X", 2), ("A", 3), ("C", 8), ("D", 12)):
        img = np.zeros((16, 24, 4), np.uint8)
        cv2.ellipse(img, (12, 8), (10, height // 2), 0, 0, 360, (40, 30, 120, 255), -1)
        cv2.imwrite(str(drawings / f"{shape}.png"), img)
    job = ln.Job("chart", tmp_path / "work")
    job.set_inputs(str(clip), f"{speeches[0]};{speeches[1]}")
    job.set_chart(mouth_chart=str(drawings), mouth_box="38 52 20 44", preview=False)
    job.options.update(no_progress=True, preset="ultrafast")
    made = job.run(preview=False)
    assert len(made) == 2 and all(p.is_file() for p in made)
    cues = job.cue_files()
    assert sorted(p.name for p in cues) == sorted(f"{p.stem}.cues.{f}" for p in made for f in ("json", "tsv", "xml",
                                                                                                "dat"))
