"""SyncNet's MFCCs: equal to the reference run's and to python_speech_features (the test-only reference)."""
from __future__ import annotations

import numpy as np
import pytest
import python_speech_features as psf

from lipsync_core.media import audio
from lipsync_core.testing import media as gen
from tests.conftest import shared_path
from tests.models.parity import assert_matches


def test_mfcc_reproduces_the_reference_run():
    with np.load(shared_path("reference", "syncnet", "mfcc_io.npz")) as z:
        samples, ref = z["audio_int16"], z["mfcc"]
    assert_matches(audio.mfcc(samples), ref, name="mfcc")


@pytest.mark.parametrize("n", [1, 399, 400, 401, 560, 561, 16000])
def test_mfcc_equals_python_speech_features_for_any_length(n):
    x = (np.random.default_rng(n).standard_normal(n) * 3000).astype(np.int16)
    out, ref = audio.mfcc(x), psf.mfcc(x, audio.SAMPLE_RATE).T
    assert out.shape == ref.shape == (13, audio.mfcc_frames(n))
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)


def test_blocks_join_without_a_seam(monkeypatch):
    x = (gen.speech_signal(3.0) * 32767).astype(np.int16)
    whole = audio.mfcc(x)
    monkeypatch.setattr(audio, "_MFCC_BLOCK", 7)
    np.testing.assert_allclose(audio.mfcc(x), whole, rtol=0, atol=1e-9)


def test_digital_silence_gives_finite_values():
    out = audio.mfcc(np.zeros(4000, np.int16))
    assert np.isfinite(out).all()


def test_int16_decoding_matches_the_reference_pipeline(tmp_path):
    # The reference clip's PCM track is what evaluate read (16 kHz mono int16).
    clip = shared_path("reference", "syncnet", "evaluate_clip_man_vrt2_224.avi")
    with np.load(shared_path("reference", "syncnet", "evaluate_io.npz")) as z:
        ref = z["audio_int16"]
    np.testing.assert_array_equal(audio.load_audio_int16(clip), ref)
