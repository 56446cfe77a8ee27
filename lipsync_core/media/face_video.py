"""The read stage: the face video (or still) as a stream of transformed BGR frames.

Applies the original's per-frame transforms in its order (``--resize_factor``, ``--rotate``, ``--crop``),
converts variable frame rate to constant by timestamp, loops the video when the audio is longer, and
repeats the first frame for stills, one-frame videos and ``--static``. A video that decodes to fewer frames
than its container declares (a truncated download) is reported in one line and its decoded part looped.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..support.errors import LipsyncError
from .ffmpeg import run_ffmpeg
from .probe import MediaInfo, probe
from .video import FrameReader, count_frames

log = logging.getLogger(__name__)


@dataclass
class FaceVideo:
    """A face source with the run's transforms; frames are yielded lazily, never all held."""

    path: Path
    info: MediaInfo
    fps: float
    static: bool
    resize_factor: int = 1
    rotate: bool = False
    crop: tuple[int, int, int, int] = (0, -1, 0, -1)
    _short_checked: bool = field(default=False, init=False, repr=False)

    @classmethod
    def open(cls, path: str | Path, *, still_fps: float, static: bool, resize_factor: int = 1,
             rotate: bool = False, crop: tuple[int, int, int, int] = (0, -1, 0, -1)) -> FaceVideo:
        info = probe(path).require_video()
        is_still = info.is_image or _one_frame(info)
        fps = still_fps if is_still else info.fps
        if not fps or fps <= 0:
            raise LipsyncError(f"cannot tell the frame rate of {path}; re-encode it or pass a still image with --fps")
        t, b, l, r = crop
        video = cls(Path(path), info, float(fps), static or is_still, resize_factor, rotate, (t, b, l, r))
        w, h = video.resized_size
        if min(w, h) < 1:
            fw, fh = info.require_frame_size()
            raise LipsyncError(f"--resize_factor {resize_factor} shrinks the {fw}x{fh} video below one pixel; "
                               f"use a smaller factor (at most {min(fw, fh)}; small enough to keep the face visible)")
        if t >= h or l >= w or b > h or r > w:
            fw, fh = info.require_frame_size()
            raise LipsyncError(f"--crop {t} {b} {l} {r} with --resize_factor {resize_factor} does not fit the "
                               f"{fw}x{fh} video (after resizing and rotating); give a region inside the frame")
        return video

    @property
    def transforms(self) -> bool:
        return self.resize_factor != 1 or self.rotate or tuple(self.crop) != (0, -1, 0, -1)

    @property
    def resized_size(self) -> tuple[int, int]:
        """(width, height) after ``--resize_factor`` and ``--rotate``, before ``--crop``."""
        fw, fh = self.info.require_frame_size()
        w, h = fw // self.resize_factor, fh // self.resize_factor
        return (h, w) if self.rotate else (w, h)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the transformed frames."""
        w, h = self.resized_size
        t, b, l, r = self.crop
        b, r = (h if b == -1 else b), (w if r == -1 else r)
        return r - l, b - t

    def transform(self, frame: np.ndarray) -> np.ndarray:
        if self.resize_factor != 1:
            h, w = frame.shape[:2]
            frame = cv2.resize(frame, (w // self.resize_factor, h // self.resize_factor))
        if self.rotate:
            frame = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)
        t, b, l, r = self.crop
        if (t, b, l, r) != (0, -1, 0, -1):
            frame = frame[t:(None if b == -1 else b), l:(None if r == -1 else r)]
        return np.ascontiguousarray(frame)

    def frames(self, *, max_frames: int | None = None, det_size: int | None = None) -> Iterator[np.ndarray]:
        """One pass over the source frames, optionally scaled so the longest side is ``det_size``."""
        limit = 1 if self.static else max_frames
        size = detection_size(self.frame_size, det_size)
        scaled = size != self.frame_size
        n = 0
        with FrameReader(self.path, fps=None if self.info.is_image else self.fps, info=self.info,
                         size=size if scaled and not self.transforms else None, max_frames=limit) as reader:
            for frame in reader:
                if self.transforms:
                    frame = self.transform(frame)
                    if scaled:
                        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                n += 1
                yield frame
        self._report_short(n, limit)

    def _report_short(self, decoded: int, limit: int | None) -> None:
        """One warning when the video ended before the frames its container declares and the file is damaged
        (checked once per video)."""
        if self.static or self._short_checked or not self.info.duration:
            return
        declared = round(self.info.duration * self.fps)
        wanted = declared if limit is None else min(limit, declared)
        if decoded < wanted - max(2, 0.05 * declared):
            self._short_checked = True  # the demuxer is asked once per video, whatever it answers
            if not _damaged(self.path):
                return
            log.warning("%s decodes to %d frames (%.2f s) of the %d (%.2f s) its container declares: the file is "
                        "truncated or damaged; its decoded part is looped to the length of the audio", self.path.name,
                        decoded, decoded / self.fps, declared, self.info.duration)

    def detection_scale(self, det_size: int | None) -> float:
        """Factor from full-resolution to detection pixels (1.0 when already small enough)."""
        return detection_scale(self.frame_size, det_size)

    def looped(self, n_out: int, n_source: int) -> Iterator[tuple[int, np.ndarray]]:
        """(source index, frame) for output frames 0..n_out-1, looping the source as the original does."""
        if self.static or n_source == 1:  # one frame is decoded once, not once per output frame
            first = next(self.frames(max_frames=1), None)
            if first is None:
                raise LipsyncError(f"could not decode a frame from {self.path}")
            for _ in range(n_out):
                yield 0, first.copy()
            return
        done = 0
        while done < n_out:
            produced = 0
            for i, frame in enumerate(self.frames(max_frames=min(n_source, n_out - done))):
                yield i, frame
                produced += 1
            if produced == 0:
                raise LipsyncError(f"could not decode frames from {self.path}")
            done += produced

def detection_scale(frame_size: tuple[int, int], det_size: int | None) -> float:
    """The factor frames are downscaled by for detection: longest side ``det_size``, never upscaled."""
    longest = max(frame_size)
    return 1.0 if not det_size or longest <= det_size else det_size / longest


def detection_size(frame_size: tuple[int, int], det_size: int | None) -> tuple[int, int]:
    """(width, height) to decode frames at for detection, from :func:`detection_scale`."""
    s = detection_scale(frame_size, det_size)
    return max(1, round(frame_size[0] * s)), max(1, round(frame_size[1] * s))


def _one_frame(info: MediaInfo) -> bool:
    """Whether a video holds a single frame (then it is a still); only short ones are counted."""
    if not info.fps or info.duration * info.fps >= 2.5:
        return False
    return count_frames(info.path, info=info) <= 1


def _damaged(path: Path) -> bool:
    """Whether reading the video stream's packets (no decoding) reports an error, e.g. "partial file".

    The container's duration is its longest stream's: a picture shorter than its sound is not damaged, a file cut
    off mid-download is, and only the demuxer can tell the two apart.
    """
    proc = run_ffmpeg(["-i", path, "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], what="read the video packets",
                      check=False)
    return proc.returncode != 0 or bool(proc.stderr.strip())
