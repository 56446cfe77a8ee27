"""Damaged and degenerate face videos: a truncated file says so in one line; a one-frame video is a still."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lipsync_core.media import video as video_mod
from lipsync_core.media.face_video import FaceVideo
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.media.probe import probe
from lipsync_core.support.errors import LipsyncError


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3", "-f", "lavfi", "-i",
                "sine=duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
                d / "full.mp4"], what="make a clip")
    data = (d / "full.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: int(len(data) * 0.4)])  # a faststart mp4 cut off: the index says 3 s
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-frames:v", "1", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", d / "one_frame.mp4"], what="make a one-frame video")
    return d


def test_a_truncated_video_is_reported_in_one_line_and_looped_to_the_audio(clips, caplog):
    video = FaceVideo.open(clips / "truncated.mp4", still_fps=25, static=False)
    with caplog.at_level(logging.WARNING):
        n_source = sum(1 for _ in video.frames(max_frames=100))
        out = list(video.looped(100, n_source))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert f"truncated.mp4 decodes to {n_source} frames ({n_source / 25:.2f} s) of the 75 (3.00 s)" in warnings[0]
    assert 10 < n_source < 60
    assert len(out) == 100 and [i for i, _ in out[:n_source + 1]] == [*range(n_source), 0]


def test_a_whole_video_is_not_reported(clips, caplog):
    video = FaceVideo.open(clips / "full.mp4", still_fps=25, static=False)
    with caplog.at_level(logging.WARNING):
        assert sum(1 for _ in video.frames()) == 75
        assert sum(1 for _ in video.frames(max_frames=30)) == 30
    assert caplog.text == ""


def test_a_one_frame_video_is_a_still_probed_and_decoded_once(clips, monkeypatch):
    probes, decodes = [], []
    real_probe, real_init = video_mod.probe, video_mod.FrameReader.__init__
    monkeypatch.setattr("lipsync_core.media.face_video.probe", lambda p: probes.append(p) or real_probe(p))
    monkeypatch.setattr(video_mod, "probe", lambda p: probes.append(p) or real_probe(p))

    def counting_init(self, *a, **k):
        decodes.append(a[0])
        real_init(self, *a, **k)

    monkeypatch.setattr(video_mod.FrameReader, "__init__", counting_init)
    video = FaceVideo.open(clips / "one_frame.mp4", still_fps=25, static=False)
    assert video.static
    n_source = sum(1 for _ in video.frames(max_frames=75))
    frames = list(video.looped(75, n_source))
    assert n_source == 1 and len(frames) == 75
    assert len(probes) == 1  # FaceVideo.open's; every reader reuses it
    assert len(decodes) == 2  # pass 1 and pass 2, not once per output frame


def test_a_huge_resize_factor_names_itself_not_the_crop(clips):
    with pytest.raises(LipsyncError, match=r"^--resize_factor 1000 shrinks the 160x120 video below one pixel") as e:
        FaceVideo.open(clips / "full.mp4", still_fps=25, static=False, resize_factor=1000)
    assert "--crop" not in str(e.value)


def test_probe_reads_the_declared_duration_of_the_truncated_file(clips):
    assert probe(clips / "truncated.mp4").duration == pytest.approx(3.0)


def test_a_picture_shorter_than_its_sound_is_not_called_truncated(tmp_path, caplog):
    clip = tmp_path / "short_picture.mp4"  # 2 s of video, 3 s of audio: the container says 3 s
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-f", "lavfi", "-i",
                "sine=duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
                clip], what="make a clip")
    video = FaceVideo.open(clip, still_fps=25, static=False)
    with caplog.at_level(logging.WARNING):
        assert sum(1 for _ in video.frames()) == 50
    assert caplog.text == ""
