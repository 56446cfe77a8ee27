"""Where lipsync_core keeps its caches (weights, face tracks)."""
from __future__ import annotations

import os
from pathlib import Path

from . import environment


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The cache root: ``explicit``, else ``$LIPSYNC_CACHE``, else ``$XDG_CACHE_HOME/lipsync``, else
    ``~/.cache/lipsync``.

    Nothing is created here; writers create the sub-folder they need.
    """
    if explicit:
        return Path(explicit).expanduser()
    return environment.cache_root()
