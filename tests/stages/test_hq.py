"""Wav2Lip-HQ stages: ESRGAN super-resolution of the synced faces and the face-parsing blend mask."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.compute.runtime import Runtime
from lipsync_core.models import load
from lipsync_core.models.bisenet import CARD as BISENET
from lipsync_core.models.bisenet import MEAN_RGB, STD_RGB, BiSeNet
from lipsync_core.models.registry import CARDS
from lipsync_core.models.rrdbnet import RRDBNet
from lipsync_core.stages.base import Batch
from lipsync_core.stages.hq import SegmentationMask, SuperResolution
from lipsync_core.stages.masks import SKIN
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import write_checkpoint
from lipsync_core.testing.procedural import procedural_for_module
from tests.conftest import shared_media

SR = CARDS["rrdbnet_x4"]


def haar_box(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(40, 40))
    if len(found) == 0:
        return None
    x, y, w, h = max(found, key=lambda f: f[2] * f[3])
    return int(y), int(y + h), int(x), int(x + w)


def generated_face() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    frame = np.full((240, 320, 3), 90, np.uint8)
    cv2.ellipse(frame, (160, 120), (60, 80), 0, 0, 360, (120, 160, 210), -1)
    cv2.ellipse(frame, (160, 165), (25, 10), 0, 0, 360, (60, 60, 170), -1)
    return frame, (40, 200, 100, 220)


def real_faces() -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """(frame, box) pairs from ../shared/media (a still and a video frame), or a drawn face."""
    faces = []
    still = shared_media("still_real_face.png")
    if still is not None:
        faces.append(cv2.imread(str(still)))
    clip = shared_media("talking_head_glasses_vrt5.mp4")
    if clip is not None:
        ok, frame = cv2.VideoCapture(str(clip)).read()
        if ok:
            faces.append(frame)
    pairs = [(f, box) for f in faces if (box := haar_box(f)) is not None]
    return pairs or [generated_face()]


def face_batch(pairs, with_blank_frame: bool = True) -> Batch:
    frames = [f.copy() for f, _ in pairs]
    boxes: list = [b for _, b in pairs]
    if with_blank_frame:  # a frame without a face passes through every stage untouched
        frames.insert(1, np.zeros_like(frames[0]))
        boxes.insert(1, None)
    return Batch(indices=list(range(len(frames))), frames=frames, boxes=boxes,
                 mels=np.zeros((len(frames), 80, 16), np.float32))


SMALL_SR = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


def small_rrdbnet() -> RRDBNet:
    net = RRDBNet(scale=4, **SMALL_SR)
    net.load_state_dict(procedural_for_module(net))
    return net.eval()


class ColourParser(nn.Module):
    """Stand-in parser: class ``SKIN`` where the de-normalised input is strongly red (RGB), else background.

    Makes the expected mask computable from the crop, so the stage's preprocessing (channel order,
    normalisation, resize) and its mapping back onto the box can be checked exactly.
    """

    def forward(self, x: torch.Tensor):
        mean = torch.tensor(MEAN_RGB).view(1, 3, 1, 1)
        std = torch.tensor(STD_RGB).view(1, 3, 1, 1)
        rgb = x * std + mean
        red = ((rgb[:, 0] > 0.7) & (rgb[:, 2] < 0.3)).float()  # fails for BGR or un-normalised input
        logits = torch.zeros(x.shape[0], 19, *x.shape[2:])
        logits[:, SKIN] = red
        logits[:, 0] = 1.0 - red
        return logits, logits, logits


# --- SuperResolution ---------------------------------------------------------------------------


def test_super_resolution_upscales_each_face_four_times():
    stage = SuperResolution(Runtime().handle(small_rrdbnet(), SR), batch_size=2)
    batch = face_batch(real_faces() * 2)
    batch.pred = np.random.default_rng(0).random((4, 96, 96, 3), dtype=np.float32)
    stage(batch)
    assert batch.pred.shape == (4, 384, 384, 3) and batch.pred.dtype == np.float32
    assert batch.pred.min() >= 0.0 and batch.pred.max() <= 1.0


def test_super_resolution_feeds_rgb_and_returns_clamped_bgr():
    net = small_rrdbnet()
    stage = SuperResolution(Runtime().handle(net, SR))
    pred = np.random.default_rng(1).random((2, 24, 24, 3), dtype=np.float32)
    batch = face_batch(real_faces()[:1] * 2, with_blank_frame=False)
    batch.pred = pred
    stage(batch)
    with torch.no_grad():
        expected = net(torch.from_numpy(np.ascontiguousarray(pred[..., ::-1])).permute(0, 3, 1, 2))
    expected = expected.clamp(0, 1).permute(0, 2, 3, 1).numpy()[..., ::-1]
    np.testing.assert_allclose(batch.pred, expected, atol=1e-6)


def test_super_resolution_result_does_not_depend_on_batch_size():
    pred = np.random.default_rng(2).random((3, 16, 16, 3), dtype=np.float32)
    results = []
    for batch_size in (1, 3):
        stage = SuperResolution(Runtime().handle(small_rrdbnet(), SR), batch_size=batch_size)
        batch = face_batch(real_faces()[:1] * 3, with_blank_frame=False)
        batch.pred = pred.copy()
        stage(batch)
        results.append(batch.pred)
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)


def test_super_resolution_in_reduced_precision_returns_float32_close_to_full_precision():
    pred = np.random.default_rng(4).random((2, 16, 16, 3), dtype=np.float32)
    results = []
    for dtype in (torch.float32, torch.bfloat16):  # bfloat16: the CPU analogue of the CUDA fp16 path
        stage = SuperResolution(Runtime(dtype=dtype).handle(small_rrdbnet(), SR))
        batch = face_batch(real_faces()[:1] * 2, with_blank_frame=False)
        batch.pred = pred.copy()
        stage(batch)
        results.append(batch.pred)
    assert results[1].dtype == np.float32
    np.testing.assert_allclose(results[1], results[0], atol=0.05)


def test_super_resolution_leaves_frames_untouched():
    stage = SuperResolution(Runtime().handle(small_rrdbnet(), SR))
    batch = face_batch(real_faces())
    before = [f.copy() for f in batch.frames]
    batch.pred = np.full((len(batch.face_positions), 96, 96, 3), 0.5, np.float32)
    stage(batch)
    assert all(np.array_equal(a, b) for a, b in zip(before, batch.frames))


def test_super_resolution_from_its_checkpoint_through_the_runtime(tmp_path):
    path = write_checkpoint("rrdbnet_x4", tmp_path / "esrgan_yunying.pth", wrapper="params", **SMALL_SR)
    pred = np.random.default_rng(3).random((1, 16, 16, 3), dtype=np.float32)
    results = []
    for handle in (Runtime().load("rrdbnet_x4", path), Runtime().handle(small_rrdbnet(), SR)):
        stage = SuperResolution(handle)
        batch = face_batch(real_faces()[:1], with_blank_frame=False)
        batch.pred = pred.copy()
        stage(batch)
        results.append(batch.pred)
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)


# --- SegmentationMask --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bisenet() -> BiSeNet:
    net = BiSeNet(19)
    net.load_state_dict(procedural_for_module(net))
    return net.eval()


def test_segmentation_gives_one_box_sized_soft_mask_per_face(bisenet):
    stage = SegmentationMask(Runtime().handle(bisenet, BISENET), feather_px=6, size=256)
    batch = face_batch(real_faces())
    stage(batch)
    boxes = [b for b in batch.boxes if b is not None]
    assert len(batch.masks) == len(boxes)
    for mask, (t, b, l, r) in zip(batch.masks, boxes):
        assert mask.shape == (b - t, r - l) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0


def test_segmentation_mask_is_zero_on_the_box_border_and_frames_untouched(bisenet):
    # every class: the whole box
    stage = SegmentationMask(Runtime().handle(bisenet, BISENET), classes=tuple(range(19)), feather_px=4, size=256)
    batch = face_batch(real_faces())
    before = [f.copy() for f in batch.frames]
    stage(batch)
    for mask in batch.masks:
        assert np.all(mask[[0, -1]] == 0.0) and np.all(mask[:, [0, -1]] == 0.0)
        assert mask.max() == 1.0
    assert all(np.array_equal(a, b) for a, b in zip(before, batch.frames))


def test_segmentation_from_its_checkpoint_through_the_runtime(tmp_path, bisenet):
    path = write_checkpoint("bisenet19", tmp_path / "face_segmentation.pth", model=bisenet)
    masks = []
    for handle in (Runtime().load("bisenet19", path), Runtime().handle(load("bisenet19", path), BISENET)):
        stage = SegmentationMask(handle, size=128)
        batch = face_batch(real_faces()[:1], with_blank_frame=False)
        stage(batch)
        masks.append(batch.masks[0])
    np.testing.assert_array_equal(masks[0], masks[1])


def test_segmentation_mask_covers_the_parsed_classes_of_the_original_crop():
    frame = np.full((200, 300, 3), 128, np.uint8)
    frame[:, 150:] = (40, 40, 220)  # BGR red right half: "skin" for the colour parser
    box = (20, 180, 70, 230)  # the colour boundary runs down the box centre, column 80
    stage = SegmentationMask(Runtime().handle(ColourParser(), BISENET), feather_px=5, size=128)
    batch = face_batch([(frame, box)], with_blank_frame=False)
    stage(batch)
    mask = batch.masks[0]
    assert np.all(mask[:, :80] == 0.0)  # grey half is background
    assert np.all(mask[10:-10, 90:-10] == 1.0)  # red half, away from its edges
    assert np.all(np.diff(mask[80, 75:100]) >= 0)  # soft ramp into the region


def test_segmentation_lower_face_restricts_the_mask_to_the_lower_rows():
    frame = np.full((120, 120, 3), (40, 40, 220), np.uint8)  # everything is "skin"
    stage = SegmentationMask(Runtime().handle(ColourParser(), BISENET), feather_px=3, lower_face=0.5, size=64)
    batch = face_batch([(frame, (10, 110, 10, 110))], with_blank_frame=False)
    stage(batch)
    mask = batch.masks[0]
    assert np.all(mask[:51] == 0.0)
    assert np.all(mask[60:95, 10:90] == 1.0)


def test_segmentation_without_faces_gives_no_masks():
    stage = SegmentationMask(Runtime().handle(ColourParser(), BISENET), size=64)
    batch = Batch(indices=[0], frames=[np.zeros((32, 32, 3), np.uint8)], boxes=[None], mels=np.zeros((1, 80, 16)))
    stage(batch)
    assert batch.masks == []


@pytest.mark.parametrize("options", [{"size": 500}, {"feather_px": -1}, {"lower_face": 1.5}])
def test_segmentation_rejects_invalid_settings(options):
    with pytest.raises(LipsyncError):
        SegmentationMask(Runtime().handle(ColourParser(), BISENET), **options)
