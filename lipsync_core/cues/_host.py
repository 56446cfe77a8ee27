"""The only place this package imports from the rest of lipsync_core (errors, ffmpeg), so that the
reorganisation into layer folders changes one file. Nothing imported here may import torch."""
from __future__ import annotations

from ..media.ffmpeg import FfmpegProcess
from ..media.probe import MediaInfo, probe
from ..support.errors import LipsyncError

__all__ = ["FfmpegProcess", "LipsyncError", "MediaInfo", "probe"]
