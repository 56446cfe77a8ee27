"""SyncNet v2 (the LSE-D/LSE-C scorer's network): the published file's keys, its loading, and the reference function."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lipsync_core.models import identify, load
from lipsync_core.models.syncnet_v2 import SyncNetV2, build_from_state
from lipsync_core.testing.procedural import procedural_state_dict
from tests.conftest import shared_path
from tests.models.parity import arrays, assert_listing, assert_matches, built_strictly, keys, regenerated_input


@pytest.fixture(scope="module")
def syncnet_dir():
    return shared_path("reference", "syncnet")


@pytest.fixture(scope="module")
def state(syncnet_dir):
    return procedural_state_dict(keys(syncnet_dir, "syncnet_v2"))


@pytest.fixture(scope="module")
def io(syncnet_dir):
    out = arrays(syncnet_dir, "syncnet_v2")
    spec, out["in_lip"] = regenerated_input(syncnet_dir, "syncnet_v2", "lip")
    assert float(out["in_lip"].astype("float64").sum()) == pytest.approx(spec["sum"], rel=1e-12)
    assert (out["in_lip"][:, :, :, 100:116, 100:116] == out["in_lip_crop"]).all()
    return out


def assert_reference(model: nn.Module, io: dict, *, trunks: bool = True) -> None:
    aud, lip = torch.from_numpy(io["in_aud"]), torch.from_numpy(io["in_lip"])
    with torch.no_grad():
        assert_matches(model.forward_aud(aud), io["out_aud"], name="out_aud")
        assert_matches(model.forward_lip(lip), io["out_lip"], name="out_lip")
        if trunks:
            assert_matches(model.netcnnaud(aud).flatten(1), io["mid_aud"], name="mid_aud")
            assert_matches(model.forward_lipfeat(lip), io["mid_lip"], name="mid_lip")


def test_state_dict_has_the_published_keys_in_the_published_order(syncnet_dir):
    assert_listing(SyncNetV2(), keys(syncnet_dir, "syncnet_v2"))


def test_every_norm_has_the_reference_eps_and_every_layer_its_bias():
    model = SyncNetV2()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 14 and all(m.eps == 1e-5 for m in norms)
    assert all(m.bias is not None for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)))


def test_forward_reproduces_the_reference(state, io):
    assert_reference(built_strictly(build_from_state, state), io)


def test_published_file_format_loads_strictly_fused_and_reproduces_the_reference(state, io, tmp_path):
    path = tmp_path / "syncnet_v2.model"
    torch.save(dict(state), path)  # a flat {name: tensor} dict, as loadParameters expects
    assert identify(path) == "syncnet_v2"
    model = load("syncnet_v2", path)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert_reference(model, io, trunks=False)


def test_a_file_without_num_batches_tracked_is_accepted(state, io, tmp_path):
    path = tmp_path / "syncnet_v2.model"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    assert_reference(load("syncnet_v2", path, fuse=False), io)


def test_a_file_missing_a_weight_is_refused(state, tmp_path):
    from lipsync_core.support.errors import LipsyncError

    path = tmp_path / "syncnet_v2.model"
    torch.save({k: v for k, v in state.items() if k != "netcnnlip.19.running_var"}, path)
    with pytest.raises(LipsyncError, match="1 missing keys \\(netcnnlip.19.running_var\\)"):
        load("syncnet_v2", path)
