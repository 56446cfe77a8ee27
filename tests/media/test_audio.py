"""lipsync_core.media.audio: decoding any container, the original's mel spectrogram, per-frame mel windows."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.media import audio
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing import media as gen
from tests.conftest import shared_media


@pytest.fixture(scope="module")
def parity(parity_dir):
    return np.load(parity_dir / "mel_io.npz")


@pytest.fixture(scope="module")
def mel():
    """A stand-in (80, 401) mel (5 s of audio) with distinct values, so any misplaced column shows."""
    return np.random.default_rng(0).uniform(-3.9, 3.9, (80, 401)).astype(np.float32)


# --- loading -------------------------------------------------------------------------------------------------


def test_load_from_video_container(talking_head):
    wav = audio.load_audio(talking_head)
    assert wav.dtype == np.float32 and wav.ndim == 1
    # ffmpeg < 5 keeps the last AAC frame's padding: up to 1024 samples (64 ms at 16 kHz).
    assert len(wav) / 16000 == pytest.approx(2.0, abs=0.07)
    assert np.abs(wav).max() > 0.1


def test_load_mp3(gen_dir):
    path = shared_media("speech_vrt2_derived.mp3")
    if path is None:
        path = gen_dir / "audio_test.mp3"
        run_ffmpeg(["-y", "-i", gen.speech_wav(gen_dir / "for_mp3.wav", 1.0, sr=48000), "-c:a", "libmp3lame",
                    path], what="write mp3")
    wav = audio.load_audio(path)
    assert len(wav) / 16000 == pytest.approx(audio.audio_duration(path), abs=0.05)
    assert np.isfinite(wav).all() and np.abs(wav).max() > 0.05


def test_stereo_is_averaged_to_mono(tmp_path):
    t = np.arange(16000) / 16000
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 1000 * t)
    path = gen.write_wav(tmp_path / "lr.wav", np.stack([left, right], axis=1), 16000)
    wav = audio.load_audio(path)
    np.testing.assert_allclose(wav, (left + right) / 2, atol=2 / 32768)


def test_44k_stereo_is_resampled_to_16k(stereo_44k):
    wav = audio.load_audio(stereo_44k)
    assert len(wav) / 16000 == pytest.approx(audio.audio_duration(stereo_44k), abs=0.02)


def test_resampling_keeps_a_tone_at_its_frequency(tmp_path):
    t = np.arange(44100) / 44100
    path = gen.write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), 44100)
    wav = audio.load_audio(path)
    spectrum = np.abs(np.fft.rfft(wav))
    assert np.argmax(spectrum) * 16000 / len(wav) == pytest.approx(1000, abs=2)
    assert np.abs(wav).max() == pytest.approx(0.5, abs=0.01)


def test_file_without_audio_is_a_user_error(gen_dir):
    with pytest.raises(LipsyncError, match="no audio stream"):
        audio.load_audio(gen.still_image(gen_dir / "no_audio.png"))


# --- mel spectrogram -----------------------------------------------------------------------------------------


def test_mel_matches_the_original(parity):
    mel = audio.melspectrogram(parity["wav"])
    assert mel.shape == (80, 401) and mel.dtype == np.float32
    assert np.abs(mel - parity["mel"]).max() <= 1e-4


def test_mel_of_real_speech_matches_the_reference_formula():
    """Independent check on a longer real clip: the plain (non-blocked) formula with librosa's filter bank."""
    import librosa
    from scipy.signal import get_window, lfilter

    path = shared_media("speech_eng_16k_mono_60s.wav")
    wav = audio.load_audio(path)[: 16000 * 70] if path else gen.speech_signal(70.0)  # > one 51 s block
    y = lfilter([1, -0.97], [1], wav)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, 400, mode="reflect"), 800)[::200]
    spec = np.abs(np.fft.rfft(frames * get_window("hann", 800, fftbins=True), axis=1)).T
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ spec)) - 20
    expected = np.clip(8 * ((db + 100) / 100) - 4, -4, 4)
    np.testing.assert_allclose(audio.melspectrogram(wav), expected, atol=1e-4)


def test_mel_basis_equals_librosas():
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    np.testing.assert_allclose(audio.mel_basis(), expected, rtol=1e-6, atol=1e-9)


def test_mel_length_is_one_plus_samples_over_hop():
    for n in (0, 1, 199, 200, 16000, 16123):
        assert audio.melspectrogram(np.zeros(n, np.float32)).shape == (80, 1 + n // 200)


def test_silence_and_broken_samples_never_give_nan():
    assert (audio.melspectrogram(np.zeros(8000, np.float32)) == audio.MEL_SILENCE).all()
    wav = gen.speech_signal(0.5)
    wav[100], wav[2000], wav[3000] = np.nan, np.inf, -np.inf
    mel = audio.melspectrogram(wav)
    assert np.isfinite(mel).all()
    assert mel.min() >= -4 and mel.max() <= 4


def test_broken_samples_count_as_zero_in_every_block():
    # Three STFT blocks; sample 60 s lies in the middle (interior) one.
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000 * 110)).astype(np.float32)
    clean = wav.copy()
    clean[[5, 16000 * 60]] = 0.0
    wav[5], wav[16000 * 60] = np.nan, np.inf
    np.testing.assert_array_equal(audio.melspectrogram(wav), audio.melspectrogram(clean))


# --- mel windows ---------------------------------------------------------------------------------------------


def test_windows_equal_the_originals_chunks(parity):
    chunks = audio.mel_chunks(parity["mel"], fps=25, n_frames=125)
    assert chunks.shape == (125, 80, 16) and chunks.dtype == np.float32
    np.testing.assert_array_equal(chunks[:121], parity["mel_chunks_fps25"][:121])


def test_windows_past_the_end_are_silence(mel):
    # 401 frames: window 123 starts at 393, so its last 8 columns are past the end
    chunks = audio.mel_chunks(mel, fps=25, n_frames=130)
    np.testing.assert_array_equal(chunks[123, :, :8], mel[:, 393:401])
    assert (chunks[123, :, 8:] == audio.MEL_SILENCE).all()
    assert (chunks[126:] == audio.MEL_SILENCE).all()


@pytest.mark.parametrize("fps", [24.0, 30.0, 30000 / 1001, 22.13])
def test_window_starts_follow_the_originals_float_expression(fps):
    i = np.arange(2000)
    expected = [int(k * (80.0 / fps)) for k in range(2000)]  # inference.py: int(i * mel_idx_multiplier)
    assert audio.window_start(i, fps).tolist() == expected


def test_offset_shifts_windows(mel):
    later = audio.mel_chunks(mel, fps=25, n_frames=100, offset_ms=100.0)  # +100 ms = +8 mel frames
    for i in (0, 7, 50, 99):
        start = int(i * 3.2) + 8
        np.testing.assert_array_equal(later[i], mel[:, start:start + 16])
    earlier = audio.mel_windows(mel, fps=25, indices=[0], offset_ms=-100.0)[0]
    assert (earlier[:, :8] == audio.MEL_SILENCE).all()
    np.testing.assert_array_equal(earlier[:, 8:], mel[:, :8])


def test_windows_by_index_equal_the_full_array(mel):
    full = audio.mel_chunks(mel, fps=30, n_frames=160)
    indices = [3, 4, 5, 77, 150, 159]
    np.testing.assert_array_equal(audio.mel_windows(mel, 30, indices), full[indices])


def test_frames_for_audio_cover_the_whole_track():
    assert audio.frames_for_audio(80000, 25) == 125
    assert audio.frames_for_audio(80001, 25) == 126
    assert audio.frames_for_audio(0, 25) == 1
