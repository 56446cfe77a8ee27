"""The reference crop geometry, its median filter, and the JPEG round trip of the reference's frames."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.media.video import read_frames
from lipsync_core.score.crop import (
    PAD_VALUE,
    _padded_region,
    crop_params,
    expert_crop,
    jpeg_round_trip,
    syncnet_crop,
)
from tests.conftest import shared_path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("rows, cols", [((5, 30), (2, 40)), ((-3, 12), (0, 8)), ((0, 200), (50, 260)),
                                        ((7, 7), (0, 9))])
def test_padded_region_equals_slicing_the_padded_frame(rows, cols):
    frame = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    pad = 25
    full = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), constant_values=PAD_VALUE)
    np.testing.assert_array_equal(_padded_region(frame, pad, rows, cols), full[rows[0]:rows[1], cols[0]:cols[1]])


def test_crop_params_are_median_filtered_with_zero_padding_as_scipy():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(1)
    boxes = [(int(t), int(t + h), int(l), int(l + w)) for t, h, l, w in rng.integers(10, 200, (40, 4))]
    got = crop_params(boxes)
    b = np.asarray(boxes, float)
    raw = [np.maximum(b[:, 3] - b[:, 2], b[:, 1] - b[:, 0]) / 2, (b[:, 2] + b[:, 3]) / 2, (b[:, 0] + b[:, 1]) / 2]
    for k in range(3):
        np.testing.assert_array_equal(got[:, k], signal.medfilt(raw[k], 13))


def test_syncnet_crop_is_the_reference_clips_geometry():
    # The reference clip is crop=490:490:185:250 of the source: half-size 175, centre (430, 425).
    source = read_frames(shared_path("media", "talking_head_man_vrt2.mp4"), max_frames=1)[0]
    clip = read_frames(shared_path("reference", "syncnet", "evaluate_clip_man_vrt2_224.avi"), max_frames=1)[0]
    ours = syncnet_crop(source, 175.0, 430.0, 425.0)
    assert ours.shape == (224, 224, 3)
    assert psnr(ours, clip) > 30  # bilinear vs bicubic scaling and the clip's XVID coding
    moved = syncnet_crop(source, 175.0, 470.0, 425.0)
    assert psnr(moved, clip) < psnr(ours, clip) - 5


def test_a_crop_reaching_outside_the_frame_is_filled_with_110():
    frame = np.zeros((100, 100, 3), np.uint8)
    face = syncnet_crop(frame, 30.0, 10.0, 50.0, size=84)  # the box hugs the left edge
    assert (face[:, :10] == PAD_VALUE).all() and (face[40:60, 40:] == 0).all()


def test_expert_crop_is_the_box_resized_to_96():
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[50:150, 60:140] = 200
    crop = expert_crop(frame, (50, 150, 60, 140))
    assert crop.shape == (96, 96, 3) and (crop == 200).all()


def test_jpeg_round_trip_streams_every_frame_at_the_references_quality():
    frames = read_frames(shared_path("reference", "syncnet", "evaluate_clip_man_vrt2_224.avi"), max_frames=30)
    seen: list[int] = []

    def source():
        for i, f in enumerate(frames):
            seen.append(i)
            yield f

    out, consumed_at_first = [], None
    for f in jpeg_round_trip(source()):
        consumed_at_first = len(seen) if consumed_at_first is None else consumed_at_first
        out.append(f)
    assert len(out) == len(frames) and consumed_at_first < len(frames)  # streamed, not all held
    quality = [psnr(a, b) for a, b in zip(out, frames)]
    assert 30 < min(quality) and max(quality) < 60  # lossy, as the reference's ~1.5 KB JPEGs
