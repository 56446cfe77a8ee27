"""front.notebook: forms -> options, one-line errors, Colab features (against a stand-in Colab), box helper."""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipsync_core.front import notebook as ln
from lipsync_core.support.errors import LipsyncError
from tests.support.google_route import route_drive

DRIVE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456"


@pytest.fixture
def colab(tmp_path, monkeypatch):
    """A stand-in ``google.colab`` (files.upload, drive.mount) with Drive "mounted" under tmp_path."""
    calls: dict[str, list] = {"upload": [], "mount": []}
    uploads: list[dict[str, bytes]] = []

    def upload():
        calls["upload"].append(True)
        return uploads.pop(0) if uploads else {}

    def mount(where):
        calls["mount"].append(where)
        (Path(where) / "MyDrive").mkdir(parents=True, exist_ok=True)

    google = types.ModuleType("google")
    module = types.ModuleType("google.colab")
    module.files = types.SimpleNamespace(upload=upload)
    module.drive = types.SimpleNamespace(mount=mount)
    google.colab = module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    monkeypatch.setattr(ln, "DRIVE_ROOT", tmp_path / "drive")
    return types.SimpleNamespace(calls=calls, uploads=uploads, root=tmp_path / "drive")


# -- forms -> options ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("", None),
    ("   ", None),
    (DRIVE_ID, DRIVE_ID),
    (f" https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing ", DRIVE_ID),
    (f"'https://drive.google.com/open?id={DRIVE_ID}'", DRIVE_ID),
    ("https://example.org/models/wav2lip.pth", "https://example.org/models/wav2lip.pth"),
])
def test_weight_field_becomes_a_source_or_the_default(text, expected):
    assert ln.weight_source(text, "checkpoint") == expected


def test_weight_field_accepts_an_existing_file(tmp_path):
    path = tmp_path / "mine.pth"
    path.write_bytes(b"x")
    assert ln.weight_source(str(path), "checkpoint") == str(path)


@pytest.mark.parametrize("text, message", [
    (f"https://drive.google.com/drive/folders/{DRIVE_ID}", "folder link"),
    ("my weights", "checkpoint: 'my weights' is neither"),
])
def test_weight_field_that_is_no_source_is_refused(text, message):
    with pytest.raises(LipsyncError, match=message):
        ln.weight_source(text, "checkpoint")


def test_settings_form_maps_to_run_options():
    opts = ln.settings_options(pad_top=1, pad_bottom=2, pad_left=3, pad_right=4, super_resolution=False,
                               segmentation_mask=True, mask_lower_face=0.0, det_size=0, blend="hard")
    assert opts == {"pads": (1, 2, 3, 4), "no_sr": True, "no_segmentation": False, "mask_lower_face": None,
                    "det_size": 0, "blend": "hard"}
    assert ln.settings_options(mask_lower_face=0.5)["mask_lower_face"] == 0.5


def test_settings_are_checked_in_their_cell():
    job = ln.Job("codeformer")
    with pytest.raises(ln.NotebookError, match="--fidelity"):
        job.set_settings(fidelity=2.0)
    assert job.options == {}


def test_overrides_apply_on_top_of_the_forms():
    job = ln.Job("original")
    job.set_settings(pad_top=0, pad_bottom=5, pad_left=0, pad_right=0, detector="s3fd")
    job.overrides["detector"] = "haar"
    assert job.run_options()["detector"] == "haar" and job.run_options()["pads"] == (0, 5, 0, 0)


# -- errors --------------------------------------------------------------------------------------------------------
def test_expected_errors_render_as_one_line_without_traceback():
    @ln.friendly
    def fails():
        raise LipsyncError("the end (1 s) must be after the start (2 s)")

    with pytest.raises(ln.NotebookError) as info:
        fails()
    assert isinstance(info.value, LipsyncError)
    (line,) = info.value._render_traceback_()
    assert line.endswith("Error:\x1b[0m the end (1 s) must be after the start (2 s)")


def test_bugs_keep_their_traceback():
    @ln.friendly
    def bug():
        raise KeyError("x")

    with pytest.raises(KeyError):
        bug()


def test_running_before_the_inputs_cell_says_so():
    with pytest.raises(ln.NotebookError, match="run the inputs cell first"):
        ln.Job("original").run()


