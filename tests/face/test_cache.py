"""Face-track cache: keyed by video content, settings and detector; atomic; damaged entries are misses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipsync_core.face import cache
from lipsync_core.face.track import DetectionOptions
from lipsync_core.face.types import FaceTrack
from lipsync_core.support.paths import cache_dir


@pytest.fixture
def video(tmp_path: Path) -> Path:
    p = tmp_path / "face.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    return p


def a_track() -> FaceTrack:
    lm = np.arange(10, dtype=np.float32).reshape(5, 2)
    return FaceTrack(boxes=[(1, 50, 2, 60), None, (3, 52, 4, 61)], fps=29.97, frame_size=(640, 360),
                     landmarks=[lm, None, lm + 1])


def test_a_track_survives_the_round_trip_with_its_gaps_and_landmarks(tmp_path):
    track = a_track()
    track.save(tmp_path / "t.npz")
    back = FaceTrack.load(tmp_path / "t.npz")
    assert (back.boxes, back.fps, back.frame_size, back.n_frames) == (track.boxes, 29.97, (640, 360), 3)
    assert back.landmarks[1] is None
    np.testing.assert_array_equal(back.landmarks[2], track.landmarks[2])


def test_miss_then_hit(video):
    key = cache.track_key(video, DetectionOptions(), "s3fd:abc")
    assert cache.load_track(key) is None
    cache.save_track(key, a_track())
    assert cache.load_track(key).boxes == a_track().boxes


def test_entries_live_under_the_cache_dir(video):
    key = cache.track_key(video, DetectionOptions(), "haar")
    path = cache.save_track(key, a_track())
    assert path.parent == cache_dir() / "tracks" and path.suffix == ".npz"


@pytest.mark.parametrize("change", [
    {"settings": DetectionOptions(det_stride=1)},
    {"settings": DetectionOptions(det_size=0)},
    {"settings": DetectionOptions(face_point=(10, 20))},
    {"detector_id": "s3fd:abc:cpu:bfloat16"},
    {"detector_id": "s3fd:other-weights"},
    {"extra": "resize_factor=2"},
])
def test_any_change_of_settings_detector_or_frame_options_misses(video, change):
    base = {"settings": DetectionOptions(), "detector_id": "s3fd:abc", "extra": ""}
    cache.save_track(cache.track_key(video, **base), a_track())
    changed = cache.track_key(video, **{**base, **change})
    assert cache.load_track(changed) is None


@pytest.mark.parametrize("other", [DetectionOptions(face_det_batch_size=64), DetectionOptions(pads=(0, 20, 0, 0)),
                                   DetectionOptions(nosmooth=True)])
def test_settings_applied_after_detection_do_not_change_the_key(video, other):
    """The cache holds the raw detected track; batch size, pads and smoothing do not change what is detected."""
    assert cache.track_key(video, DetectionOptions(), "haar") == cache.track_key(video, other, "haar")


def test_the_same_bytes_elsewhere_hit_and_changed_bytes_of_the_same_size_miss(video, tmp_path):
    cache.save_track(cache.track_key(video, DetectionOptions(), "haar"), a_track())
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(video.read_bytes())
    assert cache.load_track(cache.track_key(copy, DetectionOptions(), "haar")) is not None
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle, same size
    copy.write_bytes(bytes(data))
    assert cache.load_track(cache.track_key(copy, DetectionOptions(), "haar")) is None


def test_a_damaged_entry_is_a_miss_and_is_rewritten(video):
    key = cache.track_key(video, DetectionOptions(), "haar")
    path = cache.save_track(key, a_track())
    path.write_bytes(path.read_bytes()[:40])  # truncated, e.g. by a crash of an older version
    assert cache.load_track(key) is None
    cache.save_track(key, a_track())
    assert cache.load_track(key).boxes == a_track().boxes


def test_saving_leaves_no_temporary_file(video):
    key = cache.track_key(video, DetectionOptions(), "haar")
    path = cache.save_track(key, a_track())
    assert path.is_file()
    assert not [p.name for p in path.parent.iterdir() if p.suffix not in (".npz", ".json")]


def test_cache_dir_follows_lipsync_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("LIPSYNC_CACHE", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("LIPSYNC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lipsync"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "lipsync"


def test_the_keys_of_one_video_hash_its_content_once(video, monkeypatch):
    from lipsync_core.support import files

    hashed, real = [], files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: hashed.append(p) or real(p))
    keys = cache.track_keys(video, DetectionOptions(), "haar", {"whole": "x;whole", "prefix": "x;prefix"})
    assert len(hashed) == 1
    assert keys == {part: cache.track_key(video, DetectionOptions(), "haar", extra=f"x;{part}")
                    for part in ("whole", "prefix")}
