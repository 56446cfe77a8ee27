"""The rules of ``reference/parity/README.md``, shared by the model tests.

Model ``m`` has ``m_keys.json`` (its state-dict rows ``[key, shape, dtype, rule]``, in order) and ``m_io.npz``
(stored inputs ``in_*`` and the reference outputs); an input too large to store is regenerated from
``manifest.json``. Outputs are compared with the README's float32 rule, :func:`assert_matches`.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lipsync_core.models.checkpoints import StateDict
from lipsync_core.testing.procedural import load_rows

#: The README's relative tolerance for float32 arrays, and for CodeFormer's float16-stored images.
RTOL = 1e-4
F16_RTOL = 1e-3


def keys(parity_dir: Path, model: str) -> list[list]:
    """``model``'s key-listing rows ``[key, shape, dtype, rule]``, in state-dict order."""
    return load_rows(parity_dir / f"{model}_keys.json")


def arrays(parity_dir: Path, model: str) -> dict[str, np.ndarray]:
    """``model``'s stored inputs (``in_*``) and reference outputs, by npz name."""
    with np.load(parity_dir / f"{model}_io.npz") as npz:
        return dict(npz)


def procedural_input(shape: tuple[int, ...], amp: float, off: float, f: float, p: float) -> np.ndarray:
    """The README's input formula ``off + amp * sin(f*i + p)`` over the flat C-order index, in float64, as float32."""
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return (off + amp * np.sin(f * i + p)).astype(np.float32).reshape(shape)


def regenerated_input(parity_dir: Path, model: str, name: str) -> tuple[dict[str, Any], np.ndarray]:
    """An input the npz does not store: its ``manifest.json`` entry (formula parameters and checksums) and
    the tensor rebuilt from it."""
    spec = json.loads((parity_dir / "manifest.json").read_text())[model]["inputs"][name]
    return spec, procedural_input(tuple(spec["shape"]), spec["amp"], spec["off"], spec["f"], spec["p"])


def listing(module: nn.Module) -> list[list]:
    """``[key, shape, dtype]`` rows of ``module``'s state dict, in order, as the ``*_keys.json`` files list them."""
    return [[k, list(t.shape), str(t.dtype).removeprefix("torch.")] for k, t in module.state_dict().items()]


def assert_listing(module: nn.Module, rows: list[list]) -> None:
    """``module``'s state dict has exactly the listed keys, shapes and dtypes, in the listed order."""
    assert listing(module) == [row[:3] for row in rows]


def assert_matches(out: np.ndarray | torch.Tensor, ref: np.ndarray, *, rtol: float = RTOL,
                   name: str = "output") -> None:
    """The README's check: same shape and dtype, and ``|out - ref| <= 1e-4·max|ref| + rtol·|ref|`` elementwise."""
    out = np.asarray(out)
    assert out.shape == ref.shape, name
    assert out.dtype == ref.dtype, name
    diff, bound = np.abs(out - ref), 1e-4 * np.abs(ref).max() + rtol * np.abs(ref)
    assert np.all(diff <= bound), f"{name}: worst difference is {np.max(diff / bound):.3g}x the bound"


def forward(model: nn.Module, *inputs: np.ndarray, **kwargs: Any) -> Any:
    """``model`` run on numpy inputs without gradients."""
    with torch.no_grad():
        return model(*(torch.from_numpy(x) for x in inputs), **kwargs)


def built_strictly(build: Callable[[StateDict], nn.Module], state: StateDict) -> nn.Module:
    """The module ``build`` reads from ``state``'s shapes, with ``state`` loaded strictly, in eval mode."""
    model = build(state)
    model.load_state_dict(state, strict=True)
    return model.eval()
