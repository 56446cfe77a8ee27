"""Generated media shared by the media tests (made once per session, in a temp dir)."""
from __future__ import annotations

from pathlib import Path

import pytest

from lipsync_core.testing import media as gen
from tests.conftest import shared_media


@pytest.fixture(scope="session")
def gen_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def talking_head(gen_dir) -> Path:
    """160x120, 25 fps, 2 s, with 16 kHz speech."""
    return gen.talking_head_video(gen_dir / "talking_head.mp4", size=(160, 120), fps=25, seconds=2.0)


@pytest.fixture(scope="session")
def flash_clip(gen_dir) -> Path:
    """3 s at 25 fps: white frame 25 (t = 1 s), beep 1.0-1.12 s."""
    return gen.flash_beep_clip(gen_dir / "flash.mp4", seconds=3.0, fps=25, flash_at=1.0, beep_at=1.0)


@pytest.fixture(scope="session")
def vfr_clip(gen_dir) -> Path:
    """The real VFR clip when ../shared is there, else a generated one (30 fps with every 3rd frame dropped)."""
    return shared_media("talking_head_vfr_vrt1.mp4") or gen.vfr_video(gen_dir / "vfr.mp4")


@pytest.fixture(scope="session")
def stereo_44k(gen_dir) -> Path:
    return shared_media("speech_vrt1_44k1_stereo_5s.wav") or gen.speech_wav(
        gen_dir / "speech_44k_stereo.wav", 2.0, sr=44100, channels=2)
