"""ParseNet face parsing: published key layout, numerical parity, reduced configs, loading."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from lipsync_core.models import load
from lipsync_core.models.parsenet import ParseNet, ParseNetConfig, build_from_state, config_from_state
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import procedural_module, write_checkpoint
from tests.models.parity import arrays, assert_listing, assert_matches, built_strictly, forward, keys

SMALL = ParseNetConfig(down_steps=2, up_steps=2, base_ch=16, res_depth=2, ch_range=(16, 32))


def small_model() -> ParseNet:
    return procedural_module("parsenet", **asdict(SMALL))


@pytest.fixture(scope="module")
def reference_run(parity_dir, tmp_path_factory):
    """Reference io, and the outputs of the procedural weights saved as the published raw state dict and loaded
    through the registry (the 128x128 input; the network is fully convolutional, so 512 adds no layer)."""
    path = write_checkpoint("parsenet", tmp_path_factory.mktemp("parsenet") / "parsing_parsenet.pth")
    io = arrays(parity_dir, "parsenet")
    return io, forward(load("parsenet", path), io["in_x"])


def test_state_dict_matches_published_listing(parity_dir):
    with torch.device("meta"):
        net = ParseNet()
    assert_listing(net, keys(parity_dir, "parsenet"))


def test_parsing_logits_match_reference(reference_run):
    io, (out_mask, _) = reference_run
    assert_matches(out_mask, io["out_mask"])


def test_reconstructed_image_matches_reference(reference_run):
    io, (_, out_img) = reference_run
    assert_matches(out_img, io["out_img"])


def test_outputs_keep_the_input_size():
    with torch.no_grad():
        out_mask, out_img = small_model()(torch.zeros(1, 3, 24, 40))
    assert (out_mask.shape, out_img.shape) == ((1, 19, 24, 40), (1, 3, 24, 40))


def test_reduced_configuration_is_read_from_state_shapes():
    small = small_model()
    state = small.state_dict()
    assert config_from_state(state) == SMALL
    rebuilt = built_strictly(build_from_state, state)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(rebuilt(x), small(x)))


def test_raw_checkpoint_loads_strictly(tmp_path):
    small = small_model()
    path = write_checkpoint("parsenet", tmp_path / "p.pth", model=small)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(load("parsenet", path, fuse=False)(x), small(x)))


def test_retinaface_checkpoint_given_as_parsenet_names_what_it_is(tmp_path):
    from lipsync_core.models.retinaface import RetinaFace, RetinaFaceConfig

    detector = RetinaFace(RetinaFaceConfig(layers=(1, 1, 1, 1), width=8, out_channels=16))
    path = write_checkpoint("retinaface_resnet50", tmp_path / "parsing_parsenet.pth", model=detector)
    with pytest.raises(LipsyncError, match="RetinaFace"):
        load("parsenet", path)
