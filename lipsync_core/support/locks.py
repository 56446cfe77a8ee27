"""Advisory file locks between processes: the weight cache's fetch locks, in-use marks and the prune's probe.

:func:`file_lock` serialises the processes that fill one cache entry; :func:`hold_shared` marks an entry as in
use for the life of the process; :func:`file_lock_nowait` is how ``lipsync cache prune`` asks whether anyone
holds one. All are best effort where locking cannot work: a read-only or full cache, a filesystem without
locks, or Windows (no ``fcntl``), where they run unlocked rather than fail.
"""
from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .files import UNWRITABLE

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent fetches are then not serialised
    fcntl = None  # type: ignore[assignment]  # the module or None, tested before each use

log = logging.getLogger(__name__)


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) across processes.

    Filesystems without locking support (some network mounts) run unlocked rather than fail.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+b")
    except OSError as exc:  # a read-only or full cache (a prepared folder, a read-only mount): nothing to serialise
        if exc.errno not in UNWRITABLE:
            raise
        log.debug("cannot create the lock %s (%s); continuing unlocked", path, exc)
        yield
        return
    with fh:
        if fcntl is None:
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to finish fetching %s", path.with_suffix("").name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            log.debug("no file locking on %s (%s); continuing unlocked", path.parent, exc)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Shared locks this process holds on entries it uses (see hold_shared); released when the process exits.
_held: dict[str, IO[bytes]] = {}


def hold_shared(path: str | Path) -> None:
    """Hold a shared lock on ``path`` (created if needed) until this process exits: marks a cache entry as in
    use, so ``lipsync cache prune`` (which needs it exclusively) leaves it alone. Best effort: a cache where
    the lock cannot be created or taken is simply not marked."""
    key = os.path.abspath(path)
    if key in _held or fcntl is None:
        return
    try:
        fh = open(path, "a+b")
    except OSError:
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # being pruned right now (it waits for nobody), or no locking here
        fh.close()
        return
    _held[key] = fh


def release_held() -> None:
    """Release every lock :func:`hold_shared` took (a long-lived process whose runs are over)."""
    while _held:
        _held.popitem()[1].close()


def file_lock_nowait(path: str | Path) -> IO[bytes] | None:
    """An exclusive lock on ``path`` taken without waiting: the open file (close it to release), or None when
    another process holds the lock (shared or exclusive)."""
    try:
        fh = open(path, "a+b")
    except OSError:
        return open(os.devnull, "a+b")  # nothing can hold a lock that cannot be created
    if fcntl is None:
        return fh
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    except OSError:
        return fh  # no locking on this filesystem
    return fh
