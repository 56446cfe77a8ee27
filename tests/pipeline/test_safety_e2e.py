"""Whole runs under hostile conditions: real CLI processes, real signals, real mounts, real ffmpeg."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipsync_core.media.video import count_frames, read_frames
from tests.conftest import REPO
from tests.support.faults import made, readonly_bind, small_tmpfs
from tests.support.servers import static_server


def lipsync(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "lipsync_core", "--no_progress", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def job(face_clip, speech, w2l_checkpoint) -> list[str]:
    face, box = face_clip
    box_args = ["--box", *map(str, box)] if box else ["--detector", "haar"]
    return ["--face", str(face), "--audio", str(speech), "--checkpoint_path", str(w2l_checkpoint), *box_args]


def lipsync_temp_dirs(pid: int) -> list[str]:
    import tempfile

    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("lipsync-") and f"-{pid}-" in n]


def test_sigterm_mid_render_exits_143_and_leaves_nothing(tmp_path, job):
    p = lipsync(*job, "--outfile", "new/dir/out.mp4", cwd=tmp_path)
    deadline = time.time() + 240
    while not list((tmp_path / "new" / "dir").glob(".out.*.partial.mp4")):  # the encoder has started
        assert p.poll() is None and time.time() < deadline, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _out, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert err.splitlines()[-1] == "lipsync: terminated" and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == []  # no partial output, and the folders the run made are gone
    assert lipsync_temp_dirs(p.pid) == []


def test_two_runs_to_the_same_default_output_both_succeed_with_one_whole_file(tmp_path, job, speech):
    runs = [lipsync(*job, cwd=tmp_path) for _ in range(2)]  # both write results/result_voice.mp4
    results = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [err[-1000:] for _out, err in results]
    out = tmp_path / "results" / "result_voice.mp4"
    assert [r[0].strip() for r in results] == ["results/result_voice.mp4"] * 2
    assert count_frames(out) == 20 and len(read_frames(out)) == 20  # 0.8 s of speech at 25 fps, decodable
    assert [p.name for p in out.parent.iterdir()] == ["result_voice.mp4"]


def test_read_only_home_with_a_local_checkpoint_completes_with_one_warning(tmp_path, job, face_clip):
    face, _box = face_clip
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LIPSYNC_CACHE", "XDG_CACHE_HOME")}
    served = tmp_path / "served"
    served.mkdir()
    (served / "face.mp4").symlink_to(face)
    args = [a if a != str(face) else "" for a in job]
    with made(readonly_bind(home)) as ro_home, static_server(served) as (base, _log):
        args[args.index("")] = f"{base}/face.mp4"  # an input fetch too: its bar must stay silent
        env["HOME"] = str(ro_home)
        p = subprocess.Popen([sys.executable, "-m", "lipsync_core", "--no_progress", *args, "--outfile", "o.mp4"],
                             cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert out.strip() == "o.mp4" and count_frames(tmp_path / "o.mp4") == 20
    assert sum("cannot be written" in line for line in err.splitlines()) == 1, err
    assert "%|" not in err  # no progress bar, input download included
    assert list(home.iterdir()) == []


def test_an_output_disk_without_room_is_refused_before_pass_1(tmp_path, job):
    with made(small_tmpfs(32 * 1024)) as small:
        p = lipsync(*job, "--outfile", str(small / "sub" / "out.mp4"), cwd=tmp_path)
        _out, err = p.communicate(timeout=600)
        assert p.returncode == 1
        assert err.splitlines()[-1].startswith(f"lipsync: error: not enough space for the output in {small / 'sub'}")
        assert list(small.iterdir()) == []  # the folder it made is gone too


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, job):
    (tmp_path / "ro").mkdir()
    with made(readonly_bind(tmp_path / "ro")) as ro:
        p = lipsync(*job, "--outfile", str(ro / "out.mp4"), cwd=tmp_path)
        _out, err = p.communicate(timeout=600)
    assert p.returncode == 1
    assert err.splitlines()[-1] == f"lipsync: error: cannot write to the output folder {ro}: Read-only file system; " \
                                   "choose another --outfile"


@pytest.mark.parametrize("how", ["symlink", "hard link"])
def test_an_output_that_is_the_face_input_under_another_name_is_refused(tmp_path, job, face_clip, how):
    face, _box = face_clip
    mine = tmp_path / "face.mp4"
    mine.write_bytes(face.read_bytes())
    alias = tmp_path / "alias.mp4"
    alias.symlink_to(mine) if how == "symlink" else os.link(mine, alias)
    args = [str(mine) if a == str(face) else a for a in job]
    p = lipsync(*args, "--outfile", str(alias), cwd=tmp_path)
    _out, err = p.communicate(timeout=600)
    assert p.returncode == 1 and "is the face input (the same file as" in err
    assert mine.read_bytes() == face.read_bytes()
