"""The rendered check of a validation: a held-out clip through the real pipeline, scored by SyncNet."""
from __future__ import annotations

import math
import wave

from lipsync_core.engine.plan import make_config
from lipsync_core.media.probe import probe
from lipsync_core.media.video import read_frames
from lipsync_core.testing.checkpoints import write_checkpoint
from lipsync_core.testing.training import synthetic_dataset
from lipsync_core.training.data import Dataset
from lipsync_core.training.validation import RenderCheck, validation_video


def test_a_validation_clip_becomes_a_video_with_its_own_sound(tmp_path):
    clip = Dataset.open(synthetic_dataset(tmp_path / "ds", clips=2, frames=20, crop=100)).val[0]
    video = validation_video(clip, tmp_path / "clip.mp4")
    info = probe(video)
    assert info.frame_size == (100, 100) and info.has_audio and len(read_frames(video)) == 20
    with wave.open(str(clip.path / "audio.wav")) as w:
        assert abs(info.duration - w.getnframes() / 16000) < 0.05


def test_a_checkpoint_is_rendered_and_scored(tmp_path):
    clip = Dataset.open(synthetic_dataset(tmp_path / "ds", clips=2, frames=16, crop=96)).val[0]
    video = validation_video(clip, tmp_path / "clip.mp4")
    ckpt = write_checkpoint("wav2lip", tmp_path / "ckpt.pth", wrapper="state_dict")
    syncnet = write_checkpoint("syncnet_v2", tmp_path / "syncnet_v2.model")
    check = RenderCheck(video, tmp_path / "renders", make_config(device="cpu", syncnet_path=str(syncnet)))
    result = check(ckpt, 7)
    assert (tmp_path / "renders" / "step000000007.mp4").is_file()
    assert set(result) == {"val_lse_d", "val_lse_c", "val_offset", "ref_lse_c"}
    assert all(math.isfinite(v) for v in result.values())
