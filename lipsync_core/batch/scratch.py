"""Temporary and partial files of a batch carry the host and process that write them.

On a shared filesystem several machines write beside each other; a file left by a process that died is
reclaimed (deleted) only by the same host, once that process is gone, never by another machine, which cannot
tell whether the writer still runs.
"""
from __future__ import annotations

import glob
import os
import re
import socket
from pathlib import Path

_TAG = re.compile(r"\.lipsync-(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)(?:\.|$)")


def host() -> str:
    """This machine's name, in characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname()) or "host"


def tag() -> str:
    """``.lipsync-<host>-<pid>``: what marks a file as this process's."""
    return f".lipsync-{host()}-{os.getpid()}"


def temp_output(outfile: Path) -> Path:
    """Where a job renders before its output is renamed into place (the video writer's own partial file,
    ``.<stem>.partial.mp4`` beside it, carries the tag too)."""
    return outfile.with_name(f".{outfile.stem}{tag()}.mp4")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(path: Path) -> bool:
    """True when ``path`` carries this host's tag and the process that wrote it no longer runs."""
    m = _TAG.search(path.name)
    return m is not None and m["host"] == host() and not _alive(int(m["pid"]))


def _temp_files(outfile: Path) -> list[Path]:
    if not outfile.parent.is_dir():
        return []
    stem = glob.escape(outfile.stem)
    return [p for pattern in (f".{stem}.lipsync-*", f"..{stem}.lipsync-*") for p in outfile.parent.glob(pattern)]


def still_written(outfile: Path) -> bool:
    """Whether a live process of this host still has temporary files of ``outfile``."""
    mine = f".lipsync-{host()}-"
    return any(mine in p.name and not owner_gone(p) for p in _temp_files(outfile))


def reclaim(outfile: Path) -> list[Path]:
    """Delete the temporary/partial files of ``outfile`` left by dead processes of this host; returns them."""
    removed = [p for p in _temp_files(outfile) if owner_gone(p)]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed
