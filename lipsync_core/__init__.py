"""lipsync_core: Wav2Lip lip sync that streams, any length, on CPU or CUDA.

Public entry points: :func:`lipsync` (the whole job), :mod:`lipsync_core.media.audio`,
:func:`lipsync_core.models.load`, :func:`lipsync_core.weights.fetch`,
:func:`lipsync_core.inputs.resolve_media`. Nothing heavy is imported until it is used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .support.errors import LipsyncError

__version__ = "0.1.0"

#: The one place the repository URL lives (notebooks install from it; README links to it).
REPO_URL = "https://github.com/lipsync-core/lipsync_core"

__all__ = ["LipsyncError", "REPO_URL", "__version__", "lipsync"]


def lipsync(face: str | Path, audio: str | Path, outfile: str | Path, variant: str = "original",
            **options: Any) -> Path:
    """Lip-sync ``face`` (video or image) to ``audio`` and write an mp4 to ``outfile``.

    ``options`` are the fields of :class:`lipsync_core.engine.options.RunConfig` (same names as the CLI flags).
    Returns the output path.
    """
    from .engine.pipeline import lipsync as _run

    return _run(face, audio, outfile, variant=variant, **options)
