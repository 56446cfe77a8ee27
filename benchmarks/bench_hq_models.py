"""Per-face cost of the Wav2Lip-HQ enhancers at full size: ESRGAN x4 (23 blocks, 64 features) and BiSeNet-19.

Weights are random (cost does not depend on them). Example::

    python benchmarks/bench_hq_models.py --threads 2 --repeat 3
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from lipsync_core.models.bisenet import BiSeNet
from lipsync_core.models.rrdbnet import RRDBNet


def _times(model: torch.nn.Module, x: torch.Tensor, repeat: int) -> list[float]:
    """Wall times in seconds of ``repeat`` forwards, after one warm-up."""
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeat):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return times


def _conv_gmacs(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-accumulates of every convolution in one forward, in units of 1e9."""
    total = 0

    def count(conv: torch.nn.Conv2d, _inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * conv.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        model(x)
    for h in hooks:
        h.remove()
    return total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed forwards per model (best is reported)")
    parser.add_argument("--size", type=int, default=96, help="SR input side (Wav2Lip output: 96)")
    parser.add_argument("--seg-size", type=int, default=512, help="BiSeNet input side (Wav2Lip-HQ: 512)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cases = [
        ("RRDBNet x4 (23 blocks, 64 feat)", RRDBNet(scale=4), args.size),
        ("BiSeNet-19 (ResNet-18)", BiSeNet(19), args.seg_size),
    ]
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, fp32, batch 1")
    for label, model, side in cases:
        model = model.to(device).eval()
        x = torch.rand(1, 3, side, side, device=device)
        times = _times(model, x, args.repeat)
        print(f"{label:32s} {side}x{side}: best {min(times):7.3f} s/face, median {statistics.median(times):7.3f} s, "
              f"{_conv_gmacs(model, x):6.1f} GMAC")


if __name__ == "__main__":
    main()
