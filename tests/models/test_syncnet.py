"""SyncNet_color (lip-sync expert): the released checkpoint's keys, and the reference function, unfused and fused."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lipsync_core.models import load
from lipsync_core.models.syncnet import SyncNetColor, build_from_state
from lipsync_core.testing.procedural import procedural_state_dict
from tests.models.parity import arrays, assert_listing, assert_matches, built_strictly, forward, keys


@pytest.fixture(scope="module")
def state(parity_dir):
    return procedural_state_dict(keys(parity_dir, "syncnet_color"))


@pytest.fixture(scope="module")
def io(parity_dir):
    return arrays(parity_dir, "syncnet_color")


def assert_reference(model: nn.Module, io: dict) -> None:
    audio_emb, face_emb = forward(model, io["in_mel"], io["in_face"])
    assert_matches(audio_emb, io["audio_emb"], name="audio_emb")
    assert_matches(face_emb, io["face_emb"], name="face_emb")


def test_state_dict_has_the_released_keys_shapes_and_dtypes(parity_dir):
    assert_listing(SyncNetColor(), keys(parity_dir, "syncnet_color"))


def test_forward_reproduces_the_reference(state, io):
    assert_reference(built_strictly(build_from_state, state), io)


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
