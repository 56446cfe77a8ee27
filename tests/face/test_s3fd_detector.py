"""S3FD detector: the original's input (RGB flip, minus 104/117/123) and post-processing (reference §4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.compute.handle import ModelHandle
from lipsync_core.compute.runtime import Runtime
from lipsync_core.face.detectors.s3fd import STRIDES, S3FDDetector, nms, postprocess
from lipsync_core.models.s3fd import CARD
from lipsync_core.support.errors import LipsyncError

BG, FACE = 0, 1


def s3fd(module: nn.Module, dtype: torch.dtype = torch.float32) -> ModelHandle:
    """``module`` as the S3FD handle of a CPU runtime computing in ``dtype``."""
    return Runtime(dtype=dtype).handle(module, CARD)


def empty_maps(batch: int, height: int, width: int) -> list[torch.Tensor]:
    """Head maps of an image where every anchor is confidently background."""
    maps = []
    for stride in STRIDES:
        h, w = -(-height // stride), -(-width // stride)
        cls = torch.zeros(batch, 2, h, w)
        cls[:, BG] = 10.0
        maps += [cls, torch.zeros(batch, 4, h, w)]
    return maps


def put(maps: list[torch.Tensor], image: int, level: int, y: int, x: int, prob: float,
        loc: tuple[float, float, float, float] = (0, 0, 0, 0)) -> None:
    """Make anchor (y, x) of ``level`` a face with probability ``prob`` and regression ``loc``."""
    maps[2 * level][image, BG, y, x] = 0.0
    maps[2 * level][image, FACE, y, x] = float(np.log(prob / (1 - prob)))
    maps[2 * level + 1][image, :, y, x] = torch.tensor(loc)


def original_order(maps: list[torch.Tensor], image: int) -> list[tuple[np.ndarray, float]]:
    """The original's order on one image, written plainly: candidates > 0.05, decode, NMS 0.3 (+1 areas), > 0.5."""
    cands = []
    for level, stride in enumerate(STRIDES):
        prob = torch.softmax(maps[2 * level][image], 0)[1].numpy()
        reg = maps[2 * level + 1][image].numpy()
        for y, x in zip(*np.where(prob > 0.05)):
            cx, cy, a = stride / 2 + x * stride, stride / 2 + y * stride, 4.0 * stride
            dx, dy, dw, dh = reg[:, y, x]
            bx, by = cx + dx * 0.1 * a, cy + dy * 0.1 * a
            bw, bh = a * np.exp(dw * 0.2), a * np.exp(dh * 0.2)
            cands.append((np.array([bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2]), float(prob[y, x])))
    def area(z: np.ndarray) -> float:
        return (z[2] - z[0] + 1) * (z[3] - z[1] + 1)

    cands.sort(key=lambda c: -c[1])
    kept = []
    while cands:
        best, cands = cands[0], cands[1:]
        kept.append(best)
        b = best[0]
        survivors = []
        for c in cands:
            o = c[0]
            iw = max(0.0, min(b[2], o[2]) - max(b[0], o[0]) + 1)
            ih = max(0.0, min(b[3], o[3]) - max(b[1], o[1]) + 1)
            if iw * ih / (area(b) + area(o) - iw * ih) <= 0.3:
                survivors.append(c)
        cands = survivors
    return [(np.clip(b, 0, None), s) for b, s in kept if s > 0.5]


def test_one_anchor_decodes_to_the_ssd_box_with_variances():
    maps = empty_maps(1, 128, 160)
    put(maps, 0, level=2, y=3, x=4, prob=0.9, loc=(0.5, -0.25, 1.0, -0.5))  # stride 16, anchor 64
    [[det]] = postprocess(maps)
    cx, cy = 8 + 4 * 16 + 0.5 * 0.1 * 64, 8 + 3 * 16 - 0.25 * 0.1 * 64
    w, h = 64 * np.exp(0.2), 64 * np.exp(-0.1)
    np.testing.assert_allclose(det.box, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=1e-5)
    assert det.score == pytest.approx(0.9, abs=1e-5)


