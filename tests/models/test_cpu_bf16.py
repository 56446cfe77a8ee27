"""bfloat16 autocast on CPU stays within the stated bound for every model the registry marks ``cpu_bf16``.

Bound: on the parity inputs with the procedural weights, every output is within ``BF16_BOUND`` x its largest
magnitude of the float32 reference (bf16 keeps 8 significant bits, 0.4 % per rounding; measured worst 2.1 %,
ParseNet's image head), and discrete choices (CodeFormer's codes) are identical. A broken layer is off by
10-100 % (``parity/README.md``). Models are built as ``models.load`` builds them (BatchNorm folded,
channels-last), so this is the computation the pipeline runs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.models.fuse import fold_batchnorm
from lipsync_core.models.registry import CARDS
from lipsync_core.testing.procedural import procedural_state_dict
from tests.models.parity import arrays, built_strictly, keys, regenerated_input

BF16_BOUND = 0.05


def bf16_model(parity_dir, name: str) -> torch.nn.Module:
    net = built_strictly(CARDS[name].build, procedural_state_dict(keys(parity_dir, name)))
    return fold_batchnorm(net).to(memory_format=torch.channels_last)


def bf16_forward(model: torch.nn.Module, *inputs: np.ndarray, **kwargs) -> tuple:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*(torch.from_numpy(x) for x in inputs), **kwargs)
    return tuple(t.float().numpy() for t in (out if isinstance(out, (tuple, list)) else (out,)))


def assert_within_bound(out: np.ndarray, ref: np.ndarray, name: str) -> None:
    assert out.shape == ref.shape, name
    worst = np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max()
    assert worst <= BF16_BOUND, f"{name}: bf16 differs by {worst:.3g} of max|ref| (bound {BF16_BOUND})"


#: arch -> (npz input names, output index -> npz reference name)
CASES = {
    "wav2lip": (("in_mel", "in_face"), {0: "out"}),
    "rrdbnet_x4": (("in_x",), {0: "out"}),
    "rrdbnet_x2": (("in_x",), {0: "out"}),
    "bisenet19": (("in_x",), {0: "out"}),
    "parsenet": (("in_x",), {0: "out_mask", 1: "out_img"}),
    "s3fd": (("in_x",), dict(enumerate(f"out_{i:02d}_{('cls', 'reg')[i % 2]}{i // 2 + 1}" for i in range(12)))),
    "retinaface_resnet50": (("in_x",), {0: "loc", 1: "conf", 2: "landmarks"}),
}


def test_every_model_has_a_decision_and_the_scorer_stays_float32():
    assert {name for name, spec in CARDS.items() if spec.precision.cpu_bf16} <= set(CASES) | {"codeformer"}
    assert not CARDS["syncnet_color"].precision.cpu_bf16  # the sync scorer measures; it stays float32 unless asked


@pytest.mark.parametrize("name", [n for n in CASES if CARDS[n].precision.cpu_bf16])
def test_bf16_outputs_stay_within_the_bound(parity_dir, name):
    inputs, outputs = CASES[name]
    io = arrays(parity_dir, name)
    out = bf16_forward(bf16_model(parity_dir, name), *(io[k] for k in inputs))
    for index, ref_name in outputs.items():
        assert_within_bound(out[index], io[ref_name], f"{name}.{ref_name}")


def test_codeformer_bf16_keeps_every_code_and_stays_within_the_bound(parity_dir):
    assert CARDS["codeformer"].precision.cpu_bf16
    _, x = regenerated_input(parity_dir, "codeformer", "x")
    io = arrays(parity_dir, "codeformer")
    out, logits, lq_feat = bf16_forward(bf16_model(parity_dir, "codeformer"), x, w=0.5, adain=True)
    assert np.array_equal(logits.argmax(-1), io["top_idx"])
    assert_within_bound(lq_feat, io["lq_feat"], "codeformer.lq_feat")
    assert_within_bound(out[:, :, ::4, ::4], io["out_w0p5_s4"], "codeformer.out")
