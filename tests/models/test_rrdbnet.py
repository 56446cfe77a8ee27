"""ESRGAN RRDBNet: published key layout, numerical parity, and configuration read from checkpoint shapes."""
from __future__ import annotations

import pytest
import torch

from lipsync_core.models import load
from lipsync_core.models.rrdbnet import RRDBNet, build_from_state
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import procedural_module, write_checkpoint
from lipsync_core.testing.procedural import procedural_for_module
from tests.models.parity import arrays, assert_listing, assert_matches, built_strictly, forward, keys

REDUCED = {"num_feat": 16, "num_block": 2, "num_grow_ch": 8}


@pytest.mark.parametrize("name,scale", [("rrdbnet_x4", 4), ("rrdbnet_x2", 2)])
def test_state_dict_matches_published_listing(parity_dir, name, scale):
    assert_listing(RRDBNet(scale=scale), keys(parity_dir, name))


@pytest.mark.parametrize("name,wrapper", [("rrdbnet_x4", "params"), ("rrdbnet_x2", "params_ema")])
def test_published_checkpoint_format_reproduces_reference_output(parity_dir, tmp_path, name, wrapper):
    # esrgan_yunying.pth stores {'params': ...}, RealESRGAN_x2plus.pth {'params_ema': ...}.
    path = write_checkpoint(name, tmp_path / f"{name}.pth", wrapper=wrapper)
    io = arrays(parity_dir, name)
    assert_matches(forward(load(name, path), io["in_x"]), io["out"])


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_reduced_configuration_is_read_from_state_shapes(scale):
    small = RRDBNet(scale=scale, **REDUCED).eval()
    state = procedural_for_module(small)
    small.load_state_dict(state)
    rebuilt = built_strictly(build_from_state, state)
    assert (rebuilt.scale, len(rebuilt.body)) == (scale, 2)
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        out = rebuilt(x)
    assert out.shape == (1, 3, 8 * scale, 12 * scale)
    assert torch.equal(out, small(x))


@pytest.mark.parametrize("wrapper", ["params", "params_ema", "raw"])
def test_reduced_checkpoint_loads_strictly_through_the_registry(tmp_path, wrapper):
    path = write_checkpoint("rrdbnet_x4", tmp_path / "sr.pth", wrapper=wrapper, **REDUCED)
    net = load("rrdbnet_x4", path)
    assert net.conv_first.weight.shape == (16, 3, 3, 3) and len(net.body) == 2
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x), procedural_module("rrdbnet_x4", **REDUCED)(x))


def test_ema_weights_are_preferred_over_plain_params(tmp_path):
    ema = procedural_module("rrdbnet_x4", **REDUCED).state_dict()
    plain = {k: torch.zeros_like(v) for k, v in ema.items()}
    path = tmp_path / "both.pth"
    torch.save({"params": plain, "params_ema": ema}, path)
    assert torch.equal(load("rrdbnet_x4", path).conv_last.weight, ema["conv_last.weight"])


def test_x2_checkpoint_offered_as_x4_is_named(tmp_path):
    path = write_checkpoint("rrdbnet_x2", tmp_path / "RealESRGAN_x2plus.pth", wrapper="params_ema", **REDUCED)
    with pytest.raises(LipsyncError, match="RRDBNet x2"):
        load("rrdbnet_x4", path)


def test_truncated_checkpoint_is_a_one_line_error(tmp_path):
    path = write_checkpoint("rrdbnet_x4", tmp_path / "esrgan_yunying.pth", wrapper="params", **REDUCED)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LipsyncError, match="truncated") as err:
        load("rrdbnet_x4", path)
    assert "\n" not in str(err.value)


def test_web_page_saved_as_checkpoint_is_named(tmp_path):
    path = tmp_path / "esrgan_yunying.pth"
    path.write_text("<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head></html>")
    with pytest.raises(LipsyncError, match="web page"):
        load("rrdbnet_x4", path)


def test_build_rejects_unrelated_channel_counts():
    state = procedural_for_module(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
    state["conv_first.weight"] = torch.zeros(8, 6, 3, 3)
    with pytest.raises(ValueError, match="conv_first"):
        build_from_state(state)
