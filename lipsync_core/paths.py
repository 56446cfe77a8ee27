"""Where lipsync_core keeps its caches (weights, face tracks)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The cache root: ``explicit``, else ``$LIPSYNC_CACHE``, else ``$XDG_CACHE_HOME/lipsync``, else
    ``~/.cache/lipsync``.

    Nothing is created here; writers create the sub-folder they need.
    """
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("LIPSYNC_CACHE"):
        return Path(os.environ["LIPSYNC_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "lipsync"
    return Path.home() / ".cache" / "lipsync"
