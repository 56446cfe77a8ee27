"""Files that are never seen half-written, names that say which run wrote them, and optional caches.

* :func:`run_tag` names this process (``run-<host>-<pid>-<random>``). Every partial output, temporary file
  and temporary folder of a run carries it, so two runs never share one, and a later run can tell the
  leftovers of a killed run (its process is gone) from those of a live one (:func:`reclaim`).
* :func:`atomic_file` / :func:`atomic_write_text`: write to a run-unique temporary file beside the
  destination, flush it to disk, then rename it into place: readers see the old or the new file, never a
  torn one, and concurrent writers never mix their bytes (the last rename wins).
* Caches are optional: a write that fails because the cache cannot be written (read-only mount, no
  permission, full disk) is reported once per cache root by :func:`cache_unwritable`, and the caller
  carries on without caching.

Only the standard library and :mod:`lipsync_core.support.errors` are imported, so every layer may use this.
"""
from __future__ import annotations

import errno
import glob
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

#: errno values that mean "this place cannot be written" (as opposed to a bug or a missing file): read-only, no
#: permission, no space or quota, and a file where a folder should be (ENOTDIR, or EEXIST from mkdir).
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                        errno.EEXIST})

_TAG = re.compile(r"run-(?P<host>[A-Za-z0-9]{1,24})-(?P<pid>\d{1,10})-(?P<rand>[0-9a-f]{8})")
_run_tag: dict[int, str] = {}  # per pid: a forked child gets its own tag
_warned_roots: set[str] = set()  # cache roots already reported as unwritable (one warning per root and process)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"


def run_tag() -> str:
    """This process's tag, ``run-<host>-<pid>-<8 hex>``: the same for the whole process, unique across runs."""
    pid = os.getpid()
    if pid not in _run_tag:
        _run_tag[pid] = f"run-{_host()}-{pid}-{secrets.token_hex(4)}"
    return _run_tag[pid]


def owner(name: str) -> tuple[str, int] | None:
    """(host, pid) of the run tag inside ``name``, or None when it has none."""
    m = _TAG.search(name)
    return (m["host"], int(m["pid"])) if m else None


def owner_gone(name: str) -> bool:
    """True only when ``name`` carries a run tag of this host whose process no longer exists.

    A tag from another host (a shared network folder) or a live process is never "gone".
    """
    found = owner(name)
    if found is None or found[0] != _host():
        return False
    pid = found[1]
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that exited but was not reaped yet (it writes nothing any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def partial_path(path: str | os.PathLike) -> Path:
    """A new partial file name for ``path``, unique to this run and call: ``.<stem>.<run tag>.<random>.partial<suffix>``
    beside it (same suffix, so tools that go by the extension still work on it)."""
    p = Path(path)
    return p.with_name(f".{p.stem}.{run_tag()}.{secrets.token_hex(3)}.partial{p.suffix}")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 8 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def own_partials(path: str | os.PathLike) -> list[Path]:
    """The partial files of ``path`` that :func:`partial_path` named in this process and that exist."""
    p = Path(path)
    return sorted(p.parent.glob(f"{glob.escape(f'.{p.stem}.{run_tag()}.')}*.partial{glob.escape(p.suffix)}"))


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path`` carrying this run's tag (``.<name>.<tag>.<random>.tmp``)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{run_tag()}.{secrets.token_hex(3)}.tmp")


def make_temp_dir(purpose: str, parent: str | os.PathLike | None = None) -> Path:
    """A new folder ``lipsync-<purpose>-<run tag>-<random>`` (in the system temp dir by default)."""
    return Path(tempfile.mkdtemp(prefix=f"lipsync-{purpose}-{run_tag()}-", dir=parent))


def _open_new(path: Path) -> IO[bytes]:
    """Create ``path`` (which must not exist) for writing. The one place cache and output files are created:
    tests replace it to inject EROFS/ENOSPC where no read-only or full mount can be made."""
    return open(path, "xb")


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file object whose content replaces ``path`` atomically when the block ends without error.

    The bytes go to a run-unique temporary file beside ``path``, are flushed to disk, and the file is
    renamed over ``path``. On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = temp_name(path)
    f = _open_new(tmp)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically (see :func:`atomic_file`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_quietly(path: str | os.PathLike) -> None:
    """Remove a file if it is there; any error (missing, read-only filesystem) is ignored."""
    try:
        os.unlink(path)
    except OSError:
        pass


def unwritable(exc: BaseException) -> bool:
    """Whether ``exc`` says a place cannot be written (read-only, no permission, no space, quota)."""
    return isinstance(exc, OSError) and exc.errno in UNWRITABLE


def cache_unwritable(root: str | os.PathLike, exc: OSError, doing: str) -> None:
    """Report once per cache ``root`` (and process) that it cannot be written; the caller goes on uncached."""
    key = os.path.abspath(root)
    if key in _warned_roots:
        log.debug("cache %s still not writable (%s while %s)", root, exc.strerror or exc, doing)
        return
    _warned_roots.add(key)
    log.warning("the cache %s cannot be written (%s while %s); continuing without caching", root,
                exc.strerror or exc, doing)


def reclaim(directory: str | os.PathLike, *, prefix: str = "") -> list[Path]:
    """Remove the files and folders in ``directory`` (not recursing) whose name starts with ``prefix`` and
    carries the run tag of a process of this host that is gone (a killed run's partial output, temporary
    files or temporary folder). Returns what was removed; anything that cannot be removed is left."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(os.fspath(directory)))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not owner_gone(entry.name):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.debug("could not reclaim %s (%s)", path, exc)
            continue
        log.info("removed %s, left by a run that was killed", path)
        removed.append(path)
    return removed
