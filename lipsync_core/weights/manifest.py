"""The weights manifest: which files exist, how to verify them, where to get them, who needs them.

Schema (``schema_version`` 1)::

    {"schema_version": 1,
     "weights": {<weight id>: {"file": str, "size": int|null, "sha256": str|null, "license": str,
                               "arch": <registry name>, "convention": "state_dict"|"params"|"params_ema"|"raw",
                               "sources": [{"kind": "url"|"gdrive", "url"|"id": str, "hash_bound": bool,
                                            "note": str (optional)}, ...]}},
     "known_files": {<sha256>: <what that file is>, ...} (optional)}

``arch`` may also name a ``models.registry.FILE_SPECS`` entry: a weight that is no torch checkpoint (the
anime-face cascade, ``opencv_cascade``), checked by its own validator.
Which weight fills which role of a run is the run plan's business (:mod:`lipsync_core.engine.plan`), not the manifest's.
``known_files`` names other files that are often found where a weight was expected (another model, a
TorchScript export, a saved web page), so a mismatch can say what the file is.
The top-level ``weights_manifest.json`` is the single source; installs carry a copy inside the package.
``LIPSYNC_MANIFEST`` points at another file (tests use it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..support import environment
from ..support.errors import LipsyncError

SCHEMA_VERSION = 1
SOURCE_KINDS = ("url", "gdrive")


@dataclass(frozen=True)
class Source:
    """One place a weight file can be downloaded from."""

    kind: str  # "url" or "gdrive"
    target: str  # the URL, or the Drive file id
    hash_bound: bool = False  # a public record ties this source to the pinned sha256
    note: str = ""


@dataclass(frozen=True)
class WeightEntry:
    """One weight file of the manifest."""

    id: str
    file: str
    size: int | None
    sha256: str | None
    license: str
    arch: str
    convention: str
    sources: tuple[Source, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Manifest:
    weights: dict[str, WeightEntry]
    path: Path
    known_files: dict[str, str] = field(default_factory=dict)  # sha256 -> what that file is

    def entry(self, weight_id: str) -> WeightEntry:
        try:
            return self.weights[weight_id]
        except KeyError:
            raise LipsyncError(f"unknown weight id {weight_id!r}; known: {', '.join(sorted(self.weights))}") from None



def manifest_path() -> Path:
    """Where the manifest is read from: ``LIPSYNC_MANIFEST``, the packaged copy, or the repository's."""
    override = environment.manifest_override()
    if override is not None:
        return override
    package = Path(__file__).resolve().parent.parent
    packaged = package / "weights_manifest.json"
    return packaged if packaged.is_file() else package.parent / "weights_manifest.json"


def _source(raw: dict[str, Any]) -> Source:
    kind = raw["kind"]
    if kind not in SOURCE_KINDS:
        raise ValueError(f"source kind {kind!r} not in {SOURCE_KINDS}")
    target = raw["url"] if kind == "url" else raw["id"]
    return Source(kind=kind, target=target, hash_bound=bool(raw.get("hash_bound", False)), note=raw.get("note", ""))


def parse_manifest(data: dict[str, Any], path: Path) -> Manifest:
    """Validate and convert the JSON form; raises ``ValueError`` naming the first problem."""
    # Imported here: reading download sources (an input URL) must not load torch and every architecture.
    from ..models.checkpoints import CONVENTIONS
    from ..models.registry import FILE_SPECS, SPECS

    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version must be {SCHEMA_VERSION}")
    weights: dict[str, WeightEntry] = {}
    for wid, raw in data["weights"].items():
        if raw.get("arch") not in SPECS and raw.get("arch") not in FILE_SPECS:
            raise ValueError(f"{path}: {wid}: arch {raw.get('arch')!r} is not a registry architecture")
        if raw.get("convention") not in CONVENTIONS:
            raise ValueError(f"{path}: {wid}: convention {raw.get('convention')!r} not in {CONVENTIONS}")
        weights[wid] = WeightEntry(
            id=wid, file=raw["file"], size=raw.get("size"), sha256=(raw.get("sha256") or "").lower() or None,
            license=raw["license"], arch=raw["arch"], convention=raw["convention"],
            sources=tuple(_source(s) for s in raw.get("sources", [])))
    known = {sha.lower(): str(what) for sha, what in data.get("known_files", {}).items()}
    return Manifest(weights=weights, path=path, known_files=known)


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> Manifest:
    return parse_manifest(json.loads(path.read_text(encoding="utf-8")), path)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read (and cache per file version) the manifest."""
    p = Path(path) if path is not None else manifest_path()
    try:
        return _load(p, p.stat().st_mtime_ns)
    except FileNotFoundError:
        raise LipsyncError(f"weights manifest not found at {p}; "
                           "reinstall lipsync_core or unset LIPSYNC_MANIFEST") from None