@pytest.mark.parametrize("prob, kept", [(0.49, 0), (0.5, 0), (0.51, 1)])
def test_only_scores_above_one_half_are_kept(prob, kept):
    maps = empty_maps(1, 128, 160)
    put(maps, 0, level=3, y=2, x=2, prob=prob)
    assert len(postprocess(maps)[0]) == kept


def test_nms_uses_plus_one_areas_at_iou_0_3():
    boxes = torch.tensor([[0, 0, 10, 10], [5.5, 0, 15.5, 10], [30, 30, 40, 40.0]])
    # Plain IoU of the first two is 4.5/15.5 = 0.29 (kept); with +1 areas it is 5.5/16.5 = 0.33 (suppressed).
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.3)
    assert keep.tolist() == [0, 2]


def test_images_of_a_batch_do_not_suppress_each_other():
    maps = empty_maps(2, 128, 160)
    put(maps, 0, level=2, y=3, x=3, prob=0.9)
    put(maps, 1, level=2, y=3, x=3, prob=0.8)
    dets = postprocess(maps)
    assert [len(d) for d in dets] == [1, 1]
    np.testing.assert_array_equal(dets[0][0].box, dets[1][0].box)


def test_detections_come_best_first_with_negative_coordinates_clipped():
    maps = empty_maps(1, 128, 160)
    put(maps, 0, level=3, y=0, x=0, prob=0.7)  # stride 32 anchor 128 centred at 16: reaches x = -48
    put(maps, 0, level=1, y=12, x=16, prob=0.95)  # stride 8 anchor 32 centred at (132, 100), far from it
    dets = postprocess(maps)[0]
    assert [round(d.score, 2) for d in dets] == [0.95, 0.7]
    np.testing.assert_allclose(dets[1].box, [0, 0, 80, 80])


def test_prefiltering_at_the_keep_score_equals_the_original_order():
    rng = np.random.default_rng(3)
    maps = empty_maps(1, 128, 160)
    for level in range(3):  # overlapping candidates of every strength, many between 0.05 and 0.5
        cls = maps[2 * level]
        cls[0, BG] = torch.from_numpy(rng.normal(0, 1.5, cls.shape[2:])).float()
        maps[2 * level + 1][:] = torch.from_numpy(rng.normal(0, 1, maps[2 * level + 1].shape)).float()
    ours = postprocess(maps)[0]
    ref = original_order(maps, 0)
    assert len(ours) == len(ref) > 3
    for det, (box, score) in zip(ours, ref):
        np.testing.assert_allclose(det.box, box, rtol=1e-4, atol=1e-3)
        assert det.score == pytest.approx(score, abs=1e-6)


class Spy(nn.Module):
    """Records what the detector feeds the network; answers 'no face anywhere'."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # so .to(device, dtype) has something to move
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.inputs.append(x.clone())
        return empty_maps(x.shape[0], x.shape[2], x.shape[3])


def test_network_receives_rgb_minus_104_117_123_at_full_resolution():
    frame = np.zeros((36, 52, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, 30  # B, G, R
    spy = Spy()
    assert S3FDDetector(s3fd(spy)).detect([frame]) == [[]]
    (x,) = spy.inputs
    assert x.shape == (1, 3, 36, 52) and x.dtype == torch.float32
    # Channel 0 is red: the original flips BGR to RGB, then subtracts [104, 117, 123] in that order.
    assert [x[0, c, 0, 0].item() for c in range(3)] == [30 - 104, 20 - 117, 10 - 123]


def test_frames_are_detected_in_batches_of_batch_size():
    spy = Spy()
    frames = [np.full((32, 32, 3), i, np.uint8) for i in range(5)]
    assert len(S3FDDetector(s3fd(spy), batch_size=2).detect(frames)) == 5
    assert [x.shape[0] for x in spy.inputs] == [2, 2, 1]


class OomAbove(Spy):
    """Runs out of device memory on batches larger than ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[0] > self.limit:
            self.inputs.append(x[:0])
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 7.03 GiB")
        return super().forward(x)


