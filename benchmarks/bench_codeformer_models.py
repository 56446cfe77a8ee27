"""Per-face cost of the CodeFormer variant's models at full size: CodeFormer 512, ParseNet 512, RetinaFace-R50.

Weights are random (cost does not depend on them, except CodeFormer's code choice, which is a lookup).
``--stage`` also times the whole restoration stage per face (align, CodeFormer, ParseNet, paste-back).
Example::

    python benchmarks/bench_codeformer_models.py --threads 2 --repeat 3 --stage
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from lipsync_core.face.align import face_template
from lipsync_core.models.codeformer import CodeFormer
from lipsync_core.models.parsenet import ParseNet
from lipsync_core.models.retinaface import RetinaFace
from lipsync_core.stages.base import Batch, Runtime
from lipsync_core.stages.restore import CodeFormerRestore


def _times(fn: Callable[[], object], repeat: int, device: torch.device) -> list[tuple[float, float]]:
    """(wall, process CPU) seconds of ``repeat`` calls after one warm-up; CPU time shows contention."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    out = []
    with torch.inference_mode():
        fn()
        sync()
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            sync()
            out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def _report(label: str, times: list[tuple[float, float]]) -> None:
    walls = [w for w, _ in times]
    cpu = min(c for _, c in times)
    print(f"{label:40s} best {min(walls):7.3f} s, median {statistics.median(walls):7.3f} s (CPU {cpu:7.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (best and median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fp16", action="store_true", help="autocast to float16 (CUDA)")
    parser.add_argument("--stage", action="store_true", help="also time the restoration stage per face")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.float16 if args.fp16 else torch.float32
    runtime = Runtime(device=device, dtype=dtype)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, {dtype}, batch 1")

    codeformer = CodeFormer().to(device).eval()
    parsenet = ParseNet().to(device).eval()
    retinaface = RetinaFace().to(device).eval()
    face = torch.rand(1, 3, 512, 512, device=device) * 2 - 1
    frame = torch.rand(1, 3, 360, 640, device=device) * 255 - 117

    handles = {arch: runtime.handle(net, runtime.card(arch)) for arch, net in
               (("codeformer", codeformer), ("parsenet", parsenet), ("retinaface_resnet50", retinaface))}

    def run(arch: str, x: torch.Tensor, **kw: object) -> Callable[[], object]:
        return lambda: handles[arch](x, **kw)

    _report("CodeFormer 512x512 (w=0.7)", _times(run("codeformer", face, w=0.7), args.repeat, device))
    _report("ParseNet 512x512", _times(run("parsenet", face), args.repeat, device))
    _report("RetinaFace-R50 640x360", _times(run("retinaface_resnet50", frame), args.repeat, device))

    if args.stage:
        stage = CodeFormerRestore(handles["codeformer"], handles["parsenet"], fidelity=0.7)
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
        landmarks = (face_template(512) * 0.5 + (500, 200)).astype(np.float32)

        def one_face() -> None:
            stage(Batch(indices=[0], frames=[image.copy()], boxes=[(200, 500, 550, 800)],
                        mels=np.zeros((1, 80, 16), np.float32), landmarks=[landmarks]))

        _report("restore stage, 1 face in 1280x720", _times(one_face, args.repeat, device))


if __name__ == "__main__":
    main()
