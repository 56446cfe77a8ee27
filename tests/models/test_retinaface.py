"""RetinaFace ResNet-50: published key layout, numerical parity, reduced configs, checkpoint prefixes."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from lipsync_core.models import load
from lipsync_core.models.retinaface import RetinaFace, RetinaFaceConfig, build_from_state, config_from_state
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import procedural_module, write_checkpoint
from tests.models.parity import arrays, assert_listing, assert_matches, forward, keys

SMALL = RetinaFaceConfig(layers=(1, 2, 1, 1), width=8, out_channels=16)


def small_model() -> RetinaFace:
    return procedural_module("retinaface_resnet50", **asdict(SMALL))


@pytest.fixture(scope="module")
def reference_run(parity_dir, tmp_path_factory):
    """Reference io, and the outputs of the procedural weights saved as the published file is (a raw state dict
    whose keys carry DataParallel's ``module.`` prefix) and loaded through the registry."""
    folder = tmp_path_factory.mktemp("retinaface")
    path = write_checkpoint("retinaface_resnet50", folder / "detection_Resnet50_Final.pth", module_prefix=True)
    io = arrays(parity_dir, "retinaface_resnet50")
    return io, [o.numpy() for o in forward(load("retinaface_resnet50", path), io["in_x"])]


def test_state_dict_matches_published_listing(parity_dir):
    with torch.device("meta"):
        net = RetinaFace()
    assert_listing(net, keys(parity_dir, "retinaface_resnet50"))


@pytest.mark.parametrize("index,key", [(0, "loc"), (1, "conf"), (2, "landmarks")])
def test_prefixed_raw_checkpoint_reproduces_reference(reference_run, index, key):
    io, outs = reference_run
    assert_matches(outs[index], io[key])


def test_class_probabilities_are_softmaxed(reference_run):
    _, (_, conf, _) = reference_run
    np.testing.assert_allclose(conf.sum(-1), 1.0, atol=1e-6)


def test_anchor_count_follows_strides_8_16_32_rounding_up():
    with torch.no_grad():
        loc, conf, landmarks = small_model()(torch.zeros(2, 3, 50, 70))
    n = 2 * (7 * 9 + 4 * 5 + 2 * 3)  # ceil(50/8)*ceil(70/8) + ... per anchor pair
    assert (loc.shape, conf.shape, landmarks.shape) == ((2, n, 4), (2, n, 2), (2, n, 10))


def test_reduced_configuration_is_read_from_state_shapes():
    small = small_model()
    state = small.state_dict()
    assert config_from_state(state) == SMALL
    rebuilt = build_from_state({"module." + k: v for k, v in state.items()}).eval()
    rebuilt.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(rebuilt(x), small(x)))


@pytest.mark.parametrize("prefix", [False, True])
def test_raw_checkpoint_loads_with_or_without_module_prefix(tmp_path, prefix):
    small = small_model()
    path = write_checkpoint("retinaface_resnet50", tmp_path / "r.pth", module_prefix=prefix, model=small)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for got, want in zip(load("retinaface_resnet50", path)(x), small(x)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # BatchNorm folded at load


def test_checkpoint_with_a_wrong_shape_is_a_one_line_error(tmp_path):
    state = small_model().state_dict()
    state["BboxHead.1.conv1x1.weight"] = torch.zeros(6, 16, 1, 1)
    torch.save(state, tmp_path / "r.pth")
    with pytest.raises(LipsyncError, match="BboxHead.1.conv1x1.weight"):
        load("retinaface_resnet50", tmp_path / "r.pth")
