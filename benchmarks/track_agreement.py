"""Box agreement of the fast face track (downscaled, every k-th frame) with full-resolution detection on every frame.

For each video and each (det_size, stride) pair: per-frame IoU between the raw tracks (no pads, no smoothing,
so differences are not averaged away), the mean IoU of the final tracks (default pads and the original's
smoothing on both), frames where only one track has a face, and the detection-stage time (frames decoded
beforehand; decode is not timed). Uses the Haar detector (no weights needed). ``px ratio`` is the
reference's detected pixels over the fast track's: the speed-up a detector whose cost is proportional to
pixels (S3FD) gets, independent of this machine's load.

    python benchmarks/track_agreement.py ../shared/media/talking_head_*.mp4 --det_size 320 480 640 --stride 1 3 5
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lipsync_core.face.detectors.haar import HaarDetector
from lipsync_core.face.track import (
    DetectionOptions,
    detect_track,
    detection_scale,
    detection_size,
    finalize_track,
)
from lipsync_core.face.types import FaceTrack
from lipsync_core.media.video import FrameReader


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two (top, bottom, left, right) boxes."""
    h = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    w = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    inter = h * w
    union = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter
    return inter / union if union > 0 else 0.0


def ious(ref: FaceTrack, track: FaceTrack) -> np.ndarray:
    """Per-frame IoU over the frames where both tracks have a face."""
    both = [box_iou(a, b) for a, b in zip(ref.boxes, track.boxes) if a is not None and b is not None]
    return np.array(both) if both else np.zeros(1)


class CountingHaar(HaarDetector):
    """The Haar detector, counting the frames it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def detect(self, frames: list[np.ndarray]) -> list:
        self.frames += len(frames)
        return super().detect(frames)


def timed_track(frames: list[np.ndarray], settings: DetectionOptions, scale: float,
                frame_size: tuple[int, int]) -> tuple[FaceTrack, float, int]:
    """The raw track, the seconds it took and the number of frames detected."""
    detector = CountingHaar()
    t0 = time.perf_counter()
    track = detect_track(frames, detector, settings, scale=scale, frame_size=frame_size, fps=25.0)
    return track, time.perf_counter() - t0, detector.frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--det_size", nargs="+", type=int, default=[320, 480, 640], help="0 = full resolution")
    ap.add_argument("--stride", nargs="+", type=int, default=[1, 3, 5, 8])
    ap.add_argument("--cut_threshold", type=float, default=DetectionOptions.cut_threshold)
    args = ap.parse_args()

    header = (f"{'video':32} {'det_size':>8} {'stride':>6} {'frames':>6} {'mean IoU':>8} {'p5 IoU':>7} "
              f"{'min IoU':>7} {'final mean':>10} {'face mismatch':>13} {'detected':>8} {'px ratio':>8} {'time s':>7} "
              f"{'speedup':>7}")
    print(header)
    print("-" * len(header))
    all_ious: dict[tuple[int, int], list[np.ndarray]] = {}
    final = DetectionOptions()  # default pads and smoothing
    for video in args.videos:
        with FrameReader(video) as reader:
            full = list(reader)
        frame_size = (full[0].shape[1], full[0].shape[0])
        ref, ref_time, _ = timed_track(full, DetectionOptions(det_size=0, det_stride=1), 1.0, frame_size)
        ref_final = finalize_track(ref, final)
        print(f"{video.name[:32]:32} {'full':>8} {1:>6} {len(full):>6} {'(reference)':>44} {'':>13} "
              f"{len(full):>8} {1.0:8.1f} {ref_time:7.2f} {1.0:7.1f}")
        for det_size in args.det_size:
            size = detection_size(frame_size, det_size or None)
            if size == frame_size:
                small = full
            else:
                with FrameReader(video, size=size) as reader:
                    small = list(reader)
            for stride in args.stride:
                settings = DetectionOptions(det_size=det_size or 0, det_stride=stride,
                                             cut_threshold=args.cut_threshold)
                track, t, n_det = timed_track(small, settings, detection_scale(frame_size, det_size or None),
                                              frame_size)
                px_ratio = len(full) * full[0].size / (n_det * small[0].size)
                raw = ious(ref, track)
                smoothed = ious(ref_final, finalize_track(track, final))
                mismatch = sum((a is None) != (b is None) for a, b in zip(ref.boxes, track.boxes))
                all_ious.setdefault((det_size, stride), []).append(raw)
                print(f"{'':32} {det_size or 'full':>8} {stride:>6} {len(raw):>6} {raw.mean():8.3f} "
                      f"{np.percentile(raw, 5):7.3f} {raw.min():7.3f} {smoothed.mean():10.3f} {mismatch:>13} "
                      f"{n_det:>8} {px_ratio:8.1f} {t:7.2f} {ref_time / t:7.1f}")
    print("\nall videos pooled, raw tracks (frames where both have a face):")
    for (det_size, stride), parts in sorted(all_ious.items()):
        pooled = np.concatenate(parts)
        print(f"  det_size {det_size or 'full':>4} stride {stride}: mean {pooled.mean():.3f}  "
              f"p5 {np.percentile(pooled, 5):.3f}  min {pooled.min():.3f}")


if __name__ == "__main__":
    main()
