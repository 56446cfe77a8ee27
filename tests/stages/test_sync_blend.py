"""The sync and blend stages and the OOM back-off, on hand-built batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.compute.chunking import AdaptiveChunker
from lipsync_core.compute.runtime import Runtime
from lipsync_core.models.wav2lip import CARD
from lipsync_core.stages.base import Batch
from lipsync_core.stages.blend import BlendStage, lower_face_mask
from lipsync_core.stages.sync import SyncStage, face_inputs


class Recorder(torch.nn.Module):
    """A stand-in generator: returns the reference crop and records what it was given."""

    def __init__(self, fail_above: int | None = None):
        super().__init__()
        self.seen: list[tuple[torch.Size, torch.dtype]] = []
        self.fail_above = fail_above
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, mel, face):
        self.seen.append((face.shape, face.dtype))
        if self.fail_above is not None and face.shape[0] > self.fail_above:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return face[:, 3:] * self.w


def batch_of(n: int, faces: list[bool]) -> Batch:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(n)]
    boxes = [(20, 100, 40, 120) if f else None for f in faces]
    return Batch(indices=list(range(n)), frames=frames, boxes=boxes, mels=np.zeros((n, 80, 16), np.float32))


def test_sync_input_is_masked_lower_half_then_reference():
    frame = np.full((50, 50, 3), 200, np.uint8)
    x = face_inputs([frame], [(0, 50, 0, 50)], CARD.input)
    assert x.shape == (1, 96, 96, 6)
    assert np.all(x[0, 48:, :, :3] == 0) and np.allclose(x[0, :48, :, :3], 200 / 255)
    assert np.allclose(x[0, :, :, 3:], 200 / 255)


def test_sync_runs_only_on_frames_with_a_face():
    model = Recorder()
    stage = SyncStage(Runtime().handle(model, CARD), batch_size=8)
    b = batch_of(4, [True, False, True, False])
    stage(b)
    assert b.pred.shape == (2, 96, 96, 3)
    assert model.seen[0][0][0] == 2


def test_out_of_memory_halves_the_batch_and_continues():
    model = Recorder(fail_above=3)
    stage = SyncStage(Runtime().handle(model, CARD), batch_size=8)
    b = batch_of(6, [True] * 6)
    stage(b)
    assert b.pred.shape == (6, 96, 96, 3)
    assert np.allclose(b.pred, face_inputs(b.frames, b.boxes, CARD.input)[..., 3:])  # every face, in order
    assert [s[0][0] for s in model.seen] == [6, 3, 3]
    stage(batch_of(4, [True] * 4))
    assert [s[0][0] for s in model.seen[3:]] == [3, 1]  # stays reduced for later batches


def test_out_of_memory_on_a_single_item_is_a_clear_error():
    from lipsync_core.support.errors import LipsyncError

    chunker = AdaptiveChunker(1, what="Wav2Lip")
    with pytest.raises(LipsyncError, match="out of device memory"):
        chunker(lambda x: (_ for _ in ()).throw(RuntimeError("CUDA out of memory")), torch.zeros(1, 1))


def test_other_errors_are_not_swallowed():
    chunker = AdaptiveChunker(4)
    with pytest.raises(ValueError):
        chunker(lambda x: (_ for _ in ()).throw(ValueError("bug")), torch.zeros(4, 1))


def test_reduced_precision_path_runs_and_stays_close():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 3, 3, padding=1)

    class Gen(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, mel, face):
            return torch.sigmoid(self.conv(face))

    outs = {}
    for dtype in (torch.float32, torch.bfloat16):
        stage = SyncStage(Runtime(torch.device("cpu"), dtype).handle(Gen(), CARD), batch_size=4)
        b = batch_of(2, [True, True])
        stage(b)
        outs[dtype] = b.pred
    assert outs[torch.bfloat16].dtype == np.float32
    assert np.abs(outs[torch.bfloat16] - outs[torch.float32]).max() < 2e-2
    assert not np.array_equal(outs[torch.bfloat16], outs[torch.float32])  # really ran in bfloat16


def test_feather_mask_is_zero_on_the_border_and_one_in_the_mouth_area():
    m = lower_face_mask(100, 80)
    assert m[0].max() == 0 and m[:, 0].max() < 0.05 and m[:, -1].max() < 0.05 and m[-1].max() < 0.05
    assert m[:40].max() == 0  # upper face untouched
    assert m[70, 40] == pytest.approx(1.0)


def test_blend_changes_nothing_outside_the_box_and_skips_faceless_frames():
    b = batch_of(2, [True, False])
    before = [f.copy() for f in b.frames]
    b.pred = np.zeros((1, 96, 96, 3), np.float32)
    BlendStage("feather")(b)
    t, bo, l, r = b.boxes[0]
    outside = np.ones((120, 160), bool)
    outside[t:bo, l:r] = False
    assert np.array_equal(b.frames[0][outside], before[0][outside])
    assert not np.array_equal(b.frames[0], before[0])
    assert np.array_equal(b.frames[1], before[1])


def test_hard_blend_pastes_the_whole_box():
    b = batch_of(1, [True])
    b.pred = np.ones((1, 96, 96, 3), np.float32)
    BlendStage("hard")(b)
    t, bo, l, r = b.boxes[0]
    assert np.all(b.frames[0][t:bo, l:r] == 255)


def test_blend_uses_a_given_mask():
    b = batch_of(1, [True])
    t, bo, l, r = b.boxes[0]
    b.pred = np.ones((1, 96, 96, 3), np.float32)
    b.masks = [np.zeros((bo - t, r - l), np.float32)]
    before = b.frames[0].copy()
    BlendStage("feather")(b)
    assert np.array_equal(b.frames[0], before)


def test_compile_wraps_the_generator_only_when_asked():
    rt = Runtime()
    plain, compiled = rt.handle(Recorder(), CARD), rt.handle(Recorder(), CARD, compile=True)
    assert isinstance(plain.module, Recorder)
    assert not isinstance(compiled.module, Recorder) and isinstance(compiled.module._orig_mod, Recorder)
