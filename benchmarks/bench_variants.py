"""Per-frame cost of the HQ and CodeFormer variants' render stages at 640x360 with one face, float32 against
``--dtype auto`` (bfloat16 for the models marked safe, on a CPU with native bf16) and, for HQ, ``--dtype int8``
(super-resolution quantized on its first call, which is not timed), timed interleaved.

The stages are the package's own (sync, super-resolution, segmentation mask, blend; sync, blend, CodeFormer
restoration), built as the run plan builds them, on render batches of the size the pipeline uses on CPU (4 frames
for HQ, 1 for CodeFormer). Weights are random (cost does not depend on them; CodeFormer's code choice is a lookup).
Decoding, detection and encoding are not included: ``bench_pipeline.py`` times whole runs.

    python benchmarks/bench_variants.py --rounds 2
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved, load_note  # noqa: E402

ARCH = {"wav2lip": "wav2lip", "sr": "rrdbnet_x4", "seg": "bisenet19", "codeformer": "codeformer",
        "parsenet": "parsenet"}


def _stages(variant: str, rt, nets: dict[str, torch.nn.Module]) -> list:
    from lipsync_core.stages.blend import BlendStage
    from lipsync_core.stages.hq import SegmentationMask, SuperResolution
    from lipsync_core.stages.restore import CodeFormerRestore
    from lipsync_core.stages.sync import SyncStage

    m = {k: rt.handle(copy.deepcopy(v), rt.card(ARCH[k])) for k, v in nets.items()}
    if variant == "hq":
        return [SyncStage(m["wav2lip"]), SuperResolution(m["sr"]), SegmentationMask(m["seg"]), BlendStage()]
    return [SyncStage(m["wav2lip"]), BlendStage(), CodeFormerRestore(m["codeformer"], m["parsenet"])]


def make_batch(frames: list[np.ndarray], box: tuple[int, int, int, int]):
    from lipsync_core.face.align import landmarks_from_box
    from lipsync_core.stages.base import Batch

    n = len(frames)
    return Batch(indices=list(range(n)), frames=[f.copy() for f in frames], boxes=[box] * n,
                 mels=np.random.default_rng(0).standard_normal((n, 80, 16)).astype(np.float32),
                 landmarks=[landmarks_from_box(box)] * n)


def run(stages: list, frames: list[np.ndarray], box: tuple[int, int, int, int]) -> None:
    b = make_batch(frames, box)
    for s in stages:
        s(b)


def split(stages: list, frames: list[np.ndarray], box: tuple[int, int, int, int]) -> dict[str, float]:
    """Seconds per frame of each stage, one pass."""
    b, out = make_batch(frames, box), {}
    with torch.inference_mode():
        for s in stages:
            t0 = time.perf_counter()
            s(b)
            out[s.name] = (time.perf_counter() - t0) / len(frames)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["hq", "codeformer"], choices=["hq", "codeformer"])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--hq-frames", type=int, default=4, help="frames per render batch for HQ (the CPU default)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from lipsync_core.compute.hardware import cpu_info
    from lipsync_core.compute.runtime import Runtime
    from lipsync_core.models.bisenet import BiSeNet
    from lipsync_core.models.codeformer import CodeFormer
    from lipsync_core.models.fuse import fold_batchnorm
    from lipsync_core.models.parsenet import ParseNet
    from lipsync_core.models.rrdbnet import RRDBNet
    from lipsync_core.models.wav2lip import Wav2Lip
    from lipsync_core.testing.media import draw_face

    print(f"{cpu_info().describe()}, torch {torch.__version__}, {torch.get_num_threads()} threads; {load_note()} "
          "(shared machine)")
    w, h = (int(v) for v in args.size.lower().split("x"))
    box = (h // 5, h // 5 + 150, w // 2 - 60, w // 2 + 60)  # a talking head's face box at 360p, with the pads
    runtimes = {"float32": Runtime(dtype=torch.float32), "auto (bf16)": Runtime(dtype=torch.float32, cpu_bf16=True),
                "int8": Runtime(dtype=torch.float32, cpu_bf16=True, cpu_int8=True)}
    report: dict = {}
    for variant in args.variants:
        n = args.hq_frames if variant == "hq" else 1
        if variant == "hq":
            nets = {"wav2lip": Wav2Lip(), "sr": RRDBNet(scale=4), "seg": BiSeNet(19)}
        else:
            nets = {"wav2lip": Wav2Lip(), "codeformer": CodeFormer(), "parsenet": ParseNet()}
        nets = {k: fold_batchnorm(v.eval()) for k, v in nets.items()}
        frames = [draw_face((w, h), t / 25.0, 0.5) for t in range(n)]
        built = {name: _stages(variant, rt, nets) for name, rt in runtimes.items()
                 if variant == "hq" or not rt.cpu_int8}  # CodeFormer's models have no int8 form
        cases = {name: partial(run, stages, frames, box) for name, stages in built.items()}
        t = interleaved(cases, rounds=args.rounds)
        per_stage = {name: split(stages, frames, box) for name, stages in built.items()}  # warm, once more
        print(f"\n== {variant}, {w}x{h}, one face, {n} frame(s) per render batch, seconds per frame ({load_note()}) ==")
        for name, timing in t.items():
            pf = timing.per(n)
            parts = ", ".join(f"{k} {v:.2f}" for k, v in per_stage[name].items())
            print(f"  {name:12} best {pf.best:6.2f}  median {pf.median:6.2f}  CPU {pf.cpu:6.2f}   ({parts})")
        report[variant] = {name: {**vars(timing.per(n)), "stages": per_stage[name]} for name, timing in t.items()}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