# -- Colab-only features -------------------------------------------------------------------------------------------
def test_outside_colab_uploads_drive_and_recording_say_they_need_colab(tmp_path):
    assert not ln.in_colab()
    job = ln.Job("original", tmp_path)
    with pytest.raises(ln.NotebookError, match="Uploading works only on Google Colab"):
        job.set_inputs("", "x.wav")
    with pytest.raises(ln.NotebookError, match="Recording works only on Google Colab"):
        job.set_inputs(__file__, "record")
    with pytest.raises(ln.NotebookError, match="Google Drive works only on Google Colab"):
        ln.save_to_drive(__file__)


def test_upload_saves_the_chosen_file(colab, tmp_path):
    colab.uploads.append({"my clip.mp4": b"video bytes"})
    path = ln.upload_file(tmp_path / "up", "face video")
    assert path == tmp_path / "up" / "my clip.mp4" and path.read_bytes() == b"video bytes"


def test_the_copy_colab_saved_is_moved_not_duplicated(colab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"video bytes")  # what files.upload() leaves in the working directory
    colab.uploads.append({"clip.mp4": b"video bytes"})
    path = ln.upload_file(tmp_path / "up", "face video")
    assert path.read_bytes() == b"video bytes" and not (tmp_path / "clip.mp4").exists()


@pytest.mark.parametrize("chosen", [{}, {"a.mp4": b"a", "b.mp4": b"b"}])
def test_anything_but_one_uploaded_file_is_an_expected_error(colab, tmp_path, chosen):
    colab.uploads.append(chosen)
    with pytest.raises(LipsyncError, match="choose exactly one file as the face video"):
        ln.upload_file(tmp_path, "face video")


def test_result_copies_to_drive_mounting_it_once(colab, tmp_path):
    result = tmp_path / "out.mp4"
    result.write_bytes(b"mp4")
    first = ln.save_to_drive(result)
    second = ln.save_to_drive(result)
    assert first == second == colab.root / "MyDrive" / ln.DRIVE_RESULTS_FOLDER / "out.mp4"
    assert first.read_bytes() == b"mp4" and len(colab.calls["mount"]) == 1


def test_weights_cache_can_live_in_drive_and_leave_it_again(colab):
    job = ln.Job("original")
    job.set_weights(cache_in_drive=True, checkpoint_path=DRIVE_ID, s3fd_path="")
    assert job.weights == {"checkpoint_path": DRIVE_ID, "s3fd_path": None}
    drive = str(colab.root / "MyDrive" / ln.DRIVE_WEIGHTS_FOLDER)
    assert job.cache_dir == drive and job.run_options()["cache_dir"] == drive
    assert os.environ.get("LIPSYNC_CACHE") != drive  # configuration, not the environment
    job.set_weights(cache_in_drive=False, checkpoint_path="", s3fd_path="")
    assert job.cache_dir is None


def test_weight_fields_are_the_variants_roles_and_every_detectors():
    with pytest.raises(ValueError, match="sr_path"):
        ln.Job("original").set_weights(sr_path="")
    job = ln.Job("original")
    job.set_weights(anime_path=DRIVE_ID, retinaface_path="")  # used once the settings pick that detector
    assert job.run_options()["anime_path"] == DRIVE_ID and job.run_options()["retinaface_path"] is None


# -- inputs and results --------------------------------------------------------------------------------------------
def test_inputs_resolve_to_local_files_and_same_uses_the_face_sound(tmp_path, capsys):
    from lipsync_core.testing.media import talking_head_video

    clip = talking_head_video(tmp_path / "clip.mp4", seconds=1.0)
    job = ln.Job("original", tmp_path / "work")
    job.box = (1, 2, 3, 4)
    job.set_inputs(str(clip), "same", end="0.5")
    assert job.face == job.audio and job.face.parent == tmp_path / "work" / "inputs"
    assert job.box is None  # a box from other footage is dropped
    assert "face: " in capsys.readouterr().out


def test_video_preview_embeds_the_file(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"\x00\x01")
    html = ln.video_html(path)
    assert html.startswith("<video controls") and 'src="data:video/mp4;base64,AAE="' in html


def test_colab_url_points_at_the_notebook_in_the_repo():
    assert ln.colab_url("lipsync_hq.ipynb", ref="v1") == (
        "https://colab.research.google.com/github/" + ln.REPO_URL.removeprefix("https://github.com/")
        + "/blob/v1/notebooks/lipsync_hq.ipynb")


# -- the face-box helper -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("box, expected", [
    ((10, 50, 20, 60), (10, 50, 20, 60)),
    ((-5, 500, 90, 10), (0, 100, 90, 92)),
    ((99, 99, 0, 0), (98, 100, 0, 2)),
])
def test_box_is_kept_inside_the_frame(box, expected):
    assert ln.clamp_box(box, (200, 100)) == expected


