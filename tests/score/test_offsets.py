"""Known A/V shifts are recovered with their sign and size, through the streamed windows, with injected embeddings
(:mod:`tests.score.constructed`)."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.score.sync import SAMPLES_PER_FRAME, WINDOW, WindowStream, n_windows, score_expert, score_syncnet
from tests.score.constructed import clip, mel_embed, mfcc_embed, unit_video_embed, video_embed


@pytest.mark.parametrize("delay", [-3, -2, -1, 0, 1, 2, 3])
def test_audio_delayed_by_k_frames_reports_offset_minus_k(delay):
    frames, samples = clip(120, delay)
    res = score_syncnet(iter(frames), samples, video_embed, mfcc_embed, n_frames=len(frames))
    assert res.offset == -delay
    assert res.lse_c > 0.5


@pytest.mark.parametrize("delay", [-3, 0, 2])
def test_the_expert_reports_the_same_offset_convention(delay):
    frames, samples = clip(120, delay)
    res = score_expert(iter(frames), samples, unit_video_embed, mel_embed, n_frames=len(frames))
    assert res.offset == -delay
    assert 0.5 < res.similarity <= 1.0


def test_clips_shorter_than_the_reference_track_minimum_are_scored():
    frames, samples = clip(40, 2)  # 1.6 s: the reference pipeline keeps no track under 101 frames
    res = score_syncnet(iter(frames), samples, video_embed, mfcc_embed, n_frames=len(frames))
    assert res.windows == n_windows(40, len(samples)) == 35
    assert res.offset == -2


def test_a_clip_without_one_complete_window_is_refused():
    frames, samples = clip(5, 0)
    with pytest.raises(ValueError, match="no complete window"):
        score_syncnet(iter(frames), samples, video_embed, mfcc_embed, n_frames=5)


def test_the_window_count_is_limited_by_the_shorter_of_video_and_audio():
    frames, samples = clip(80, 0)
    res = score_syncnet(iter(frames), samples[: 50 * SAMPLES_PER_FRAME], video_embed, mfcc_embed, n_frames=80)
    assert res.windows == 45


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_the_matrix_does_not_depend_on_the_batch_size(batch_size):
    frames, samples = clip(70, 1)
    whole = score_syncnet(iter(frames), samples, video_embed, mfcc_embed, n_frames=70, batch_size=1000)
    part = score_syncnet(iter(frames), samples, video_embed, mfcc_embed, n_frames=70, batch_size=batch_size)
    np.testing.assert_array_equal(part.dists, whole.dists)


def test_the_stream_holds_a_bounded_number_of_frames_and_audio_embeddings():
    frames, samples = clip(400, 0)
    held: list[int] = []

    def audio(lo: int, hi: int) -> np.ndarray:
        return np.zeros((hi - lo, 5), np.float32)

    stream = WindowStream(n_windows(400, len(samples)), video_embed, audio, batch_size=10)
    for f in frames:
        stream.push(f)
        held.append(len(stream._frames) + len(stream._audio))
    assert len(stream.finish()) == 395
    assert max(held) <= 10 + WINDOW + 10 + 2 * 15
