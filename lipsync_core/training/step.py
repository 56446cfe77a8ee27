"""One training step of the original Wav2Lip (``wav2lip_train.py`` / ``hq_wav2lip_train.py``), with optional CUDA AMP.

The step is the original's, term for term and in its order: zero both optimizers' gradients, generate the
window, the sync loss (only when its weight is above 0: the expert is not even run otherwise), the
adversarial term (only with a discriminator weight), L1, ``L = sw*sync + dw*adv + (1-sw-dw)*L1``, backward,
generator step; then the discriminator's real and fake BCEs on the *pre-step* window, backward each, one
discriminator step. The float64 parity test (two steps of the original, recorded) runs exactly this function.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from .losses import bce, generate, l1_loss, sync_loss


@dataclass(frozen=True)
class LossWeights:
    """``syncnet_wt`` and ``disc_wt`` of the original; L1 gets the rest."""

    sync: float = 0.0
    disc: float = 0.0

    @property
    def l1(self) -> float:
        return 1.0 - self.sync - self.disc


@dataclass
class Batch:
    """One training batch on the device (see :func:`lipsync_core.training.data.to_batch`).

    ``x`` (B, 6, 5, 96, 96): masked target window and reference window on channels; ``indiv_mels``
    (B, 5, 1, 80, 16): the generator's audio per frame; ``mel`` (B, 1, 80, 16): the expert's audio for the
    window; ``gt`` (B, 3, 5, 96, 96): the true frames. BGR in [0, 1].
    """

    x: torch.Tensor
    indiv_mels: torch.Tensor
    mel: torch.Tensor
    gt: torch.Tensor

    def __len__(self) -> int:
        return self.x.size(0)


@dataclass
class StepResult:
    """The step's losses (None where a term was off) and the gradient norms before the optimizer steps."""

    l1: float
    loss: float
    sync: float | None = None
    perceptual: float | None = None
    disc_real: float | None = None
    disc_fake: float | None = None
    gen_grad_norm: float | None = None
    disc_grad_norm: float | None = None


@dataclass
class Nets:
    """The networks of a run. ``frozen`` names generator submodules that do not train: they stay in eval
    mode (BatchNorm uses and keeps its running statistics) and their parameters need no gradient.

    The expert's mode is left as the caller set it: eval (ours, the default) or train (the original's:
    BatchNorm on the statistics of each batch, see ``TrainConfig.expert_batch_stats``).
    """

    generator: nn.Module
    expert: nn.Module
    disc: nn.Module | None = None
    frozen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.expert.requires_grad_(False)
        for name in self.frozen:
            self.generator.get_submodule(name).requires_grad_(False)

    def train_mode(self) -> None:
        self.generator.train()
        for name in self.frozen:
            self.generator.get_submodule(name).eval()
        if self.disc is not None:
            self.disc.train()


class Amp:
    """Mixed precision on CUDA: float16 autocast with one gradient scaler per optimizer; a no-op elsewhere."""

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.enabled = enabled and device.type == "cuda"
        self.gen_scaler = torch.amp.GradScaler("cuda", enabled=self.enabled)
        self.disc_scaler = torch.amp.GradScaler("cuda", enabled=self.enabled)

    def autocast(self) -> AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.float16) if self.enabled else nullcontext()

    def state_dict(self) -> dict:
        return {"gen": self.gen_scaler.state_dict(), "disc": self.disc_scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.enabled and state.get("gen"):
            self.gen_scaler.load_state_dict(state["gen"])
            self.disc_scaler.load_state_dict(state["disc"])


def make_optimizer(module: nn.Module, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam over *all* of ``module``'s parameters (frozen ones simply get no gradient), so the saved optimizer
    state has the shape the original's loader expects for the whole model."""
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas)


def set_hyperparameters(opt: torch.optim.Optimizer, lr: float, betas: tuple[float, float]) -> None:
    """Force ``lr`` and ``betas`` after loading an optimizer state (which would otherwise keep the file's)."""
    for group in opt.param_groups:
        group["lr"] = lr
        group["betas"] = tuple(betas)


def train_step(nets: Nets, gen_opt: torch.optim.Optimizer, batch: Batch, weights: LossWeights, *,
               disc_opt: torch.optim.Optimizer | None = None, amp: Amp | None = None) -> StepResult:
    """One optimizer step of the generator (and of the discriminator when ``nets.disc`` is set)."""
    amp = amp or Amp(torch.device("cpu"), enabled=False)
    gan: tuple[nn.Module, torch.optim.Optimizer] | None = None  # the discriminator and its optimizer
    if nets.disc is not None:
        if disc_opt is None:
            raise ValueError("a discriminator needs its optimizer")
        gan = (nets.disc, disc_opt)
    nets.train_mode()
    gen_opt.zero_grad()
    if gan:
        gan[1].zero_grad()
    with amp.autocast():
        g = generate(nets.generator, batch.indiv_mels, batch.x)
        sync = sync_loss(nets.expert, batch.mel, g) if weights.sync > 0 else None
        perceptual = bce(gan[0](g), 1.0) if gan and weights.disc > 0 else None
    l1 = l1_loss(g, batch.gt)
    dw = weights.disc if perceptual is not None else 0.0
    loss = ((weights.sync * sync if sync is not None else 0.0) + (dw * perceptual if perceptual is not None else 0.0)
            + (1.0 - weights.sync - dw) * l1)
    amp.gen_scaler.scale(loss).backward()
    gen_norm = _step(gen_opt, amp.gen_scaler, nets.generator)
    result = StepResult(l1=float(l1.detach()), loss=float(loss.detach()), sync=_item(sync),
                        perceptual=_item(perceptual), gen_grad_norm=gen_norm)
    if gan:
        disc, disc_opt = gan
        disc_opt.zero_grad()  # drops what the adversarial term deposited in the discriminator
        with amp.autocast():
            real_p = disc(batch.gt)
        real = bce(real_p, 1.0)
        amp.disc_scaler.scale(real).backward()
        with amp.autocast():
            fake_p = disc(g.detach())
        fake = bce(fake_p, 0.0)
        amp.disc_scaler.scale(fake).backward()
        result.disc_grad_norm = _step(disc_opt, amp.disc_scaler, disc)
        result.disc_real, result.disc_fake = _item(real), _item(fake)
    return result


def _step(opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, module: nn.Module) -> float:
    """Unscale, measure the gradient norm, step (skipped by the scaler on inf/NaN), update the scale."""
    if scaler.is_enabled():
        scaler.unscale_(opt)
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
    scaler.step(opt)
    scaler.update()
    return norm


def _item(t: torch.Tensor | None) -> float | None:
    return None if t is None else float(t.detach())
