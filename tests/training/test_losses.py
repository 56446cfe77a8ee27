"""The training losses against losses_io.npz (reference/training/README.md §3, §9.3)."""
from __future__ import annotations

import pytest
import torch

from lipsync_core.models.syncnet import SyncNetColor
from lipsync_core.testing.procedural import procedural_state_dict
from lipsync_core.testing.training import TinyExpert
from lipsync_core.training.losses import cosine_loss, lower_half_stack, sync_loss
from tests.models.parity import keys


@pytest.fixture(scope="module")
def expert_state(parity_dir):
    return procedural_state_dict(keys(parity_dir, "syncnet_color"))


def expert(state, dtype=torch.float32, train=True) -> SyncNetColor:
    model = SyncNetColor()
    model.load_state_dict(state, strict=True)
    return model.to(dtype).train(train).requires_grad_(False)


def gt_clip(io, dtype=torch.float32) -> torch.Tensor:
    return (torch.from_numpy(io["batch_window_u8"]).float() / 255.0).permute(0, 4, 1, 2, 3).to(dtype)


def test_cosine_loss_matches_the_original(losses_io):
    a, v = torch.from_numpy(losses_io["cos_a"]), torch.from_numpy(losses_io["cos_v"])
    assert float(cosine_loss(a, v, 1.0)) == pytest.approx(float(losses_io["cos_loss_y1"]), rel=1e-6)
    y = torch.from_numpy(losses_io["cos_y_mix"])
    assert float(cosine_loss(a, v, y)) == pytest.approx(float(losses_io["cos_loss_ymix"]), rel=1e-6)


def test_a_zero_cosine_costs_100_as_pytorch_clamps_the_log(losses_io):
    a, v = torch.from_numpy(losses_io["cos_edge_a"]), torch.from_numpy(losses_io["cos_edge_v"])
    assert float(cosine_loss(a, v, 1.0)) == float(losses_io["cos_edge_loss_y1"]) == 100.0
    assert float(cosine_loss(a, v, 0.0)) == 0.0


def test_the_expert_sees_the_lower_halves_stacked_frame_by_frame():
    g = torch.arange(2 * 3 * 5 * 96 * 96, dtype=torch.float32).view(2, 3, 5, 96, 96)
    stacked = lower_half_stack(g)
    assert stacked.shape == (2, 15, 48, 96)
    for t in range(5):
        for c in range(3):
            assert torch.equal(stacked[:, 3 * t + c], g[:, c, t, 48:])


def test_sync_loss_with_the_training_mode_expert_matches_float32_and_float64(losses_io, expert_state):
    mel = torch.from_numpy(losses_io["batch_mel"])
    with torch.no_grad():
        loss32 = sync_loss(expert(expert_state), mel, gt_clip(losses_io))
        loss64 = sync_loss(expert(expert_state, torch.float64), mel.double(), gt_clip(losses_io, torch.float64))
    assert float(loss32) == pytest.approx(float(losses_io["sync_loss_train"]), rel=1e-4)
    assert float(loss64) == pytest.approx(float(losses_io["sync_loss_train_f64"]), rel=1e-9)


def test_the_eval_mode_expert_uses_its_running_statistics(losses_io, expert_state):
    mel = torch.from_numpy(losses_io["batch_mel"])
    with torch.no_grad():
        loss = sync_loss(expert(expert_state, train=False), mel, gt_clip(losses_io))
    assert float(loss) == pytest.approx(float(losses_io["sync_loss_eval"]), rel=1e-4)
    assert abs(float(loss) - float(losses_io["sync_loss_train"])) > 0.1  # the two modes differ (13 %)


def test_gradients_reach_the_generated_lower_halves_but_not_the_frozen_expert(losses_io):
    net = TinyExpert().requires_grad_(False)
    g = gt_clip(losses_io).requires_grad_(True)
    sync_loss(net, torch.from_numpy(losses_io["batch_mel"]), g).backward()
    assert g.grad[:, :, :, 48:].abs().sum() > 0 and torch.all(g.grad[:, :, :, :48] == 0)
    assert all(p.grad is None for p in net.parameters())
