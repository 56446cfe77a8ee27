"""ffmpeg resolution (LIPSYNC_FFMPEG -> PATH -> imageio-ffmpeg) and running it without a shell."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest

from lipsync_core.media.ffmpeg import FfmpegProcess, ffmpeg_exe, last_error_line, run_ffmpeg
from lipsync_core.support.errors import LipsyncError

BUNDLED = imageio_ffmpeg.get_ffmpeg_exe()


def _shim(directory: Path, log: Path) -> Path:
    """An executable named ffmpeg that records each call, then runs the bundled binary."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "ffmpeg"
    shim.write_text(f'#!/bin/sh\necho called >> "{log}"\nexec "{BUNDLED}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv("LIPSYNC_FFMPEG", raising=False)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)


def test_lipsync_ffmpeg_env_wins_over_path(tmp_path, monkeypatch, no_override):
    on_path = _shim(tmp_path / "bin", tmp_path / "path.log")
    chosen = _shim(tmp_path / "chosen", tmp_path / "chosen.log")
    monkeypatch.setenv("PATH", f"{on_path.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LIPSYNC_FFMPEG", str(chosen))
    assert ffmpeg_exe() == str(chosen)
    run_ffmpeg(["-version"], what="print the version")
    assert (tmp_path / "chosen.log").exists() and not (tmp_path / "path.log").exists()


def test_invalid_lipsync_ffmpeg_is_a_user_error(tmp_path, monkeypatch, no_override):
    monkeypatch.setenv("LIPSYNC_FFMPEG", str(tmp_path / "missing-ffmpeg"))
    with pytest.raises(LipsyncError, match="LIPSYNC_FFMPEG"):
        ffmpeg_exe()


def test_ffmpeg_on_path_is_used(tmp_path, monkeypatch, no_override):
    shim = _shim(tmp_path / "bin", tmp_path / "calls.log")
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    assert ffmpeg_exe() == str(shim)
    run_ffmpeg(["-version"], what="print the version")
    assert (tmp_path / "calls.log").read_text().count("called") == 1


def test_falls_back_to_imageio_ffmpeg_without_ffmpeg_on_path(tmp_path, monkeypatch, no_override):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no ffmpeg anywhere on PATH
    assert ffmpeg_exe() == BUNDLED


def test_resolution_follows_environment_changes(tmp_path, monkeypatch, no_override):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ffmpeg_exe() == BUNDLED
    shim = _shim(tmp_path / "bin", tmp_path / "calls.log")
    monkeypatch.setenv("PATH", str(shim.parent))
    assert ffmpeg_exe() == str(shim)


def test_no_ffmpeg_at_all_is_a_user_error(tmp_path, monkeypatch, no_override):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if not installed
    with pytest.raises(LipsyncError, match="no ffmpeg found"):
        ffmpeg_exe()


def test_run_ffmpeg_refuses_a_shell_string():
    with pytest.raises(TypeError, match="list"):
        run_ffmpeg("-version", what="print the version")  # type: ignore[arg-type]


def test_arguments_are_not_interpreted_by_a_shell(tmp_path):
    weird = tmp_path / "a b; touch pwned $(id).wav"
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=8000", "-t", "0.1", weird], what="write a file")
    assert weird.is_file()
    assert not (Path.cwd() / "pwned").exists()


def test_failure_is_one_line_with_ffmpegs_reason(tmp_path):
    with pytest.raises(LipsyncError) as err:
        run_ffmpeg(["-i", tmp_path / "nope.mp4", "-f", "null", "-"], what="decode nope.mp4")
    message = str(err.value)
    assert message.startswith("could not decode nope.mp4: ")
    assert "No such file or directory" in message and "\n" not in message


def test_last_error_line_skips_prefixes_and_boilerplate():
    stderr = (b"[h264 @ 0x55d0c2a1b2c0] decode_slice_header error\n"
              b"[in#0 @ 0x5557e34e1cc0] Error opening input: Invalid data found when processing input\n"
              b"Error opening input file x.mp4.\nError opening input files: Invalid data found\nConversion failed!\n")
    assert last_error_line(stderr) == "Error opening input: Invalid data found when processing input"


def test_last_error_line_skips_ffmpeg_6_shutdown_cascade():
    stderr = ("x264 [error]: invalid preset 'nosuch'\n"
              "[libx264 @ 0x55bb9f514800] Error setting preset/tune nosuch/(null).\n"
              "[vost#0:0/libx264 @ 0x55bb9f514280] [enc:libx264 @ 0x55bb9f514740] Error while opening encoder - "
              "maybe incorrect parameters such as bit_rate, rate, width or height.\n"
              "[vf#0:0 @ 0x55bb9f516d40] Error sending frames to consumers: Invalid argument\n"
              "[vf#0:0 @ 0x55bb9f516d40] Task finished with error code: -22 (Invalid argument)\n"
              "[vost#0:0/libx264 @ 0x55bb9f514280] Terminating thread with return code -22 (Invalid argument)\n"
              "[out#0/mp4 @ 0x55bb9f513940] Nothing was written into output file, because at least one of its "
              "streams received no packets.\n")
    assert last_error_line(stderr) == "Error setting preset/tune nosuch/(null)."


def test_process_failure_raises_on_finish(tmp_path):
    proc = FfmpegProcess(["-i", tmp_path / "missing.wav", "-f", "null", "-"], what="read missing.wav")
    with pytest.raises(LipsyncError, match="could not read missing.wav: .*No such file"):
        proc.finish()
