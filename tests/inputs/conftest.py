"""Fixtures for the input tests: generated clips (flash+beep at known times) and a folder to serve over HTTP."""
from __future__ import annotations

from pathlib import Path

import pytest

from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.testing.media import flash_beep_clip, talking_head_video
from tests.conftest import shared_media

#: The test clip: 4 s at 25 fps with its only keyframe at 0, a white frame (50) and a tone burst at MARK.
MARK, SECONDS, FPS = 2.0, 4.0, 25

PAGE = '<!DOCTYPE html><html><head><title>clip</title></head><body><video controls src="{src}"></video></body></html>'


@pytest.fixture(scope="package")
def clip(tmp_path_factory) -> Path:
    """The flash/beep clip (see MARK)."""
    return flash_beep_clip(tmp_path_factory.mktemp("clips") / "flash.mp4", seconds=SECONDS, fps=FPS,
                           flash_at=MARK, beep_at=MARK)


@pytest.fixture(scope="package")
def silent_clip(tmp_path_factory) -> Path:
    """A video without an audio stream."""
    return talking_head_video(tmp_path_factory.mktemp("clips") / "silent.mp4", seconds=1.0, audio=False)


@pytest.fixture(scope="package")
def site(tmp_path_factory, clip) -> Path:
    """What the loopback servers serve: media files, pages that embed them, and things that are not media."""
    root = tmp_path_factory.mktemp("site")
    # Noise makes the clip ~300 kB with its index (moov) at the end, as cameras write it: ffmpeg must seek, i.e.
    # send Range requests, to cut a section remotely. The flash frame stays bright and no keyframe is added.
    run_ffmpeg(["-i", clip, "-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20",
                "-x264-params", "scenecut=0:keyint=250", "-c:a", "copy", root / "flash.mp4"], what="make a noisy clip")
    real = shared_media("talking_head_glasses_vrt5.mp4")
    (root / "real.mp4").symlink_to(real if real is not None else clip)
    (root / "flash_page").write_text(PAGE.format(src="flash.mp4"))  # no suffix: a page, so yt-dlp reads it
    (root / "real_page").write_text(PAGE.format(src="real.mp4"))
    (root / "two_videos_page").write_text(PAGE.format(src="real.mp4").replace("</body>", '<video src="flash.mp4">'
                                                                               "</video></body>"))
    (root / "text_page").write_text("<!DOCTYPE html><html><body>no video here</body></html>")
    (root / "notes.mp4").write_text("this is not a video\n")
    return root


@pytest.fixture
def workdir(tmp_path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path
