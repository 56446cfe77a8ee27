"""Every notebook runs headlessly end to end: forms filled in, weights from the fake Drive, a playable mp4 out.

The kernel is a child process on this interpreter; it sees the test manifest, the loopback Drive and
this checkout through its environment (``kernel_env``), so the setup cell skips the install.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import pytest

from lipsync_core.media.audio import load_audio
from lipsync_core.media.probe import probe
from lipsync_core.media.video import VideoWriter, read_frames
from lipsync_core.testing.media import draw_face, speech_wav
from tests.conftest import shared_media
from tests.notebooks import nbrun


def full_form(media, seconds: float) -> dict:
    """The forms of the four full notebooks: a trimmed real clip, ``seconds`` of speech, Haar detection, CPU."""
    return {"face": str(media.face), "start": "0.5", "end": "1.5", "audio": str(media.speech),
            "audio_start": "1", "audio_end": f"{1 + seconds:g}", "detector": "haar", "device": "cpu",
            "frame_time": "0.2"}


def the_result(cwd: Path, seconds: float) -> Path:
    """The one video the run wrote, checked to be a playable mp4 covering the whole audio."""
    results = sorted((cwd / "lipsync" / "results").glob("*.mp4"))
    assert len(results) == 1, results
    out = results[0]
    info = probe(out)
    assert info.has_video and info.has_audio
    assert info.duration == pytest.approx(seconds, abs=0.1)
    assert len(read_frames(out)) == math.ceil(seconds * info.fps - 1e-6)
    assert load_audio(out).size > 0
    return out


def assert_ran_installed_copy(nb) -> None:
    setup = nbrun.outputs_text(nbrun.cell(nb, "setup"))
    assert "lipsync_core" in setup and "pip" not in setup


def assert_previewed(nb) -> None:
    shown = nbrun.outputs_text(nbrun.cell(nb, "run"))
    assert "<video controls" in shown and "data:video/mp4;base64," in shown


#: (notebook, form values beyond full_form, seconds of audio). Frame counts are kept small where a stage is slow
#: on a CPU even reduced (the full-size BiSeNet, CodeFormer's RetinaFace-R50 and ParseNet); RetinaFace sees small
#: frames because its procedural weights flood NMS with candidates.
FULL = [
    pytest.param("lipsync_original.ipynb", {"score_sync": True}, 0.8, id="original-scored"),
    pytest.param("lipsync_hq.ipynb", {}, 0.4, id="hq"),
    pytest.param("lipsync_hq_gan.ipynb", {"segmentation_mask": False}, 0.8, id="hq_gan-no-segmentation"),
    pytest.param("lipsync_codeformer.ipynb", {"detector": "retinaface", "det_size": 160, "sharpen": 0.5, "upscale": 2},
                 0.4, id="codeformer-sharpen-upscale", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, extra, seconds", FULL)
def test_full_notebook_runs_to_a_playable_video(kernel_env, media, name, extra, seconds):
    nb = nbrun.read(name)
    nbrun.set_form_params(nb, **{**full_form(media, seconds), **extra})
    nbrun.execute(nb, kernel_env)
    out = the_result(kernel_env, seconds)
    side = 524 * extra.get("upscale", 1)
    assert probe(out).frame_size == (side, side)
    assert_ran_installed_copy(nb)
    assert_previewed(nb)
    assert "Detected box" in nbrun.outputs_text(nbrun.cell(nb, "face-box"))
    if extra.get("score_sync"):
        shown = nbrun.outputs_text(nbrun.cell(nb, "run"))
        assert "LSE-D" in shown and "face video with its own audio" in shown and "<svg" in shown


def test_simple_notebook_runs_with_the_gan_model(kernel_env, media):
    nb = nbrun.read("lipsync_simple.ipynb")
    nbrun.set_form_params(nb, video=str(media.face), start="0.5", end="1.5", audio=str(media.short_speech),
                          use_gan_model=True)
    # The Simple form has no detector; procedural S3FD weights make detection take minutes, so choose Haar the
    # way a user would set any option without a field: in a cell of their own.
    nb.cells.insert(2, nbformat.v4.new_code_cell('job.overrides["detector"] = "haar"'))
    nbrun.execute(nb, kernel_env)
    the_result(kernel_env, 0.8)
    assert_ran_installed_copy(nb)
    assert_previewed(nb)
    assert "Wav2Lip generator: wav2lip_gan" in nbrun.outputs_text(nbrun.cell(nb, "run"))


@pytest.mark.parametrize("form, message", [
    ({"start": "2", "end": "1"}, "must be after the start"),
    ({"checkpoint_path": "https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz012345"},
     "folder link"),
])
def test_expected_errors_show_as_one_line(kernel_env, media, form, message):
    nb = nbrun.read("lipsync_original.ipynb")
    nb.cells = [c for c in nb.cells if c.get("id") in ("setup", "weights", "inputs")]
    nbrun.set_form_params(nb, **{"face": str(media.face), "audio": str(media.short_speech), **form})
    nbrun.execute(nb, kernel_env, allow_errors=True)
    errors = [out for c in nb.cells for out in c.get("outputs", []) if out.output_type == "error"]
    assert len(errors) == 1
    assert len(errors[0].traceback) == 1 and message in errors[0].traceback[0]


def cartoon_form(tmp_path: Path) -> tuple[dict, float]:
    """The 2D notebook's form for a short cartoon re-dub, and the seconds of audio: Sita's clip and a new line
    (with the words it says) where ../shared/media has them, else a drawn face whose mouth takes four shapes
    in turn and speech-like noise (no transcript)."""
    sita, line = shared_media("anime2d/sita_redub_source_7s.mp4"), shared_media("anime2d/sita_redub_line.wav")
    if sita is not None and line is not None:  # "Oh no, the paint is wet!" ends at 1.9 s, a pause follows
        return {"face": str(sita), "start": "0", "end": "3", "audio": str(line), "audio_start": "0",
                "audio_end": "2.2", "transcript": "Oh no, the paint is wet!", "mouth_box": "188 216 228 284"}, 2.2
    face, size, fps = tmp_path / "cartoon.mp4", (192, 192), 25.0
    with VideoWriter(face, size=size, fps=fps, crf=18, preset="ultrafast") as writer:
        for k in range(75):
            writer.write(draw_face(size, k / fps, (0.0, 0.35, 0.7, 1.0)[(k // 3) % 4]))
    audio = speech_wav(tmp_path / "line.wav", 1.6)
    return {"face": str(face), "start": "", "end": "", "audio": str(audio), "audio_start": "", "audio_end": "",
            "transcript": "", "mouth_box": "116 162 66 126"}, 1.6


def test_2d_notebook_redubs_a_cartoon_with_its_own_mouth_drawings(kernel_env, tmp_path):
    form, seconds = cartoon_form(tmp_path)
    nb = nbrun.read("lipsync_2d.ipynb")
    nbrun.set_form_params(nb, **form, hold_frames=2, dat_fps=25)
    nbrun.execute(nb, kernel_env)
    out = the_result(kernel_env, seconds)
    assert probe(out).frame_size == probe(Path(form["face"])).frame_size
    assert_ran_installed_copy(nb)
    assert_previewed(nb)
    mouth = nbrun.cell(nb, "mouth")
    assert "Mouth chart (the clip's own drawings)" in nbrun.outputs_text(mouth)
    assert sum("image/png" in o.get("data", {}) for o in mouth.outputs) == 1  # the contact sheet
    assert (kernel_env / "lipsync" / "chart" / "contact_sheet.png").is_file()
    cues = json.loads(out.with_name(out.stem + ".cues.json").read_text())
    assert cues["mouthCues"] and cues["metadata"]["dialog"] is bool(form["transcript"])
    for fmt in ("tsv", "xml", "dat"):
        assert out.with_name(f"{out.stem}.cues.{fmt}").stat().st_size > 0
    dat = out.with_name(out.stem + ".cues.dat").read_text().splitlines()
    assert dat[0] == "MohoSwitch1" and int(dat[-1].split()[0]) == 1 + math.floor(25 * cues["mouthCues"][-1]["end"])


@pytest.mark.slow  # a full-size generator trained, validated and rendered on a CPU: ~3 min
def test_finetune_notebook_prepares_trains_and_compares(kernel_env, media):
    nb = nbrun.read("lipsync_finetune.ipynb")
    nbrun.set_form_params(nb, keep_in_drive=False, folder="ft", clips=f"{media.face}#t=0,3", detector="haar",
                          clip_seconds=1.0, sync_check=False, steps=1, batch_size=2, eval_interval=1, device="cpu",
                          face=str(media.face), start="3", end="4", audio=str(media.speech), audio_start="1",
                          audio_end="2", compare_detector="haar")
    nbrun.execute(nb, kernel_env, timeout=600)
    assert_ran_installed_copy(nb)
    assert "kept" in nbrun.outputs_text(nbrun.cell(nb, "clips"))
    trained = nbrun.outputs_text(nbrun.cell(nb, "train"))
    assert "<svg" in trained and "validation sync loss" in trained and "rendered clip LSE-C" in trained
    assert (kernel_env / "ft" / "run" / "best_checkpoint.pth").is_file()
    compared = nbrun.outputs_text(nbrun.cell(nb, "compare"))
    assert compared.count("<video controls") == 2 and compared.count("LSE-C") == 2
    for name in ("before", "after"):
        assert probe(kernel_env / "ft" / "compare" / f"{name}_original.mp4").duration == pytest.approx(1.0, abs=0.1)
