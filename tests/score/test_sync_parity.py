"""The scorer fed the reference run's frames and audio gives the reference's matrix and scores (README rule)."""
from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from lipsync_core.models.syncnet_v2 import SyncNetV2
from lipsync_core.score.embed import SyncNetEmbedder
from lipsync_core.score.sync import SyncResult, distance_matrix, score_syncnet
from lipsync_core.testing.checkpoints import procedural_module
from tests.conftest import shared_path
from tests.models.parity import assert_matches


@pytest.fixture(scope="module")
def ref():
    with np.load(shared_path("reference", "syncnet", "evaluate_io.npz")) as z:
        return dict(z)


@pytest.fixture(scope="module")
def frames(ref):
    data, off = ref["frames_jpeg"], ref["frames_jpeg_offsets"]
    out = np.stack([cv2.imdecode(data[off[t]:off[t + 1]], cv2.IMREAD_COLOR) for t in range(len(off) - 1)])
    manifest = json.loads(shared_path("reference", "syncnet", "manifest.json").read_text())
    assert hashlib.sha256(out.tobytes()).hexdigest() == manifest["evaluate"]["frames_bgr_u8_sha256"]
    return out


@pytest.fixture(scope="module")
def result(ref, frames):
    model = procedural_module("syncnet_v2")
    assert isinstance(model, SyncNetV2)
    emb = SyncNetEmbedder(model)
    return score_syncnet(iter(frames), ref["audio_int16"], emb.video, emb.audio, n_frames=len(frames))


def assert_scores(res: SyncResult, ref: dict, prefix: str = "") -> None:
    """The README's tolerances: offset exact first, distances by the float rule, differences by atol only."""
    assert res.offset == int(ref[prefix + "offset"])
    assert res.min_index == int(ref[prefix + "minidx"])
    atol = 1e-4 * float(np.abs(ref[prefix + "dists"]).max())
    for name, value in (("dists", res.dists), ("mdist", res.mdist), ("fdist", res.fdist)):
        assert_matches(value, ref[prefix + name], name=prefix + name)
    assert abs(res.lse_d - float(ref[prefix + "minval"])) <= atol + 1e-4 * abs(float(ref[prefix + "minval"]))
    assert abs(res.lse_c - float(ref[prefix + "conf"])) <= atol
    assert np.abs(res.fconf - ref[prefix + "fconf"]).max() <= atol
    assert np.abs(res.fconf_smoothed - ref[prefix + "fconfm"]).max() <= atol


def test_frames_and_audio_of_the_reference_run_give_its_scores(result, ref):
    assert result.windows == 95
    assert abs(result.median - float(ref["median"])) <= 1e-4 * float(np.abs(ref["dists"]).max()) * 2
    assert_scores(result, ref)


def test_lse_d_is_the_minimum_of_the_mean_not_the_mean_of_minima(result):
    assert result.lse_d == pytest.approx(float(result.fdist.mean()), rel=1e-6)
    assert result.lse_d > float(result.dists.min(axis=1).mean()) + 1.0


def test_scoring_only_run_fixes_the_sign_of_the_offset(ref):
    # Audio window j equals video window j - 3 (audio 3 frames late): the reference reports -3.
    res = SyncResult(distance_matrix(ref["syn_im_feat"], ref["syn_cc_feat"]))
    assert int(ref["syn_shift"]) == 3 and res.offset == -3
    assert_scores(res, ref, prefix="syn_")
