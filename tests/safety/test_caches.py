"""Cache writes are atomic under concurrent processes, and an unwritable face-track cache only means no caching."""
from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from lipsync_core.face import cache
from lipsync_core.face.track import DetectionOptions
from lipsync_core.face.types import FaceTrack
from lipsync_core.support import files
from tests.conftest import REPO
from tests.support.faults import failing_creation, fill, made, readonly_bind, small_tmpfs


def a_track(n: int = 400, shift: int = 0) -> FaceTrack:
    return FaceTrack(boxes=[(i + shift, i + 50, 2, 60) for i in range(n)], fps=25.0, frame_size=(640, 360))


@pytest.fixture
def key(tmp_path) -> str:
    video = tmp_path / "face.mp4"
    video.write_bytes(os.urandom(10_000))
    return cache.track_key(video, DetectionOptions(), "haar")


def run_all(scripts: list[str], env: dict | None = None) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(s)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in scripts]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


# -- concurrent processes --------------------------------------------------------------------------------------------
def test_concurrent_atomic_writes_are_never_seen_torn(tmp_path):
    target = tmp_path / "record.json"
    writer = """
        import json
        from lipsync_core.support.files import atomic_write_text
        for i in range(150):
            atomic_write_text({path!r}, json.dumps({{"writer": {n}, "i": i, "pad": "x" * 200_000}}))
    """
    reader = f"""
        import json, os, time
        seen = 0
        deadline = time.time() + 60
        while seen < 300 and time.time() < deadline:
            try:
                text = open({str(target)!r}).read()
            except FileNotFoundError:
                continue
            json.loads(text)  # a torn file would not parse
            seen += 1
        print(seen)
    """
    results = run_all([writer.format(n=n, path=str(target)) for n in range(3)] + [reader])
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr[-500:] for r in results]
    assert int(results[-1].stdout) == 300
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temporary file left behind


def test_concurrent_track_cache_writers_and_readers(tmp_path, key):
    root = tmp_path / "cache"
    writer = f"""
        from lipsync_core.face import cache
        from lipsync_core.face.types import FaceTrack
        for i in range(40):
            cache.save_track({key!r}, FaceTrack(boxes=[(j + {{n}}, j + 50, 2, 60) for j in range(400)], fps=25.0,
                                                frame_size=(640, 360)), {str(root)!r})
    """
    reader = f"""
        from lipsync_core.face import cache
        ok = 0
        for i in range(400):
            t = cache.load_track({key!r}, {str(root)!r})
            if t is not None:
                assert t.n_frames == 400 and t.boxes[0][0] in (0, 1, 2), t.boxes[0]
                ok += 1
        print(ok)
    """
    results = run_all([writer.replace("{n}", str(n)) for n in range(3)] + [reader])
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr[-800:] for r in results]
    assert "ignoring unreadable" not in results[-1].stderr  # never a torn entry
    assert sorted(p.suffix for p in (root / "tracks").iterdir()) == [".json", ".npz"]


# -- an unwritable track cache ---------------------------------------------------------------------------------------
def cache_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]


def test_read_only_track_cache_is_skipped_with_one_warning(tmp_path, key, caplog):
    root = tmp_path / "ro-cache"
    root.mkdir()
    with made(readonly_bind(root)) as ro, caplog.at_level(logging.WARNING):
        assert cache.save_track(key, a_track(), ro) is None
        assert cache.save_track(key, a_track(), ro) is None
        assert cache.load_track(key, ro) is None
    assert len(cache_warnings(caplog)) == 1


def test_read_only_track_cache_still_serves_its_entries(tmp_path, key):
    root = tmp_path / "prepared"
    cache.save_track(key, a_track(), root)
    with made(readonly_bind(root)) as ro:
        assert cache.load_track(key, ro).boxes == a_track().boxes


def test_full_track_cache_is_skipped_and_leaves_no_partial_entry(key, caplog):
    with made(small_tmpfs(64 * 1024)) as full, caplog.at_level(logging.WARNING):
        (full / "tracks").mkdir()
        fill(full, leave=4096)
        assert cache.save_track(key, a_track(20_000), full) is None  # ~1 MB of boxes
        assert [p.name for p in (full / "tracks").iterdir()] == []
    assert len(cache_warnings(caplog)) == 1


@pytest.mark.parametrize("err", [errno.EROFS, errno.ENOSPC], ids=errno.errorcode.get)
def test_injected_creation_errors_skip_the_track_cache(tmp_path, key, err, caplog):
    root = tmp_path / "cache"
    with failing_creation(root, err), caplog.at_level(logging.WARNING):
        assert cache.save_track(key, a_track(), root) is None
    assert len(cache_warnings(caplog)) == 1
    assert cache.load_track(key, root) is None


def test_other_errors_are_not_swallowed(tmp_path, key):
    with failing_creation(tmp_path / "cache", errno.EIO), pytest.raises(OSError):
        cache.save_track(key, a_track(), tmp_path / "cache")


def test_run_tagged_names_identify_live_and_gone_processes(tmp_path):
    mine = files.partial_path(tmp_path / "out.mp4")
    assert files.owner(mine.name) == (files._host(), os.getpid()) and not files.owner_gone(mine.name)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    gone = mine.name.replace(f"-{os.getpid()}-", f"-{p.pid}-")
    assert files.owner_gone(gone)
    other_host = mine.name.replace(f"run-{files._host()}-", "run-elsewhere-")
    assert not files.owner_gone(other_host.replace(f"-{os.getpid()}-", f"-{p.pid}-"))
    assert json.dumps(files.owner("no tag here")) == "null"
