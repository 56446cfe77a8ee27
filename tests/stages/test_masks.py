"""Blend-mask helpers: class selection, lower-face restriction and feathering."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.stages.masks import HQ_FACE_CLASSES, class_mask, feather, lower_face


def stripes_parse_map(h: int = 38, w: int = 50) -> np.ndarray:
    """(h, w) map with all 19 classes as horizontal bands of 2 rows: class c on rows 2c, 2c+1."""
    return np.repeat(np.arange(19, dtype=np.uint8), 2)[:h, None].repeat(w, axis=1)


def disc(size: int = 81, radius: float = 30.0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = size // 2
    return ((yy - c) ** 2 + (xx - c) ** 2 <= radius ** 2).astype(np.float32)


def test_hq_classes_are_skin_mouth_and_lips():
    assert HQ_FACE_CLASSES == (1, 11, 12, 13)


def test_class_mask_selects_exactly_the_requested_classes():
    parse = stripes_parse_map()
    m = class_mask(parse, HQ_FACE_CLASSES)
    assert m.dtype == np.float32 and m.shape == parse.shape
    selected_rows = sorted({int(r) // 2 for r in np.nonzero(m[:, 0])[0]})
    assert selected_rows == [1, 11, 12, 13]
    assert set(np.unique(m)) == {0.0, 1.0}


def test_class_mask_rejects_a_logit_volume():
    with pytest.raises(ValueError, match="class ids"):
        class_mask(np.zeros((19, 8, 8)), HQ_FACE_CLASSES)


def test_feather_is_zero_outside_and_one_deep_inside():
    region = disc()
    soft = feather(region, 6)
    assert soft.dtype == np.float32 and soft.min() >= 0.0 and soft.max() <= 1.0
    assert np.all(soft[region == 0] == 0.0)
    assert soft[40, 40] == 1.0  # centre: 30 px deep


def test_feather_reaches_exactly_zero_on_the_region_edge():
    region = disc()
    soft = feather(region, 6)
    assert soft[40, 40 - 30] == 0.0  # leftmost pixel of the disc row through the centre
    assert 0.0 < soft[40, 40 - 27] < 1.0


def test_feather_ramp_is_monotone_without_a_hard_step():
    width = 8
    soft = feather(disc(), width)
    profile = soft[40, :41]  # edge of the disc to its centre
    assert np.all(np.diff(profile) >= 0)
    steps = max(np.abs(np.diff(soft, axis=0)).max(), np.abs(np.diff(soft, axis=1)).max())
    assert steps <= 1.5 / width + 1e-6  # smoothstep's steepest slope over one pixel


def test_feather_zero_border_fades_in_from_the_crop_edge():
    soft = feather(np.ones((40, 60), np.float32), 5, zero_border=True)
    border = np.concatenate([soft[0], soft[-1], soft[:, 0], soft[:, -1]])
    assert np.all(border == 0.0)
    assert soft[20, 30] == 1.0
    assert np.all(np.diff(soft[20, :30]) >= 0)


def test_feather_without_zero_border_keeps_a_full_region_full():
    assert np.all(feather(np.ones((10, 10), np.float32), 5) == 1.0)


def test_feather_width_zero_is_the_hard_region():
    region = disc()
    assert np.array_equal(feather(region, 0), region)


def test_lower_face_keeps_only_the_lowest_fraction_of_rows():
    m = lower_face(np.ones((100, 30), np.float32), 0.4)
    assert np.all(m[:60] == 0.0) and np.all(m[60:] == 1.0)


def test_lower_face_does_not_modify_its_input():
    m = np.ones((10, 10), np.float32)
    lower_face(m, 0.5)
    assert np.all(m == 1.0)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_lower_face_rejects_fractions_outside_unit_interval(fraction):
    with pytest.raises(ValueError, match="fraction"):
        lower_face(np.ones((4, 4), np.float32), fraction)


def test_lower_face_cut_is_feathered_when_feather_follows():
    width = 6
    soft = feather(lower_face(np.ones((100, 40), np.float32), 0.5), width, zero_border=True)
    column = soft[:, 20]
    assert np.all(column[:51] == 0.0)  # the cut row 50 is the region's new edge
    assert np.abs(np.diff(column)).max() <= 1.5 / width + 1e-6
    assert column[75] == 1.0