def test_out_of_memory_halves_the_batch_and_continues_from_that_batch():
    spy = OomAbove(limit=2)
    frames = [np.full((32, 32, 3), i, np.uint8) for i in range(7)]
    detector = S3FDDetector(s3fd(spy), batch_size=4)
    assert len(detector.detect(frames)) == 7
    assert [x.shape[0] for x in spy.inputs] == [0, 2, 2, 2, 1]  # the failed batch of 4, then 2s from frame 0
    assert [int(x[0, 0, 0, 0]) for x in spy.inputs[1:]] == [0 - 104, 2 - 104, 4 - 104, 6 - 104]
    assert detector.batch_size == 2


def test_out_of_memory_on_a_single_frame_is_a_user_error():
    with pytest.raises(LipsyncError, match="--det_size"):
        S3FDDetector(s3fd(OomAbove(limit=0)), batch_size=2).detect([np.zeros((32, 32, 3), np.uint8)] * 2)


def test_float16_dtype_reaches_the_network_and_the_shared_module_stays_float32():
    spy = Spy()
    handle = s3fd(spy, torch.float16)
    S3FDDetector(handle).detect([np.zeros((32, 32, 3), np.uint8)])
    assert handle.module.inputs[0].dtype == torch.float16
    assert spy.anchor.dtype == torch.float32 and not spy.inputs  # the handle runs its own cast copy


@pytest.fixture(scope="module")
def biased_s3fd(parity_dir):
    """The real S3FD module with procedural weights; only the fc7 face logit is biased so a frame yields a
    handful of candidates (72 above 0.05, 4 above 0.5 on the test frame), like real weights do."""
    from lipsync_core.models.registry import CARDS
    from lipsync_core.testing.procedural import load_rows, procedural_state_dict

    state = procedural_state_dict(load_rows(parity_dir / "s3fd_keys.json"))
    for head in ("conv3_3_norm", "conv4_3_norm", "conv5_3_norm", "conv6_2", "conv7_2"):
        state[f"{head}_mbox_conf.bias"][-1] -= 10.0
    state["fc7_mbox_conf.bias"][1] -= 1.0
    model = CARDS["s3fd"].build(state)
    model.load_state_dict(state)
    return model


class Recorder(nn.Module):
    """Passes through to ``model`` and keeps the maps it returned."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.maps: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.maps = self.model(x)
        return self.maps


def test_real_network_output_matches_the_original_order(biased_s3fd):
    frame = (np.random.default_rng(0).random((128, 160, 3)) * 255).astype(np.uint8)
    recorder = Recorder(biased_s3fd)
    dets = S3FDDetector(s3fd(recorder)).detect([frame])[0]
    ref = original_order([m.float() for m in recorder.maps], 0)
    assert 1 <= len(dets) == len(ref) < 10
    for det, (box, score) in zip(dets, ref):
        np.testing.assert_allclose(det.box, box, rtol=1e-4, atol=1e-2)
        assert det.score == pytest.approx(score, abs=1e-5)


@pytest.mark.parametrize("dtype, batches", [(torch.float32, [2, 2, 1]), (torch.bfloat16, [4, 1])])
def test_cpu_batches_hold_a_bounded_activation_budget_twice_the_frames_in_bfloat16(dtype, batches):
    from lipsync_core.face.detectors.s3fd import ACTIVATION_BYTES_PER_PIXEL_FP32

    spy = Spy()
    budget = 2 * 48 * 64 * ACTIVATION_BYTES_PER_PIXEL_FP32  # two float32 frames of 64x48
    handle = s3fd(spy, dtype)
    S3FDDetector(handle, batch_size=16, cpu_batch_bytes=budget).detect([np.zeros((48, 64, 3), np.uint8)] * 5)
    assert [x.shape[0] for x in handle.module.inputs] == batches