@pytest.fixture
def haar_job(test_weights, tmp_path, monkeypatch):
    """A job on a real face clip with Haar detection, weights from the fake Drive."""
    from tests.conftest import shared_path

    monkeypatch.setenv("LIPSYNC_MANIFEST", str(test_weights.manifest))
    route_drive(monkeypatch, test_weights.drive_url)
    job = ln.Job("original", tmp_path)
    job.set_settings(detector="haar", device="cpu")
    job.face = job.audio = shared_path("media", "talking_head_glasses_vrt5.mp4")
    return job


def test_box_helper_starts_from_the_detected_box_and_sets_a_fixed_one(haar_job):
    helper = ln.BoxHelper(haar_job, at_seconds=0.2)
    assert helper.index == 5 and helper.detected is not None
    assert helper.box == helper.detected and haar_job.box is None
    helper.use_box.value = True
    assert haar_job.box == helper.detected
    helper.sliders["top"].value -= 20
    assert haar_job.box == (helper.detected[0] - 20, *helper.detected[1:])
    jpeg = cv2.imdecode(np.frombuffer(helper.image.value, np.uint8), cv2.IMREAD_COLOR)
    assert jpeg.shape == (524, 524, 3)
    helper.use_box.value = False
    assert haar_job.box is None


def test_box_helper_without_a_face_offers_a_centred_box(haar_job, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 90, np.uint8))
    haar_job.face = blank
    helper = ln.BoxHelper(haar_job, at_seconds=3.0)
    assert helper.index == 0 and helper.detected is None
    assert helper.box == (30, 90, 40, 120)
    assert "No face detected" in helper.note.value


def test_box_helper_without_ipywidgets_shows_the_frame_and_how_to_set_a_box(haar_job, monkeypatch, capsys):
    """Plain Jupyter without the notebook extra: a picture and one line, no traceback."""
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets raises ImportError
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs: shown.extend(objs))
    helper = ln.BoxHelper(haar_job, at_seconds=0.2)
    helper.show()
    assert helper.detected is not None and helper.box == helper.detected
    assert len(shown) == 1 and shown[0].data[:2] == b"\xff\xd8"  # a JPEG
    assert "ipywidgets is not installed" in capsys.readouterr().out


def test_result_without_ipywidgets_is_offered_as_a_link(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    monkeypatch.setattr(ln, "in_colab", lambda: True)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs: shown.extend(objs))
    video = tmp_path / "out.mp4"
    video.write_bytes(b"\0" * 10)
    ln.show_result(video)
    assert [type(o).__name__ for o in shown] == ["HTML", "FileLink"]


def test_box_helper_sets_a_keyframe_to_follow_and_previews_the_tracked_box(haar_job, monkeypatch, capsys):
    helper = ln.BoxHelper(haar_job, at_seconds=0.2)
    helper.follow.value = True
    assert haar_job.keyframes == {0.2: helper.detected} and haar_job.box is None
    t, b, l, r = helper.detected
    assert haar_job.run_options()["track_box"] == (f"{t} {b} {l} {r} @0.2",)
    helper.use_box.value = True  # a fixed box instead: the keyframe goes
    assert haar_job.keyframes == {} and haar_job.box == helper.detected
    helper.follow.value = True
    assert haar_job.box is None and helper.use_box.value is False
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs: shown.extend(objs))
    result = haar_job.preview_track(frames=3)
    assert result.track.n_frames == 122 and all(bx is not None for bx in result.track.boxes)
    strip = cv2.imdecode(np.frombuffer(shown[0].data, np.uint8), cv2.IMREAD_COLOR)
    assert strip.shape[0] == 240 and strip.shape[1] == 3 * 240  # three square frames side by side
    assert "tracked box" in capsys.readouterr().out


def test_preview_without_a_keyframe_says_what_to_do(haar_job):
    with pytest.raises(LipsyncError, match="tick 'follow'"):
        haar_job.preview_track()


# -- the 2D notebook -------------------------------------------------------------------------------------------------
def test_a_zip_of_mouth_drawings_unpacks_to_the_folder_that_holds_them(tmp_path):
    import zipfile

    png = cv2.imencode(".png", np.zeros((8, 8, 4), np.uint8))[1].tobytes()
    with zipfile.ZipFile(tmp_path / "mouths.zip", "w") as z:
        z.writestr("__MACOSX/sita/._A.png", b"")
        z.writestr("readme.txt", "drawn by hand")
        for shape in "ACDX":
            z.writestr(f"sita/{shape}.png", png)
    folder = ln.chart_folder(tmp_path / "mouths.zip", tmp_path / "chart")
    assert folder == tmp_path / "chart" / "sita"
    assert ln.chart_folder(folder, tmp_path / "unused") == folder  # a folder is used where it is
    (tmp_path / "notes.txt").write_text("not a zip")
    with pytest.raises(LipsyncError, match="neither a folder nor a zip"):
        ln.chart_folder(tmp_path / "notes.txt", tmp_path / "chart")


