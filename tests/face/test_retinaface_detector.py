"""RetinaFace detector: prior boxes, decoding of boxes and landmarks, thresholds, NMS and batching."""
from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.compute.handle import ModelHandle
from lipsync_core.compute.runtime import Runtime
from lipsync_core.face.detectors.retinaface import (
    MIN_SIZES,
    STEPS,
    RetinaFaceDetector,
    prior_boxes,
    retinaface_to_s3fd_box,
)
from lipsync_core.face.types import Detector
from lipsync_core.models.retinaface import CARD, RetinaFace, RetinaFaceConfig
from lipsync_core.testing.media import draw_face
from lipsync_core.testing.procedural import procedural_for_module
from tests.conftest import shared_media


def retina(module: nn.Module) -> ModelHandle:
    """``module`` as the RetinaFace handle of a float32 CPU runtime."""
    return Runtime().handle(module, CARD)


def anchor_index(h: int, w: int, level: int, row: int, col: int, k: int) -> int:
    """Position of one anchor in the network's output order."""
    before = sum(2 * math.ceil(h / s) * math.ceil(w / s) for s in STEPS[:level])
    return before + 2 * (row * math.ceil(w / STEPS[level]) + col) + k


class FakeNet(nn.Module):
    """Stands in for the network: every anchor is background except ``faces[frame value] = [(anchor, p, loc, lm)]``,
    where a frame's value is its uniform pixel value (recovered from the mean-subtracted input)."""

    def __init__(self, faces: dict[int, list[tuple[int, float, tuple, tuple]]]) -> None:
        super().__init__()
        self.faces = faces
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        n = prior_boxes(h, w).shape[0]
        loc, lm = torch.zeros(b, n, 4), torch.zeros(b, n, 10)
        conf = torch.tensor([1.0, 0.0]).repeat(b, n, 1)
        for i in range(b):
            for anchor, p, offsets, points in self.faces.get(round(float(x[i, 0, 0, 0]) + 104), []):
                conf[i, anchor] = torch.tensor([1 - p, p])
                loc[i, anchor] = torch.tensor(offsets, dtype=torch.float32)
                lm[i, anchor] = torch.tensor(points, dtype=torch.float32)
        return loc, conf, lm


def flat(value: int, h: int = 96, w: int = 128) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def test_priors_follow_the_reference_layout():
    h, w = 50, 70
    expected = [[(j + 0.5) * s / w, (i + 0.5) * s / h, m / w, m / h]
                for s, sizes in zip(STEPS, MIN_SIZES)
                for i, j in itertools.product(range(math.ceil(h / s)), range(math.ceil(w / s))) for m in sizes]
    np.testing.assert_allclose(prior_boxes(h, w).numpy(), np.array(expected), rtol=1e-6)


def test_prior_count_matches_the_network_at_160():
    assert prior_boxes(160, 160).shape == (1050, 4)


def test_zero_offsets_decode_to_the_anchor_box_with_landmarks_at_its_centre():
    anchor = anchor_index(96, 128, level=1, row=2, col=3, k=1)  # centre (56, 40), side 128
    det = RetinaFaceDetector(retina(FakeNet({50: [(anchor, 0.9, (0, 0, 0, 0), (0,) * 10)]}))).detect([flat(50)])
    [[d]] = det
    np.testing.assert_allclose(d.box, [56 - 64, 40 - 64, 56 + 64, 40 + 64], atol=1e-4)
    np.testing.assert_allclose(d.landmarks, [[56, 40]] * 5, atol=1e-4)
    assert d.score == pytest.approx(0.9)


def test_offsets_are_scaled_by_the_variances_and_anchor_size():
    anchor = anchor_index(96, 128, level=0, row=4, col=6, k=0)  # centre (52, 36), side 16
    loc = (1.0, -2.0, math.log(2) / 0.2, 0.0)  # centre moves 0.1*16*(1, -2); width doubles
    points = (1, 2, -1, 0, 0, 0, 3, 3, -2, 5)
    [[d]] = RetinaFaceDetector(retina(FakeNet({9: [(anchor, 0.95, loc, points)]}))).detect([flat(9)])
    cx, cy = 52 + 1.6, 36 - 3.2
    np.testing.assert_allclose(d.box, [cx - 16, cy - 8, cx + 16, cy + 8], atol=1e-4)
    expected = np.array([52.0, 36.0]) + 1.6 * np.array(points, np.float64).reshape(5, 2)
    np.testing.assert_allclose(d.landmarks, expected, atol=1e-4)


def test_faces_at_or_below_the_confidence_threshold_are_dropped():
    anchor = anchor_index(96, 128, level=2, row=1, col=1, k=0)
    net = FakeNet({20: [(anchor, 0.75, (0, 0, 0, 0), (0,) * 10)]})
    assert RetinaFaceDetector(retina(net)).detect([flat(20)]) == [[]]
    assert len(RetinaFaceDetector(retina(net), conf_threshold=0.5).detect([flat(20)])[0]) == 1


