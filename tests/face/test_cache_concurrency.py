"""The face-track cache shared by concurrent batch workers: a reader sees a whole entry, never a torn one."""
from __future__ import annotations

import multiprocessing as mp
import time

from lipsync_core.face import cache
from lipsync_core.face.types import FaceTrack

KEY = "0" * 40


def track_of(n: int) -> FaceTrack:
    """A track whose every box encodes its length, so a mix of two writes would show."""
    return FaceTrack(boxes=[(n, n + 1, n + 2, n + 3)] * n, fps=25.0, frame_size=(640, 360))


def writer(root: str, lengths: list[int]) -> None:
    for n in lengths:
        cache.save_track(KEY, track_of(n), root)


def test_concurrent_writers_never_expose_a_partial_entry(tmp_path):
    root = str(tmp_path / "cache")  # this test's own: other tests' tracks share the session's cache
    cache.save_track(KEY, track_of(7), root)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=writer, args=(root, [40_000 + 1000 * k + i for i in range(30)])) for k in range(2)]
    for p in procs:
        p.start()
    seen = 0
    try:
        while any(p.is_alive() for p in procs) or seen == 0:
            track = cache.load_track(KEY, root)
            assert track is not None  # an entry exists from the start: a miss would be a torn read
            assert {b[0] for b in track.boxes} == {track.n_frames}
            seen += 1
            time.sleep(0.001)
    finally:
        for p in procs:
            p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    names = [p.name for p in cache.track_path(KEY, root).parent.iterdir()]
    assert f"{KEY}.npz" in names and not [n for n in names if n.startswith(".")]  # no temporary file left
