"""Training speed and memory: steps/s and peak memory of the real training step, tiny and full-size generator.

Each case runs in its own process (so its peak resident memory is its own): the step of
:func:`lipsync_core.training.step.train_step` on batches of the given size, one warm-up step then ``--steps``
timed ones. "w2l" is ``wav2lip_train.py``'s step (L1 + sync loss through the frozen expert, audio encoder
frozen as the fine-tuning default); "gan" adds the visual quality discriminator (``hq_wav2lip_train.py``).
The loader's throughput (JPEG decode and resize of the windows) is measured on a synthetic dataset.

The FLOPs of one full-size step are counted (torch's FlopCounterMode, forward and backward) and turned into an
**estimate** for a Colab T4 (no GPU was measured): 65 TFLOPS peak float16 tensor-core throughput at 8-15 %
utilisation under AMP, the range published T4 training throughputs of convolutional networks imply (ResNet-50
mixed-precision training at ~250-300 images/s is ~7 TFLOPS, ~11 % of peak); small 96x96 feature maps and
BatchNorm make Wav2Lip no more efficient. Weights are procedural (cost does not depend on them). Example::

    python benchmarks/bench_train.py --threads 2 --steps 2 --batch_size 4
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import torch

T4_PEAK_FP16 = 65e12
T4_UTILISATION = (0.08, 0.15)


def _nets(kind: str, gan: bool):
    from lipsync_core.models.disc_qual import DiscQual
    from lipsync_core.models.fuse import fold_batchnorm
    from lipsync_core.models.syncnet import SyncNetColor
    from lipsync_core.models.wav2lip import Wav2Lip
    from lipsync_core.testing.training import TinyDisc, TinyExpert, TinyGenerator
    from lipsync_core.training.step import Nets

    if kind == "tiny":
        return Nets(TinyGenerator(), TinyExpert(), TinyDisc() if gan else None, frozen=("audio_encoder",))
    expert = fold_batchnorm(SyncNetColor().eval())  # as training loads it: eval mode, BatchNorm folded
    return Nets(Wav2Lip(), expert, DiscQual() if gan else None, frozen=("audio_encoder",))


def _batch(b: int):
    from lipsync_core.training.step import Batch

    g = torch.Generator().manual_seed(0)
    return Batch(x=torch.rand(b, 6, 5, 96, 96, generator=g), indiv_mels=torch.randn(b, 5, 1, 80, 16, generator=g),
                 mel=torch.randn(b, 1, 80, 16, generator=g), gt=torch.rand(b, 3, 5, 96, 96, generator=g))


def _case(kind: str, gan: bool, batch_size: int, steps: int, threads: int, queue) -> None:
    from lipsync_core.training.config import BETAS, BETAS_GAN
    from lipsync_core.training.step import LossWeights, make_optimizer, train_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    nets = _nets(kind, gan)
    betas = BETAS_GAN if gan else BETAS
    gen_opt = make_optimizer(nets.generator, 1e-5, betas)
    disc_opt = make_optimizer(nets.disc, 1e-5, betas) if gan else None
    weights = LossWeights(sync=0.03 if gan else 0.01, disc=0.07 if gan else 0.0)
    batch = _batch(batch_size)
    train_step(nets, gen_opt, batch, weights, disc_opt=disc_opt)  # warm-up (allocator, oneDNN kernels)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        train_step(nets, gen_opt, batch, weights, disc_opt=disc_opt)
        times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"case": f"{kind} {'gan' if gan else 'w2l'}", "batch": batch_size, "s_per_step": min(times),
               "steps_per_s": 1.0 / min(times), "peak_rss_mb": peak_mb})


def _flops(gan: bool, batch_size: int) -> float:
    """FLOPs of one full-size training step (forward and backward of every network involved)."""
    from torch.utils.flop_counter import FlopCounterMode

    from lipsync_core.training.config import BETAS
    from lipsync_core.training.step import LossWeights, make_optimizer, train_step

    nets = _nets("full", gan)
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(nets, make_optimizer(nets.generator, 1e-5, BETAS), _batch(batch_size),
                   LossWeights(sync=0.03 if gan else 0.01, disc=0.07 if gan else 0.0),
                   disc_opt=make_optimizer(nets.disc, 1e-5, BETAS) if gan else None)
    return float(counter.get_total_flops())


def _loader(batch_size: int, workers: int) -> float:
    """Batches per second the loader delivers (JPEG decode + resize of 2 windows per sample, mel slices)."""
    from lipsync_core.testing.training import synthetic_dataset
    from lipsync_core.training.data import BatchStream, Dataset, WindowSampler

    with tempfile.TemporaryDirectory() as tmp:
        data = Dataset.open(synthetic_dataset(Path(tmp), clips=8, frames=75, val_clips=1, crop=256))
        stream = BatchStream(WindowSampler(data.train), batch_size, workers=workers)
        it = iter(stream)
        next(it)
        t0 = time.perf_counter()
        n = 5
        for _ in range(n):
            next(it)
        stream.close()
        return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case (the fastest is reported)")
    parser.add_argument("--batch_size", type=int, default=4, help="batch for the full-size cases on CPU")
    parser.add_argument("--tiny_batch_size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--t4_batch_size", type=int, default=16, help="batch of the T4 estimate (the default run)")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    results = []
    cases = [("tiny", False, args.tiny_batch_size), ("tiny", True, args.tiny_batch_size),
             ("full", False, args.batch_size), ("full", True, args.batch_size)]
    for kind, gan, b in cases:
        queue = ctx.Queue()
        proc = ctx.Process(target=_case, args=(kind, gan, b, args.steps, args.threads, queue))
        proc.start()
        results.append(queue.get())
        proc.join()
        r = results[-1]
        print(f"{r['case']:9s} batch {r['batch']:3d}: {r['s_per_step']:7.2f} s/step ({r['steps_per_s']:.3f} steps/s), "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    torch.set_num_threads(args.threads)
    print(f"loader: {_loader(16, 2):.1f} batches of 16/s (2 threads)")
    for gan in (False, True):
        flops = _flops(gan, 1) * args.t4_batch_size  # every term is linear in the batch
        lo, hi = (flops / (T4_PEAK_FP16 * u) for u in reversed(T4_UTILISATION))
        name = "gan" if gan else "w2l"
        print(f"full {name}: {flops / 1e12:.2f} TFLOP per step at batch {args.t4_batch_size}; "
              f"T4 ESTIMATE (not measured): {lo:.2f}-{hi:.2f} s/step, 5000 steps in {5000 * lo / 60:.0f}-"
              f"{5000 * hi / 60:.0f} min")
        results.append({"case": f"t4_estimate {name}", "tflop_per_step": flops / 1e12, "s_per_step": [lo, hi]})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