def test_overlapping_boxes_keep_only_the_best_and_results_are_best_first():
    a = anchor_index(96, 128, level=2, row=1, col=1, k=0)  # side 256 around (48, 48)
    b = anchor_index(96, 128, level=2, row=1, col=2, k=0)  # the same 32 px to the right: IoU ~0.78
    c = anchor_index(96, 128, level=0, row=10, col=1, k=0)  # small box far from both
    faces = [(a, 0.85, (0,) * 4, (0,) * 10), (b, 0.97, (0,) * 4, (0,) * 10), (c, 0.9, (0,) * 4, (0,) * 10)]
    [dets] = RetinaFaceDetector(retina(FakeNet({33: faces}))).detect([flat(33)])
    assert [round(d.score, 2) for d in dets] == [0.97, 0.9]
    assert dets[0].box[0] == pytest.approx(80 - 128)


def test_frames_of_different_sizes_are_batched_separately_and_kept_in_order():
    faces = {v: [(anchor_index(96, 128, 0, 1, v % 8, 0), 0.9, (0,) * 4, (0,) * 10)] for v in (10, 11, 12)}
    faces[40] = [(anchor_index(64, 64, 1, 0, 1, 1), 0.9, (0,) * 4, (0,) * 10)]
    frames = [flat(10), flat(11), flat(40, 64, 64), flat(12), flat(200)]
    results = RetinaFaceDetector(retina(FakeNet(faces)), batch_size=2).detect(frames)
    assert [len(r) for r in results] == [1, 1, 1, 1, 0]
    assert [round(float(r[0].box[0] + r[0].box[2]) / 2) for r in results[:4]] == [20, 28, 24, 36]


def reference_detections(net: nn.Module, frame: np.ndarray, conf_threshold: float, nms_threshold: float):
    """Anchor-by-anchor decoding and textbook greedy NMS, written independently of the module under test."""
    h, w = frame.shape[:2]
    x = torch.from_numpy(frame.astype(np.float32) - np.array([104, 117, 123], np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        loc, conf, lms = (t[0].double().numpy() for t in net(x))
    cands = []
    n = 0
    for step, sizes in zip(STEPS, MIN_SIZES):
        for i, j in itertools.product(range(math.ceil(h / step)), range(math.ceil(w / step))):
            for m in sizes:
                cx, cy = (j + 0.5) * step, (i + 0.5) * step
                if conf[n, 1] > conf_threshold:
                    bx, by = cx + loc[n, 0] * 0.1 * m, cy + loc[n, 1] * 0.1 * m
                    bw, bh = m * math.exp(loc[n, 2] * 0.2), m * math.exp(loc[n, 3] * 0.2)
                    pts = [(cx + lms[n, 2 * p] * 0.1 * m, cy + lms[n, 2 * p + 1] * 0.1 * m) for p in range(5)]
                    cands.append((conf[n, 1], [bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2], pts))
                n += 1
    cands.sort(key=lambda c: -c[0])
    kept = []
    for c in cands:
        def iou(a, b):
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
            area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
            return iw * ih / (area(a) + area(b) - iw * ih)
        if all(iou(c[1], k[1]) <= nms_threshold for k in kept):
            kept.append(c)
    return kept


def test_vectorised_batch_decoding_matches_anchor_by_anchor_reference():
    net = RetinaFace(RetinaFaceConfig(layers=(1, 1, 1, 1), width=8, out_channels=16))
    net.load_state_dict(procedural_for_module(net))
    net.eval()
    path = shared_media("still_real_face.png")
    still = cv2.imread(str(path)) if path is not None else draw_face((256, 256), 0.0, 0.5)
    frames = [cv2.resize(still, (96, 80)), cv2.resize(still[::-1], (96, 80))]
    detector = RetinaFaceDetector(retina(net), conf_threshold=0.5, nms_threshold=0.4)
    results = detector.detect(frames)
    assert sum(len(r) for r in results) > 0
    for frame, dets in zip(frames, results):
        ref = reference_detections(net, frame, 0.5, 0.4)
        assert len(dets) == len(ref)
        for d, (score, box, pts) in zip(dets, ref):
            assert d.score == pytest.approx(score, abs=1e-5)
            np.testing.assert_allclose(d.box, box, rtol=1e-5, atol=1e-3)
            np.testing.assert_allclose(d.landmarks, pts, rtol=1e-5, atol=1e-3)


def test_detector_satisfies_the_detector_protocol():
    assert isinstance(RetinaFaceDetector(retina(FakeNet({}))), Detector)


def test_s3fd_box_mapping_defaults_to_identity_and_expands_by_fractions():
    box = np.array([100, 50, 200, 250], np.float32)
    np.testing.assert_array_equal(retinaface_to_s3fd_box(box), box)
    np.testing.assert_allclose(retinaface_to_s3fd_box(box, expand=(0.1, 0.05, -0.1, 0.2)),
                               [100 + 10, 50 - 20, 200 + 20, 250 + 10])


def test_out_of_memory_halves_the_batch_and_every_frame_is_still_detected():
    from lipsync_core.face.detectors.retinaface import RetinaFaceDetector, prior_boxes

    class Oom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def forward(self, x):
            self.sizes.append(x.shape[0])
            if x.shape[0] > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            n = prior_boxes(*x.shape[-2:]).shape[0]
            conf = torch.zeros(x.shape[0], n, 2)
            conf[..., 0] = 1.0  # background everywhere
            return torch.zeros(x.shape[0], n, 4), conf, torch.zeros(x.shape[0], n, 10)

    model = Oom()
    found = RetinaFaceDetector(retina(model), batch_size=4).detect([np.zeros((32, 32, 3), np.uint8)] * 5)
    assert found == [[]] * 5
    assert model.sizes == [4, 2, 2, 1]
