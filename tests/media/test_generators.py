"""The synthetic media generators are deterministic and produce what their docstrings promise."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.media.audio import load_audio
from lipsync_core.media.probe import probe
from lipsync_core.media.video import read_frames
from lipsync_core.testing import media as gen


def test_speech_wav_is_deterministic(tmp_path):
    a = gen.speech_wav(tmp_path / "a.wav", 1.0, sr=44100, channels=2)
    b = gen.speech_wav(tmp_path / "b.wav", 1.0, sr=44100, channels=2)
    assert a.read_bytes() == b.read_bytes()
    info = probe(a)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration == pytest.approx(1.0, abs=0.01)


def test_speech_has_syllables():
    wav = gen.speech_signal(2.0)
    rms = np.sqrt(np.mean(wav.reshape(-1, 800) ** 2, axis=1))  # 50 ms blocks
    assert rms.max() > 10 * rms.min() > 0  # loud and quiet parts, never digital silence


def test_talking_head_mouth_moves_with_the_speech(tmp_path):
    path = gen.talking_head_video(tmp_path / "th.mp4", size=(128, 128), fps=25, seconds=1.0)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (128, 128, 25.0, True)
    frames = read_frames(path)
    assert len(frames) == 25
    mouth = np.stack([f[80:110, 40:88] for f in frames]).astype(float)  # lower middle of the face
    brow = np.stack([f[20:40, 40:88] for f in frames]).astype(float)
    assert mouth.std(axis=0).mean() > 2 * brow.std(axis=0).mean()


def test_vfr_video_has_uneven_timestamps(tmp_path):
    info = probe(gen.vfr_video(tmp_path / "vfr.mp4", fps=30, seconds=2.0, drop_every=3))
    assert info.fps == pytest.approx(20.3, abs=0.5)  # average of 33 ms and 67 ms gaps, not the nominal 30


def test_flash_and_beep_are_where_asked(tmp_path):
    path = gen.flash_beep_clip(tmp_path / "fb.mp4", seconds=2.0, fps=25, flash_at=0.8, beep_at=1.2)
    frames = read_frames(path)
    assert [i for i, f in enumerate(frames) if f.mean() > 128] == [20]
    wav = load_audio(path)
    loud = np.nonzero(np.abs(wav) > 0.1)[0]
    assert loud[0] / 16000 == pytest.approx(1.2, abs=0.005)
    assert loud[-1] / 16000 == pytest.approx(1.32, abs=0.005)


def test_helpers_leave_no_temporary_files(tmp_path):
    gen.talking_head_video(tmp_path / "th.mp4", seconds=0.4)
    gen.vfr_video(tmp_path / "v.mp4", seconds=0.4)
    gen.flash_beep_clip(tmp_path / "f.mp4", seconds=0.4, flash_at=0.2, beep_at=0.2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.mp4", "th.mp4", "v.mp4"]
