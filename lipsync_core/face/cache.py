"""Face-track cache: a rerun on the same face video (typically with new audio) skips pass 1.

Entries are ``<cache_dir>/tracks/<key>.npz`` (:meth:`FaceTrack.save`), written atomically (a run-unique temporary
file renamed into place, so concurrent runs and readers never see a torn entry), with ``<key>.json`` naming the
video and frame count for ``lipsync cache list``; an entry's mtime is its last use. An unreadable entry counts as a
miss and is overwritten. The cache is optional: when it cannot be written, one warning, and the run goes on.

The key covers the video's content, the detection settings that shape the track, the detector's identity (name
and weights) and whatever the caller does to the frames (``extra``: resize, crop, rotation, frame-rate conversion).

The content hash is SHA-256 of the whole file, not of a sample: a sampled hash could return another video's
track after an edit that keeps the size, and hashing costs little beside decoding the file (the timings are in
``docs/notes.md``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from ..support import files
from ..support.paths import cache_dir
from .track import DetectionOptions
from .types import FaceTrack

log = logging.getLogger(__name__)

#: Bump when the track format or the tracking algorithm changes, so old entries are not reused.
TRACK_VERSION = 1


def track_key(video: str | os.PathLike, settings: DetectionOptions, detector_id: str, extra: str = "") -> str:
    """The cache key of ``video``'s track under ``settings`` with the detector ``detector_id``."""
    return track_keys(video, settings, detector_id, {"": extra})[""]


def track_keys(video: str | os.PathLike, settings: DetectionOptions, detector_id: str,
               extras: dict[str, str]) -> dict[str, str]:
    """:func:`track_key` for each ``{name: extra}``, the video hashed once."""
    digest = files.sha256_file(video)
    return {name: hashlib.sha256(json.dumps({"version": TRACK_VERSION, "video": digest, "detector": detector_id,
                                             "settings": settings.cache_fields(), "extra": extra},
                                            sort_keys=True).encode()).hexdigest()[:40]
            for name, extra in extras.items()}


def track_path(key: str, root: str | os.PathLike | None = None) -> Path:
    return cache_dir(root) / "tracks" / f"{key}.npz"


def load_track(key: str, root: str | os.PathLike | None = None) -> FaceTrack | None:
    """The cached track for ``key``, or None when absent or unreadable."""
    path = track_path(key, root)
    if not path.is_file():
        return None
    try:
        track = FaceTrack.load(path)
    except Exception as e:  # noqa: BLE001 - any damage to a cache entry is a miss, never a failure
        log.warning("ignoring unreadable face-track cache entry %s (%s)", path, e)
        return None
    try:
        os.utime(path)  # last use, for `lipsync cache prune --older_than`
    except OSError:
        pass  # a read-only cache keeps no last-use times
    return track


def save_track(key: str, track: FaceTrack, root: str | os.PathLike | None = None, *,
               video: str | os.PathLike | None = None) -> Path | None:
    """Write ``track`` under ``key`` atomically (a run-unique temporary file beside it, then a rename).

    ``video`` (its source) is noted beside it for ``lipsync cache list``. Returns the entry's path, or None
    when the cache cannot be written (reported once; the run goes on without caching).
    """
    path = track_path(key, root)
    tmp = files.temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files._open_new(tmp).close()  # created through the one seam for file creation (fault-injection tests)
        track.save(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        meta = {"video": os.path.abspath(video) if video is not None else None, "frames": track.n_frames}
        files.atomic_write_text(path.with_suffix(".json"), json.dumps(meta))
    except OSError as exc:
        if not files.unwritable(exc):
            raise
        files.cache_unwritable(cache_dir(root), exc, "saving a face track")
        return None
    finally:
        files.remove_quietly(tmp)
    return path
