"""`lipsync cache list|prune`: what the caches hold, pruned by age or size, never what a running process holds."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipsync_core.face import cache as track_cache
from lipsync_core.face.track import DetectionOptions
from lipsync_core.face.types import FaceTrack
from lipsync_core.front import cache_cli
from lipsync_core.support import locks
from lipsync_core.support.paths import cache_dir
from lipsync_core.weights.store import fetch, weights_dir
from tests.conftest import REPO
from tests.weights.conftest import checkpoint_bytes, url

A, B = checkpoint_bytes(20_000), checkpoint_bytes(60_000)
DAY = 86400


@pytest.fixture
def cached(mirror, write_manifest, tmp_path):
    """Two cached weights, a moved-aside file and a face track."""
    write_manifest({"small": {"data": A, "sources": [url(mirror.put("small.pth", A))]},
                    "big": {"data": B, "sources": [url(mirror.put("big.pth", B))]}})
    fetch("small", progress=False)
    fetch("big", progress=False)
    locks.release_held()  # this test process is not "running" with them
    (weights_dir() / "mine.moved-20260101-000000.pth").write_bytes(b"my own checkpoint")
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"video bytes")
    key = track_cache.track_key(video, DetectionOptions(), "haar")
    track_cache.save_track(key, FaceTrack(boxes=[(0, 10, 0, 10)] * 5, fps=25.0, frame_size=(32, 32)), video=video)
    return video


def age(path_glob: str, days: float) -> None:
    """Make every file matching ``path_glob`` under the cache look last used ``days`` ago."""
    t = time.time() - days * DAY
    for p in cache_dir().glob(path_glob):
        os.utime(p, (t, t))


def run(capsys, *argv: str) -> tuple[int, str]:
    rc = cache_cli.main(list(argv))
    return rc, capsys.readouterr().out


def test_list_shows_weights_moved_files_and_tracks_per_video(cached, capsys):
    rc, out = run(capsys, "list")
    assert rc == 0
    lines = out.splitlines()
    assert any(line.startswith("weight") and "small.pth" in line for line in lines)
    assert any(line.startswith("moved") and "mine.moved-20260101-000000.pth" in line for line in lines)
    assert any(line.startswith("track") and f"{cached} (5 frames)" in line for line in lines)
    assert lines[-1].startswith("total: ")


def test_prune_by_age_removes_only_old_entries(cached, capsys):
    age("weights/small.pth*", 40)
    age("tracks/*", 40)
    rc, out = run(capsys, "prune", "--older_than", "30")
    assert rc == 0 and "removed weight small.pth" in out and "removed track" in out
    left = sorted(p.name for p in weights_dir().iterdir() if p.is_file() and not p.name.endswith((".lock", ".inuse")))
    assert left == ["big.pth", "big.pth.json", "big.stripped.pth", "mine.moved-20260101-000000.pth"]
    assert not list((cache_dir() / "tracks").glob("*.npz"))


def test_prune_by_size_removes_the_least_recently_used_first(cached, capsys):
    age("weights/big.pth*", 2)
    age("weights/small.pth*", 1)
    small = sum(p.stat().st_size for p in weights_dir().glob("small*") if p.suffix in (".pth", ".json"))
    rc, out = run(capsys, "prune", "--max_size", str(small + 20_000))
    assert "removed weight big.pth" in out and "small.pth" not in out.replace("mine", "")
    assert (weights_dir() / "small.pth").is_file() and not (weights_dir() / "big.pth").exists()


def test_moved_aside_files_go_only_when_asked(cached, capsys):
    age("weights/*", 100)
    run(capsys, "prune", "--older_than", "1")
    assert (weights_dir() / "mine.moved-20260101-000000.pth").is_file()
    _rc, out = run(capsys, "prune", "--moved")
    assert "removed moved mine.moved-20260101-000000.pth" in out
    assert not (weights_dir() / "mine.moved-20260101-000000.pth").exists()


def test_dry_run_removes_nothing(cached, capsys):
    before = sorted(cache_dir().rglob("*"))
    _rc, out = run(capsys, "prune", "--max_size", "0", "--dry_run")
    assert "would remove weight small.pth" in out and sorted(cache_dir().rglob("*")) == before


def test_a_fetch_in_progress_is_not_touched(cached, capsys):
    with locks.file_lock(weights_dir() / "small.pth.lock"):
        _rc, out = run(capsys, "prune", "--max_size", "0")
    assert "kept weight small.pth: a running process is using it" in out
    assert (weights_dir() / "small.pth").is_file() and not (weights_dir() / "big.pth").exists()


def test_a_weight_a_running_process_uses_is_not_touched_until_it_exits(cached, capsys):
    script = ("import sys, time\nfrom lipsync_core.weights.store import fetch\nfetch('small', progress=False)\n"
              "print('using', flush=True)\nsys.stdin.readline()")
    p = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO)},
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "using"
        _rc, out = run(capsys, "prune", "--max_size", "0")
        assert "kept weight small.pth: a running process is using it" in out
        assert (weights_dir() / "small.stripped.pth").is_file()
    finally:
        p.communicate("\n", timeout=60)
    _rc, out = run(capsys, "prune", "--max_size", "0")
    assert "removed weight small.pth" in out and not (weights_dir() / "small.pth").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["prune"], "say what to prune"),
    (["prune", "--max_size", "lots"], "give a size such as 500M"),
    (["prune", "--older_than", "nan"], "--older_than must be a number of days"),
])
def test_bad_prune_arguments_are_one_line_errors(argv, message, capsys):
    assert cache_cli.main(argv) == 1
    assert message in capsys.readouterr().err


def test_sizes_parse():
    assert [cache_cli.parse_size(t) for t in ("123", "2K", "1.5M", "2G", "1GB")] == \
        [123, 2048, 1572864, 2 << 30, 1 << 30]


def test_empty_cache_lists_as_empty(tmp_path, capsys):
    rc, out = run(capsys, "list", "--cache_dir", str(tmp_path / "nothing"))
    assert rc == 0 and "(empty)" in out
    assert not Path(tmp_path / "nothing").exists()
