"""The state file of a batch: what each job did, written atomically after every job, read back to resume.

A job is identified by a hash of its resolved configuration, its inputs' content (a local file's sha256; a URL,
Drive ID or YouTube link by its text, since its content is only known once fetched) and the sha256 of every
weight file it loads. A rerun skips a job only when that key is the recorded one and its output is still the
file recorded (same size and modification time).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..engine.options import RunOptions
from ..inputs.resolve import SAME_AS_FACE
from ..support.errors import LipsyncError
from ..support.files import atomic_write_text, sha256_file

STATE_VERSION = 1
#: Statuses a job ends a run with. "skipped": done by an earlier run, its output kept.
DONE, FAILED, SKIPPED = "done", "failed", "skipped"
#: Config fields left out of a job's identity: the weights count by their sha256, not by where they came from;
#: messages, progress bars and caches do not change the output.
_NOT_IDENTITY = {"weights", "cache_dir", "no_track_cache", "no_progress", "quiet"}


@dataclass
class Record:
    """One job's entry in the state file."""

    outfile: str
    key: str
    status: str
    row: int | None = None
    face: str = ""
    audio: str = ""
    size: int | None = None  # bytes of the output
    mtime: float | None = None  # its modification time when recorded
    duration: float | None = None  # seconds of video in the output
    seconds: float | None = None  # wall time of the run that made it
    error: str | None = None
    attempts: int = 1
    worker: str | None = None  # host:pid that ran it
    finished_at: str | None = None

    def output_matches(self) -> bool:
        """Whether the recorded output is still there, unchanged."""
        try:
            st = Path(self.outfile).stat()
        except OSError:
            return False
        return st.st_size == self.size and self.mtime is not None and abs(st.st_mtime - self.mtime) < 1.0


class StateFile:
    """Records by output path; :meth:`put` rewrites the whole file atomically (:mod:`lipsync_core.support.files`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser().resolve()
        self.records: dict[str, Record] = {}
        if self.path.is_file():
            self.records = self._read()

    def _read(self) -> dict[str, Record]:
        bad = LipsyncError(f"{self.path} is not a lipsync batch state file; move it away or pass another "
                           "--state FILE")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise bad from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise bad
        names = {f.name for f in fields(Record)}
        try:
            return {k: Record(**{n: v for n, v in rec.items() if n in names}) for k, rec in data["jobs"].items()}
        except (KeyError, TypeError, AttributeError):
            raise bad from None

    def get(self, outfile: str | os.PathLike) -> Record | None:
        return self.records.get(_out_key(outfile))

    def reusable(self, outfile: str | os.PathLike, key: str) -> Record | None:
        """The record of a finished job with this key whose output is unchanged, else None."""
        rec = self.get(outfile)
        if rec is not None and rec.status in (DONE, SKIPPED) and rec.key == key and rec.output_matches():
            return rec
        return None

    def put(self, rec: Record) -> None:
        rec.finished_at = rec.finished_at or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.records[_out_key(rec.outfile)] = rec
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": STATE_VERSION, "jobs": {k: asdict(r) for k, r in self.records.items()}}
        atomic_write_text(self.path, json.dumps(data, indent=1))


def _out_key(outfile: str | os.PathLike) -> str:
    return str(Path(outfile).expanduser().resolve())


class Identities:
    """Content identities of inputs and weights, each file hashed once per (path, size, mtime)."""

    def __init__(self) -> None:
        self._hashes: dict[tuple[str, int, int], str] = {}

    def file(self, path: str | os.PathLike) -> str:
        st = os.stat(path)
        k = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        if k not in self._hashes:
            self._hashes[k] = sha256_file(path)
        return self._hashes[k]

    def source(self, text: str) -> str:
        """``sha256:<hex>`` for a local file, ``same`` for the face's own sound, else ``source:<text>``."""
        if text.strip().lower() in ("", SAME_AS_FACE):
            return SAME_AS_FACE
        p = Path(text).expanduser()
        return f"sha256:{self.file(p)}" if p.is_file() else f"source:{text.strip()}"


def job_key(cfg: RunOptions, face_id: str, audio_id: str, weights: dict[str, str]) -> str:
    """The identity of one job: resolved config (weight sources replaced by ``weights``, role -> sha256),
    the inputs' identities."""
    config = {k: v for k, v in {**cfg.flat(), "weights": dict(cfg.weights)}.items() if k not in _NOT_IDENTITY}
    spec: dict[str, Any] = {"v": STATE_VERSION, "config": config, "face": face_id, "audio": audio_id,
                            "weights": dict(sorted(weights.items()))}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]
