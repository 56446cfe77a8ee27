"""End to end on 2D animation: --track_box, --detector anime, --mask_region mouth, plausibility warnings.

Procedural Wav2Lip, real ffmpeg, the shared anime clips (no audio) paired with real speech.
"""
from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import pytest

from lipsync_core.front.cli import main as cli_main
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.media.probe import probe
from lipsync_core.media.video import read_frames
from lipsync_core.stages.masks import ellipse_weight, mouth_ellipse
from tests.conftest import shared_media
from tests.face.anime_media import EILEEN, SITA, anime_path, cascade, face_region
from tests.face.test_boxtrack import SIDE, leaving_clip
from tests.pipeline.test_pipeline import run, unchanged

SITA_BOX = (100, 250, 145, 370)  # eyebrows to chin, cheek to cheek (top, bottom, left, right)


@pytest.fixture(scope="module")
def speech_1s6(tmp_path_factory):
    """1.6 s of real speech (40 frames at 25 fps)."""
    real = shared_media("speech_vrt1_44k1_stereo_5s.wav")
    if real is None:
        pytest.skip("needs ../shared/media/speech_vrt1_44k1_stereo_5s.wav")
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    run_ffmpeg(["-y", "-ss", "1.0", "-i", str(real), "-t", "1.6", str(path)], what="cut test speech")
    return path


def changed_pixels(out, src) -> np.ndarray:
    """(H, W) bool: where any output frame differs from its source frame beyond the codec's rounding."""
    changed = None
    for got, ref in zip(read_frames(out), read_frames(src)):
        d = np.abs(got.astype(np.int16) - ref.astype(np.int16)).max(axis=2) > 24  # 4:2:0 round trip: <= 16
        changed = d if changed is None else changed | d
    return changed


def assert_playable_and_as_long_as(out, audio) -> None:
    info, a = probe(out), probe(audio)
    assert info.has_audio and info.fps == pytest.approx(25.0)
    assert len(read_frames(out)) == math.ceil(a.duration * info.fps - 1e-6)
    assert info.duration == pytest.approx(a.duration, abs=1.5 / info.fps)


def test_sita_with_keyframes_from_a_file_and_mouth_only_blending(tmp_path, speech_1s6, w2l_checkpoint, caplog):
    src = anime_path(SITA)
    t, b, l, r = SITA_BOX
    keys = tmp_path / "boxes.json"
    keys.write_text(f'[{{"t": 0, "box": [{t}, {b}, {l}, {r}]}}, {{"t": 1.0, "box": [{t}, {b}, {l}, {r}]}}]')
    out = run(src, speech_1s6, tmp_path / "sita.mp4", w2l_checkpoint, box_keyframes=str(keys), mask_region="mouth")
    assert_playable_and_as_long_as(out, speech_1s6)
    changed = changed_pixels(out, src)
    x1, y1, x2, y2 = face_region("sita")
    assert changed.any()
    assert not changed[:y1].any() and not changed[y2:].any() and not changed[:, :x1].any()
    assert not changed[:, x2:].any()
    assert not changed[:t + (b - t) // 2].any()  # the upper face (eyes) never changes with mouth-only
    assert "unsure" not in caplog.text


def test_eileen_with_the_anime_detector(tmp_path, speech_1s6, w2l_checkpoint, caplog):
    src = anime_path(EILEEN)
    with caplog.at_level(logging.WARNING):
        out = run(src, speech_1s6, tmp_path / "eileen.mp4", w2l_checkpoint, detector="anime",
                  anime_path=str(cascade()), mask_region="mouth")
    assert_playable_and_as_long_as(out, speech_1s6)
    changed = changed_pixels(out, src)
    x1, y1, x2, y2 = face_region("eileen")
    outside = np.ones_like(changed)
    outside[y1:y2, x1:x2] = False
    assert changed.any() and not changed[outside].any()
    assert "doubtful" not in caplog.text  # no plausibility warning on the anime detector's track


def test_haar_on_sita_warns_that_its_track_is_doubtful(tmp_path, speech_1s6, w2l_checkpoint, caplog):
    with caplog.at_level(logging.WARNING):
        run(anime_path(SITA), speech_1s6, tmp_path / "haar.mp4", w2l_checkpoint, detector="haar")
    assert "face track doubtful" in caplog.text and "--detector anime" in caplog.text


def test_mouth_only_leaves_every_pixel_outside_the_mouth_region_of_a_real_face(tmp_path, face_clip, speech,
                                                                                  w2l_checkpoint):
    face, box = face_clip
    out = run(face, speech, tmp_path / "out.mp4", w2l_checkpoint, box=box, mask_region="mouth", mouth_scale=0.8)
    t, b, l, r = box
    frames, src = read_frames(out), read_frames(face)
    h, w = src[0].shape[:2]
    region = ellipse_weight(mouth_ellipse(box, scale=0.8), (0, 0, w, h), hard=True) > 0
    near = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # chroma shared across 2x2 blocks
    for got, ref in zip(frames, src):
        assert unchanged(got[~near], ref[~near])
    assert np.abs(frames[3][region].astype(int) - src[3][region]).mean() > 1.0  # the mouth was redrawn


def test_cli_keyframes_follow_a_face_that_leaves_and_report_where_it_was_unsure(tmp_path, w2l_checkpoint,
                                                                                 capsys, caplog):
    clip, _ = leaving_clip()
    h, w = clip[0].shape[:2]
    raw = tmp_path / "frames.bgr"
    raw.write_bytes(b"".join(f.tobytes() for f in clip))
    video = tmp_path / "leaving.mp4"
    run_ffmpeg(["-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", "25", "-i", str(raw),
                "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", str(video)], what="encode a test clip")
    audio = tmp_path / "tone.wav"  # 60 frames: the face leaves (0.8-1.2 s), is gone (1.2-2.0 s) and is back
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=frequency=220:duration=2.4", str(audio)], what="generate test audio")
    with caplog.at_level(logging.WARNING):
        code = cli_main(["--face", str(video), "--audio", str(audio), "--outfile", str(tmp_path / "out.mp4"),
                         "--checkpoint_path", str(w2l_checkpoint), "--device", "cpu", "--no_progress",
                         "--preset", "ultrafast",
                         "--track_box", "30", str(30 + SIDE), "60", str(60 + SIDE),
                         "--track_box", "90", str(90 + SIDE), "40", str(40 + SIDE), "@2.2"])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out.mp4")
    [line] = [r.getMessage() for r in caplog.records if "tracked box" in r.getMessage()]
    assert "unsure on 1 range(s)" in line and "-2.0" in line  # the face is gone until 2.0 s
    assert len(read_frames(tmp_path / "out.mp4")) == 60
