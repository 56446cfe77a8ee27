"""Correct a measured A/V offset: shift the audio of a scored video so that it lines up with the picture.

The decision uses the pooled SyncNet result of the report: the video is rewritten only when the offset is
at least one frame and LSE-C (the pooled confidence) is at least :data:`MIN_FIX_CONFIDENCE`. Below that the
minimum of the distance curve is not distinct enough to trust its position (LatentSync's data filter treats
a confidence under 3 as out of sync altogether). A positive offset (audio early) delays the audio by that many
40 ms frames; a negative one advances it; the audio keeps its length (:func:`lipsync_core.media.shift.shift_audio`).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..media.shift import shift_audio
from ..support.errors import LipsyncError
from .sync import FPS
from .video import ScoreReport

MIN_FIX_CONFIDENCE = 3.0


@dataclass
class FixResult:
    """What :func:`fix_offset` did."""

    applied: bool
    offset_frames: int
    delay_ms: float  # how much the audio was delayed (negative: advanced); 0 when not applied
    reason: str
    path: Path | None  # the written video (None when nothing was written)

    def summary(self) -> str:
        if self.applied:
            verb = "delayed" if self.delay_ms > 0 else "advanced"
            return f"audio {verb} by {abs(self.delay_ms):.0f} ms ({abs(self.offset_frames)} frames): {self.path}"
        return f"offset not corrected: {self.reason}" + (f" ({self.path} written unchanged)" if self.path else "")


def fix_offset(video: str | os.PathLike, report: ScoreReport, out: str | os.PathLike | None = None, *,
               min_confidence: float = MIN_FIX_CONFIDENCE) -> FixResult:
    """Rewrite ``video`` (into ``out``, default in place) with the audio shifted by the report's offset, when
    the report is confident enough (see the module docstring). When nothing is corrected and ``out`` is
    another path, ``out`` gets an unchanged copy, so the caller always finds its output."""
    if report.scorer != "syncnet":
        raise LipsyncError("the offset fix uses SyncNet's confidence: score with --scorer syncnet")
    o = report.overall
    offset = 0 if o is None else int(o["offset_frames"])
    if o is None:
        reason = "nothing was scored"
    elif offset == 0:
        reason = "already in sync (offset 0 frames)"
    elif o["lse_c"] < min_confidence:
        reason = (f"LSE-C {o['lse_c']:.2f} is below {min_confidence:g}, too unsure to move the audio by "
                  f"{offset:+d} frames")
    else:
        delay = offset * 1000.0 / FPS
        path = shift_audio(video, delay, out)
        return FixResult(True, offset, delay, f"offset {offset:+d} frames", path)
    written = None
    if out is not None and Path(out).resolve() != Path(video).resolve():
        written = _copy(Path(video), Path(out))
    return FixResult(False, offset, 0.0, reason, written)


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    try:
        shutil.copyfile(src, partial)
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
    return dst
