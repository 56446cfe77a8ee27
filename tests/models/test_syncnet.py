"""SyncNet_color (lip-sync expert): the released checkpoint's keys, and the reference function, unfused and fused."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.models import load
from lipsync_core.models.syncnet import SyncNetColor, build_from_state
from lipsync_core.testing.procedural import load_rows, procedural_state_dict


@pytest.fixture(scope="module")
def rows(parity_dir):
    return load_rows(parity_dir / "syncnet_color_keys.json")


@pytest.fixture(scope="module")
def state(rows):
    return procedural_state_dict(rows)


@pytest.fixture(scope="module")
def io(parity_dir):
    return dict(np.load(parity_dir / "syncnet_color_io.npz"))


def assert_reference(model: nn.Module, io: dict) -> None:
    with torch.no_grad():
        audio_emb, face_emb = model(torch.from_numpy(io["in_mel"]), torch.from_numpy(io["in_face"]))
    for got, name in ((audio_emb, "audio_emb"), (face_emb, "face_emb")):
        ref = torch.from_numpy(io[name])
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item(), msg=name)


def test_state_dict_has_the_released_keys_shapes_and_dtypes(rows):
    got = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in SyncNetColor().state_dict().items()]
    assert got == [row[:3] for row in rows]


def test_forward_reproduces_the_reference(state, io):
    model = build_from_state(state)
    model.load_state_dict(state, strict=True)
    assert_reference(model.eval(), io)


def test_released_checkpoint_format_loads_fused_and_reproduces_the_reference(state, io, tmp_path):
    # lipsync_expert.pth: {'state_dict', 'optimizer', 'global_step', 'global_epoch'}.
    path = tmp_path / "lipsync_expert.pth"
    torch.save({"state_dict": state, "optimizer": {"state": {}, "param_groups": []},
                "global_step": 1751230, "global_epoch": 2448}, path)
    model = load("syncnet_color", path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert_reference(model, io)


def test_embeddings_are_unit_length():
    with torch.no_grad():
        audio_emb, face_emb = SyncNetColor().eval()(torch.randn(2, 1, 80, 16), torch.rand(2, 15, 48, 96))
    torch.testing.assert_close(audio_emb.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(face_emb.norm(dim=1), torch.ones(2))
