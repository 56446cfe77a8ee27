"""Run-level guards: an output that is an input, an unwritable or full output place, SIGTERM, exit codes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lipsync_core.support import files, safety
from lipsync_core.support.errors import LipsyncError
from lipsync_core.support.safety import OutputPlace, check_not_an_input
from tests.conftest import REPO
from tests.support.faults import fill, made, readonly_bind, small_tmpfs


@pytest.fixture
def face(tmp_path) -> Path:
    p = tmp_path / "in" / "face.mp4"
    p.parent.mkdir()
    p.write_bytes(b"precious")
    return p


# -- the output is not an input ---------------------------------------------------------------------------------------
def test_output_naming_an_input_is_refused(face):
    with pytest.raises(LipsyncError, match=r"^--outfile .*face\.mp4 is the face input; writing there would destroy"):
        check_not_an_input(face, {"face": face, "audio": "speech.wav"})


@pytest.mark.parametrize("how", ["other spelling", "symlink", "hard link"])
def test_the_same_file_under_another_name_is_refused(face, tmp_path, how, monkeypatch):
    if how == "other spelling":
        monkeypatch.chdir(tmp_path / "in")
        out = Path("..") / "in" / "." / "face.mp4"
    elif how == "symlink":
        out = tmp_path / "link.mp4"
        out.symlink_to(face)
    else:
        out = tmp_path / "hard.mp4"
        os.link(face, out)
    with pytest.raises(LipsyncError, match="is the audio input") as err:
        check_not_an_input(out, {"face": "https://example.com/v.mp4", "audio": face})
    if how != "other spelling":
        assert f"(the same file as {face})" in str(err.value)
    assert face.read_bytes() == b"precious"


def test_a_different_or_new_output_passes(face, tmp_path):
    other = tmp_path / "other.mp4"
    other.write_bytes(b"precious")  # equal bytes, another file
    check_not_an_input(other, {"face": face})
    check_not_an_input(tmp_path / "new.mp4", {"face": face, "audio": None})


# -- the output place ------------------------------------------------------------------------------------------------
def test_output_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(LipsyncError, match="is an existing folder; give a file name inside it"):
        OutputPlace(tmp_path).prepare()


def test_parent_that_is_a_file_is_refused_and_nothing_is_created(tmp_path):
    (tmp_path / "results").write_text("a file")
    with pytest.raises(LipsyncError, match="cannot create the output folder .*results is a file"):
        OutputPlace(tmp_path / "results" / "day1" / "out.mp4").prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_read_only_output_folder_is_found_before_any_work(tmp_path):
    (tmp_path / "ro").mkdir()
    with made(readonly_bind(tmp_path / "ro")) as ro:
        with pytest.raises(LipsyncError, match=f"cannot write to the output folder {ro}: Read-only file system"):
            OutputPlace(ro / "out.mp4").prepare()
        with pytest.raises(LipsyncError, match=f"cannot create the output folder {ro / 'new'}: Read-only"):
            OutputPlace(ro / "new" / "out.mp4").prepare()
        assert list(ro.iterdir()) == []


def test_full_disk_is_found_before_any_work(tmp_path):
    with made(small_tmpfs(256 * 1024)) as small:
        place = OutputPlace(small / "out.mp4").prepare()
        with pytest.raises(LipsyncError, match=r"not enough space for the output .*MB free, about 2\.1 MB needed"):
            place.check_space(2_100_000)
        fill(small)
        with pytest.raises(LipsyncError, match="cannot write to the output folder .*No space left on device"):
            OutputPlace(small / "out.mp4").prepare()


def test_a_failed_run_removes_the_folders_it_created_and_only_those(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "keep.mp4").write_bytes(b"x")
    with pytest.raises(RuntimeError):
        with OutputPlace(tmp_path / "results" / "a" / "b" / "out.mp4") as place:
            assert (tmp_path / "results" / "a" / "b").is_dir() and len(place.created) == 2
            raise RuntimeError("the run failed")
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["keep.mp4"]


def test_a_failed_run_removes_its_own_partial_output_even_if_its_writer_never_could(tmp_path):
    out = tmp_path / "new" / "out.mp4"
    theirs = tmp_path / "new" / ".out.run-otherhost-1-0123abcd.ffffff.partial.mp4"
    with pytest.raises(KeyboardInterrupt):
        with OutputPlace(out):
            files.partial_path(out).write_bytes(b"half")  # a signal landed before the writer's cleanup was armed
            theirs.write_bytes(b"another run's")
            raise KeyboardInterrupt
    assert [p.name for p in out.parent.iterdir()] == [theirs.name]


def test_a_successful_run_keeps_its_folders(tmp_path):
    with OutputPlace(tmp_path / "new" / "out.mp4"):
        pass
    assert (tmp_path / "new").is_dir()


def test_estimate_grows_with_pixels_and_seconds():
    small = safety.estimate_output_bytes(320, 240, 3.0, 25)
    assert safety.estimate_output_bytes(1920, 1080, 3.0, 25) > 10 * (small - (64 << 10))
    assert safety.estimate_output_bytes(320, 240, 30.0, 25) > small


# -- SIGTERM -----------------------------------------------------------------------------------------------------------
SIGTERM_RUN = """
import sys, time
from pathlib import Path
import numpy as np
from lipsync_core.support import files, safety
from lipsync_core.media.video import VideoWriter
out = Path(sys.argv[1])
try:
    with safety.sigterm_as_interrupt(), VideoWriter(out, size=(64, 48), fps=25, preset="ultrafast") as w:
        scratch = out.with_name("scratch.tmp")
        scratch.write_text("temporary")
        try:
            for i in range(100_000):
                w.write(np.full((48, 64, 3), i % 256, np.uint8))
                if i == 20:
                    print("encoding", flush=True)
        finally:
            scratch.unlink()
except KeyboardInterrupt as exc:
    print("lipsync: interrupted", file=sys.stderr)
    sys.exit(safety.exit_status(exc))
"""


def test_sigterm_mid_encode_exits_143_and_leaves_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SIGTERM_RUN), str(tmp_path / "out.mp4")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "encoding"
    p.send_signal(signal.SIGTERM)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_handler_is_restored_afterwards():
    before = signal.getsignal(signal.SIGTERM)
    with safety.sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_exit_status_of_interruptions():
    assert safety.exit_status(safety.Terminated()) == 143
    assert safety.exit_status(KeyboardInterrupt()) == 130


# -- option values -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "message"), [
    ({"fps": float("inf")}, "--fps must be a finite number"),
    ({"fps": 0.001}, "--fps must be between 1 and 240"),
    ({"audio_offset_ms": float("nan")}, "--audio_offset_ms must be a finite number"),
    ({"device": "cuda:abc"}, "--device must be auto, cpu, cuda or cuda:N"),
    ({"fidelity": float("nan")}, "--fidelity must be a finite number"),
])
def test_absurd_option_values_are_one_line_errors(options, message):
    from lipsync_core.engine.plan import make_config

    with pytest.raises(LipsyncError, match=message):
        make_config("original", **options)


def test_a_gpu_number_is_a_valid_device():
    from lipsync_core.engine.plan import make_config

    assert make_config("original", device="cuda:1").device == "cuda:1"
