"""Where the flashes and beeps of :func:`lipsync_core.testing.media.flash_beep_clip` ended up in a file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.media.probe import probe

SR = 48000


def gray_frames(path: Path) -> np.ndarray:
    """Mean brightness of every decoded frame."""
    w, h = probe(path).frame_size
    raw = run_ffmpeg(["-i", path, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
                     what="decode frames", capture_stdout=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w).mean(axis=(1, 2))


def flash_frames(path: Path) -> list[int]:
    """Indices of the decoded frames that are (mostly) white."""
    return np.flatnonzero(gray_frames(path) > 128).tolist()


def beep_onsets(path: Path) -> list[float]:
    """Times (s) where a tone burst starts in the first audio stream."""
    raw = run_ffmpeg(["-i", path, "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-ar", str(SR), "pipe:1"],
                     what="decode audio", capture_stdout=True).stdout
    loud = np.flatnonzero(np.abs(np.frombuffer(raw, np.int16)) > 0.2 * 32768)
    if loud.size == 0:
        return []
    starts = loud[np.r_[True, np.diff(loud) > SR // 5]]
    return (starts / SR).tolist()
