"""`lipsync train prepare`: real videos -> the training layout; faceless stretches, cuts, sync, split, resume."""
from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from lipsync_core.engine.options import RunOptions
from lipsync_core.engine.plan import make_config
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.score.sync import score_syncnet
from lipsync_core.testing.media import talking_head_video
from lipsync_core.training import prepare as prepare_mod
from lipsync_core.training.data import Dataset, WindowSampler
from lipsync_core.training.prepare import PrepareConfig, Source, SyncNetCheck, prepare
from tests.conftest import shared_path
from tests.score import constructed


def clips_of(root) -> list[dict]:
    state = json.loads((root / "prepare.json").read_text())
    return [c for v in state["videos"].values() for c in v["clips"]]


def wav_samples(path) -> int:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return w.getnframes()


def haar(**kw) -> RunOptions:
    return make_config(detector="haar", no_progress=True, **kw)


def boxed(box) -> RunOptions:
    return make_config(box=box, no_progress=True)


def unchecked(out, **kw) -> PrepareConfig:
    return PrepareConfig(out=str(out), no_sync_check=True, **kw)


def test_a_faceless_stretch_is_dropped_and_clips_hold_only_face_frames(tmp_path):
    video = shared_path("media", "face_noface_cutaway_7s.mp4")  # frames 60-109 show no face
    summary = prepare([video], unchecked(tmp_path / "ds"), haar())
    clips = clips_of(tmp_path / "ds")
    spans = [(c["start_frame"], c["start_frame"] + c["frames"]) for c in clips]
    assert spans and all(e <= 60 or s >= 110 for s, e in spans)
    assert sum(e - s for s, e in spans) >= 110  # the face frames on both sides are kept
    assert summary.dropped["no face"] == pytest.approx(2.0, abs=0.2)
    for c in clips:
        folder = tmp_path / "ds" / "clips" / c["name"]
        assert sorted(int(p.stem) for p in folder.glob("*.jpg")) == list(range(c["frames"]))
        assert wav_samples(folder / "audio.wav") == c["frames"] * 640
    assert summary.warnings and "an hour or more" in summary.warnings[0]


def test_clips_never_cross_a_cut(tmp_path):
    a, b = shared_path("media", "talking_head_man_vrt2.mp4"), shared_path("media", "talking_head_glasses_vrt5.mp4")
    cut = tmp_path / "cut.mp4"  # 1.6 s of one speaker, then 1.6 s of another: a face on every frame
    run_ffmpeg(["-y", "-i", str(a), "-i", str(b), "-filter_complex",
                "[0:v]trim=0:1.6,setpts=PTS-STARTPTS,scale=360:360,fps=25[v0];"
                "[1:v]trim=0:1.6,setpts=PTS-STARTPTS,scale=360:360,fps=25[v1];"
                "[0:a]atrim=0:1.6,asetpts=PTS-STARTPTS[a0];[1:a]atrim=0:1.6,asetpts=PTS-STARTPTS[a1];"
                "[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]", "-map", "[v]", "-map", "[a]",
                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(cut)], what="join two clips")
    prepare([cut], unchecked(tmp_path / "ds", clip_seconds=5.0), haar())
    spans = sorted((c["start_frame"], c["start_frame"] + c["frames"]) for c in clips_of(tmp_path / "ds"))
    assert len(spans) == 2 and spans[0][1] <= 40 <= spans[1][0]


def test_a_long_take_becomes_many_short_clips_and_a_usable_dataset(tmp_path):
    video = talking_head_video(tmp_path / "take.mp4", size=(128, 128), seconds=8.0)
    summary = prepare([video], unchecked(tmp_path / "ds"), boxed((10, 120, 14, 114)))
    assert sorted(c["frames"] for c in clips_of(tmp_path / "ds")) == [66, 67, 67]  # 8 s: three of ~3 s
    assert (summary.train_clips, summary.val_clips) == (2, 1)  # the last stretch of the video is held out
    data = Dataset.open(tmp_path / "ds")
    assert [c.path.name for c in data.val] == ["00002"]
    assert len(WindowSampler(data.train).draw_batch(16)) == 16


def test_prepared_videos_are_skipped_and_an_interrupted_one_restarts_cleanly(tmp_path, monkeypatch):
    first = talking_head_video(tmp_path / "a.mp4", size=(96, 96), seconds=2.0)
    second = talking_head_video(tmp_path / "b.mp4", size=(96, 96), seconds=2.0, seed=1)
    cfg, run = unchecked(tmp_path / "ds"), boxed((4, 92, 4, 92))
    prepare([first], cfg, run)
    real_pass2 = prepare_mod._pass2

    def interrupted(*args, **kwargs):
        real_pass2(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_mod, "_pass2", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare([first, second], cfg, run)
    assert [p.name for p in (tmp_path / "ds" / "clips").iterdir() if p.name.endswith(".partial")]
    assert len(clips_of(tmp_path / "ds")) == 1  # the interrupted video is not recorded
    monkeypatch.undo()
    real, calls = prepare_mod.prepare_video, []
    monkeypatch.setattr(prepare_mod, "prepare_video", lambda path, *a, **kw: calls.append(path) or real(path, *a, **kw))
    summary = prepare([first, second], cfg, run)
    assert calls == [second] and summary.videos == 2 and len(clips_of(tmp_path / "ds")) == 2
    assert not [p for p in (tmp_path / "ds" / "clips").iterdir() if p.name.endswith(".partial")]


def constructed_cfg(out, **kw) -> PrepareConfig:
    # The constructed embeddings (5-d, z-scored) give LSE-C ~2.4 at the true shift, below SyncNet's scale.
    return PrepareConfig(out=str(out), clip_seconds=5.0, **{"min_confidence": 1.0, **kw})


WHOLE_FRAME = (0, 64, 0, 64)


@pytest.mark.parametrize("delay", [0, 2])
def test_an_offset_within_three_frames_is_shifted_out(tmp_path, delay):
    video = constructed.clip_file(tmp_path / "c.mp4", 120, delay)
    cfg = constructed_cfg(tmp_path / "ds")
    prepare([video], cfg, boxed(WHOLE_FRAME), sync_check=SyncNetCheck(constructed.ConstructedEmbedder()))
    (clip,) = clips_of(tmp_path / "ds")
    assert clip["offset"] == -delay
    folder = tmp_path / "ds" / "clips" / clip["name"]
    frames, _ = constructed.clip(120, delay, size=64, grey=(100, 14))
    with wave.open(str(folder / "audio.wav"), "rb") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    kept = sorted(int(p.stem) for p in folder.glob("*.jpg"))
    rescored = score_syncnet([frames[k] for k in kept], samples[:len(kept) * 640], constructed.video_embed,
                             constructed.mfcc_embed, n_frames=len(kept))
    assert rescored.offset == 0


def test_runs_far_off_sync_or_without_a_clear_sync_are_dropped(tmp_path):
    far = constructed.clip_file(tmp_path / "far.mp4", 120, 6)
    check = SyncNetCheck(constructed.ConstructedEmbedder())
    summary = prepare([Source(str(far))], constructed_cfg(tmp_path / "ds"), boxed(WHOLE_FRAME), sync_check=check)
    assert summary.train_clips + summary.val_clips == 0
    assert summary.dropped == {"off-sync by more than 3 frames": pytest.approx(4.8)}
    summary = prepare([far], constructed_cfg(tmp_path / "ds2", min_confidence=1e6), boxed(WHOLE_FRAME),
                      sync_check=check)
    assert list(summary.dropped) == ["low sync confidence (LSE-C below 1e+06)"]
