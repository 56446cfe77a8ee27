"""Media I/O over ffmpeg pipes: executable resolution, probing, frame reading and writing.

Audio loading and the mel spectrogram live in :mod:`lipsync_core.media.audio` (the public import path).
Importing this package starts no process and resolves nothing; ffmpeg is found on first use.
"""
from .ffmpeg import FfmpegProcess, ffmpeg_exe, run_ffmpeg
from .probe import MediaInfo, probe
from .video import FrameReader, VideoWriter, count_frames, read_frames

__all__ = ["FfmpegProcess", "FrameReader", "MediaInfo", "VideoWriter", "count_frames", "ffmpeg_exe", "probe",
           "read_frames", "run_ffmpeg"]
