"""Box agreement of the fast face track (downscaled, every k-th frame) with full-resolution detection on every frame.

For each video and each (det_size, stride) pair: per-frame IoU between the raw tracks (no pads, no smoothing,
so differences are not averaged away), frames where only one track has a face, and the detection-stage time
(frames decoded beforehand; decode is not timed). Uses the Haar detector (no weights needed).

    python benchmarks/track_agreement.py ../shared/media/talking_head_*.mp4 --det_size 320 480 640 --stride 1 3 5
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lipsync_core.face.haar import HaarDetector
from lipsync_core.face.track import DetectionSettings, detect_track, detection_scale, detection_size
from lipsync_core.face.types import FaceTrack
from lipsync_core.media.video import FrameReader


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two (top, bottom, left, right) boxes."""
    h = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    w = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    inter = h * w
    union = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter
    return inter / union if union > 0 else 0.0


def timed_track(frames: list[np.ndarray], settings: DetectionSettings, scale: float,
                frame_size: tuple[int, int]) -> tuple[FaceTrack, float]:
    t0 = time.perf_counter()
    track = detect_track(frames, HaarDetector(), settings, scale=scale, frame_size=frame_size, fps=25.0)
    return track, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--det_size", nargs="+", type=int, default=[320, 480, 640], help="0 = full resolution")
    ap.add_argument("--stride", nargs="+", type=int, default=[1, 3, 5, 8])
    ap.add_argument("--cut_threshold", type=float, default=DetectionSettings.cut_threshold)
    args = ap.parse_args()

    header = (f"{'video':32} {'det_size':>8} {'stride':>6} {'frames':>6} {'mean IoU':>8} {'p5 IoU':>7} "
              f"{'min IoU':>7} {'face mismatch':>13} {'time s':>7} {'speedup':>7}")
    print(header)
    print("-" * len(header))
    all_ious: dict[tuple[int, int], list[np.ndarray]] = {}
    for video in args.videos:
        with FrameReader(video) as reader:
            full = list(reader)
        frame_size = (full[0].shape[1], full[0].shape[0])
        ref, ref_time = timed_track(full, DetectionSettings(det_size=None, det_stride=1), 1.0, frame_size)
        print(f"{video.name[:32]:32} {'full':>8} {1:>6} {len(full):>6} {'(reference)':>33} {'':>13} "
              f"{ref_time:7.2f} {1.0:7.1f}")
        for det_size in args.det_size:
            size = detection_size(frame_size, det_size or None)
            if size == frame_size:
                small = full
            else:
                with FrameReader(video, size=size) as reader:
                    small = list(reader)
            for stride in args.stride:
                settings = DetectionSettings(det_size=det_size or None, det_stride=stride,
                                             cut_threshold=args.cut_threshold)
                track, t = timed_track(small, settings, detection_scale(frame_size, det_size or None), frame_size)
                both = [(a, b) for a, b in zip(ref.boxes, track.boxes) if a is not None and b is not None]
                mismatch = sum((a is None) != (b is None) for a, b in zip(ref.boxes, track.boxes))
                ious = np.array([box_iou(a, b) for a, b in both]) if both else np.zeros(1)
                all_ious.setdefault((det_size, stride), []).append(ious)
                print(f"{'':32} {det_size or 'full':>8} {stride:>6} {len(both):>6} {ious.mean():8.3f} "
                      f"{np.percentile(ious, 5):7.3f} {ious.min():7.3f} {mismatch:>13} {t:7.2f} {ref_time / t:7.1f}")
    print("\nall videos pooled (frames where both tracks have a face):")
    for (det_size, stride), parts in sorted(all_ious.items()):
        ious = np.concatenate(parts)
        print(f"  det_size {det_size or 'full':>4} stride {stride}: mean {ious.mean():.3f}  "
              f"p5 {np.percentile(ious, 5):.3f}  min {ious.min():.3f}")


if __name__ == "__main__":
    main()
