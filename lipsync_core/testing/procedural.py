"""Procedural weights (the parity material's formula): deterministic, non-degenerate, reproducible anywhere.

The key listing (``[key, shape, dtype, rule]`` rows in state_dict order) defines ``k`` for each tensor.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

Row = Sequence  # [key, shape, dtype, rule]


def procedural_tensor(k: int, shape: Sequence[int], rule: str) -> np.ndarray:
    """The ``k``-th tensor of the formula, float32 (int64 for ``zero_int``)."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape)) if shape else 1
    if rule == "zero_int":
        return np.zeros(shape, dtype=np.int64)
    i = np.arange(n, dtype=np.int64)
    q = (i * i) % 7919
    v = np.sin((0.37 * i.astype(np.float64) + 1.3 * k) + 0.77 * q.astype(np.float64))
    if rule in ("bias", "running_mean"):
        w = 0.01 * v
    elif rule == "running_var":
        w = 1.0 + 0.1 * np.abs(v)
    elif rule == "norm_weight":
        w = 1.0 + 0.1 * v
    elif rule == "embed":
        w = 0.5 * v
    elif rule == "fanin_weight":
        w = v * math.sqrt(2.0 / int(np.prod(shape[1:])))
    elif rule == "convT_weight":
        w = v * math.sqrt(2.0 / int(shape[0] * np.prod(shape[2:])))
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return w.reshape(shape).astype(np.float32)


def rule_for(key: str, shape: Sequence[int], dtype: torch.dtype, transposed: bool = False,
             embedding: bool = False) -> str:
    """Derive the rule for a tensor, as the parity README describes, for modules without a key listing."""
    last = key.rsplit(".", 1)[-1]
    if not dtype.is_floating_point:
        return "zero_int"
    if last in ("running_mean", "running_var"):
        return last
    if last.endswith("bias"):
        return "bias"
    if embedding or not last.endswith("weight"):
        return "embed"
    if len(shape) >= 2:
        return "convT_weight" if transposed else "fanin_weight"
    return "norm_weight"


def procedural_state_dict(rows: Iterable[Row]) -> dict[str, torch.Tensor]:
    """State dict from key-listing rows ``[key, shape, dtype, rule]``."""
    return {key: torch.from_numpy(procedural_tensor(k, shape, rule)) for k, (key, shape, _dt, rule) in enumerate(rows)}


def rows_for_module(module: torch.nn.Module) -> list[list]:
    """Key-listing rows derived from a module (its state_dict order), for reduced test models."""
    transposed = {name for name, m in module.named_modules() if isinstance(m, torch.nn.ConvTranspose2d)}
    embeds = {name for name, m in module.named_modules() if isinstance(m, torch.nn.Embedding)}
    rows = []
    for key, t in module.state_dict().items():
        owner = key.rsplit(".", 1)[0] if "." in key else ""
        rows.append([key, list(t.shape), str(t.dtype).replace("torch.", ""),
                     rule_for(key, t.shape, t.dtype, owner in transposed, owner in embeds)])
    return rows


def procedural_for_module(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Procedural state dict matching ``module``'s own keys and shapes."""
    return procedural_state_dict(rows_for_module(module))


def load_rows(keys_json: str | Path) -> list[list]:
    return json.loads(Path(keys_json).read_text())
