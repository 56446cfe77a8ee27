"""End to end: real ffmpeg, a procedural Wav2Lip checkpoint, real media when present."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lipsync_core import lipsync
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.media.probe import probe
from lipsync_core.media.video import read_frames
from lipsync_core.support.errors import LipsyncError
from tests.conftest import shared_media
from tests.pipeline.conftest import _trim, mean_abs


def unchanged(got: np.ndarray, src: np.ndarray) -> bool:
    """Equal up to the YUV 4:2:0 round trip (rounding; a few saturated colours clip by up to ~10 levels)."""
    d = np.abs(got.astype(np.int16) - src.astype(np.int16))
    return float(np.percentile(d, 99.9)) <= 3 and d.max() <= 16 and d.mean() < 0.8


def run(face, audio, out, ckpt, **options) -> Path:
    options.setdefault("detector", "haar")
    return lipsync(face, audio, out, checkpoint_path=str(ckpt), device="cpu", no_progress=True, crf=0,
                   preset="ultrafast", **options)


def test_output_covers_the_whole_audio_at_the_video_frame_rate(tmp_path, face_clip, speech, w2l_checkpoint):
    face, _ = face_clip
    out = run(face, speech, tmp_path / "out.mp4", w2l_checkpoint)
    info, audio = probe(out), probe(speech)
    assert info.fps == pytest.approx(probe(face).fps)
    assert info.has_audio
    assert len(read_frames(out)) == math.ceil(audio.duration * info.fps - 1e-6)
    assert info.duration == pytest.approx(audio.duration, abs=1.5 / info.fps)


def test_audio_longer_than_the_video_loops_the_video(tmp_path, face_clip, speech, w2l_checkpoint):
    face, box = face_clip
    short = _trim(face, tmp_path / "short.mp4", 0.0, 0.4)  # 10 frames for 0.8 s of audio
    out = run(short, speech, tmp_path / "out.mp4", w2l_checkpoint, box=box)
    frames, src = read_frames(out), read_frames(short)
    assert len(frames) == 20
    t, b, l, r = box
    outside = np.ones(frames[0].shape[:2], bool)
    outside[t:b, l:r] = False
    # Frame 10 shows source frame 0 again: equal outside the face box.
    assert mean_abs(frames[10][outside], src[0][outside]) < 2.0
    assert mean_abs(frames[10][outside], src[9][outside]) > mean_abs(frames[10][outside], src[0][outside])


def test_pixels_outside_the_face_box_are_unchanged(tmp_path, face_clip, speech, w2l_checkpoint):
    face, box = face_clip
    out = run(face, speech, tmp_path / "out.mp4", w2l_checkpoint, box=box)
    t, b, l, r = box
    for got, src in zip(read_frames(out), read_frames(face)):
        outside = np.ones(got.shape[:2], bool)
        outside[t - 2:b + 2, l - 2:r + 2] = False  # chroma is shared by 2x2 pixel blocks across the edge
        assert unchanged(got[outside], src[outside])
        assert mean_abs(got[t:b, l:r], src[t:b, l:r]) > 1.0  # and the face was redrawn


@pytest.mark.parametrize("blend, has_step", [("feather", False), ("hard", True)])
def test_feathered_blend_leaves_no_step_at_the_box_edge(tmp_path, face_clip, speech, w2l_checkpoint, blend,
                                                        has_step):
    face, box = face_clip
    out = run(face, speech, tmp_path / "out.mp4", w2l_checkpoint, box=box, blend=blend)
    t, b, l, r = box
    got, src = read_frames(out, max_frames=1)[0], read_frames(face, max_frames=1)[0]
    # The lower part of the box's left/right/bottom edges: pasted pixels vs the source just inside.
    edge = np.concatenate([got[(t + b) // 2:b, l], got[(t + b) // 2:b, r - 1], got[b - 1, l:r]])
    ref = np.concatenate([src[(t + b) // 2:b, l], src[(t + b) // 2:b, r - 1], src[b - 1, l:r]])
    step = mean_abs(edge, ref)
    assert (step > 6.0) if has_step else (step < 2.0)


def test_frames_without_a_face_are_written_unchanged(tmp_path, speech, w2l_checkpoint):
    real = shared_media("face_noface_cutaway_7s.mp4")
    if real is None:
        pytest.skip("needs ../shared/media/face_noface_cutaway_7s.mp4 (real faces and a cutaway)")
    # Source frames 50..69: faces on 50-59, none on 60-69 (a hand pouring coffee).
    clip = _trim(real, tmp_path / "cut.mp4", 2.0, 0.8)
    out = run(clip, speech, tmp_path / "out.mp4", w2l_checkpoint, det_stride=1)
    got, src = read_frames(out), read_frames(clip)
    assert len(got) == 20
    for k in range(10, 20):
        assert unchanged(got[k], src[k]), f"face-less frame {k} was changed"
    assert mean_abs(got[2], src[2]) > 0.2  # a frame with a face was synced


def test_variable_frame_rate_input_becomes_its_average_rate(tmp_path, speech, w2l_checkpoint):
    real = shared_media("talking_head_vfr_vrt1.mp4")
    if real is None:
        pytest.skip("needs ../shared/media/talking_head_vfr_vrt1.mp4 (a real VFR clip)")
    out = run(real, speech, tmp_path / "out.mp4", w2l_checkpoint, box=(150, 500, 180, 520))
    info = probe(out)
    assert info.fps == pytest.approx(1350 / 61, rel=1e-3)
    assert len(read_frames(out)) == math.ceil(probe(speech).duration * 1350 / 61 - 1e-6)


@pytest.mark.parametrize("name", ["face.png", "my.face.v2.png"])
def test_still_image_gives_video_at_fps(tmp_path, speech, w2l_checkpoint, name):
    real = shared_media("still_real_face.png")
    still = tmp_path / name
    if real is not None:
        still.write_bytes(real.read_bytes())
        box = (60, 225, 45, 208)
    else:
        run_ffmpeg(["-y", "-f", "lavfi", "-i", "testsrc2=size=256x256", "-frames:v", "1", str(still)], what="still")
        box = (60, 200, 40, 200)
    out = run(still, speech, tmp_path / "out.mp4", w2l_checkpoint, box=box, fps=10)
    info = probe(out)
    assert info.fps == pytest.approx(10)
    assert len(read_frames(out)) == math.ceil(probe(speech).duration * 10 - 1e-6)


def test_no_face_anywhere_stops_before_rendering(tmp_path, speech, w2l_checkpoint):
    blank = tmp_path / "blank.mp4"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "color=c=gray:size=160x120:rate=25:duration=0.5", str(blank)], what="blank")
    out = tmp_path / "out.mp4"
    with pytest.raises(LipsyncError, match="no face found"):
        run(blank, speech, out, w2l_checkpoint)
    assert list(tmp_path.iterdir()) == [blank]  # no output, no partial file


def test_inputs_are_not_modified(tmp_path, face_clip, speech, w2l_checkpoint, copy_of):
    face, box = face_clip
    f, a = copy_of(face), copy_of(speech)
    before = (f.read_bytes(), a.read_bytes())
    run(f, a, tmp_path / "out.mp4", w2l_checkpoint, box=box)
    assert (f.read_bytes(), a.read_bytes()) == before


def test_resize_rotate_and_crop_apply_in_the_original_order(tmp_path, face_clip, speech, w2l_checkpoint):
    face, _ = face_clip
    w, h = probe(face).frame_size
    out = run(face, speech, tmp_path / "out.mp4", w2l_checkpoint, box=(20, 100, 20, 100), resize_factor=2,
              rotate=True, crop=(0, -1, 10, -1))
    assert probe(out).frame_size == (h // 2 - 10, w // 2)  # rotated: width and height swap


def test_paths_with_spaces_and_quotes_work(tmp_path, face_clip, speech, w2l_checkpoint, copy_of):
    face, box = face_clip
    odd = tmp_path / "it's a \"clip\" (1)"
    odd.mkdir()
    f = copy_of(face, "my face's clip.mp4").rename(odd / "my face's clip.mp4")
    out = run(f, speech, odd / "out put.mp4", w2l_checkpoint, box=box)
    assert probe(out).has_audio
