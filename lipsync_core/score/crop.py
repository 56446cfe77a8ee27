"""Face crops as the two scorers were trained on them.

SyncNet: the crop of syncnet_python's ``run_pipeline.py`` (``crop_scale`` 0.4). Per frame, the half-size
``s = max(w, h) / 2`` and the centre ``(x, y)`` of the face box, each median-filtered over the track with
kernel 13 (zero padding at the ends, as ``scipy.signal.medfilt``); the frame padded with the value 110;
rows ``[y - s, y + 1.8 s)`` and columns ``[x - 1.4 s, x + 1.4 s)`` (forehead to below the chin), resized to
224x224 with bilinear interpolation.

Expert: Wav2Lip's training crops, the detector's box itself resized to 96x96 (the network sees its lower half).

:func:`jpeg_round_trip` reproduces the reference's last step: ``evaluate`` reads each track's frames back
from JPEGs that ffmpeg's mjpeg encoder wrote with its default rate control (about 1.5 KB per 224 px frame,
4:2:0), which changes the scores measurably (see the README's measured end-to-end gap).
"""
from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import cast

import cv2
import numpy as np

from ..face.types import Box
from ..media.ffmpeg import FfmpegProcess
from .embed import EXPERT_SIZE, SYNCNET_SIZE
from .sync import medfilt

CROP_SCALE = 0.4
MEDIAN_KERNEL = 13
PAD_VALUE = 110


def crop_params(boxes: Sequence[Box]) -> np.ndarray:
    """(n, 3) float64 ``(s, x, y)`` of a run of (top, bottom, left, right) boxes, median-filtered as the reference."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    t, bottom, left, right = b.T
    raw = np.stack([np.maximum(right - left, bottom - t) / 2, (left + right) / 2, (t + bottom) / 2], 1)
    return np.stack([medfilt(raw[:, k], MEDIAN_KERNEL) for k in range(3)], 1)


def syncnet_crop(frame: np.ndarray, s: float, x: float, y: float, size: int = SYNCNET_SIZE) -> np.ndarray:
    """The reference crop of one frame (BGR uint8) around centre ``(x, y)`` with half-size ``s``."""
    pad = int(s * (1 + 2 * CROP_SCALE))
    my, mx = y + pad, x + pad  # in the padded frame's coordinates, as the reference indexes it
    rows = (int(my - s), int(my + s * (1 + 2 * CROP_SCALE)))
    cols = (int(mx - s * (1 + CROP_SCALE)), int(mx + s * (1 + CROP_SCALE)))
    face = _padded_region(frame, pad, rows, cols)
    if face.size == 0:
        return np.full((size, size, 3), PAD_VALUE, np.uint8)
    return cv2.resize(face, (size, size))


def expert_crop(frame: np.ndarray, box: Box, size: int = EXPERT_SIZE) -> np.ndarray:
    """The face box (top, bottom, left, right) resized to ``size`` x ``size``, as Wav2Lip's training crops."""
    h, w = frame.shape[:2]
    t, b, l, r = box
    t, b, l, r = max(0, int(t)), min(h, int(b)), max(0, int(l)), min(w, int(r))
    face = frame[t:b, l:r]
    if face.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    return cv2.resize(face, (size, size))


def _padded_region(frame: np.ndarray, pad: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """``np.pad(frame, pad, constant 110)[r0:r1, c0:c1]`` without padding the whole frame (numpy slicing
    semantics kept: bounds clipped to the padded frame, negative starts counted from its end)."""
    h, w = frame.shape[:2]
    ph, pw = h + 2 * pad, w + 2 * pad
    r0, r1 = slice(*rows).indices(ph)[:2]
    c0, c1 = slice(*cols).indices(pw)[:2]
    out = np.full((max(0, r1 - r0), max(0, c1 - c0), 3), PAD_VALUE, np.uint8)
    if out.size == 0:
        return out
    sr0, sr1 = max(r0, pad), min(r1, pad + h)
    sc0, sc1 = max(c0, pad), min(c1, pad + w)
    if sr1 > sr0 and sc1 > sc0:
        out[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = frame[sr0 - pad:sr1 - pad, sc0 - pad:sc1 - pad]
    return out


_JPEG_END = b"\xff\xd9"  # ffmpeg's mjpeg frames carry no thumbnail, so this marker only ends a picture


def jpeg_round_trip(frames: Iterable[np.ndarray], size: int = SYNCNET_SIZE) -> Iterator[np.ndarray]:
    """``frames`` (BGR uint8, ``size`` x ``size``) through one ffmpeg mjpeg encode with its default settings,
    as the reference's ``ffmpeg -i track.avi -threads 1 -f image2 %06d.jpg``, decoded back as ``cv2.imread``
    does. One encoder per call: its rate control starts afresh, as per reference track. Streams."""
    proc = FfmpegProcess(["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{size}x{size}", "-framerate", "25",
                          "-i", "pipe:0", "-threads", "1", "-pix_fmt", "yuvj420p", "-c:v", "mjpeg",
                          "-f", "image2pipe", "pipe:1"], what="JPEG-encode the face crops", stdin=True, stdout=True)
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            for frame in frames:
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BaseException as exc:  # noqa: BLE001 - re-raised by the consumer
            failure.append(exc)
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, name="lipsync-jpeg-feed", daemon=True)
    writer.start()
    done = False
    try:
        buf = b""
        stdout = cast(io.BufferedReader, proc.stdout)  # Popen's default (buffered) pipe
        while chunk := stdout.read1(1 << 16):
            buf += chunk
            while (end := buf.find(_JPEG_END)) >= 0:
                data, buf = buf[:end + 2], buf[end + 2:]
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                if image is None:
                    raise RuntimeError("ffmpeg's mjpeg encoder wrote a picture cv2 cannot decode")
                yield image
        writer.join()
        if failure and not isinstance(failure[0], BrokenPipeError):
            raise failure[0]
        proc.finish()
        done = True
    finally:
        if not done:
            proc.kill()
            writer.join()
