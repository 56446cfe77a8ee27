"""CodeFormer restoration stage and mouth sharpening, with small models on a real face (generated fallback)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.compute.runtime import Runtime
from lipsync_core.face.align import estimate_affine, face_region, face_template, inverse_affine
from lipsync_core.models.registry import CARDS
from lipsync_core.stages.base import Batch
from lipsync_core.stages.restore import PARSE_EXCLUDED, CodeFormerRestore, Sharpen, paste_mask
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import procedural_module, write_checkpoint
from tests.face.test_align import apply, real_scene
from tests.models.test_codeformer import SMALL

SIZE = SMALL["img_size"]
HAIR = 17


class RowParser(nn.Module):
    """A ParseNet stand-in: skin everywhere except hair in the top quarter of the face."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        logits = torch.zeros(b, 19, h, w, dtype=x.dtype, device=x.device)
        logits[:, 1] = 1.0
        logits[:, HAIR, : h // 4] = 2.0
        return logits, x


@pytest.fixture(scope="module")
def codeformer():
    return procedural_module("codeformer", **SMALL)


def stage(codeformer, **kw) -> CodeFormerRestore:
    rt = Runtime()
    parser = kw.pop("parser", RowParser())
    return CodeFormerRestore(rt.handle(codeformer, CARDS["codeformer"]),
                             None if parser is None else rt.handle(parser, CARDS["parsenet"]), **kw)


def scene_batch() -> Batch:
    """Frames: a face with landmarks, the same picture flagged face-less, and a face whose landmarks are missing."""
    frame, landmarks = real_scene()
    box = (40, 320, 120, 400)
    return Batch(indices=[0, 1, 2], frames=[frame.copy(), frame.copy(), frame.copy()], boxes=[box, None, box],
                 mels=np.zeros((3, 80, 16), np.float32), landmarks=[landmarks, None, None])


def test_face_changes_only_inside_the_aligned_face_region(codeformer):
    batch = scene_batch()
    original = batch.frames[0].copy()
    stage(codeformer)(batch)
    x0, y0, x1, y1 = face_region(estimate_affine(batch.landmarks[0], face_template(SIZE)), SIZE, original.shape)
    outside = np.ones(original.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(batch.frames[0][outside], original[outside])
    assert np.abs(batch.frames[0].astype(int) - original).sum() > 1000


def test_frames_without_a_face_or_landmarks_are_untouched(codeformer):
    batch = scene_batch()
    original = [f.copy() for f in batch.frames]
    stage(codeformer)(batch)
    assert np.array_equal(batch.frames[1], original[1])
    assert np.array_equal(batch.frames[2], original[2])


def test_parsed_hair_keeps_the_original_pixels(codeformer):
    batch = scene_batch()
    original = batch.frames[0].copy()
    stage(codeformer)(batch)
    M = estimate_affine(batch.landmarks[0], face_template(SIZE))
    to_frame = inverse_affine(M)
    (hx, hy), (sx, sy) = apply(to_frame, np.array([[SIZE / 2, SIZE * 0.1], [SIZE / 2, SIZE * 0.6]])).round().astype(int)
    assert np.array_equal(batch.frames[0][hy, hx], original[hy, hx])  # hair: top quarter of the aligned face
    assert not np.array_equal(batch.frames[0][sy, sx], original[sy, sx])  # skin: restored


def test_paste_mask_is_soft_zero_on_excluded_classes_and_at_the_border():
    parse = np.ones((SIZE * 8, SIZE * 8), np.uint8)
    parse[:128] = HAIR
    mask = paste_mask(SIZE * 8, parse)
    assert mask[:60].max() < 1e-3 and mask[0].max() == 0 and mask[:, -1].max() == 0
    assert mask[300:400, 200:300].min() > 0.99
    column = mask[:, 256]
    assert np.all(np.diff(column[100:300]) >= -1e-6) and np.abs(np.diff(column)).max() < 0.05  # a ramp, no step
    assert set(PARSE_EXCLUDED) == {0, 14, 16, 17, 18}


def test_fidelity_weight_reaches_the_network(codeformer):
    outs = []
    for w in (0.0, 1.0):
        batch = scene_batch()
        stage(codeformer, fidelity=w)(batch)
        outs.append(batch.frames[0])
    assert not np.array_equal(outs[0], outs[1])


def test_chunking_changes_the_result_by_rounding_at_most(codeformer):
    results = []
    for batch_size in (1, 4):
        batch = scene_batch()
        batch.landmarks[2] = batch.landmarks[0]
        stage(codeformer, batch_size=batch_size)(batch)
        results.append(batch.frames)
    # Convolutions reorder float sums with the batch size: a few pixels may round the other way.
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(*results))


@pytest.mark.parametrize("fidelity", [-0.1, 1.5, float("nan")])
def test_fidelity_outside_0_1_is_a_user_error(codeformer, fidelity):
    with pytest.raises(LipsyncError, match="fidelity"):
        CodeFormerRestore(Runtime().handle(codeformer, CARDS["codeformer"]), fidelity=fidelity)


def test_faces_without_any_landmark_track_is_a_user_error(codeformer):
    batch = scene_batch()
    batch.landmarks = None
    with pytest.raises(LipsyncError, match="landmarks"):
        stage(codeformer)(batch)


def test_models_from_checkpoints_through_the_runtime(codeformer, tmp_path):
    from lipsync_core.models.parsenet import ParseNet, ParseNetConfig

    cf = write_checkpoint("codeformer", tmp_path / "codeformer.pth", wrapper="params_ema", model=codeformer)
    parser = ParseNet(ParseNetConfig(down_steps=2, up_steps=2, base_ch=16, res_depth=1, ch_range=(16, 32)))
    pn = write_checkpoint("parsenet", tmp_path / "parsing_parsenet.pth", model=parser)
    batch = scene_batch()
    original = batch.frames[0].copy()
    rt = Runtime()
    s = CodeFormerRestore(rt.load("codeformer", cf), rt.load("parsenet", pn))
    assert s.size == SIZE
    s(batch)
    x0, y0, x1, y1 = face_region(estimate_affine(batch.landmarks[0], face_template(SIZE)), SIZE, original.shape)
    changed = np.argwhere((batch.frames[0] != original).any(-1))
    assert changed.size > 0
    assert (changed.min(0) >= (y0, x0)).all() and (changed.max(0) < (y1, x1)).all()


def mouth_bounds(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Generous bounds of the mouth ellipse: 0.85 x 0.5 mouth widths around the corners, plus the blur margin."""
    left, right = landmarks[3], landmarks[4]
    width = float(np.hypot(*(right - left)))
    centre = (left + right) / 2
    reach = 0.85 * width + 3 * max(1.0, 2 * 0.85 * width / 50) + 2
    return centre[0] - reach, centre[1] - reach, centre[0] + reach, centre[1] + reach


def test_sharpen_changes_only_the_mouth_region():
    batch = scene_batch()
    original = batch.frames[0].copy()
    Sharpen(1.5)(batch)
    changed = np.argwhere((batch.frames[0] != original).any(-1))
    x0, y0, x1, y1 = mouth_bounds(batch.landmarks[0])
    assert len(changed) > 100
    assert changed[:, 1].min() >= x0 and changed[:, 1].max() <= x1
    assert changed[:, 0].min() >= y0 and changed[:, 0].max() <= y1
    for x, y in batch.landmarks[0][:2].round().astype(int):  # the eyes stay exactly as they were
        assert np.array_equal(batch.frames[0][y - 3:y + 4, x - 3:x + 4], original[y - 3:y + 4, x - 3:x + 4])
    assert np.array_equal(batch.frames[1], original)  # the face-less frame


def test_sharpen_without_landmarks_uses_the_lower_part_of_the_box():
    batch = scene_batch()
    original = batch.frames[2].copy()
    Sharpen(1.0)(batch)
    t, b, l, r = batch.boxes[2]
    changed = np.argwhere((batch.frames[2] != original).any(-1))
    assert len(changed) > 100
    assert changed[:, 0].min() >= t + 0.5 * (b - t) and changed[:, 0].max() < b
    assert changed[:, 1].min() >= l and changed[:, 1].max() < r


@pytest.mark.parametrize("kw", [{"strength": 0.0}, {"strength": -1.0}, {"strength": 9.0},
                                {"strength": 1.0, "region": "eyes"}])
def test_sharpen_settings_are_validated(kw):
    with pytest.raises(LipsyncError, match="sharpen"):
        Sharpen(**kw)


def test_the_parser_sees_faces_at_parse_size_and_its_map_comes_back_full_size():
    seen = []

    class Parser(torch.nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            logits = torch.zeros(x.shape[0], 19, *x.shape[-2:])
            logits[:, 1, :, : x.shape[-1] // 2] = 1.0  # skin on the left half
            return logits, x

    rt = Runtime()
    stage = CodeFormerRestore(rt.handle(torch.nn.Identity(), CARDS["codeformer"]),
                              rt.handle(Parser(), CARDS["parsenet"]), parse_size=32)
    labels = stage._parse(torch.zeros(2, 64, 64, 3, dtype=torch.uint8))
    assert seen == [(32, 32)] and labels.shape == (2, 64, 64)
    assert (labels[:, :, :32] == 1).all() and (labels[:, :, 32:] == 0).all()
