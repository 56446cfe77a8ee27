"""Training checkpoints in the original's format, written atomically, plus one key for this package's state.

A generator checkpoint is the original's dict ``{state_dict, optimizer, global_step, global_epoch}`` (no
``module.`` prefix), so the original ``inference.py`` and ``wav2lip_train.py --checkpoint_path`` read it, and
:func:`lipsync_core.models.load` / every ``lipsync`` run take it as ``--checkpoint_path``. The extra key
:data:`EXTRA_KEY` holds what the original loses on resume: the sync-loss weight, the sampler state, the best
validation score, the early-stopping count and the AMP scales. The discriminator goes to its own file in the
same format, written first: a generator checkpoint is only ever present with its discriminator.

Files: ``checkpoint_step{step:09d}.pth`` (and ``disc_checkpoint_step{step:09d}.pth``) as the original names
them, the last ``keep`` of them kept; ``best_checkpoint.pth`` (generator weights and counters, no optimizer) and
``best_disc_checkpoint.pth``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models.checkpoints import read_checkpoint, save_atomic
from ..support.errors import LipsyncError

EXTRA_KEY = "lipsync_core"
FORMAT_VERSION = 1
BEST = "best_checkpoint.pth"
BEST_DISC = "best_disc_checkpoint.pth"
_STEP_FILE = re.compile(r"^checkpoint_step(\d{9})\.pth$")


def checkpoint_name(step: int, disc: bool = False) -> str:
    return f"{'disc_' if disc else ''}checkpoint_step{step:09d}.pth"


def original_format(model: nn.Module, optimizer: torch.optim.Optimizer | None, step: int, epoch: int) -> dict:
    """The original's checkpoint dict (``optimizer`` None when not saved, as its ``save_optimizer_state=False``)."""
    return {"state_dict": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "global_step": int(step), "global_epoch": int(epoch)}


@dataclass
class Saved:
    """A checkpoint read back: the generator dict, its extra state, and the discriminator dict if any."""

    path: Path
    generator: dict[str, Any]
    extra: dict[str, Any]
    disc: dict[str, Any] | None

    @property
    def step(self) -> int:
        return int(self.generator["global_step"])


def save(out: Path, step: int, epoch: int, generator: nn.Module, gen_opt: torch.optim.Optimizer, extra: Mapping,
         *, disc: nn.Module | None = None, disc_opt: torch.optim.Optimizer | None = None, keep: int = 2) -> Path:
    """Write the step's checkpoint (discriminator first), then drop periodic checkpoints beyond the last ``keep``."""
    if disc is not None:
        save_atomic(original_format(disc, disc_opt, step, epoch), out / checkpoint_name(step, disc=True))
    obj = original_format(generator, gen_opt, step, epoch)
    obj[EXTRA_KEY] = {"version": FORMAT_VERSION, **extra}
    path = save_atomic(obj, out / checkpoint_name(step))
    for old in sorted(periodic(out))[:-keep]:
        for p in (out / checkpoint_name(old), out / checkpoint_name(old, disc=True)):
            p.unlink(missing_ok=True)
    return path


def save_best(out: Path, step: int, epoch: int, generator: nn.Module, extra: Mapping,
              disc: nn.Module | None = None) -> Path:
    """Write the best-so-far weights (no optimizer state: for use, not for resuming)."""
    if disc is not None:
        save_atomic(original_format(disc, None, step, epoch), out / BEST_DISC)
    obj = original_format(generator, None, step, epoch)
    obj[EXTRA_KEY] = {"version": FORMAT_VERSION, **extra}
    return save_atomic(obj, out / BEST)


def periodic(out: Path) -> list[int]:
    """Steps of the periodic generator checkpoints in ``out``."""
    if not out.is_dir():
        return []
    return sorted(int(m.group(1)) for p in out.iterdir() if (m := _STEP_FILE.match(p.name)))


def load_latest(out: Path, gan: bool) -> Saved | None:
    """The last periodic checkpoint in ``out`` (with its discriminator when ``gan``), or None if there is none."""
    steps = periodic(out)
    if not steps:
        return None
    path = out / checkpoint_name(steps[-1])
    generator = read_checkpoint(path)
    if not isinstance(generator, dict) or "state_dict" not in generator or EXTRA_KEY not in generator:
        raise LipsyncError(f"{path} is not a checkpoint of `lipsync train run`: choose another --out")
    disc: dict | None = None
    if gan:
        disc_path = out / checkpoint_name(steps[-1], disc=True)
        if not disc_path.is_file():
            raise LipsyncError(f"{disc_path} is missing, so the GAN run in {out} cannot resume: run without --gan "
                               "or choose another --out")
        raw = read_checkpoint(disc_path)
        if not isinstance(raw, dict):
            raise LipsyncError(f"{disc_path} is not a checkpoint of `lipsync train run`: choose another --out")
        disc = raw
    return Saved(path, generator, dict(generator[EXTRA_KEY]), disc)
