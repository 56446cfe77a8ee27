"""What a newcomer's run prints: progress that counts real work, one summary line, errors that name the fix."""
from __future__ import annotations

import subprocess
import sys

import pytest

from lipsync_core.support.errors import LipsyncError
from tests.pipeline.sessions import render_run, session, track


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lipsync_core", *args], capture_output=True, text=True, cwd=cwd)


def _run_args(face, speech, ckpt, out, *extra: str) -> list[str]:
    return ["--face", str(face), "--audio", str(speech), "--checkpoint_path", str(ckpt), "--detector", "haar",
            "--outfile", str(out), "--device", "cpu", "--preset", "ultrafast", *extra]


def test_a_finished_run_prints_the_path_on_stdout_and_one_summary_line(tmp_path, face_clip, speech, w2l_checkpoint):
    face, _ = face_clip
    out = tmp_path / "o.mp4"
    res = cli(*_run_args(face, speech, w2l_checkpoint, out, "--no_progress"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [str(out)]
    summary = [ln for ln in res.stderr.splitlines() if "frames/s" in ln]
    assert len(summary) == 1 and summary[0].startswith("lipsync: 20 frames in ") and summary[0].endswith(str(out))
    assert "\r" not in res.stderr  # no progress bars


def test_quiet_prints_only_the_path(tmp_path, face_clip, speech, w2l_checkpoint):
    face, _ = face_clip
    out = tmp_path / "o.mp4"
    res = cli(*_run_args(face, speech, w2l_checkpoint, out, "--quiet"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [str(out)] and res.stderr == ""


def test_the_detection_bar_counts_detected_frames(face_clip, w2l_checkpoint):
    """The bar advances only when a frame's face is settled (after its chunk went through the detector)."""
    from lipsync_core.media.face_video import FaceVideo

    face, _ = face_clip
    p = session("original", detector="haar", det_stride=4, no_track_cache=True, device="cpu",
                checkpoint_path=str(w2l_checkpoint))
    events: list[tuple[str, int]] = []
    real = p.detector

    def detector():
        inner = real()

        class Recording:
            def detect(self, frames):
                events.append(("detect", len(frames)))
                return inner.detect(frames)
        return Recording()

    class Bar:
        def update(self, n):
            events.append(("bar", n))

        def close(self):
            pass

    p.detector = detector
    p.bar = lambda total, desc: Bar()
    track(p, FaceVideo.open(face, still_fps=25, static=False), 30)
    bars = [i for i, e in enumerate(events) if e[0] == "bar"]
    assert sum(n for kind, n in events if kind == "bar") == 30
    assert events[0][0] == "detect" and events[bars[0] - 1][0] == "detect"


def test_no_face_message_does_not_suggest_the_detector_in_use(tmp_path, speech, w2l_checkpoint):
    import cv2
    import numpy as np

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((96, 96, 3), 90, np.uint8))
    with pytest.raises(LipsyncError) as err:
        render_run(session("original", detector="haar", device="cpu", quiet=True,
                           checkpoint_path=str(w2l_checkpoint)), blank, speech, tmp_path / "o.mp4")
    message = str(err.value)
    assert "no face found" in message and "--detector s3fd or retinaface" in message
    assert "--detector haar" not in message


def test_every_weight_that_cannot_be_had_is_listed_with_its_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPSYNC_OFFLINE", "1")
    p = session("hq", checkpoint_path=str(tmp_path / "absent.pth"), device="cpu",
                cache_dir=str(tmp_path / "empty_cache"))
    with pytest.raises(LipsyncError) as err:
        p.fetch_weights()
    message = str(err.value)
    assert message.startswith("4 weight files could not be had:")
    for flag in ("--s3fd_path", "--sr_path", "--segmentation_path"):
        assert f"(give the file with {flag})" in message
    assert f"--checkpoint_path {tmp_path / 'absent.pth'}: not an existing file" in message  # the user's own source


def test_a_missing_detector_weight_suggests_haar(tmp_path, monkeypatch, w2l_checkpoint):
    monkeypatch.setenv("LIPSYNC_OFFLINE", "1")
    p = session("original", checkpoint_path=str(w2l_checkpoint), device="cpu")
    with pytest.raises(LipsyncError, match=r"--s3fd_path\); or use --detector haar, which needs no download$"):
        p.fetch_weights()


def test_another_models_file_names_the_flag_it_belongs_to(tmp_path):
    from lipsync_core.testing.checkpoints import write_checkpoint

    s3fd = write_checkpoint("s3fd", tmp_path / "s3fd.pth")
    p = session("original", checkpoint_path=str(s3fd), detector="haar", device="cpu")
    with pytest.raises(LipsyncError, match="not Wav2Lip generator weights: pass it to --s3fd_path"):
        p.fetch_weights()
