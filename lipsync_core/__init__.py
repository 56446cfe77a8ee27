"""lipsync_core: Wav2Lip lip sync that streams, any length, on CPU or CUDA.

Public entry points, importable from here (each loaded when first used, so ``import lipsync_core`` stays
light): :func:`lipsync` (the whole job), :func:`run_batch` (many jobs), :class:`RunOptions`, :func:`make_config`,
:class:`LipsyncError`; deeper: :mod:`lipsync_core.media.audio`, :func:`lipsync_core.models.load`,
:func:`lipsync_core.weights.store.fetch`, :func:`lipsync_core.inputs.resolve.resolve_media`. The folders are the
layers (docs/architecture.md).
"""
from __future__ import annotations

import importlib
from typing import Any

from .support.errors import LipsyncError
from .support.version import REPO_URL, __version__

#: Public name -> the module that defines it.
_LAZY = {"lipsync": "lipsync_core.job", "run_batch": "lipsync_core.batch", "RunOptions": "lipsync_core.engine.options",
         "make_config": "lipsync_core.engine.plan"}

__all__ = ["LipsyncError", "REPO_URL", "RunOptions", "__version__", "lipsync", "make_config", "run_batch"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lipsync_core' has no attribute {name!r}")
