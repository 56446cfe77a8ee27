"""The silence gate: windows that stay under the threshold become the digital-silence window, others are untouched."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.media import audio
from tests.conftest import shared_path

FPS = 25.0
THRESHOLD_DB = -45.0


@pytest.fixture(scope="module")
def speech_with_pause():
    """2 s of real speech, a 1 s pause, 2 s more, all under a -55 dBFS noise floor; the pause's sample range."""
    speech = audio.load_audio(shared_path("media", "speech_eng_16k_mono_60s.wav"))
    sr = audio.SAMPLE_RATE
    pause = (2 * sr, 3 * sr)
    clean = np.concatenate([speech[sr:3 * sr], np.zeros(sr, np.float32), speech[5 * sr:7 * sr]])
    noise = np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32) * 10 ** (-55 / 20)
    return clean, clean + noise, pause


def frame_windows(wav: np.ndarray, quiet=None) -> np.ndarray:
    n = audio.frames_for_audio(len(wav), FPS)
    return audio.mel_windows(audio.melspectrogram(wav), FPS, np.arange(n), quiet=quiet)


def window_samples(i: int) -> tuple[int, int]:
    """Samples a frame's window reads: its 16 mel frames and their 800-sample analysis windows."""
    start = int(audio.window_start(i, FPS))
    return start * audio.HOP - audio.WIN // 2, (start + audio.MEL_STEP - 1) * audio.HOP + audio.WIN // 2


def test_pause_windows_become_silence_and_speech_windows_are_unchanged(speech_with_pause):
    clean, noisy, (p0, p1) = speech_with_pause
    plain = frame_windows(noisy)
    gated = frame_windows(noisy, audio.quiet_frames(noisy, THRESHOLD_DB))
    silence = np.full((audio.N_MELS, audio.MEL_STEP), audio.MEL_SILENCE, np.float32)
    in_pause = [i for i in range(len(plain)) if p0 <= window_samples(i)[0] and window_samples(i)[1] <= p1]
    speech = [i for i in range(len(plain))
              if audio.frame_levels_db(clean[max(0, window_samples(i)[0]):window_samples(i)[1]]).max() > -35]
    assert len(in_pause) >= 15 and len(speech) >= 50
    for i in in_pause:
        assert not np.array_equal(plain[i], silence)  # the noise floor drives the mouth without the gate
        np.testing.assert_array_equal(gated[i], silence)
    np.testing.assert_array_equal(gated[speech], plain[speech])


def test_without_quiet_frames_nothing_is_gated(speech_with_pause):
    _, noisy, _ = speech_with_pause
    mel = audio.melspectrogram(noisy)
    loud = np.zeros(mel.shape[1], bool)
    np.testing.assert_array_equal(audio.mel_windows(mel, FPS, np.arange(40), quiet=loud),
                                  audio.mel_windows(mel, FPS, np.arange(40)))


def test_levels_are_rms_dbfs():
    sr = audio.SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    levels = audio.frame_levels_db(tone)
    assert levels[10:-10] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert len(levels) == audio.melspectrogram(tone).shape[1]
    assert audio.frame_levels_db(np.zeros(1000)).max() == pytest.approx(-200)
