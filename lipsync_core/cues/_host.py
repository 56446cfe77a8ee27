"""The only place this package imports from the rest of lipsync_core (errors, ffmpeg), so that the
reorganisation into layer folders changes one file. Nothing imported here may import torch."""
from __future__ import annotations

from ..errors import LipsyncError
from ..media.ffmpeg import FfmpegProcess
from ..media.probe import MediaInfo, probe

__all__ = ["FfmpegProcess", "LipsyncError", "MediaInfo", "probe"]
