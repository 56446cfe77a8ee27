"""ParseNet face parsing: published key layout, numerical parity, reduced configs, loading."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.errors import LipsyncError
from lipsync_core.models import load
from lipsync_core.models.parsenet import ParseNet, ParseNetConfig, build_from_state, config_from_state
from lipsync_core.testing.checkpoints import write_checkpoint
from lipsync_core.testing.procedural import load_rows, procedural_for_module
from tests.models.test_rrdbnet import assert_matches_reference, listing

SMALL = ParseNetConfig(down_steps=2, up_steps=2, base_ch=16, res_depth=2, ch_range=(16, 32))


def small_model() -> ParseNet:
    net = ParseNet(SMALL)
    net.load_state_dict(procedural_for_module(net), strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def reference_run(parity_dir, tmp_path_factory):
    """Reference io, and the outputs of the procedural weights saved as the published raw state dict and loaded
    through the registry (the 128x128 input; the network is fully convolutional, so 512 adds no layer)."""
    path = write_checkpoint("parsenet", tmp_path_factory.mktemp("parsenet") / "parsing_parsenet.pth")
    io = np.load(parity_dir / "parsenet_io.npz")
    with torch.no_grad():
        out_mask, out_img = load("parsenet", path)(torch.from_numpy(io["in_x"]))
    return io, out_mask.numpy(), out_img.numpy()


def test_state_dict_matches_published_listing(parity_dir):
    with torch.device("meta"):
        net = ParseNet()
    assert listing(net) == [row[:3] for row in load_rows(parity_dir / "parsenet_keys.json")]


def test_parsing_logits_match_reference(reference_run):
    io, out_mask, _ = reference_run
    assert_matches_reference(out_mask, io["out_mask"])


def test_reconstructed_image_matches_reference(reference_run):
    io, _, out_img = reference_run
    assert_matches_reference(out_img, io["out_img"])


def test_outputs_keep_the_input_size():
    with torch.no_grad():
        out_mask, out_img = small_model()(torch.zeros(1, 3, 24, 40))
    assert (out_mask.shape, out_img.shape) == ((1, 19, 24, 40), (1, 3, 24, 40))


def test_reduced_configuration_is_read_from_state_shapes():
    small = small_model()
    state = small.state_dict()
    assert config_from_state(state) == SMALL
    rebuilt = build_from_state(state).eval()
    rebuilt.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(rebuilt(x), small(x)))


def test_raw_checkpoint_loads_strictly(tmp_path):
    small = small_model()
    path = write_checkpoint("parsenet", tmp_path / "p.pth", model=small)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(load("parsenet", path)(x), small(x)))


def test_retinaface_checkpoint_given_as_parsenet_names_what_it_is(tmp_path):
    from lipsync_core.models.retinaface import RetinaFace, RetinaFaceConfig

    detector = RetinaFace(RetinaFaceConfig(layers=(1, 1, 1, 1), width=8, out_channels=16))
    path = write_checkpoint("retinaface_resnet50", tmp_path / "parsing_parsenet.pth", model=detector)
    with pytest.raises(LipsyncError, match="RetinaFace"):
        load("parsenet", path)
