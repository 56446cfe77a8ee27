"""FLOPs per call and achieved FLOP/s of every network at its pipeline input size, fp32 and bf16, next to the
matmul FLOP/s this CPU reaches.

FLOPs are counted by ``torch.utils.flop_counter`` (convolutions, matmuls, attention; 2 per multiply-add), per
call of the network as the stage makes it (per face, or per frame for whole-frame networks; RealESRGAN x2 is
tiled as ``UpscaleStage`` tiles, overlap included). Achieved = FLOPs / best wall time; "% of matmul" compares it
with a large square matmul in the same dtype, the practical ceiling of this CPU. Variants are timed interleaved
(see ``timing.py``). Weights are random (cost does not depend on them).

    python benchmarks/bench_flops.py                               # every model, batch 1, fp32 and bf16
    python benchmarks/bench_flops.py --models rrdbnet_x4 --batch 1 4 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved, load_note  # noqa: E402

MODELS = ("wav2lip", "s3fd", "retinaface", "rrdbnet_x4", "bisenet", "codeformer", "parsenet", "rrdbnet_x2")
#: Faces (frames) per call as the stages make them on CPU: sync chunks of 16, HQ render batches of 4 frames.
STAGE_BATCH = {"wav2lip": 16, "rrdbnet_x4": 4, "bisenet": 4}


def _case(name: str, batch: int) -> tuple[str, torch.nn.Module, Callable[[torch.nn.Module], object]]:
    """(label, network, call): the network at the input size its stage feeds it."""
    cl = torch.channels_last

    def img(c: int, h: int, w: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return (torch.rand(batch, c, h, w) * (hi - lo) + lo).contiguous(memory_format=cl)

    if name == "wav2lip":
        from lipsync_core.models.wav2lip import Wav2Lip
        mel, face = torch.randn(batch, 1, 80, 16), img(6, 96, 96)
        return "Wav2Lip, 96 face", Wav2Lip(), lambda m: m(mel, face)
    if name == "s3fd":
        from lipsync_core.models.s3fd import S3FD
        x = img(3, 360, 640, -117, 138)
        return "S3FD, 640x360 frame", S3FD(), lambda m: m(x)
    if name == "retinaface":
        from lipsync_core.models.retinaface import RetinaFace
        x = img(3, 360, 640, -117, 138)
        return "RetinaFace-R50, 640x360 frame", RetinaFace(), lambda m: m(x)
    if name == "rrdbnet_x4":
        from lipsync_core.models.rrdbnet import RRDBNet
        x = img(3, 96, 96)
        return "RRDBNet x4 (HQ SR), 96 face", RRDBNet(scale=4), lambda m: m(x)
    if name == "bisenet":
        from lipsync_core.models.bisenet import BiSeNet
        x = img(3, 512, 512, -2, 2)
        return "BiSeNet-19 (HQ mask), 512 face", BiSeNet(19), lambda m: m(x)[0]
    if name == "codeformer":
        from lipsync_core.models.codeformer import CodeFormer
        x = img(3, 512, 512, -1, 1)
        return "CodeFormer w=0.7, 512 face", CodeFormer(), lambda m: m(x, w=0.7, adain=True)[0]
    if name == "parsenet":
        from lipsync_core.models.parsenet import ParseNet
        x = img(3, 256, 256, -1, 1)
        return "ParseNet, 256 face", ParseNet(), lambda m: m(x)[0]
    if name == "rrdbnet_x2":
        from lipsync_core.models.rrdbnet import RRDBNet
        from lipsync_core.stages.upscale import UpscaleStage, upscale_tiled
        x = img(3, 360, 640)
        st = UpscaleStage(None)
        return ("RealESRGAN x2, 640x360 frame (tiled)", RRDBNet(scale=2),
                lambda m: [upscale_tiled(m, x[i:i + 1], 2, st.tile, st.overlap) for i in range(batch)])
    raise ValueError(name)


def count_flops(net: torch.nn.Module, call: Callable[[torch.nn.Module], object]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call(net)
    return counter.get_total_flops()


def matmul_flops(dtype: torch.dtype, n: int = 2048, rounds: int = 5) -> float:
    """Best FLOP/s of an n x n x n matrix product in ``dtype``: the larger of ``torch.mm`` (MKL for float32,
    which takes a slow path on AMD CPUs) and the same product as a 1x1 convolution (oneDNN, as the networks
    run)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    x = torch.randn(1, n, n // 32, 32).to(dtype).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(n, n, 1, bias=False).to(dtype).to(memory_format=torch.channels_last).eval()
    t = interleaved({"mm": lambda: torch.mm(a, b), "conv": lambda: conv(x)}, rounds=rounds)
    return 2 * n ** 3 / min(t["mm"].best, t["conv"].best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--batch", type=int, nargs="+", help="faces (frames) per call (default: what the stage "
                    "gives it on CPU: 16 for Wav2Lip, 4 for ESRGAN x4, 1 for the others)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from lipsync_core.compute.hardware import cpu_info
    from lipsync_core.models.fuse import fold_batchnorm

    print(f"{cpu_info().describe()}, torch {torch.__version__}, {torch.get_num_threads()} threads; {load_note()} "
          "(shared machine)")
    peak = {dt: matmul_flops(getattr(torch, dt)) for dt in ("float32", "bfloat16")}
    print("matmul 2048^3: " + ", ".join(f"{dt} {v / 1e9:.0f} GFLOP/s" for dt, v in peak.items()))
    report: dict = {"matmul_gflops": {k: v / 1e9 for k, v in peak.items()}, "models": {}}
    print(f"\n{'network, input':40}{'batch':>6}{'GFLOP/item':>11}  "
          f"{'fp32 s/item':>11}{'GFLOP/s':>8}{'%mm':>5}  {'bf16 s/item':>11}{'GFLOP/s':>8}{'%mm':>5}{'speed-up':>9}")
    for name in args.models:
        for batch in args.batch or [STAGE_BATCH.get(name, 1)]:
            label, net, call = _case(name, batch)
            net = fold_batchnorm(net.eval()).to(memory_format=torch.channels_last)
            flops = count_flops(net, call)

            def timed(dt: str, net: torch.nn.Module = net, call: Callable = call) -> Callable[[], object]:
                def run() -> object:
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dt == "bfloat16"):
                        return call(net)
                return run

            t = interleaved({dt: timed(dt) for dt in peak}, rounds=args.rounds)
            row = {dt: {"s_per_item": t[dt].best / batch, "cpu_s_per_item": t[dt].cpu / batch,
                        "gflops": flops / t[dt].best / 1e9} for dt in peak}
            f32, b16 = row["float32"], row["bfloat16"]
            print(f"{label:40}{batch:>6}{flops / batch / 1e9:11.1f}  "
                  f"{f32['s_per_item']:11.3f}{f32['gflops']:8.0f}{100 * f32['gflops'] * 1e9 / peak['float32']:5.0f}  "
                  f"{b16['s_per_item']:11.3f}{b16['gflops']:8.0f}{100 * b16['gflops'] * 1e9 / peak['bfloat16']:5.0f}"
                  f"{f32['s_per_item'] / b16['s_per_item']:8.2f}x", flush=True)
            report["models"][f"{name} b{batch}"] = {"label": label, "gflop_per_item": flops / batch / 1e9, **row}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
