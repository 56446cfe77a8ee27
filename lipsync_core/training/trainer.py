"""The training loop: steps, the loss-weight schedule, validation, checkpoints, early stopping and resume.

:func:`train` runs ``lipsync train run``: it resolves the weights by role, opens the dataset and runs a
:class:`Trainer`. Everything a resumed run needs is in its checkpoints (see :mod:`.checkpoint`), so
``--resume`` after a Colab reset continues exactly where the last checkpoint left off: same weights, optimizer
moments, BatchNorm statistics, sync-loss weight, data order and early-stopping state.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..compute.runtime import Runtime
from ..engine.catalog import CATALOG
from ..support.errors import LipsyncError
from ..support.files import atomic_write_text
from . import checkpoint as ckpt
from .config import ROLES, SYNC_SWITCH_BELOW, TrainConfig
from .data import BatchStream, Dataset, HostBatch, WindowSampler, load_batch, to_batch
from .losses import generate, l1_loss, sync_loss
from .step import Amp, LossWeights, Nets, make_optimizer, set_hyperparameters, train_step

log = logging.getLogger(__name__)

#: Seed of the fixed validation windows (the same windows at every validation, whatever the run's seed).
VAL_SEED = 12345
METRICS = "metrics.jsonl"

#: ``on_event(kind, record)``: kind "train" (every log_interval steps), "val" (each validation), "stop".
EventHook = Callable[[str, dict[str, Any]], None]
#: ``score_hook(checkpoint_path, step)``: extra validation numbers from a checkpoint (e.g. LSE-C of a render).
ScoreHook = Callable[[Path, int], dict[str, float]]


@dataclass
class TrainResult:
    """What a run did: where it stopped, why, and its best validation."""

    out: Path
    step: int
    stopped: str  # "steps", "early_stop"
    best_step: int | None
    best_val_sync: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Trains ``nets`` on ``dataset`` as ``cfg`` says, writing checkpoints and metrics to ``cfg.out``.

    ``nets`` come in with their starting weights (the resumed checkpoint, when there is one, overrides them).
    ``dtype`` is the compute dtype (float32; float64 only for parity checks).
    """

    def __init__(self, cfg: TrainConfig, dataset: Dataset, nets: Nets, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, on_event: EventHook | None = None,
                 score_hook: ScoreHook | None = None) -> None:
        self.cfg = cfg.validate()
        self.dataset = dataset
        self.device = torch.device(device)
        self.dtype = dtype
        self.nets = nets
        self.on_event = on_event
        self.score_hook = score_hook
        self.out = Path(cfg.out)
        nets.generator.to(self.device, dtype)
        nets.expert.to(self.device, dtype)
        nets.expert.train(cfg.expert_batch_stats)
        if nets.disc is not None:
            nets.disc.to(self.device, dtype)
        self.gen_opt = make_optimizer(nets.generator, cfg.lr, cfg.betas)
        self.disc_opt = make_optimizer(nets.disc, cfg.disc_lr, cfg.betas) if nets.disc is not None else None
        self.amp = Amp(self.device, not cfg.no_amp and dtype == torch.float32)
        self.sampler = WindowSampler(dataset.train, seed=cfg.seed)
        self.steps_per_epoch = max(1, math.ceil(len(dataset.train) / cfg.batch_size))
        self.step = 0
        self.sync_wt = 0.0 if cfg.sync_warmup else cfg.sync_weight
        self.best_val: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0
        self.history: list[dict[str, Any]] = []
        self._val: list[HostBatch] | None = None
        self._sampler_state = self.sampler.state()

    # -- state ---------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        c = self.cfg
        return {"syncnet_wt": self.sync_wt, "disc_wt": c.disc_weight, "sampler": self.sampler.state(),
                "best_val_sync": self.best_val, "best_step": self.best_step, "bad_evals": self.bad_evals,
                "amp": self.amp.state_dict(),
                "config": {"gan": c.gan, "batch_size": c.batch_size, "lr": c.lr, "disc_lr": c.disc_lr,
                           "freeze": list(c.freeze), "seed": c.seed, "dataset": str(c.dataset)}}

    def restore(self, saved: ckpt.Saved) -> None:
        """Continue from ``saved``: weights, optimizer moments (with this config's lr and betas), counters, state."""
        extra = saved.extra
        if bool(extra["config"]["gan"]) != self.cfg.gan:
            raise LipsyncError(f"the run in {self.out} was trained {'with' if extra['config']['gan'] else 'without'} "
                               "--gan; resume it the same way, or choose another --out")
        self.nets.generator.load_state_dict(_strip(saved.generator["state_dict"]), strict=True)
        self.gen_opt.load_state_dict(saved.generator["optimizer"])
        set_hyperparameters(self.gen_opt, self.cfg.lr, self.cfg.betas)  # not the file's (the original's pitfall)
        if self.nets.disc is not None:
            assert saved.disc is not None and self.disc_opt is not None, "read_checkpoint reads it for a GAN run"
            self.nets.disc.load_state_dict(_strip(saved.disc["state_dict"]), strict=True)
            self.disc_opt.load_state_dict(saved.disc["optimizer"])
            set_hyperparameters(self.disc_opt, self.cfg.disc_lr, self.cfg.betas)
        self.step = saved.step
        self.sync_wt = float(extra["syncnet_wt"])  # saved, unlike the original, which restarts at 0
        self.sampler.set_state(extra["sampler"])
        self.best_val, self.best_step = extra["best_val_sync"], extra["best_step"]
        self.bad_evals = int(extra["bad_evals"])
        self.amp.load_state_dict(extra.get("amp", {}))
        self.history = [r for r in read_metrics(self.out / METRICS) if r.get("step", 0) <= self.step]
        _write_metrics(self.out / METRICS, self.history)
        log.info("resumed %s at step %d (sync weight %g)", saved.path, self.step, self.sync_wt)

    # -- validation ----------------------------------------------------------------------------------
    def val_batches(self) -> list[HostBatch]:
        """The fixed held-out windows, loaded once (at most ``val_windows``, in batches of ``batch_size``)."""
        if self._val is None:
            self._val = []
            try:
                sampler = WindowSampler(self.dataset.val, seed=VAL_SEED) if self.dataset.val else None
            except LipsyncError as exc:  # validation clips too short to hold a window
                log.warning("no validation: %s", exc)
                sampler = None
            if sampler is not None:
                n = min(self.cfg.val_windows, sampler.windows)
                specs = sampler.draw_batch(n)
                bs = self.cfg.batch_size
                self._val = [load_batch(self.dataset.val, specs[i:i + bs]) for i in range(0, n, bs)]
        return self._val

    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        """Mean sync loss and L1 of the generator (eval mode) on the held-out windows; None without any."""
        batches = self.val_batches()
        if not batches:
            return None
        gen = self.nets.generator
        gen.eval()
        sync_sum = l1_sum = 0.0
        count = 0
        for host in batches:
            batch = to_batch(host, self.device, self.dtype)
            with self.amp.autocast():
                g = generate(gen, batch.indiv_mels, batch.x)
                sync = sync_loss(self.nets.expert, batch.mel, g)
            n = len(batch)
            sync_sum += float(sync) * n
            l1_sum += float(l1_loss(g, batch.gt)) * n
            count += n
        return {"val_sync": sync_sum / count, "val_l1": l1_sum / count}

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        existing = ckpt.periodic(self.out)
        if cfg.resume:
            saved = ckpt.load_latest(self.out, cfg.gan)
            if saved is not None:
                self.restore(saved)
            else:
                log.info("nothing to resume in %s: starting a new run", self.out)
        elif existing:
            raise LipsyncError(f"{self.out} holds checkpoints of an earlier run (up to step {existing[-1]}): pass "
                               "--resume to continue it, or choose another --out")
        stopped = "steps"
        if self.step == 0:  # the starting point is the first candidate: fine-tuning must beat it to replace it
            self._checkpoint_and_validate(periodic=False)
        stream = BatchStream(self.sampler, cfg.batch_size, workers=cfg.workers)
        bar = _bar(cfg, self.step)
        sums: dict[str, float] = {}
        n_sums = 0
        t0 = time.perf_counter()
        try:
            batches = iter(stream)
            while self.step < cfg.steps:
                drawn = next(batches)
                batch = to_batch(drawn.host, self.device, self.dtype)
                result = train_step(self.nets, self.gen_opt, batch, LossWeights(self.sync_wt, cfg.disc_weight),
                                    disc_opt=self.disc_opt, amp=self.amp)
                self.step += 1
                self._sampler_state = drawn.sampler_state
                for k, v in asdict(result).items():
                    if v is not None:
                        sums[k] = sums.get(k, 0.0) + v
                n_sums += 1
                bar.update(1)
                if self.step % cfg.log_interval == 0 or self.step == cfg.steps:
                    record = {"step": self.step, "kind": "train", "syncnet_wt": self.sync_wt,
                              **{k: v / n_sums for k, v in sums.items()},
                              "steps_per_s": n_sums / max(time.perf_counter() - t0, 1e-9)}
                    bar.set_postfix({k: f"{record[k]:.4f}" for k in ("l1", "sync", "loss") if k in record})
                    self._emit(record)
                    sums, n_sums, t0 = {}, 0, time.perf_counter()
                if self.step % cfg.eval_interval == 0 or self.step == cfg.steps:
                    if self._checkpoint_and_validate():
                        stopped = "early_stop"
                        break
        finally:
            bar.close()
            stream.close()
        self._emit({"step": self.step, "kind": "stop", "reason": stopped, "best_step": self.best_step,
                    "best_val_sync": self.best_val})
        return TrainResult(self.out, self.step, stopped, self.best_step, self.best_val, self.history)

    def _checkpoint_and_validate(self, periodic: bool = True) -> bool:
        """Validate, update the schedule and the best checkpoint, save (a periodic checkpoint too unless
        ``periodic`` is False); True when early stopping says stop."""
        cfg = self.cfg
        epoch = self.step // self.steps_per_epoch
        metrics = self.validate()
        improved = False
        if metrics is not None:
            val = metrics["val_sync"]
            if self.sync_wt == 0.0 and val < SYNC_SWITCH_BELOW:  # the original's one-way switch
                self.sync_wt = cfg.sync_weight
            improved = self.best_val is None or val < self.best_val
            if improved:
                self.best_val, self.best_step, self.bad_evals = val, self.step, 0
            else:
                self.bad_evals += 1
        # The sampler state saved is the one after the last batch trained on (later ones were only prefetched).
        extra = {**self.extra_state(), "sampler": self._sampler_state}
        path = self.out / ckpt.BEST
        if periodic:
            path = ckpt.save(self.out, self.step, epoch, self.nets.generator, self.gen_opt, extra,
                             disc=self.nets.disc, disc_opt=self.disc_opt, keep=cfg.keep_checkpoints)
        if improved or metrics is None:
            ckpt.save_best(self.out, self.step, epoch, self.nets.generator, extra, disc=self.nets.disc)
        record: dict[str, Any] = {"step": self.step, "kind": "val", "syncnet_wt": self.sync_wt,
                                  "checkpoint": path.name, "best": improved, **(metrics or {})}
        if self.score_hook is not None:
            record.update(self.score_hook(path, self.step))
        self._emit(record)
        return metrics is not None and cfg.patience > 0 and self.bad_evals >= cfg.patience

    def _emit(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        with open(self.out / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if record["kind"] == "val":
            log.info("step %d: %s", record["step"], {k: v for k, v in record.items() if k.startswith("val_")})
        if self.on_event is not None:
            self.on_event(record["kind"], record)


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v for k, v in state.items()}


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl`` (a line cut by a reset mid-write is skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a reset mid-write
            continue
    return out


def _write_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def _bar(cfg: TrainConfig, start: int):
    from tqdm.auto import tqdm

    return tqdm(total=cfg.steps, initial=start, desc="train", unit="step", disable=not cfg.progress, leave=False)



def weight_path(cfg: TrainConfig, role: str, default: str | None = None) -> Path:
    """A verified local file for ``role``: its ``--<role>_path`` (manifest id, path, URL or Drive ID), else
    ``default`` (a manifest id), else the role's default; a file of another kind is refused saying where it goes."""
    from .. import models
    from ..weights import store as weights
    from ..weights.manifest import load_manifest

    manifest = load_manifest()
    spec = ROLES[role]
    default = default or spec.default
    given = cfg.weight_source(role)
    arch = manifest.entry(default).arch

    def where(other: str) -> str:
        for r in ROLES.values():
            if r.default in manifest.weights and manifest.entry(r.default).arch == other:
                return f"pass it to {r.flag}"
        return CATALOG.flag_for_arch(other, manifest)

    wid = given if given in manifest.weights and not Path(given).exists() else default
    if manifest.entry(wid).arch != arch:
        fits = sorted(w for w, e in manifest.weights.items() if e.arch == arch)
        raise LipsyncError(f"{spec.flag} {given} names weights of another kind; use one of {', '.join(fits)}, "
                           "a file, a URL or a Drive ID")
    return weights.fetch(wid, source=None if given in (None, wid) else given, cache_dir=cfg.cache_dir,
                         validate=models.validator(arch, where), progress=cfg.progress)


def load_nets(cfg: TrainConfig, device: torch.device) -> Nets:
    """The generator (trainable), the frozen expert and, with ``--gan``, the discriminator, from their roles."""
    from .. import models

    init = weight_path(cfg, "checkpoint", "wav2lip_gan" if cfg.gan else "wav2lip")
    generator = models.load("wav2lip", init, device, fuse=False)
    # Fused BatchNorm is exact in eval mode and faster; the original's training-mode expert needs its norms.
    expert = models.load("syncnet_color", weight_path(cfg, "expert"), device, fuse=not cfg.expert_batch_stats)
    disc = None
    if cfg.gan:
        disc = models.load("disc_qual", weight_path(cfg, "disc"), device).requires_grad_(True)
    return Nets(generator.requires_grad_(True), expert, disc, frozen=tuple(cfg.freeze))


def train(cfg: TrainConfig, *, on_event: EventHook | None = None) -> TrainResult:
    """``lipsync train run``: train on ``cfg.dataset`` from the weights ``cfg`` names; see :class:`Trainer`.

    Every weight is fetched before the first step, so a missing one fails at once, not at the first validation.
    """
    from ..engine.plan import make_config
    from .validation import RenderCheck, validation_video

    cfg.validate()
    device = Runtime.resolve(cfg.device, "float32").device
    dataset = Dataset.open(cfg.dataset)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once
    nets = load_nets(cfg, device)
    score_hook = None
    if not cfg.no_render_check and dataset.val:
        syncnet = weight_path(cfg, "syncnet")
        folder = Path(cfg.out) / "validation"
        video = folder / "clip.mp4"
        if not video.is_file():
            validation_video(dataset.val[0], video)
        run = make_config("original", device=cfg.device, cache_dir=cfg.cache_dir, syncnet_path=str(syncnet))
        score_hook = RenderCheck(video, folder, run)
    return Trainer(cfg, dataset, nets, device=device, on_event=on_event, score_hook=score_hook).run()
