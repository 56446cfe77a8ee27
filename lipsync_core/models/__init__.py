"""Pure ``nn.Module`` architectures and the registry that loads published checkpoints into them.

``load(arch, path, device)`` is the one way to get a model; ``load_wav2lip`` is its shortcut.
``validator(arch)`` checks a downloaded file without building real weights, and ``identify(path)``
names the architecture a checkpoint belongs to. Every failure caused by the file is a one-line
``LipsyncError`` that names the file and, when it is another known model's checkpoint, which one.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from ..support.errors import LipsyncError
from . import checkpoints
from .card import ModelCard
from .checkpoints import StateDict
from .fuse import fold_batchnorm
from .registry import CARDS, FILE_SPECS, SPECS

if TYPE_CHECKING:
    from .wav2lip import Wav2Lip

__all__ = ["CARDS", "FILE_SPECS", "SPECS", "ModelCard", "identify", "identify_state", "load", "load_wav2lip",
           "validator"]

Device = str | torch.device


def load(arch: str, path: str | Path, device: Device = "cpu", dtype: torch.dtype | None = None, *,
         convention: str | None = None, fuse: bool = True) -> nn.Module:
    """Build registry architecture ``arch`` and load the checkpoint at ``path`` into it, strictly.

    Returns the module in eval mode with gradients off, on ``device`` (and cast to ``dtype`` if given).
    ``convention`` overrides the registry's preferred checkpoint wrapper. With ``fuse``, BatchNorm is folded
    into the convolutions after loading (:func:`fold_batchnorm`). A Wav2Lip TorchScript export (what the
    official download link serves now) is accepted as well. Raises ``LipsyncError`` when the file is not a
    checkpoint of ``arch``.
    """
    spec = _spec(arch)
    state, label = _read_state(spec, Path(path), convention)
    # Built on the meta device and given the file's tensors: no time spent initialising weights that are
    # overwritten anyway (seconds for CodeFormer), and no second copy of them in memory.
    model = _fit(spec, state, label, "meta")
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    if fuse:
        fold_batchnorm(model)
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype)


def load_wav2lip(path: str | Path, device: Device = "cpu", dtype: torch.dtype | None = None) -> Wav2Lip:
    """``load("wav2lip", path, device, dtype)``: the generator from a training checkpoint, state dict or export."""
    return cast("Wav2Lip", load("wav2lip", path, device, dtype))


def validator(arch: str, where: Callable[[str], str] | None = None) -> Callable[[Path], None]:
    """A check that a file loads as ``arch`` (raises ``LipsyncError`` otherwise), for the weights cache.

    It reads the file and compares keys and shapes with the architecture built on the meta device, so
    it allocates no model weights. ``where(other_arch)`` words where a file of another known architecture
    belongs (the caller knows the flags), e.g. "pass it to --s3fd_path". A weight that is no torch checkpoint
    (:data:`FILE_SPECS`, e.g. the anime face cascade) gets its own file check instead.
    """
    if arch in FILE_SPECS:
        return FILE_SPECS[arch].validate
    spec = _spec(arch)

    def validate(path: Path) -> None:
        state, label = _read_state(spec, Path(path), None)
        _fit(spec, state, label, "meta", where)

    return validate


def identify(path: str | Path) -> str | None:
    """The registry name of the architecture whose checkpoint ``path`` is, or None if it is none of them.

    Raises ``LipsyncError`` when the file is not a readable checkpoint at all.
    """
    p = Path(path)
    if checkpoints.checkpoint_format(p) == "torchscript":
        state = checkpoints.read_torchscript_state(p)
    else:
        state = checkpoints.extract_state_dict(checkpoints.read_checkpoint(p), "raw", p)
    return identify_state(state)


def identify_state(state: StateDict) -> str | None:
    """The first registry architecture whose signature ``state`` (prefix-stripped) carries, or None."""
    return next((spec.name for spec in CARDS.values() if spec.matches(state)), None)


def _spec(arch: str) -> ModelCard:
    try:
        return CARDS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(CARDS)}") from None


def _read_state(spec: ModelCard, path: Path, convention: str | None) -> tuple[StateDict, str]:
    """The file's state dict and how to name the file in messages."""
    if spec.checkpoint.torchscript and checkpoints.checkpoint_format(path) == "torchscript":
        return checkpoints.read_torchscript_state(path), f"{path} (a TorchScript archive)"
    obj = checkpoints.read_checkpoint(path)
    return checkpoints.extract_state_dict(obj, convention or spec.checkpoint.convention, path), str(path)


def _fit(spec: ModelCard, state: StateDict, label: str, device: Device,
         where: Callable[[str], str] | None = None) -> nn.Module:
    """The unloaded module for ``state`` built on ``device``, after checking that ``state`` fits it exactly
    (buffers named in ``spec.checkpoint.optional`` that the file lacks are added to ``state``, zero-filled)."""
    found = identify_state(state)
    if found is not None and found != spec.name and not spec.matches(state):
        other = CARDS[found]
        hint = where(other.name) if where is not None else ""
        raise LipsyncError(f"{label} holds {other.description} weights, not {spec.description} weights"
                           + (f": {hint}" if hint else ""))
    try:
        with torch.device(device):
            model = spec.build(state)
    except (KeyError, ValueError, IndexError) as e:  # the builder reads sizes from keys the file lacks
        raise LipsyncError(f"{label} does not hold {spec.description} weights and matches no other known model "
                           f"(its keys start {_few(list(state))}; {type(e).__name__}: {e}): "
                           f"use a published {spec.description} checkpoint") from None
    expected = model.state_dict()
    for key in expected.keys() - state.keys():  # a buffer the file may lack: zero-filled, as torch itself does
        if key.rsplit(".", 1)[-1] in spec.checkpoint.optional:
            state[key] = torch.zeros(expected[key].shape, dtype=expected[key].dtype)
    problems = _mismatch(expected, state)
    if problems:
        raise LipsyncError(f"{label} does not fit the {spec.description} ({problems}): "
                           f"use a published {spec.description} checkpoint")
    return model


def _mismatch(expected: StateDict, state: StateDict) -> str:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    resized = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
               if k in state and state[k].shape != v.shape]
    parts = [f"{len(missing)} missing keys ({_few(missing)})" if missing else "",
             f"{len(unexpected)} unexpected keys ({_few(unexpected)})" if unexpected else "",
             f"{len(resized)} shape mismatches, file vs model ({_few(resized)})" if resized else ""]
    return "; ".join(p for p in parts if p)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")
