"""Pass 1 and pass 2 pieces of the pipeline: face choice, the track cache, audio offset, atomic output."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.engine.render import Speech, _batches
from lipsync_core.face.types import FaceTrack
from lipsync_core.media import audio as audio_mod
from lipsync_core.media.face_video import FaceVideo
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.stages.blend import BlendStage
from tests.conftest import shared_media
from tests.pipeline.sessions import render_run, session, track


def pipeline(**options):
    return session(detector="haar", device="cpu", no_progress=True, **options)


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    """Two real talking heads side by side, the left one larger."""
    a, b = shared_media("talking_head_glasses_vrt5.mp4"), shared_media("talking_head_man_vrt2.mp4")
    if a is None or b is None:
        pytest.skip("needs two real talking-head clips from ../shared/media (Haar does not find drawn faces)")
    out = tmp_path_factory.mktemp("two") / "two.mp4"
    run_ffmpeg(["-y", "-i", str(a), "-i", str(b), "-t", "0.6", "-filter_complex",
                "[0:v]scale=320:320[l];[1:v]scale=200:200,pad=200:320:0:60[r];[l][r]hstack[v]",
                "-map", "[v]", "-c:v", "libx264", "-crf", "18", str(out)], what="make a two-face clip")
    return FaceVideo.open(out, still_fps=25, static=False)


def centres_x(track: FaceTrack) -> list[float]:
    return [(l + r) / 2 for (_, _, l, r) in (b for b in track.boxes if b is not None)]


def test_several_faces_the_largest_is_followed_on_every_frame(two_faces):
    found = track(pipeline(det_stride=1, no_track_cache=True), two_faces, 15)
    xs = centres_x(found)
    assert len(xs) == 15 and all(x < 320 for x in xs)


def test_several_faces_the_one_nearest_a_given_point_is_followed(two_faces):
    found = track(pipeline(det_stride=1, no_track_cache=True, face_point=(420, 160)), two_faces, 15)
    xs = centres_x(found)
    assert len(xs) == 15 and all(x > 320 for x in xs)


def test_a_rerun_with_the_same_video_reuses_the_face_track(two_faces, monkeypatch):
    first = track(pipeline(), two_faces, 15)
    second, padded = pipeline(), pipeline(pads=(0, 30, 0, 0), nosmooth=True)
    for p in (second, padded):
        monkeypatch.setattr(p, "detector", lambda: pytest.fail("detected again instead of using the cache"))
    assert track(second, two_faces, 15).boxes == first.boxes
    # Pads and smoothing apply after the cache: a new track without a new detection.
    assert [b[1] for b in track(padded, two_faces, 15).boxes] != [b[1] for b in first.boxes]
    other = pipeline(det_size=200)  # a detection setting: detected again
    calls = []
    real = other.detector
    monkeypatch.setattr(other, "detector", lambda: calls.append(1) or real())
    track(other, two_faces, 15)
    assert calls == [1]


def test_audio_offset_shifts_the_mel_windows(tmp_path):
    from lipsync_core.testing.media import still_image

    video = FaceVideo.open(still_image(tmp_path / "f.png"), still_fps=25, static=False)
    mel = audio_mod.melspectrogram(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)
    track = FaceTrack.constant((0, 10, 0, 10), 1, 25.0, video.frame_size)
    speech = Speech(path=tmp_path / "unused.wav", duration=1.0, mel=mel, quiet=None, n_samples=16000)

    def first_batch(s):
        return next(_batches(s, s.plan, video, track, speech, 8))

    plain = first_batch(pipeline(wav2lip_batch_size=8))
    shifted = first_batch(pipeline(wav2lip_batch_size=8, audio_offset_ms=200))
    assert np.array_equal(shifted.mels[0], plain.mels[5])  # 200 ms = 5 frames at 25 fps
    assert not np.array_equal(shifted.mels[0], plain.mels[0])


def test_a_failure_during_rendering_leaves_no_output(tmp_path, monkeypatch, face_clip, speech, w2l_checkpoint):
    face, box = face_clip
    out_dir = tmp_path / "out"

    def boom(self, batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(BlendStage, "__call__", boom)
    with pytest.raises(RuntimeError, match="boom"):
        render_run(pipeline(box=box, checkpoint_path=str(w2l_checkpoint)), face, speech, out_dir / "o.mp4")
    assert not out_dir.exists()  # no output, and the folder the run created is removed again


def test_a_role_option_may_name_a_manifest_weight(monkeypatch, tmp_path):
    from lipsync_core.support.errors import LipsyncError
    from lipsync_core.weights import store as weights

    fetched = []
    monkeypatch.setattr(weights, "fetch", lambda wid, source=None, **kw: fetched.append((wid, source)))
    session(checkpoint_path="wav2lip_gan", detector="haar", device="cpu").fetch_weights()
    assert fetched == [("wav2lip_gan", None)]
    with pytest.raises(LipsyncError, match="another kind"):
        session(checkpoint_path="s3fd", detector="haar", device="cpu").fetch_weights()


def test_render_batches_shrink_for_large_frames_so_memory_stays_bounded():
    from lipsync_core.engine.render import RENDER_BATCH_BYTES, render_batch_frames

    assert render_batch_frames(128, 640 * 360 * 3) == 48
    assert render_batch_frames(128, 1920 * 1080 * 3) == 5
    assert render_batch_frames(128, 1920 * 1080 * 3, "cuda") == 43
    assert render_batch_frames(16, 320 * 240 * 3) == 16
    assert render_batch_frames(128, 8000 * 8000 * 3) == 1
    for device, budget in RENDER_BATCH_BYTES.items():
        assert render_batch_frames(128, 1920 * 1080 * 3, device) * 1920 * 1080 * 3 <= budget


def test_a_failure_stops_decoding_at_once(tmp_path, monkeypatch, speech, w2l_checkpoint):
    """The decode thread must not run on through the rest of the video after the render failed."""
    from lipsync_core.media import face_video as read
    from lipsync_core.testing.media import still_image

    decoded = []
    real_looped = read.FaceVideo.looped

    def counting(self, n_out, n_source):
        for item in real_looped(self, n_out, n_source):
            decoded.append(item[0])
            yield item

    monkeypatch.setattr(read.FaceVideo, "looped", counting)
    monkeypatch.setattr(BlendStage, "__call__", lambda self, batch: (_ for _ in ()).throw(RuntimeError("boom")))
    still = still_image(tmp_path / "face.png", size=(64, 64))
    p = pipeline(box=(8, 56, 8, 56), checkpoint_path=str(w2l_checkpoint), wav2lip_batch_size=2, fps=240)
    with pytest.raises(RuntimeError, match="boom"):
        render_run(p, still, speech, tmp_path / "o.mp4")  # 0.8 s at 240 fps: 192 frames if decoding ran on
    assert len(decoded) < 20


def test_the_cached_track_serves_audio_of_other_lengths(two_faces, monkeypatch):
    first = track(pipeline(), two_faces, 10)  # a prefix of the 15-frame clip
    whole = track(pipeline(), two_faces, 40)  # runs to the end: the whole clip
    assert (first.n_frames, whole.n_frames) == (10, 15)
    again = pipeline()
    monkeypatch.setattr(again, "detector", lambda: pytest.fail("detected again instead of using the cache"))
    assert track(again, two_faces, 12).n_frames == 12
    assert track(again, two_faces, 100).boxes == whole.boxes
