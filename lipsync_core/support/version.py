"""The package's version and the one place its repository URL lives (notebooks install from it)."""
from __future__ import annotations

__version__ = "0.1.0"
REPO_URL = "https://github.com/lipsync-core/lipsync_core"
