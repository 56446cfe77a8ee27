"""Whole-frame x2 upscaling for ``--upscale 2``: tiles match one pass, boxes and landmarks follow."""
from __future__ import annotations

import numpy as np
import torch

from lipsync_core.compute.runtime import Runtime
from lipsync_core.models.registry import CARDS
from lipsync_core.stages.base import Batch
from lipsync_core.stages.upscale import UpscaleStage, upscale_tiled
from lipsync_core.testing.checkpoints import procedural_module


def small_x2() -> torch.nn.Module:
    return procedural_module("rrdbnet_x2", num_feat=8, num_block=1, num_grow_ch=4)


def test_tiled_upscaling_equals_one_pass_when_the_overlap_covers_the_receptive_field():
    torch.manual_seed(0)
    net = small_x2()
    x = torch.rand(1, 3, 38, 51)  # odd width: padded inside, cropped back
    with torch.inference_mode():
        whole = upscale_tiled(net, x, 2, tile=1024, overlap=0)
        tiled = upscale_tiled(net, x, 2, tile=16, overlap=40)
        seams = upscale_tiled(net, x, 2, tile=16, overlap=0)
    assert whole.shape == (1, 3, 76, 102)
    assert torch.allclose(whole, tiled, atol=1e-5)
    assert not torch.allclose(whole, seams, atol=1e-5)  # the overlap is what removes tile seams


def test_the_stage_doubles_frames_boxes_and_landmarks():
    frames = [np.full((30, 40, 3), 100, np.uint8), np.zeros((30, 40, 3), np.uint8)]
    lm = np.array([[10, 10], [20, 10], [15, 15], [12, 20], [18, 20]], np.float32)
    b = Batch(indices=[0, 1], frames=frames, boxes=[(2, 20, 4, 30), None], mels=np.zeros((2, 80, 16), np.float32),
              landmarks=[lm, None])
    stage = UpscaleStage(Runtime().handle(small_x2(), CARDS["rrdbnet_x2"]), tile=16, overlap=4)
    stage(b)
    assert [f.shape for f in b.frames] == [(60, 80, 3), (60, 80, 3)]
    assert b.boxes == [(4, 40, 8, 60), None]
    assert np.array_equal(b.landmarks[0], lm * 2) and b.landmarks[1] is None
