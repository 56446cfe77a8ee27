"""Every notebook runs headlessly end to end: forms filled in, weights from the fake Drive, a playable mp4 out.

The kernel is a child process on this interpreter; it sees the test manifest, the loopback Drive and
this checkout through its environment (``kernel_env``), so the setup cell skips the install.
"""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest

from lipsync_core.audio import load_audio
from lipsync_core.media.probe import probe
from lipsync_core.media.video import read_frames
from tests.notebooks import nbrun

#: 0.8 s of driving audio at 25 fps.
SECONDS, FRAMES = 0.8, 20


def full_form(media) -> dict:
    """The forms of the four full notebooks: a trimmed real clip and speech, Haar detection, CPU."""
    return {"face": str(media.face), "start": "0.5", "end": "1.5", "audio": str(media.speech),
            "audio_start": "1", "audio_end": f"{1 + SECONDS}", "detector": "haar", "device": "cpu",
            "frame_time": "0.2"}


def the_result(cwd: Path) -> Path:
    """The one video the run wrote; checked to be a playable mp4 with the whole audio."""
    results = sorted((cwd / "lipsync" / "results").glob("*.mp4"))
    assert len(results) == 1, results
    out = results[0]
    info = probe(out)
    assert info.has_video and info.has_audio
    assert info.duration == pytest.approx(SECONDS, abs=0.1)
    assert len(read_frames(out)) == math.ceil(SECONDS * info.fps - 1e-6)
    assert load_audio(out).size > 0
    return out


def assert_ran_installed_copy(nb) -> None:
    setup = nbrun.outputs_text(nbrun.cell(nb, "setup"))
    assert "lipsync_core" in setup and "pip" not in setup


def assert_previewed(nb) -> None:
    shown = nbrun.outputs_text(nbrun.cell(nb, "run"))
    assert '<video controls' in shown and "data:video/mp4;base64," in shown


@pytest.mark.parametrize("name", ["lipsync_original.ipynb", "lipsync_hq.ipynb", "lipsync_hq_gan.ipynb"])
def test_full_notebook_runs_to_a_playable_video(kernel_env, media, name):
    nb = nbrun.read(name)
    nbrun.set_form_params(nb, **full_form(media))
    nbrun.execute(nb, kernel_env)
    the_result(kernel_env)
    assert_ran_installed_copy(nb)
    assert_previewed(nb)
    assert "Detected box" in nbrun.outputs_text(nbrun.cell(nb, "face-box"))


@pytest.mark.xfail(strict=False, reason="procedural RetinaFace weights give no usable 5-point landmarks, which "
                   "CodeFormer needs; a functional test detector is still to come")
def test_codeformer_notebook_runs_to_a_playable_video(kernel_env, media):
    nb = nbrun.read("lipsync_codeformer.ipynb")
    nbrun.set_form_params(nb, **{**full_form(media), "detector": "retinaface"})
    nbrun.execute(nb, kernel_env)
    the_result(kernel_env)
    assert_previewed(nb)


def test_simple_notebook_runs_with_the_gan_model(kernel_env, media):
    nb = nbrun.read("lipsync_simple.ipynb")
    nbrun.set_form_params(nb, video=str(media.face), start="0.5", end="1.5", audio=str(media.short_speech),
                          use_gan_model=True)
    # The Simple form has no detector; procedural S3FD weights make detection take minutes, so choose Haar the
    # way a user would for any option without a field: in a cell of their own.
    nb.cells.insert(2, nbformat.v4.new_code_cell('job.overrides["detector"] = "haar"'))
    nbrun.execute(nb, kernel_env)
    the_result(kernel_env)
    assert_ran_installed_copy(nb)
    assert_previewed(nb)
    assert "wav2lip_gan" in nbrun.outputs_text(nbrun.cell(nb, "run"))


@pytest.mark.parametrize("form, message", [
    ({"start": "2", "end": "1"}, "must be after the start"),
    ({"checkpoint_path": "https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz012345"},
     "folder link"),
])
def test_expected_errors_show_as_one_line(kernel_env, media, form, message):
    nb = nbrun.read("lipsync_original.ipynb")
    nb.cells = [c for c in nb.cells if c.get("id") in ("setup", "weights", "inputs")]
    nbrun.set_form_params(nb, **{**full_form(media), **form})
    nbrun.execute(nb, kernel_env, allow_errors=True)
    errors = [out for c in nb.cells for out in c.get("outputs", []) if out.output_type == "error"]
    assert len(errors) == 1
    assert len(errors[0].traceback) == 1 and message in errors[0].traceback[0]
