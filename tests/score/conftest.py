"""Clips for the scoring tests: real media cut short (a few seconds keep the network's CPU time small)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipsync_core.media.ffmpeg import run_ffmpeg
from tests.conftest import shared_path


@pytest.fixture(scope="session")
def short_real_clip(tmp_path_factory) -> Path:
    """2.0 s (50 frames, 25 fps, 262x262) of the real glasses talking head, with its speech."""
    out = tmp_path_factory.mktemp("score") / "glasses_2s.mp4"
    src = shared_path("media", "talking_head_glasses_vrt5.mp4")
    run_ffmpeg(["-y", "-i", src, "-t", "2", "-vf", "scale=262:262", "-c:v", "libx264", "-preset", "ultrafast",
                "-crf", "18", "-c:a", "aac", out], what="cut the test clip")
    return out


@pytest.fixture(scope="session")
def tiny_real_clip(short_real_clip) -> Path:
    """The first second (25 frames, 200x200) of :func:`short_real_clip`, for whole runs."""
    out = short_real_clip.with_name("glasses_1s.mp4")
    run_ffmpeg(["-y", "-i", short_real_clip, "-t", "1", "-vf", "scale=200:200", "-c:v", "libx264", "-preset",
                "ultrafast", "-crf", "18", "-c:a", "aac", out], what="cut the test clip")
    return out


class FakeEmbedder:
    """A cheap constructed embedder (mean level per frame / per audio column group), for the plumbing tests."""

    def video(self, windows: np.ndarray) -> np.ndarray:
        return windows.reshape(len(windows), windows.shape[1], -1).mean(axis=2).astype(np.float32) / 255.0

    def audio(self, windows: np.ndarray) -> np.ndarray:
        flat = windows.reshape(len(windows), -1)
        return np.stack([c.mean(axis=1) for c in np.array_split(flat, 5, axis=1)], 1).astype(np.float32) / 100.0


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
