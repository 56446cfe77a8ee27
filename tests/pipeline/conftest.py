"""Fixtures for end-to-end runs: a procedural Wav2Lip checkpoint, short real (or generated) clips, speech."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lipsync_core.face.detectors.haar import HaarDetector
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.media.video import read_frames
from lipsync_core.testing.checkpoints import write_checkpoint
from tests.conftest import shared_media


@pytest.fixture(scope="session")
def w2l_checkpoint(tmp_path_factory) -> Path:
    """A Wav2Lip checkpoint shaped like the released wav2lip.pth (``state_dict`` with ``module.`` keys)."""
    return write_checkpoint("wav2lip", tmp_path_factory.mktemp("ckpt") / "wav2lip.pth", wrapper="state_dict",
                            module_prefix=True)


def _trim(src: Path, dst: Path, start: float, duration: float, *, lossless: bool = True) -> Path:
    # 4:2:0 like the output, so unchanged pixels survive the round trip up to rounding.
    codec = ["-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-pix_fmt", "yuv420p"] if lossless else []
    run_ffmpeg(["-y", "-ss", f"{start}", "-i", str(src), "-t", f"{duration}", *codec, "-c:a", "aac", str(dst)],
               what="trim a test clip")
    return dst


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory) -> tuple[Path, tuple[int, int, int, int] | None]:
    """(1.2 s talking-head clip, a box around its face). Real media when present, else a generated clip."""
    out = tmp_path_factory.mktemp("media")
    real = shared_media("talking_head_glasses_vrt5.mp4")
    if real is not None:
        clip = _trim(real, out / "face.mp4", 0.0, 1.2)
        first = read_frames(clip, max_frames=1)[0]
        (det, *_), = HaarDetector().detect([first])
        x1, y1, x2, y2 = (int(v) for v in det.box)
        return clip, (y1, y2, x1, x2)
    clip = out / "face.mp4"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1.2", "-f", "lavfi", "-i",
                "sine=frequency=300:duration=1.2", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-shortest", str(clip)], what="generate a test clip")
    return clip, (60, 200, 80, 240)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> Path:
    """0.8 s of speech-like audio at 44.1 kHz stereo (so resampling and downmix are exercised)."""
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    real = shared_media("speech_vrt1_44k1_stereo_5s.wav")
    if real is not None:
        run_ffmpeg(["-y", "-ss", "1.0", "-i", str(real), "-t", "0.8", str(path)], what="cut test speech")
    else:
        run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=frequency=220:beep_factor=4:duration=0.8:sample_rate=44100",
                    "-ac", "2", str(path)], what="generate test speech")
    return path


@pytest.fixture
def copy_of(tmp_path):
    """Copy a file into the test's tmp dir (so tests can check inputs are not modified)."""
    def make(src: Path, name: str | None = None) -> Path:
        dst = tmp_path / (name or src.name)
        shutil.copyfile(src, dst)
        return dst
    return make


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
