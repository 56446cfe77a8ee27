"""Outputs: one complete file at the path whatever runs race for it; the extension picks the container; leftovers
of killed runs are reclaimed only when their process is gone."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from lipsync_core.media.probe import probe
from lipsync_core.media.video import VideoWriter, count_frames, read_frames
from lipsync_core.support import files, safety
from lipsync_core.support.errors import LipsyncError
from tests.conftest import REPO

WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from lipsync_core.media.video import VideoWriter
out, colour, sync = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
wait_for = int(sys.argv[4]) if len(sys.argv) > 4 else 2
frame = np.full((48, 64, 3), colour, np.uint8)
with VideoWriter(out, size=(64, 48), fps=25, preset="ultrafast") as w:
    for _ in range(50):
        w.write(frame)
    (sync / f"ready-{colour}").touch()
    while len(list(sync.glob("ready-*"))) < wait_for:  # all encoders are mid-file before any finishes
        time.sleep(0.01)
print("done")
"""


def spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def frame(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def test_two_processes_writing_the_same_output_both_succeed_and_leave_one_whole_file(tmp_path):
    out = tmp_path / "results" / "result_voice.mp4"
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = [spawn(str(out), str(colour), str(sync)) for colour in (40, 200)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-800:] for _out, err in results]
    assert count_frames(out) == 50
    colours = {int(round(f.mean())) for f in read_frames(out)}
    assert len(colours) == 1 and abs(colours.pop() - 40) in (0, 1, 2, 158, 159, 160)  # one run's frames, not a mix
    assert [p.name for p in out.parent.iterdir()] == ["result_voice.mp4"]


def test_partial_files_are_unique_per_run_and_call(tmp_path):
    a = VideoWriter(tmp_path / "out.mp4", size=(32, 32), fps=25)
    b = VideoWriter(tmp_path / "out.mp4", size=(32, 32), fps=25)
    try:
        assert a.partial != b.partial
        assert files.owner(a.partial.name) == (files._host(), os.getpid())
    finally:
        a.abort()
        b.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "format_name"), [("out.mkv", "matroska"), ("out.mov", "mov"), ("OUT.MP4", "mp4")])
def test_the_extension_names_the_container(tmp_path, name, format_name):
    with VideoWriter(tmp_path / name, size=(64, 48), fps=25) as w:
        w.write(frame(128))
    info = probe(tmp_path / name)
    assert format_name in info.format_name and info.video_codec == "h264"


@pytest.mark.parametrize("name", ["out.avi", "out.webm", "out", "out.gif"])
def test_other_extensions_are_refused_before_anything_is_written(tmp_path, name):
    with pytest.raises(LipsyncError, match=r"H\.264 video with AAC audio, written as \.mp4, \.m4v, \.mov, \.mkv"):
        VideoWriter(tmp_path / name, size=(32, 32), fps=25)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_partial_output_is_reclaimed_and_a_live_ones_is_not(tmp_path):
    out = tmp_path / "result.mp4"
    sync = tmp_path / "sync"
    sync.mkdir()
    victim, live = (spawn(str(out), str(c), str(sync), "99") for c in (1, 2))  # both stay mid-file
    try:
        deadline = time.time() + 60
        while len(list(sync.glob("ready-*"))) < 2 and time.time() < deadline:
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)  # the victim's ffmpeg is its child: it sees EOF and finishes the file
        victim.wait()
        partials = sorted(tmp_path.glob(".result.*.partial.mp4"))
        assert len(partials) == 2
        removed = safety.reclaim_leftovers(tmp_path)
        assert [p.name for p in removed] == [p.name for p in partials if f"-{victim.pid}-" in p.name]
        assert len(list(tmp_path.glob(".result.*.partial.mp4"))) == 1  # the live run's partial is kept
    finally:
        live.kill()
        live.wait()


def test_killed_runs_temporary_folders_are_reclaimed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = files.make_temp_dir("run")
    theirs = Path(str(mine).replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
    theirs.mkdir()
    (theirs / "face.mp4").write_bytes(b"x")
    try:
        removed = safety.reclaim_leftovers()
        assert theirs in removed and not theirs.exists() and mine.is_dir()
    finally:
        mine.rmdir()


def test_a_disk_that_fills_while_encoding_is_one_line_naming_the_output_and_the_cause():
    from tests.support.faults import made, small_tmpfs

    rng = np.random.default_rng(0)
    with made(small_tmpfs(96 * 1024)) as small:
        with pytest.raises(LipsyncError) as err:
            with VideoWriter(small / "out.mp4", size=(160, 120), fps=25, crf=0, preset="ultrafast") as w:
                for _ in range(100):  # lossless noise: ~60 KB a frame
                    w.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
        message = str(err.value)
        assert "\n" not in message and str(small / "out.mp4") in message and "No space left on device" in message
        assert list(small.iterdir()) == []
