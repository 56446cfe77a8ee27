"""BiSeNet-19 face parsing: published key layout and numerical parity of all three heads."""
from __future__ import annotations

import pytest
import torch

from lipsync_core.models import load
from lipsync_core.models.bisenet import BiSeNet, build_from_state
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import write_checkpoint
from tests.models.parity import arrays, assert_listing, assert_matches, built_strictly, forward, keys


@pytest.fixture(scope="module")
def reference_run(parity_dir, tmp_path_factory):
    """Reference io, and the outputs of the procedural weights loaded from a raw checkpoint (the
    published ``face_segmentation.pth`` layout) through the registry."""
    path = write_checkpoint("bisenet19", tmp_path_factory.mktemp("bisenet") / "face_segmentation.pth", wrapper="raw")
    io = arrays(parity_dir, "bisenet19")
    return path, io, forward(load("bisenet19", path), io["in_x"])


def test_state_dict_matches_published_listing(parity_dir):
    assert_listing(BiSeNet(19), keys(parity_dir, "bisenet19"))


def test_main_head_reproduces_reference_logits(reference_run):
    _, io, (out, _, _) = reference_run
    assert_matches(out, io["out"])


@pytest.mark.parametrize("head,key", [(1, "aux_out16_s4"), (2, "aux_out32_s4")])
def test_auxiliary_heads_reproduce_reference(reference_run, head, key):
    _, io, outs = reference_run
    assert_matches(outs[head][:, :, ::4, ::4], io[key])


def test_unfused_module_reproduces_reference_logits(parity_dir, tmp_path):
    path = write_checkpoint("bisenet19", tmp_path / "face_segmentation.pth")
    io = arrays(parity_dir, "bisenet19")
    assert_matches(forward(load("bisenet19", path, fuse=False), io["in_x"])[0], io["out"])


def test_outputs_are_upsampled_to_the_input_size():
    with torch.no_grad():
        outs = BiSeNet(19).eval()(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 19, 64, 96)] * 3


def test_class_count_is_read_from_the_checkpoint():
    state = BiSeNet(5).state_dict()
    net = built_strictly(build_from_state, state)
    assert net.conv_out.conv_out.out_channels == 5


def test_truncated_checkpoint_is_a_one_line_error(reference_run, tmp_path):
    path = tmp_path / "face_segmentation.pth"
    path.write_bytes(reference_run[0].read_bytes()[:100_000])
    with pytest.raises(LipsyncError, match="truncated"):
        load("bisenet19", path)
