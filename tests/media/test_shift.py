"""Shifting a video's audio: by exactly the asked samples, same audio length, video untouched, atomic."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.media.audio import load_audio
from lipsync_core.media.probe import probe
from lipsync_core.media.shift import shift_audio, shift_samples
from lipsync_core.media.video import count_frames
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing import media as gen


def onset(samples: np.ndarray) -> int:
    """First sample of the beep (the clip is silent elsewhere)."""
    return int(np.argmax(np.abs(samples) > 0.1))


@pytest.fixture(scope="module")
def beep_clip(tmp_path_factory):
    return gen.flash_beep_clip(tmp_path_factory.mktemp("shift") / "beep.mp4", seconds=2.0, beep_at=1.0)


@pytest.mark.parametrize("frames", [3, -2])
def test_audio_moves_by_exactly_the_offset_and_keeps_its_length(beep_clip, tmp_path, frames):
    out = shift_audio(beep_clip, frames * 40.0, tmp_path / "fixed.mp4")
    before, after = load_audio(beep_clip), load_audio(out)
    assert abs(len(after) - len(before)) <= 0  # same sample count: same duration
    assert abs((onset(after) - onset(before)) - frames * 640) <= 16  # within 1 ms of 40 ms per frame
    assert count_frames(out) == count_frames(beep_clip)
    assert probe(out).video_codec == probe(beep_clip).video_codec


def test_in_place_rewrite_leaves_no_partial_file(tmp_path):
    clip = gen.flash_beep_clip(tmp_path / "clip.mp4", seconds=1.5, beep_at=0.5)
    before = onset(load_audio(clip))
    assert shift_audio(clip, 80.0) == clip
    assert abs(onset(load_audio(clip)) - before - 1280) <= 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_video_without_audio_is_refused_and_nothing_written(tmp_path):
    clip = gen.talking_head_video(tmp_path / "mute.mp4", seconds=0.4, audio=False)
    with pytest.raises(LipsyncError, match="no audio stream"):
        shift_audio(clip, 40.0, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_shift_samples_pads_and_trims_at_the_start():
    x = np.arange(1, 7, dtype=np.float32)[:, None]
    assert shift_samples(x, 2)[:, 0].tolist() == [0, 0, 1, 2, 3, 4]
    assert shift_samples(x, -2)[:, 0].tolist() == [3, 4, 5, 6, 0, 0]
    assert shift_samples(x, 9)[:, 0].tolist() == [0] * 6
