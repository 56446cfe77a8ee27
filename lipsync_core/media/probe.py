"""What a media file holds, read from ``ffmpeg -i`` (no ffprobe; ffmpeg 5.x and 9.x print the same fields)."""
from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..support.errors import LipsyncError
from .ffmpeg import _command, last_error_line

#: Suffixes that always mean a still image, whatever ffmpeg calls the demuxer.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Demuxers that read one picture (``image2`` for a plain file name, ``<codec>_pipe`` for sniffed images).
_IMAGE_FORMAT = re.compile(r"^(image2|\w+_pipe)$")

_INPUT = re.compile(r"^Input #0, (?P<format>[^,]+(?:,[^,]+)*), from ", re.M)
_DURATION = re.compile(r"Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)|N/A)")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (?P<kind>Video|Audio): (?P<desc>.*)$", re.M)
_SIZE = re.compile(r", (?P<w>\d+)x(?P<h>\d+)(?=[ ,]|$)")
_FPS = re.compile(r", (?P<v>\d+(?:\.\d+)?)(?P<k>k?) fps")
_TBR = re.compile(r", (?P<v>\d+(?:\.\d+)?)(?P<k>k?) tbr")
_RATE = re.compile(r", (?P<hz>\d+) Hz")
_ROTATION = re.compile(r"rotation of (?P<deg>-?\d+(?:\.\d+)?) degrees")
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}
_CHANNELS_RE = re.compile(r", (?:(?P<n>\d+) channels|(?P<layout>mono|stereo|2\.1|quad|4\.0|5\.0|5\.1|6\.1|7\.1)"
                          r"(?:\(\w+\))?)(?=,|$)")
_PROBED_MAX = 256
_probed: dict[tuple, MediaInfo] = {}  # probe()'s answers by file identity, oldest first


@dataclass(frozen=True)
class MediaInfo:
    """The first video and first audio stream of a file. Sizes are as stored (see :attr:`frame_size`)."""

    path: Path
    format_name: str  # ffmpeg's demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "image2", "png_pipe"
    duration: float  # seconds (container); 0.0 for a still image or when ffmpeg cannot tell
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None  # average frame rate (the "N fps" value; NTSC rates exact); None without video
    rotation: int = 0  # clockwise degrees a player applies (0, 90, 180, 270); ffmpeg's decoder applies it too
    is_image: bool = False  # a still picture (one frame)
    sample_rate: int | None = None
    channels: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of decoded frames: ffmpeg autorotates, so 90/270 degrees swap the stored size."""
        if self.width is None or self.height is None:
            return None
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height

    def require_frame_size(self) -> tuple[int, int]:
        """:attr:`frame_size`, or raise :class:`LipsyncError` when the file does not say it."""
        size = self.frame_size
        if size is None:
            raise LipsyncError(f"could not read the frame size of {self.path}; re-encode it (e.g. to H.264 mp4)")
        return size

    def require_video(self, role: str = "face input") -> MediaInfo:
        """Return self, or raise :class:`LipsyncError` when there is no video stream (or still image)."""
        if not self.has_video:
            raise LipsyncError(f"{role} {self.path} has no video stream; give a video or an image file")
        return self

    def require_audio(self, role: str = "audio input") -> MediaInfo:
        """Return self, or raise :class:`LipsyncError` when there is no audio stream."""
        if not self.has_audio:
            raise LipsyncError(f"{role} {self.path} has no audio stream; give a file with sound")
        return self


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read the stream layout of ``path`` with ``ffmpeg -i`` (fast: headers only, nothing decoded).

    Raises :class:`LipsyncError` when the file does not exist or is not something ffmpeg can read.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise LipsyncError(f"file not found: {path}")
    # A run asks about the same few files several times (and a batch about one face for every job): the answer
    # is kept for as long as the file is the same one, unchanged (inode, size, modification and change times).
    key = (os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if (info := _probed.get(key)) is None:
        # "-i" alone makes ffmpeg print the input description and exit non-zero ("output file must be specified").
        proc = subprocess.run(_command(["-i", path], loglevel=None), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        info = parse_ffmpeg_info(proc.stderr.decode("utf-8", "replace"), path)
        if len(_probed) >= _PROBED_MAX:
            _probed.pop(next(iter(_probed)))
        _probed[key] = info
    return info


def parse_ffmpeg_info(text: str, path: Path) -> MediaInfo:
    """Build :class:`MediaInfo` from the stderr of ``ffmpeg -i <path>``."""
    head = _INPUT.search(text)
    if head is None:
        raise LipsyncError(f"not a media file ffmpeg can read: {path} ({last_error_line(text)})")
    fmt = head.group("format")
    dur = _DURATION.search(text, head.end())
    duration = 0.0
    if dur is not None and dur.group("h") is not None:
        duration = int(dur.group("h")) * 3600 + int(dur.group("m")) * 60 + float(dur.group("s"))

    fields: dict = {}
    for m in _STREAM.finditer(text, head.end()):
        kind, desc = m.group("kind"), m.group("desc")
        if kind == "Video" and "video_codec" not in fields:
            if "(attached pic)" in desc:  # cover art in an audio file is not a video
                continue
            fields["video_codec"] = desc.split(",")[0].split()[0]
            size = _SIZE.search(desc)
            if size:
                fields["width"], fields["height"] = int(size.group("w")), int(size.group("h"))
            rate = _FPS.search(desc) or _TBR.search(desc)
            fields["fps"] = _exact_rate(rate.group("v"), rate.group("k")) if rate else None
            rot = _ROTATION.search(text, m.end())
            # Side data follows its own stream's line; only take it if no later stream line intervenes.
            if rot and not _STREAM.search(text, m.end(), rot.start()):
                fields["rotation"] = int(round(-float(rot.group("deg")))) % 360
        elif kind == "Audio" and "audio_codec" not in fields:
            fields["audio_codec"] = desc.split(",")[0].split()[0]
            hz = _RATE.search(desc)
            fields["sample_rate"] = int(hz.group("hz")) if hz else None
            ch = _CHANNELS_RE.search(desc)
            if ch:
                fields["channels"] = int(ch.group("n")) if ch.group("n") else _CHANNELS[ch.group("layout")]

    has_video, has_audio = "video_codec" in fields, "audio_codec" in fields
    if not has_video and not has_audio:
        raise LipsyncError(f"not a media file ffmpeg can read: {path} (no audio or video stream)")
    is_image = has_video and not has_audio and (
        path.suffix.lower() in IMAGE_SUFFIXES or bool(_IMAGE_FORMAT.match(fmt)))
    if is_image:
        duration = 0.0
    return MediaInfo(path=path, format_name=fmt, duration=duration, has_video=has_video, has_audio=has_audio,
                     is_image=is_image, **fields)


def _exact_rate(value: str, kilo: str) -> float:
    """ffmpeg prints rates with two decimals; restore the NTSC family (29.97 -> 30000/1001)."""
    rate = float(value) * (1000 if kilo else 1)
    if rate != int(rate):
        base = round(rate * 1001 / 1000)
        if abs(base * 1000 / 1001 - rate) < 0.006:
            return base * 1000 / 1001
    return rate


def fps_fraction(fps: float) -> Fraction:
    """A frame rate as the exact rational ffmpeg should use (25 -> 25, 29.97002997 -> 30000/1001)."""
    if fps <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)
