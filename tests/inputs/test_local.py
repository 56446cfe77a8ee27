"""Local sources: returned untouched, trimmed frame-accurately into the workdir, and every input error."""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest

from lipsync_core.inputs.resolve import resolve_inputs, resolve_media
from lipsync_core.media.probe import probe
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.media import still_image
from tests.inputs.clips import beep_onsets, flash_frames, gray_frames
from tests.inputs.conftest import FPS, MARK, SECONDS

FRAME = 1 / FPS


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_clip_is_what_the_tests_assume(clip):
    assert flash_frames(clip) == [round(MARK * FPS)]
    assert beep_onsets(clip) == pytest.approx([MARK], abs=0.002)


def test_an_untrimmed_local_file_is_returned_as_it_is(clip, workdir):
    before = digest(clip)
    assert resolve_media(clip, workdir=workdir) == clip
    assert digest(clip) == before
    assert list(workdir.iterdir()) == []


def test_a_trim_off_keyframe_starts_on_the_requested_frame_with_its_sound(clip, workdir):
    before = digest(clip)
    out = resolve_media(clip, start=MARK - 0.4, end=MARK + 1.0, workdir=workdir)
    assert out.parent == workdir
    assert digest(clip) == before  # the source is never modified
    assert flash_frames(out) == [10]  # 0.4 s in
    assert beep_onsets(out) == pytest.approx([0.4], abs=0.002)
    assert len(gray_frames(out)) == 35  # 1.4 s
    assert probe(out).duration == pytest.approx(1.4, abs=FRAME + 0.05)


def test_a_trim_on_the_mark_opens_with_the_flash_and_the_beep(clip, workdir):
    out = resolve_media(clip, start="00:00:02", end="0:03.5", workdir=workdir)
    assert flash_frames(out) == [0]
    assert beep_onsets(out) == pytest.approx([0.0], abs=0.002)


def test_a_start_between_frames_begins_on_the_frame_on_screen_with_its_sound(clip, workdir):
    out = resolve_media(clip, start=MARK - 0.38, end=MARK + 0.5, workdir=workdir)  # frame 40 is on screen then
    assert flash_frames(out) == [10]
    assert beep_onsets(out) == pytest.approx([0.4], abs=0.002)


def test_an_end_beyond_the_duration_is_clamped_with_a_warning(clip, workdir, caplog):
    out = resolve_media(clip, start=2.5, end=30, workdir=workdir)
    assert "beyond its duration" in caplog.text
    assert probe(out).duration == pytest.approx(SECONDS - 2.5, abs=FRAME + 0.05)


def test_max_seconds_refuses_a_longer_input_but_not_a_short_enough_trim(clip, workdir):
    with pytest.raises(LipsyncError, match="more than max_seconds=3"):
        resolve_media(clip, workdir=workdir, max_seconds=3)
    assert resolve_media(clip, start=1, end=3.5, workdir=workdir, max_seconds=3).is_file()


def test_a_video_file_serves_as_audio_and_its_trim_is_a_wav(clip, workdir):
    assert resolve_media(clip, kind="audio", workdir=workdir) == clip
    out = resolve_media(clip, kind="audio", start=1.5, end=3.5, workdir=workdir)
    info = probe(out)
    assert out.suffix == ".wav" and not info.has_video
    assert info.duration == pytest.approx(2.0, abs=0.01)
    assert beep_onsets(out) == pytest.approx([0.5], abs=0.002)


def test_a_still_image_is_returned_and_a_trim_is_ignored_with_a_warning(tmp_path, workdir, caplog):
    image = still_image(tmp_path / "face.png")
    assert resolve_media(image, workdir=workdir) == image
    assert resolve_media(image, start=1, end=2, workdir=workdir) == image
    assert "still image" in caplog.text


def test_audio_same_as_face_inherits_the_face_trim(clip, workdir):
    face, audio = resolve_inputs(clip, "same", start=MARK, end=MARK + 1.5, workdir=workdir)
    assert audio == face
    assert flash_frames(face) == [0]
    assert beep_onsets(audio) == pytest.approx([0.0], abs=0.002)


def test_face_and_audio_are_trimmed_separately(clip, workdir):
    face, audio = resolve_inputs(clip, clip, start=MARK - 0.4, end=MARK + 1, audio_start=MARK - 0.75,
                                 audio_end=MARK + 1, workdir=workdir)
    assert flash_frames(face) == [10]
    assert beep_onsets(audio) == pytest.approx([0.75], abs=0.002)


def test_without_a_workdir_results_go_to_a_new_temp_folder(clip, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = resolve_media(clip, start=1, end=2)
    assert out.parent.parent == tmp_path and out.parent.name.startswith("lipsync-inputs-")


# -- errors: one line, and nothing left in the workdir ---------------------------------------------------------------
def assert_one_line_error(call, match: str, workdir: Path) -> None:
    with pytest.raises(LipsyncError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
    assert list(workdir.iterdir()) == []


def test_a_missing_file_is_reported(workdir):
    assert_one_line_error(lambda: resolve_media("no/such/face.mp4", workdir=workdir), "file not found", workdir)


def test_a_file_that_is_not_media_is_reported(tmp_path, workdir):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    assert_one_line_error(lambda: resolve_media(fake, start=1, workdir=workdir), "not a media file", workdir)


def test_a_face_without_video_is_reported(clip, workdir):
    wav = resolve_media(clip, kind="audio", start=0.5, workdir=workdir.parent / "audio")
    assert_one_line_error(lambda: resolve_media(wav, workdir=workdir), "no video stream", workdir)


def test_audio_without_an_audio_stream_is_reported(silent_clip, workdir):
    assert_one_line_error(lambda: resolve_media(silent_clip, kind="audio", start=0.5, workdir=workdir),
                          "no audio stream", workdir)


def test_audio_same_needs_a_face_video_with_sound(silent_clip, workdir):
    assert_one_line_error(lambda: resolve_inputs(silent_clip, "same", start=0.2, end=0.6, workdir=workdir),
                          "no audio stream", workdir)


def test_a_failing_audio_removes_the_face_file_already_written(clip, silent_clip, workdir):
    assert_one_line_error(lambda: resolve_inputs(clip, silent_clip, start=1, end=2, workdir=workdir),
                          "no audio stream", workdir)


def test_without_a_workdir_a_failure_leaves_no_temp_folder(clip, silent_clip, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(LipsyncError, match="no audio stream"):
        resolve_inputs(clip, silent_clip, start=1, end=2)  # the face is written first, then the audio fails
    assert list(tmp_path.iterdir()) == []


def test_a_start_beyond_the_duration_is_reported(clip, workdir):
    assert_one_line_error(lambda: resolve_media(clip, start=9, workdir=workdir), "at or beyond its duration", workdir)


@pytest.mark.parametrize("start, end, match", [(3, 2, "must be after the start"), (2, 2, "must be after the start"),
                                               ("1:xx", None, "bad face video start"),
                                               (None, "soon", "bad face video end")])
def test_bad_trims_are_reported(clip, workdir, start, end, match):
    assert_one_line_error(lambda: resolve_media(clip, start=start, end=end, workdir=workdir), match, workdir)


def test_audio_trim_with_audio_same_is_reported(clip, workdir):
    assert_one_line_error(lambda: resolve_inputs(clip, "same", audio_start=1, workdir=workdir),
                          "separate audio source", workdir)


def test_an_unsupported_url_scheme_is_reported(workdir):
    assert_one_line_error(lambda: resolve_media("ftp://example.com/face.mp4", workdir=workdir),
                          "unsupported URL", workdir)
