"""Finding and running ffmpeg: argument lists only, one-line errors.

The executable is resolved at call time as ``LIPSYNC_FFMPEG`` -> ``ffmpeg`` on ``PATH`` ->
``imageio_ffmpeg``'s bundled binary. ffprobe is never needed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from typing import IO

from ..support import environment
from ..support.errors import LipsyncError

Arg = str | os.PathLike

# Lines that say nothing about *why* ffmpeg failed: progress, summaries, and the cascade that ffmpeg 6+
# prints after the real cause as its threads shut down.
_NOISE = re.compile(
    r"^(frame=|size=|video:|audio:|Press \[q\]|Conversion failed|Exiting normally|\s*Last message repeated|"
    r"Error opening (input|output) files?\b|Error initializing output stream|Error while opening encoder|"
    r"Error selecting an encoder|Error sending frames to consumers|Task finished with error code|"
    r"Terminating thread with return code|Could not open encoder before EOF|Nothing was written into output file)"
)
_LOG_PREFIX = re.compile(r"^(\[[^\]]+ @ (0x)?[0-9a-fA-F]+\]\s*)+")


def ffmpeg_exe() -> str:
    """The ffmpeg executable to use: ``LIPSYNC_FFMPEG``, else ``ffmpeg`` on PATH, else imageio-ffmpeg's binary."""
    return _resolve(*environment.ffmpeg_lookup())


@lru_cache(maxsize=8)
def _resolve(override: str, path: str, _imageio_override: str) -> str:
    # The arguments are only the cache key: a change of any of them re-resolves.
    if override:
        found = shutil.which(override, path=path)
        if found is None:
            raise LipsyncError(f"LIPSYNC_FFMPEG={override!r} is not an executable file; fix or unset it")
        return found
    found = shutil.which("ffmpeg", path=path)
    if found is not None:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise LipsyncError(
            "no ffmpeg found: pip install imageio-ffmpeg, install ffmpeg (apt-get install ffmpeg) "
            "or set LIPSYNC_FFMPEG to its path"
        ) from e


def _command(args: Sequence[Arg], loglevel: str | None) -> list[str]:
    if isinstance(args, (str, bytes)):
        raise TypeError("ffmpeg arguments must be a list of strings, never one shell string")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin"]
    if loglevel is not None:
        cmd += ["-loglevel", loglevel]
    return cmd + [os.fspath(a) for a in args]


def last_error_line(stderr: bytes | str) -> str:
    """The last line of ffmpeg's stderr that explains a failure (log prefixes such as ``[in#0 @ 0x..]`` removed)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [_LOG_PREFIX.sub("", line).strip() for line in re.split(r"[\r\n]+", text)]
    meaningful = [line for line in lines if line and not _NOISE.match(line)]
    return meaningful[-1] if meaningful else "ffmpeg failed without a message"


def run_ffmpeg(args: Sequence[Arg], *, what: str, input: bytes | None = None, loglevel: str | None = "error",
               capture_stdout: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    """Run ffmpeg with ``args`` (after ``-hide_banner -nostdin -loglevel <loglevel>``) and wait for it.

    ``what`` completes the error message "could not <what>: <ffmpeg's reason>" raised as
    :class:`LipsyncError` when ffmpeg exits non-zero (unless ``check`` is False). stderr is always
    captured; stdout only with ``capture_stdout`` (e.g. ``pipe:1`` outputs). ``input`` is fed to stdin.
    """
    cmd = _command(args, loglevel)
    proc = subprocess.run(cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    if check and proc.returncode != 0:
        raise LipsyncError(f"could not {what}: {last_error_line(proc.stderr)}")
    return proc


class FfmpegProcess:
    """A running ffmpeg with pipes; stderr goes to a temp file so a chatty ffmpeg can never block on it.

    Use as a context manager, or call :meth:`finish` (wait and check) / :meth:`kill`.
    """

    def __init__(self, args: Sequence[Arg], *, what: str, stdin: bool = False, stdout: bool = False,
                 loglevel: str = "error") -> None:
        self.what = what
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                _command(args, loglevel),
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=self._stderr,
            )
        except BaseException:
            self._stderr.close()
            raise

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None, "started without stdin=True"
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None, "started without stdout=True"
        return self.proc.stdout

    def error(self) -> LipsyncError:
        """The one-line error for a failed run (reads what ffmpeg wrote to stderr so far)."""
        self._stderr.flush()
        self._stderr.seek(0)
        return LipsyncError(f"could not {self.what}: {last_error_line(self._stderr.read())}")

    def finish(self, timeout: float | None = None) -> None:
        """Close our pipe ends, wait for ffmpeg and raise :class:`LipsyncError` if it failed."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except BrokenPipeError:  # ffmpeg already exited; its stderr says why
                    pass
        rc = self.proc.wait(timeout)
        try:
            if rc != 0:
                raise self.error()
        finally:
            self._stderr.close()

    def kill(self) -> None:
        """Stop ffmpeg now (idempotent); used on errors and early exits."""
        if self.proc.poll() is None:
            self.proc.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        self.proc.wait()
        self._stderr.close()

    def __enter__(self) -> FfmpegProcess:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.kill()
