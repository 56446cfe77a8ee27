"""Batch fixtures: a procedural Wav2Lip checkpoint, a tiny talking-head clip with a fixed box, short speech."""
from __future__ import annotations

from pathlib import Path

import pytest

from lipsync_core.testing.media import speech_wav, talking_head_video
from tests.pipeline.conftest import w2l_checkpoint  # noqa: F401 - the session's procedural Wav2Lip

#: The face box of :func:`clip` (64x64 frames): no detection unless a test asks for it.
BOX = (8, 56, 8, 56)


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    return talking_head_video(tmp_path_factory.mktemp("batch-media") / "face.mp4", size=(64, 64), seconds=0.6,
                              audio=False)


@pytest.fixture(scope="session")
def speeches(tmp_path_factory) -> list[Path]:
    """Four short speech files of different lengths (0.28 to 0.4 s)."""
    folder = tmp_path_factory.mktemp("batch-speech")
    return [speech_wav(folder / f"s{i}.wav", 0.28 + 0.04 * i, seed=i) for i in range(4)]


@pytest.fixture
def defaults(w2l_checkpoint) -> dict:  # noqa: F811
    """Options as if given on the command line: CPU, no bars, fastest encode, the fixed box."""
    return {"checkpoint_path": str(w2l_checkpoint), "box": BOX, "device": "cpu", "no_progress": True,
            "preset": "ultrafast"}


def jobs_for(clip: Path, speeches: list[Path], out: Path, **options) -> list[dict]:
    return [{"face": str(clip), "audio": str(a), "outfile": str(out / f"{a.stem}.mp4"), **options} for a in speeches]
