"""The environment variables lipsync_core honours, named and read in this one module.

| variable | meaning |
|---|---|
| ``LIPSYNC_CACHE`` | the cache root (weights, face tracks) when a run gives no ``cache_dir`` |
| ``LIPSYNC_OFFLINE`` | ``1``/``true``: never download; a weight missing from the cache is an error |
| ``LIPSYNC_FFMPEG`` | the ffmpeg executable (else ``ffmpeg`` on PATH, else imageio-ffmpeg's binary) |
| ``LIPSYNC_MANIFEST`` | another weights manifest file (mirrors, tests) |

Each is read when a call needs it, never at import, so a process (a notebook, a test) may change them
between runs. Everything else is configured through :class:`~lipsync_core.engine.options.RunOptions` and
arguments. There are no test-only variables: the tests reroute Google Drive from their side
(``tests/support/google_route.py``).
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE = "LIPSYNC_CACHE"
OFFLINE = "LIPSYNC_OFFLINE"
FFMPEG = "LIPSYNC_FFMPEG"
MANIFEST = "LIPSYNC_MANIFEST"


def cache_root() -> Path:
    """``LIPSYNC_CACHE``, else ``$XDG_CACHE_HOME/lipsync``, else ``~/.cache/lipsync``."""
    if os.environ.get(CACHE):
        return Path(os.environ[CACHE]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "lipsync"
    return Path.home() / ".cache" / "lipsync"


def offline() -> bool:
    """True when ``LIPSYNC_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE, "").strip().lower() not in ("", "0", "false", "no", "off")


def manifest_override() -> Path | None:
    value = os.environ.get(MANIFEST)
    return Path(value) if value else None


def ffmpeg_lookup() -> tuple[str, str, str]:
    """What ffmpeg resolution depends on: ``LIPSYNC_FFMPEG``, ``PATH`` and imageio-ffmpeg's own override."""
    return os.environ.get(FFMPEG, ""), os.environ.get("PATH", ""), os.environ.get("IMAGEIO_FFMPEG_EXE", "")
