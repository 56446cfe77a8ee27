"""Faults for tests: read-only bind mounts, small tmpfs mounts, and EROFS/ENOSPC injected at file creation.

A fault that cannot be created here makes the test skip with the reason (:func:`made`), and fail under CI=true.

Tests run as root (here and in CI), where ``chmod`` does not stop writes, so an unwritable place needs a
real read-only mount or a full filesystem. :func:`readonly_bind` and :func:`small_tmpfs` make one (they need
CAP_SYS_ADMIN; :class:`FaultUnavailable` says why when they cannot), and always unmount afterwards.
:func:`failing_creation` injects the error at :func:`lipsync_core.support.files._open_new`, the one place cache and
output files are created, where no mount can be made (and for faults a mount cannot play).
"""
from __future__ import annotations

import errno as errno_mod
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from lipsync_core.support import files

T = TypeVar("T")


class FaultUnavailable(RuntimeError):
    """The fault cannot be created here (no privileges, no mount command); the message says why."""


def unavailable(reason: str) -> None:
    """Skip (fail under CI=true) because the fault could not be created."""
    msg = f"cannot create the fault: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI must be able to)")
    pytest.skip(msg)


@contextmanager
def made(fault: AbstractContextManager[T]) -> Iterator[T]:
    """Enter ``fault`` (a mount made here), or skip/fail with why it is impossible."""
    try:
        value = fault.__enter__()
    except FaultUnavailable as exc:
        unavailable(str(exc))
    try:
        yield value
    except BaseException as exc:
        if not fault.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        fault.__exit__(None, None, None)


def _mount(args: list[str]) -> None:
    if shutil.which("mount") is None:
        raise FaultUnavailable("no `mount` command")
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise FaultUnavailable(f"`mount {' '.join(args)}` failed: {r.stderr.strip() or r.returncode}")


def _umount(point: Path) -> None:
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


@contextmanager
def readonly_bind(source: str | os.PathLike) -> Iterator[Path]:
    """``source`` (a folder) visible read-only at a new mount point, which is yielded."""
    point = Path(tempfile.mkdtemp(prefix="lipsync-ro-"))
    try:
        _mount(["--bind", str(source), str(point)])
        try:
            _mount(["-o", "remount,bind,ro", str(point)])
            if os.access(point, os.W_OK) and _can_create(point):
                raise FaultUnavailable(f"the read-only bind mount at {point} still accepts writes")
            yield point
        finally:
            _umount(point)
    finally:
        point.rmdir()


@contextmanager
def small_tmpfs(size_bytes: int) -> Iterator[Path]:
    """A new, empty tmpfs of ``size_bytes`` (rounded up to pages), yielded as its mount point."""
    point = Path(tempfile.mkdtemp(prefix="lipsync-tmpfs-"))
    try:
        _mount(["-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(point)])
        try:
            yield point
        finally:
            _umount(point)
    finally:
        point.rmdir()


def fill(folder: str | os.PathLike, leave: int = 0) -> None:
    """Fill the filesystem of ``folder`` until at most ``leave`` bytes are free (with a file ``.filler``)."""
    free = shutil.disk_usage(folder).free - leave
    with open(Path(folder) / ".filler", "wb") as f:
        try:
            while free > 0:
                n = min(free, 1 << 20)
                f.write(b"\0" * n)
                f.flush()
                free -= n
        except OSError as exc:
            if exc.errno != errno_mod.ENOSPC:
                raise


def _can_create(folder: Path) -> bool:
    try:
        probe = folder / ".probe"
        probe.write_bytes(b"x")
        probe.unlink()
        return True
    except OSError:
        return False


class _FailingWriter:
    """A file object whose writes fail with ``err`` (the file itself was created)."""

    def __init__(self, f, err: int) -> None:
        self._f, self._err = f, err

    def write(self, data) -> int:
        raise OSError(self._err, os.strerror(self._err))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


@contextmanager
def failing_creation(under: str | os.PathLike, err: int = errno_mod.EROFS, *, at: str = "open") -> Iterator[None]:
    """Make :func:`lipsync_core.support.files._open_new` fail with ``err`` for paths under ``under``: when the file is
    created (``at="open"``) or when it is written (``at="write"``)."""
    if at not in ("open", "write"):
        raise ValueError("at must be 'open' or 'write'")
    root = os.path.abspath(under)
    real = files._open_new

    def fake(path: Path):
        if os.path.abspath(path).startswith(root + os.sep):
            if at == "open":
                raise OSError(err, os.strerror(err), str(path))
            return _FailingWriter(real(path), err)
        return real(path)

    files._open_new = fake
    try:
        yield
    finally:
        files._open_new = real
