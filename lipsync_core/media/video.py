"""Streaming frame I/O through one ffmpeg process each way (uint8 BGR ``H×W×3`` frames, bounded memory).

:class:`FrameReader` decodes at a constant frame rate chosen by timestamp (variable-frame-rate sources become
CFR, so frame ``k`` always shows the source at ``k / fps``); :class:`VideoWriter` encodes H.264 + AAC and
only makes the output appear when it is complete.
"""
from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np

from ..support.errors import LipsyncError
from ..support.files import partial_path
from ..support.safety import output_format
from .ffmpeg import FfmpegProcess, run_ffmpeg
from .probe import MediaInfo, fps_fraction, probe

_END = object()  # queue sentinel


class FrameReader:
    """Decode ``path`` (video or still image) into BGR frames, one ffmpeg process, a few frames of read-ahead.

    ``fps``: output rate (default: the source's average rate); ``size=(w, h)``: scale inside ffmpeg (area
    filter, for downscaled detection); ``max_frames``: stop early; ``info``: the source's probe result when
    the caller has it (saves probing again). A still image yields exactly one frame.
    Iterate it (or :meth:`batches`) once; use it as a context manager, or :meth:`close` it, to stop ffmpeg.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float | None = None, size: tuple[int, int] | None = None,
                 max_frames: int | None = None, prefetch: int = 4, info: MediaInfo | None = None) -> None:
        self.info: MediaInfo = (info if info is not None else probe(path)).require_video()
        source_size = self.info.frame_size
        if source_size is None:
            raise LipsyncError(f"could not read the frame size of {self.info.path}; re-encode it (e.g. to H.264 mp4)")
        self.fps: float = float(fps if fps is not None else (self.info.fps or 25.0))
        # (width, height)
        self.size: tuple[int, int] = (int(size[0]), int(size[1])) if size is not None else source_size
        if min(self.size) <= 0:
            raise ValueError(f"size must be positive, got {self.size}")
        self.max_frames = 1 if self.info.is_image else max_frames
        self._prefetch = max(1, prefetch)
        self._proc: FfmpegProcess | None = None
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue(self._prefetch)
        self._stop = threading.Event()
        self._started = False

    def _args(self) -> list[str]:
        # fps= picks frames by timestamp; setpts then makes the timestamps exactly k/fps from 0, so no muxer
        # "constant frame rate" logic (e.g. rawvideo's, version dependent) can duplicate or drop any.
        rate = fps_fraction(self.fps)
        filters = [] if self.info.is_image else [f"fps={rate}", "setpts=N/FRAME_RATE/TB"]
        # An explicit scale honours the source's colour matrix tag (untagged: BT.601, as OpenCV does). At full
        # size, exact rounding and chroma interpolation (swscale's fast path comes out darker; the cost is in
        # docs/notes.md); downscaled frames are only for detection.
        if self.size != self.info.frame_size:
            scale = f"scale={self.size[0]}:{self.size[1]}:flags=area"
        else:
            scale = "scale=flags=accurate_rnd+full_chroma_int"
        filters += [f"{scale}:in_color_matrix=auto", "format=bgr24"]
        args = ["-i", os.fspath(self.info.path), "-map", "0:v:0", "-an", "-sn", "-vf", ",".join(filters)]
        if self.max_frames is not None:
            args += ["-frames:v", str(self.max_frames)]
        return args + ["-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]

    def _pump(self) -> None:
        """Reader thread: frames from ffmpeg's stdout into the bounded queue, then ``_END`` (or the exception)."""
        w, h = self.size
        nbytes = w * h * 3
        try:
            assert self._proc is not None, "started by __iter__"
            stdout = cast(io.BufferedReader, self._proc.stdout)  # Popen's default (buffered) pipe
            while not self._stop.is_set():
                frame = np.empty((h, w, 3), np.uint8)
                view, got = frame.data.cast("B"), 0
                while got < nbytes and (n := stdout.readinto(view[got:])):
                    got += n
                if got < nbytes:  # end of stream; a partial frame only happens when ffmpeg failed
                    break
                self._put(frame)
            self._put(_END)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread
            self._put(e)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError("a FrameReader can be iterated only once; open a new one")
        self._started = True
        self._proc = FfmpegProcess(self._args(), what=f"decode {self.info.path}", stdout=True)
        self._thread = threading.Thread(target=self._pump, name="lipsync-frame-reader", daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    self._thread.join()
                    self._proc.finish()  # raises LipsyncError if ffmpeg failed
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def batches(self, n: int) -> Iterator[list[np.ndarray]]:
        """Frames in lists of ``n`` (the last one may be shorter)."""
        if n < 1:
            raise ValueError("batch size must be >= 1")
        batch: list[np.ndarray] = []
        for frame in self:
            batch.append(frame)
            if len(batch) == n:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        """Stop decoding and reap ffmpeg (idempotent; safe mid-stream)."""
        self._stop.set()
        if self._proc is not None and self._proc.proc.poll() is None:
            self._proc.proc.kill()  # unblocks the reader thread's readinto()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_frames(path: str | os.PathLike, **kwargs) -> list[np.ndarray]:
    """All frames of a (short) video in memory; for tests and stills. Streaming code uses :class:`FrameReader`."""
    with FrameReader(path, **kwargs) as reader:
        return list(reader)


def count_frames(path: str | os.PathLike, fps: float | None = None, *, info: MediaInfo | None = None) -> int:
    """How many frames :class:`FrameReader` yields for ``path`` at ``fps``: exact, decodes without converting
    pixels (much faster than reading them). A still image counts as 1."""
    info = (info if info is not None else probe(path)).require_video()
    if info.is_image:
        return 1
    rate = fps_fraction(fps if fps is not None else (info.fps or 25.0))
    proc = run_ffmpeg(["-i", info.path, "-map", "0:v:0", "-an", "-sn", "-vf", f"fps={rate}", "-f", "null",
                       "-progress", "pipe:1", "-"], what=f"count the frames of {info.path}", capture_stdout=True)
    counts = [line for line in proc.stdout.decode().splitlines() if line.startswith("frame=")]
    return int(counts[-1].split("=", 1)[1]) if counts else 0


def _fsync(path: Path) -> None:
    """Flush a finished file to disk before it is renamed into place (a crash then leaves old or new, whole)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VideoWriter:
    """Encode BGR frames to an H.264 (yuv420p) + AAC mp4 through one ffmpeg process.

    ``audio``: a file whose first audio stream is muxed, taking ``audio_duration`` seconds from its start
    (None: all of it); the video lasts exactly ``frames / fps``. ``crf`` 0 is lossless luma. Odd sizes are
    padded to even by repeating the last row/column (:attr:`encoded_size`). Frames go to ffmpeg from a
    background thread, so :meth:`write` returns at once unless ffmpeg is ``queue_size`` frames behind.
    The container follows ``path``'s extension (:data:`~lipsync_core.support.safety.CONTAINERS`: .mp4, .m4v, .mov,
    .mkv; anything else is refused). The output is written to a partial file beside ``path`` that is unique to
    this run (``.<stem>.run-<host>-<pid>-<random>.partial<ext>``, so concurrent runs never share one), flushed
    to disk and renamed over ``path`` on a successful :meth:`close`: the path only ever holds a complete
    output. :meth:`abort`, or an exception inside the ``with`` block, removes the partial file.
    """

    def __init__(self, path: str | os.PathLike, *, size: tuple[int, int], fps: float,
                 audio: str | os.PathLike | None = None, audio_duration: float | None = None, crf: int = 18,
                 preset: str = "medium", audio_bitrate: str = "192k", queue_size: int = 8) -> None:
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        if min(self.size) <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        if audio is not None:
            probe(audio).require_audio()
        if audio_duration is not None and audio_duration <= 0:
            raise ValueError(f"audio_duration must be positive, got {audio_duration}")
        # yuv420p needs even sizes: odd ones get their last row/column repeated (black would bleed into chroma).
        self.encoded_size = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        self.frames_written = 0
        self.container = output_format(self.path, flag="output")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = partial_path(self.path)
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(max(1, queue_size))
        self._closed = False
        self._proc = FfmpegProcess(self._args(audio, audio_duration, crf, preset, audio_bitrate),
                                   what=f"encode {self.path}", stdin=True)
        try:  # ffmpeg creates the partial file at once: a Ctrl-C/SIGTERM from here on must remove it
            self._thread = threading.Thread(target=self._pump, name="lipsync-video-writer", daemon=True)
            self._thread.start()
        except BaseException:
            self._discard()
            raise

    def _args(self, audio, audio_duration, crf, preset, audio_bitrate) -> list[str]:
        w, h = self.encoded_size
        args = ["-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-framerate",
                str(fps_fraction(self.fps)), "-i", "pipe:0"]
        if audio is not None:
            if audio_duration is not None:
                args += ["-t", f"{audio_duration:.6f}"]
            args += ["-i", os.fspath(audio)]
        # Convert with and tag BT.709 so players (which assume 709 for HD) show the colours that went in.
        # Exact rounding: with swscale's fast path a grey frame comes back a few levels off.
        convert = "scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int,format=yuv420p"
        args += ["-map", "0:v:0", "-vf", convert,
                 "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                 "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
        if audio is not None:
            args += ["-map", "1:a:0", "-c:a", "aac", "-b:a", audio_bitrate]
        if self.container in ("mp4", "mov"):
            args += ["-movflags", "+faststart"]
        return args + ["-f", self.container, os.fspath(self.partial)]

    def _pump(self) -> None:
        stdin = self._proc.stdin
        try:
            while (frame := self._queue.get()) is not _END:
                stdin.write(memoryview(frame).cast("B"))
        except BaseException as e:  # noqa: BLE001 - reported by write()/close() in the caller's thread
            self._error = e
            while self._queue.get() is not _END:  # keep draining so write() never blocks forever
                pass

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            self._proc.proc.wait()  # it is exiting (it closed its stdin); let it finish writing why
            raise self._proc.error() from self._error

    def write(self, frame: np.ndarray) -> None:
        """Queue one ``(h, w, 3)`` uint8 BGR frame (copied, so the caller may reuse its array)."""
        if self._closed:
            raise RuntimeError("write() after close()/abort()")
        self._raise_if_failed()
        w, h = self.size
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({h}, {w}, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        if self.encoded_size != self.size:
            self._queue.put(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
        else:
            self._queue.put(np.array(frame, copy=True, order="C"))
        self.frames_written += 1

    def close(self) -> Path:
        """Finish encoding and move the file into place; returns the output path."""
        if self._closed:
            raise RuntimeError("close() after close()/abort()")
        self._closed = True
        self._queue.put(_END)
        self._thread.join()
        try:
            if self.frames_written == 0:
                raise LipsyncError(f"could not encode {self.path}: no frames were written")
            self._raise_if_failed()
            self._proc.finish()
            _fsync(self.partial)
            os.replace(self.partial, self.path)
        except BaseException:
            self._discard()
            raise
        return self.path

    def abort(self) -> None:
        """Stop encoding and delete the partial file; no output is left (idempotent)."""
        if self._proc.proc.poll() is None:
            self._proc.proc.kill()  # a blocked pipe write in the pump fails at once
        if not self._closed:
            self._closed = True
            self._queue.put(_END)
            self._thread.join()
        self._discard()

    def _discard(self) -> None:
        self._proc.kill()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
