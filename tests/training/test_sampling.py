"""Dataset sampling against the original's facts (reference/training/README.md §2 and losses_io.npz)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.training import synthetic_dataset, write_wav16
from lipsync_core.training.data import (
    BatchStream,
    Clip,
    Dataset,
    HostBatch,
    WindowSampler,
    indiv_mel_starts,
    mel_start,
    sample_mels,
    to_batch,
)


def fake_clip(tmp_path, frame_ids, seconds: float, name: str = "c") -> Clip:
    """A clip folder with empty jpg names (sampling reads only the names) and ``seconds`` of audio."""
    folder = tmp_path / name
    folder.mkdir()
    for k in frame_ids:
        (folder / f"{k}.jpg").write_bytes(b"")
    write_wav16(folder / "audio.wav", np.zeros(int(seconds * 16000), np.float32))
    return Clip.open(folder)


def test_mel_windows_follow_the_sampling_table(losses_io):
    k = losses_io["sampling_frame_id"]
    assert np.array_equal(mel_start(k), losses_io["sampling_mel_start"])
    table = losses_io["sampling_indiv_mel_starts"]
    assert np.all(table[0] == -1)  # frame 0 is rejected: its first generator window would start before the audio
    assert np.array_equal(indiv_mel_starts(k[1:]), table[1:])


def test_the_generator_hears_each_frame_one_video_frame_early():
    k = np.arange(1, 500)
    assert np.array_equal(indiv_mel_starts(k)[:, 1], mel_start(k))  # frame k+1's window is frame k's
    assert np.array_equal(mel_start(k), (16 * k) // 5)


def test_windows_are_five_consecutive_existing_frames_from_frame_one(tmp_path):
    ids = [i for i in range(40) if i not in (12, 30)]  # frames without a face leave gaps in the numbering
    clip = fake_clip(tmp_path, ids, seconds=2.0)
    starts = clip.target_starts()
    assert starts.min() == 1
    for k in starts:
        assert all(k + t in ids for t in range(5))
    assert not any(k <= 12 < k + 5 or k <= 30 < k + 5 for k in starts)
    assert set(clip.reference_starts()) == {k for k in ids if all(k + t in ids for t in range(5))}


def test_every_audio_window_lies_inside_the_clip(tmp_path):
    clip = fake_clip(tmp_path, range(50), seconds=1.0)  # audio shorter than the 2 s of frames
    starts = clip.target_starts()
    assert len(starts) and np.all(indiv_mel_starts(starts)[:, -1] + 16 <= clip.n_mel)
    assert np.all(mel_start(starts) + 16 <= clip.n_mel)
    assert starts.max() == max(k for k in range(1, 46) if (16 * (k + 3)) // 5 + 16 <= clip.n_mel)


def test_the_reference_window_never_overlaps_the_target(tmp_path):
    sampler = WindowSampler([fake_clip(tmp_path, range(17), seconds=1.0)], seed=3)
    specs = sampler.draw_batch(500)
    assert all(abs(s.reference - s.start) >= 5 for s in specs)
    assert len({(s.start, s.reference) for s in specs}) > 10  # and it is still drawn at random


def test_clips_of_fifteen_frames_or_fewer_are_not_used(tmp_path):
    short, long = fake_clip(tmp_path, range(15), 1.0, "a"), fake_clip(tmp_path, range(16), 1.0, "b")
    sampler = WindowSampler([short, long])
    assert sampler.usable == [1]
    with pytest.raises(LipsyncError, match="usable window"):
        WindowSampler([short])


def test_one_clip_still_fills_every_batch(tmp_path):
    root = synthetic_dataset(tmp_path / "ds", clips=2, frames=30, val_clips=1)
    stream = BatchStream(WindowSampler(Dataset.open(root).train, seed=0), batch_size=6, workers=1)
    try:
        drawn = next(iter(stream))
    finally:
        stream.close()
    assert drawn.host.window.shape == (6, 5, 96, 96, 3) and drawn.host.indiv_mels.shape == (6, 5, 1, 80, 16)


def test_the_draws_continue_identically_from_a_saved_state(tmp_path):
    clips = [fake_clip(tmp_path, range(60), 3.0)]
    a = WindowSampler(clips, seed=7)
    a.draw_batch(5)
    state = a.state()
    expected = a.draw_batch(20)
    b = WindowSampler(clips, seed=99)
    b.set_state(state)
    assert b.draw_batch(20) == expected


def test_mels_come_from_the_clip_mel_at_the_original_rows(losses_io):
    for b, (k, orig) in enumerate(zip(losses_io["batch_frame_ids"], losses_io["batch_orig_mel"])):
        indiv, mel = sample_mels(np.ascontiguousarray(orig.T), int(k))  # orig: the whole clip's (T_mel, 80) mel
        assert np.array_equal(indiv, losses_io["batch_indiv_mels"][b])
        assert np.array_equal(mel, losses_io["batch_mel"][b])


def test_network_inputs_are_built_as_the_original(losses_io, training_manifest):
    host = HostBatch(losses_io["batch_window_u8"], losses_io["batch_wrong_u8"], losses_io["batch_indiv_mels"],
                     losses_io["batch_mel"])
    batch = to_batch(host)
    facts = training_manifest["batch"]
    for name, t in (("x", batch.x), ("gt", batch.gt)):
        assert t.dtype == torch.float32 and list(t.shape) == facts[name]["shape"]
        assert float(t.double().sum()) == pytest.approx(facts[name]["sum"], rel=1e-12)
        assert float(t.double().abs().sum()) == pytest.approx(facts[name]["abs_sum"], rel=1e-12)
        assert t.flatten()[:8].tolist() == pytest.approx(facts[name]["first8"], rel=0, abs=0)
    assert torch.all(batch.x[:, :3, :, 48:] == 0) and torch.equal(batch.x[:, :3, :, :48], batch.gt[:, :, :, :48])
    # Dividing in float32 gives the original's float64 division cast to float32, for every byte value.
    u8 = np.arange(256, dtype=np.uint8)
    assert np.array_equal(torch.from_numpy(u8).float().div(255.0).numpy(), (u8 / 255.0).astype(np.float32))