def test_the_runs_cue_json_is_also_written_as_tsv_xml_and_dat(tmp_path):
    from lipsync_core.cues import MouthCue
    from lipsync_core.cues.formats import CueFile, render

    cues = [MouthCue(0.0, 0.2, "X"), MouthCue(0.2, 0.45, "B"), MouthCue(0.45, 0.7, "D"), MouthCue(0.7, 1.1, "X")]
    info = CueFile(sound_file="/abs/line.wav", duration=1.1, recognizer="phonetic", dialog=True)
    run_json = tmp_path / "out.cues.json"
    run_json.write_text(render(cues, info, "json"))
    written = ln.write_cue_formats(run_json, fps=30, preston_blair=True)
    assert [p.name for p in written] == ["out.cues.tsv", "out.cues.xml", "out.cues.dat"]
    assert written[0].read_text() == render(cues, info, "tsv")
    assert written[1].read_text() == render(cues, info, "xml")
    assert written[2].read_text() == render(cues, info, "dat", fps=30, preston_blair=True)
    with pytest.raises(LipsyncError, match="no cue file"):
        ln.write_cue_formats(tmp_path / "missing.cues.json")


def test_the_transcript_is_a_typed_text_or_a_txt_file(tmp_path):
    job = ln.Job("chart", tmp_path / "work")
    job.set_transcript("Oh no, the paint is wet!")
    assert Path(job.dialog_file).read_text() == "Oh no, the paint is wet!\n"
    assert job.run_options()["dialog_file"] == job.dialog_file
    own = tmp_path / "line.txt"
    own.write_text("Wait for five minutes.")
    job.set_transcript(str(own))
    assert job.dialog_file == str(own)
    with pytest.raises(ln.NotebookError, match="no such file"):
        job.set_transcript(str(tmp_path / "lost.txt"))
    job.set_transcript("  ")
    assert job.dialog_file is None and "dialog_file" not in job.run_options()


def test_a_transcript_without_words_warns_and_the_speech_is_recognised(tmp_path, caplog):
    job = ln.Job("chart", tmp_path / "work")
    job.set_transcript("Oh no, the paint is wet!")
    job.set_transcript("...")
    assert job.dialog_file is None and "dialog_file" not in job.run_options()
    assert "has no words; recognising the speech without it" in caplog.text


def test_the_mouth_form_becomes_the_chart_variants_options(tmp_path):
    job = ln.Job("chart", tmp_path / "work")
    job.set_chart(mouth_box="188 216 228 284; 190 218 230 286 @1.5", detector="none", hold_frames=2,
                  extended_shapes="gx", recognizer="phonetic", preview=False)
    assert job.options == {"mouth_chart": "auto", "hold_frames": 2, "extended_shapes": "GX",
                           "recognizer": "phonetic", "mouth_box": ("188 216 228 284", "190 218 230 286 @1.5")}
    job.set_chart(detector="anime", preview=False)
    assert job.options["detector"] == "anime" and "mouth_box" not in job.options
    with pytest.raises(ln.NotebookError, match="mouth_box"):
        job.set_chart(mouth_box="1 2 3", preview=False)
    with pytest.raises(ln.NotebookError, match="no inputs yet"):
        job.set_chart()


def test_uploaded_drawings_and_transcript_are_used_by_the_run(colab, tmp_path):
    import io
    import zipfile

    png = cv2.imencode(".png", np.zeros((8, 8, 4), np.uint8))[1].tobytes()
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        for shape in "AD":
            z.writestr(f"{shape}.png", png)
    colab.uploads += [{"mouths.zip": data.getvalue()}, {"line.txt": b"Oh no, the paint is wet!\n"}]
    job = ln.Job("chart", tmp_path / "work")
    job.set_chart(mouth_chart="upload", mouth_box="10 20 10 30", preview=False)
    assert job.options["mouth_chart"] == str(tmp_path / "work" / "inputs" / "mouth_chart")
    assert sorted(p.name for p in Path(job.options["mouth_chart"]).iterdir()) == ["A.png", "D.png"]
    job.set_transcript("upload")
    assert job.run_options()["dialog_file"] == str(tmp_path / "work" / "uploads" / "line.txt")
