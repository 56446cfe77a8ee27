"""Scoring speed and memory: ``score_video`` on a generated 10 s 720p talking-head clip.

Each case runs in its own process so its peak RSS is its own. Weights are procedural (the cost does not
depend on them), loaded as a real file is (``models.load``, BatchNorm folded, float32). Cases: SyncNet v2
(LSE-D/LSE-C, with and without the JPEG round trip) and the Wav2Lip expert, all with a fixed face box so
the figure is the scorer's own (detection costs what it costs in a run). Example::

    nice python benchmarks/bench_score.py --seconds 10 --threads 2 --device cpu
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {"syncnet": ("syncnet", True), "syncnet-nojpeg": ("syncnet", False), "expert": ("expert", False)}


def _child(args: argparse.Namespace) -> None:
    import torch

    from lipsync_core.face.track import DetectionOptions
    from lipsync_core.models import load
    from lipsync_core.score.embed import ExpertEmbedder, SyncNetEmbedder
    from lipsync_core.score.video import score_video
    from lipsync_core.testing.checkpoints import write_checkpoint

    torch.set_num_threads(args.threads)
    scorer, jpeg = CASES[args.case]
    arch = "syncnet_v2" if scorer == "syncnet" else "syncnet_color"
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_checkpoint(arch, Path(tmp) / f"{arch}.pth")
        model = load(arch, ckpt, device=args.device)
    embedder = (SyncNetEmbedder if scorer == "syncnet" else ExpertEmbedder)(model, args.device)
    w, h = args.width, args.height
    box = (h // 6, h * 5 // 6, w // 2 - h // 3, w // 2 + h // 3)  # the generated face's region
    start = time.perf_counter()
    report = score_video(args.clip, embedder=embedder, scorer=scorer, settings=DetectionOptions(box=box),
                         jpeg=jpeg, batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"case": args.case, "frames": report.frames, "windows": report.overall["windows"],
                      "seconds": seconds, "fps": report.frames / seconds, "peak_rss_mb": rss_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=20, help="windows per network call (reference: 20)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        _child(args)
        return

    from lipsync_core.testing.media import talking_head_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = talking_head_video(Path(tmp) / "clip.mp4", size=(args.width, args.height), seconds=args.seconds)
        print(f"clip: {args.width}x{args.height}, {args.seconds:g} s at 25 fps; device {args.device}, "
              f"{args.threads} threads, batch {args.batch_size}")
        for case in args.cases:
            cmd = [sys.executable, __file__, "--case", case, "--clip", str(clip), "--threads", str(args.threads),
                   "--device", args.device, "--width", str(args.width), "--height", str(args.height),
                   "--batch-size", str(args.batch_size)]
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"{case:15s} {out['frames']} frames, {out['windows']} windows: {out['seconds']:6.1f} s, "
                  f"{out['fps']:6.1f} frames/s, peak RSS {out['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
