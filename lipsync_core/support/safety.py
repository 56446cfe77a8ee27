"""Run-level guards: checks made before any work, and cleanup whatever way a run ends.

* :func:`check_not_an_input`: the output path is none of the inputs (by file identity: another spelling,
  a symlink or a hard link is the same file).
* :func:`output_format`: the container the output's extension names, or a clear refusal.
* :class:`OutputPlace`: the output folder exists (created if needed, removed again when the run fails),
  can be written and has room, all found before pass 1.
* :func:`sigterm_as_interrupt`: SIGTERM (``timeout``, ``docker stop``, a notebook's interrupt) unwinds
  the run like Ctrl-C, so every cleanup path runs; front ends exit with :data:`EXIT_TERMINATED`.
* :func:`reclaim_leftovers`: partial outputs and temporary folders of runs that were killed (SIGKILL,
  power loss) are removed by the next run, only when their process is gone.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from . import files
from .errors import LipsyncError

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

#: Output extensions and the ffmpeg muxer that writes each (all hold H.264 video with AAC audio).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread so the run unwinds like Ctrl-C."""


# -- inputs and outputs --------------------------------------------------------------------------------------------
def check_not_an_input(outfile: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None],
                       flag: str = "--outfile") -> None:
    """Refuse an output path that is one of ``inputs`` (role -> path; remote or missing ones are skipped).

    Compares file identity (device and inode), so ``./a.mp4``, ``../dir/a.mp4``, a symlink to it and a
    hard link of it all count as the same file.
    """
    out = Path(outfile)
    try:
        out_stat = out.stat()
    except OSError:
        return  # nothing there yet: it cannot be an input
    for role, given in inputs.items():
        if given is None:
            continue
        try:
            st = os.stat(given)
        except (OSError, ValueError):
            continue  # a URL, a Drive ID, a file that is not there
        if (st.st_dev, st.st_ino) == (out_stat.st_dev, out_stat.st_ino):
            how = "" if os.path.abspath(given) == os.path.abspath(out) else f" (the same file as {given})"
            raise LipsyncError(f"{flag} {outfile} is the {role} input{how}; writing there would destroy it. "
                               "Give another output path (the input is untouched)")


def output_format(outfile: str | os.PathLike, flag: str = "--outfile") -> str:
    """The ffmpeg muxer for the output's extension (H.264 + AAC); raises LipsyncError for any other one
    (and for an existing folder, whatever its name)."""
    if Path(outfile).is_dir():
        raise LipsyncError(f"{flag} {outfile} is an existing folder; give a file name inside it, "
                           f"e.g. {Path(outfile) / 'result.mp4'}")
    suffix = Path(outfile).suffix.lower()
    if suffix in CONTAINERS:
        return CONTAINERS[suffix]
    named = f"the extension {suffix}" if suffix else "no extension"
    raise LipsyncError(f"{flag} {outfile} has {named}; the output is H.264 video with AAC audio, written as "
                       f"{', '.join(CONTAINERS)}: name the file with one of those")


def estimate_output_bytes(width: int, height: int, seconds: float, fps: float) -> int:
    """A rough upper estimate of an H.264 (CRF 18) + AAC output's size: 0.15 bit per pixel (talking heads at CRF
    18 take about 0.1), 192 kbit/s audio, 64 KiB of container. A disk that fills anyway fails the encoder with a
    one-line error naming the output and the cause."""
    video_bits = width * height * fps * seconds * 0.15
    return int((video_bits + 192_000 * seconds) / 8) + (64 << 10)


def _cause(exc: OSError) -> str:
    return exc.strerror or str(exc)


class OutputPlace:
    """The folder an output goes to, made ready before any work and cleaned up if the run fails.

    Use as a context manager around the run: on entry (or :meth:`prepare`) the missing parent folders
    are created and the folder is probed by creating and removing a small file, so a read-only or
    unwritable folder fails at once with one line naming it; on a failed exit the folders it created
    are removed again (when empty). :meth:`check_space` compares an estimate with the free space.
    """

    def __init__(self, outfile: str | os.PathLike, flag: str = "--outfile") -> None:
        self.outfile = Path(outfile)
        self.flag = flag
        self.created: list[Path] = []

    def prepare(self) -> OutputPlace:
        out = self.outfile
        if out.is_dir():
            raise LipsyncError(f"{self.flag} {out} is an existing folder; give a file name inside it, "
                               f"e.g. {out / 'result.mp4'}")
        folder = out.parent if str(out.parent) else Path(".")
        missing: list[Path] = []
        p = folder
        while not p.exists():
            if p.is_symlink():  # a dangling symlink: mkdir would fail with a confusing message
                raise LipsyncError(f"cannot create the output folder {folder}: {p} is a broken symbolic link")
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        if p.exists() and not p.is_dir():
            raise LipsyncError(f"cannot create the output folder {folder}: {p} is a file, not a folder")
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue  # another run made it a moment ago: not ours to remove
            except OSError as exc:
                self.cleanup()
                raise LipsyncError(f"cannot create the output folder {d}: {_cause(exc)}; choose another "
                                   f"{self.flag}") from None
            self.created.append(d)
        probe = files.temp_name(out)
        try:
            with files._open_new(probe) as f:
                f.write(b"\0")
        except OSError as exc:
            files.remove_quietly(probe)
            self.cleanup()
            raise LipsyncError(f"cannot write to the output folder {folder.resolve()}: {_cause(exc)}; "
                               f"choose another {self.flag}") from None
        probe.unlink()
        return self

    def check_space(self, needed_bytes: int) -> None:
        """Raise LipsyncError when the output folder has less free space than ``needed_bytes``."""
        folder = self.outfile.parent
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return
        if free < needed_bytes:
            raise LipsyncError(f"not enough space for the output in {folder.resolve()}: {free / 1e6:.1f} MB free, "
                               f"about {needed_bytes / 1e6:.1f} MB needed; free some space or choose another "
                               f"{self.flag}")

    def cleanup(self) -> None:
        """Remove this run's partial files of the output (a signal may land before their writer can), then the
        folders this run created, deepest first, where they are still empty."""
        for leftover in files.own_partials(self.outfile):
            files.remove_quietly(leftover)
        for d in reversed(self.created):
            try:
                d.rmdir()
            except OSError:
                break  # something else was written there: keep it and its parents
        self.created.clear()

    def __enter__(self) -> OutputPlace:
        return self.prepare()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.cleanup()


# -- signals -------------------------------------------------------------------------------------------------------
@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread.

    Outside the main thread (where no handler can be installed) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(exc: BaseException) -> int:
    """The exit status a front end returns for an interruption: 143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


# -- leftovers of killed runs --------------------------------------------------------------------------------------
def reclaim_leftovers(*folders: str | os.PathLike) -> list[Path]:
    """Remove what killed runs left: ``lipsync-*`` temporary folders in the system temp dir, and partial
    outputs and temporary files (``.<name>.run-…``) in ``folders``. Only entries whose process is gone."""
    removed = files.reclaim(tempfile.gettempdir(), prefix="lipsync-")
    for folder in folders:
        removed += files.reclaim(folder, prefix=".")
    return removed
