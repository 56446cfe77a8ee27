"""Weight files: fetched from a user's source or the manifest's, verified once, cached.

:func:`fetch` returns a path that :func:`lipsync_core.models.load` accepts. For a downloaded file that
is the *weights-only copy* (a zip-format checkpoint holding only the state dict, made once after the
original passed verification): it loads faster and needs far less memory than unpickling, say, the
436 MB ``wav2lip_gan.pth`` with its optimizer state. The original stays beside it, byte-for-byte as
published, so its sha256 can be re-checked (``lipsync weights verify``). A user's local file is never
modified or moved; its weights-only copy goes into the cache (``local/``).

Cache layout, under ``<root>/weights`` where root is the ``cache_dir`` argument, else ``LIPSYNC_CACHE``,
else ``$XDG_CACHE_HOME/lipsync``, else ``~/.cache/lipsync`` (notebooks may point it at a mounted Drive
folder so weights survive runtime resets)::

    <file>                         the verified download, exactly as published
    <file>.json                    what was verified: size, mtime, sha256, validated, the weights-only copy
    <stem>.stripped.pth            the weights-only copy (what fetch returns)
    <file>.lock                    serialises fetches of one file across processes
    <file>.part, <file>.part.src   an interrupted download and the source it came from (resumed later)
    sources/<key>/<file>           a download from a user-given URL or Drive ID (it may differ from the
                                   manifest's file, so it never takes the manifest file's place)
    local/<key>.json               what was verified about a user's local file
    local/<key>.stripped.pth       its weights-only copy

A cached file is checked by size on every use and by sha256 once; its record remembers the result
(re-checked when size or mtime change). Anything that fails a check is deleted. ``LIPSYNC_OFFLINE=1``
turns a cache miss into an error without touching the network.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import paths
from ..errors import LipsyncError
from . import download
from .download import DownloadError
from .manifest import Manifest, Source, WeightEntry, load_manifest

log = logging.getLogger(__name__)

Validator = Callable[[Path], None]
OFFLINE_ENV = "LIPSYNC_OFFLINE"


@dataclass
class _Record:
    """The verified state of one file, stored as ``<file>.json`` (or under ``local/``)."""

    size: int
    mtime_ns: int
    sha256: str
    validated: bool
    source: str
    stripped_size: int | None = None
    stripped_mtime_ns: int | None = None

    def matches(self, path: Path) -> bool:
        st = path.stat()
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns

    def stripped_matches(self, path: Path) -> bool:
        if not path.is_file():
            return False
        st = path.stat()
        return st.st_size == self.stripped_size and st.st_mtime_ns == self.stripped_mtime_ns


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``LIPSYNC_CACHE``, else ``$XDG_CACHE_HOME/lipsync``, else ``~/.cache/lipsync``."""
    return paths.cache_dir(cache_dir)


def weights_dir(cache_dir: str | Path | None = None) -> Path:
    """Where weight files are cached: ``<cache root>/weights``."""
    return cache_root(cache_dir) / "weights"


def offline() -> bool:
    """True when ``LIPSYNC_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def fetch(weight_id: str, *, source: str | Path | None = None, cache_dir: str | Path | None = None,
          validate: Validator | None = None, manifest: Manifest | None = None, progress: bool = True) -> Path:
    """A verified local path for ``weight_id``, downloading it when needed (see the module doc for which path).

    ``source`` (a local path, URL, Google Drive ID or share link) is tried first, then the manifest's
    sources in order. ``validate(path)`` (``lipsync_core.models.validator(arch)``) must raise
    LipsyncError when the file does not load as the expected architecture; a user-given file whose
    size or sha256 differs from the manifest is accepted, with a warning, only when it validates.
    Raises LipsyncError naming the weight, every source tried and what to do.
    """
    man = manifest or load_manifest()
    entry = man.entry(weight_id)
    root = weights_dir(cache_dir)
    failures: list[DownloadError] = []
    if source is not None:
        local, remote = _user_source(str(source))
        if local is not None:
            return _use_local(entry, local, root, validate, man)
        assert remote is not None
        slot = root / "sources" / _key(remote) / entry.file
        try:
            return _obtain(entry, slot, [remote], validate, man, user_given=True, progress=progress)
        except _Offline:
            log.warning("%s: %s is not cached and %s is set; using the manifest's file", weight_id,
                        download.describe(remote), OFFLINE_ENV)
        except _Exhausted as exc:
            failures += exc.failures
            log.warning("%s: the given source failed (%s); trying the manifest's sources", weight_id,
                        exc.failures[0])
    try:
        return _obtain(entry, root / entry.file, list(entry.sources), validate, man, user_given=False,
                       progress=progress)
    except _Offline:
        raise LipsyncError(f"{weight_id} ({entry.file}) is not in the cache ({root}) and {OFFLINE_ENV} is set, "
                           f"so nothing is downloaded; unset {OFFLINE_ENV} or pass the file's local path") from None
    except _Exhausted as exc:
        failures += exc.failures
    raise LipsyncError(_summary(entry, failures))


def status(weight_id: str, *, cache_dir: str | Path | None = None, manifest: Manifest | None = None) -> str:
    """Cache state without hashing: ``verified``, ``cached`` (not hash-checked yet), ``damaged``,
    ``partial`` (an interrupted download) or ``missing``."""
    entry = (manifest or load_manifest()).entry(weight_id)
    path = weights_dir(cache_dir) / entry.file
    if path.is_file():
        rec = _read_record(_record_path(path))
        if rec is not None and rec.matches(path) and rec.sha256 == (entry.sha256 or rec.sha256):
            return "verified"
        return "cached" if entry.size in (None, path.stat().st_size) else "damaged"
    return "partial" if path.with_name(path.name + ".part.src").exists() else "missing"


def verify(weight_id: str, *, cache_dir: str | Path | None = None, validate: Validator | None = None,
           manifest: Manifest | None = None) -> bool:
    """Re-check a cached weight by size, sha256 and ``validate``; delete it when it fails.

    Returns False when the weight is not cached; raises LipsyncError (after deleting) when it is damaged.
    """
    man = manifest or load_manifest()
    entry = man.entry(weight_id)
    path = weights_dir(cache_dir) / entry.file
    if not path.is_file():
        return False
    with download.file_lock(_lock_path(path)):
        if not path.is_file():
            return False
        old = _read_record(_record_path(path))
        try:
            rec = _verified(entry, path, validate, man, user_given=False, source=old.source if old else "cache")
        except DownloadError as exc:
            _remove(path)
            raise LipsyncError(f"{weight_id}: the cached {entry.file} was damaged and has been deleted "
                               f"({exc.reason}); fetch it again") from None
        if old is not None:
            rec.stripped_size, rec.stripped_mtime_ns = old.stripped_size, old.stripped_mtime_ns
        _write_record(_record_path(path), rec)
    return True


# -- sources --------------------------------------------------------------------------------------

def _user_source(text: str) -> tuple[Path | None, Source | None]:
    """A user's ``source``: an existing local file, or a URL / Drive ID / share link."""
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_file():
            raise LipsyncError(f"{path} is a directory; pass the weight file itself")
        return path, None
    remote = download.remote_source(text)
    if remote is None:
        raise LipsyncError(f"{text!r} is not an existing file, a URL, or a Google Drive ID or share link")
    return None, remote


def _key(source: Source) -> str:
    if source.kind == "gdrive":
        return f"gdrive-{source.target}"
    return "url-" + hashlib.sha256(source.target.encode()).hexdigest()[:16]


class _Offline(LipsyncError):
    """A cache miss while ``LIPSYNC_OFFLINE`` is set."""


class _Exhausted(LipsyncError):
    """Every source of a slot failed."""

    def __init__(self, failures: list[DownloadError]) -> None:
        self.failures = failures
        super().__init__("; ".join(map(str, failures)))


def _obtain(entry: WeightEntry, slot: Path, sources: list[Source], validate: Validator | None, man: Manifest, *,
            user_given: bool, progress: bool) -> Path:
    """The loadable path for ``slot``: from the cache, else downloaded from the first source that works."""
    with download.file_lock(_lock_path(slot)):
        rec = _cached(entry, slot, validate, man, user_given=user_given)
        if rec is not None:
            return _loadable(entry, slot, rec)
        if offline():
            raise _Offline(str(slot))
        if not sources:
            raise _Exhausted([DownloadError("the manifest", "lists no source for it",
                                            "pass the file's local path, a URL or a Google Drive ID")])
        failures: list[DownloadError] = []
        for src in download.resumable_first(slot, sources):
            verified: list[_Record] = []

            def check(part: Path, label: str = download.describe(src), out: list[_Record] = verified) -> None:
                out.append(_verified(entry, part, validate, man, user_given=user_given, source=label))

            try:
                download.fetch(src, slot, expected_size=None if user_given else entry.size, check=check,
                               progress=progress)
            except DownloadError as exc:
                failures.append(exc)
                if len(failures) < len(sources):
                    log.warning("%s: %s: %s; trying the next source", entry.id, exc.what, exc.reason)
                continue
            rec = verified[0]
            _write_record(_record_path(slot), rec)
            return _loadable(entry, slot, rec)
    raise _Exhausted(failures)


def _summary(entry: WeightEntry, failures: list[DownloadError]) -> str:
    """One line: the weight, every source tried and why it failed, and what to do."""
    head = f"could not get {entry.id} ({entry.file})"
    if len(failures) == 1:
        return f"{head}: {failures[0]}"
    tried = "; ".join(f"{e.what}: {e.reason}" for e in failures)
    if any("quota" in e.reason for e in failures):
        advice = "Wait (Google Drive quotas reset within 24 h), or download"
    elif any("network error" in e.reason for e in failures):
        advice = "Check the internet connection, or download"
    else:
        advice = "Download"
    return (f"{head}; tried {tried}. {advice} {entry.file} from one of these sources yourself and pass its local "
            "path (or your own Google Drive copy's ID)")


# -- verification ---------------------------------------------------------------------------------

def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 8 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identify(man: Manifest, sha: str) -> str:
    """`` (this is …)`` when the hash belongs to another known file."""
    for other in man.weights.values():
        if other.sha256 == sha:
            return f" (this is {other.file}, weight {other.id})"
    known = man.known_files.get(sha)
    return f" (this is {known})" if known else ""


def _verified(entry: WeightEntry, path: Path, validate: Validator | None, man: Manifest, *, user_given: bool,
              source: str) -> _Record:
    """Check size, sha256 and ``validate``; a :class:`_Record` of the result, or DownloadError.

    A manifest source must match exactly. A user's file may differ (their own fine-tuned or converted
    checkpoint) when it validates; it is then accepted with a warning.
    """
    size = path.stat().st_size
    sha = sha256_file(path)
    mismatch = ""
    if entry.size is not None and size != entry.size:
        mismatch = f"{size:,} bytes where the manifest's {entry.file} has {entry.size:,}"
    elif entry.sha256 is not None and sha != entry.sha256.lower():
        mismatch = f"sha256 {sha[:12]}… differs from the manifest's {entry.sha256[:12]}…"
    mismatch += _identify(man, sha) if mismatch else ""
    if mismatch and not user_given:
        raise DownloadError(source, mismatch, "this source serves a different file")
    if mismatch and validate is None:
        raise DownloadError(source, mismatch, f"it can only be used once it is checked to load as {entry.arch}")
    if validate is not None:
        try:
            validate(path)
        except LipsyncError as exc:
            raise DownloadError(source, f"not a usable {entry.id} file: {exc}",
                                f"use a {entry.arch} checkpoint") from None
    if mismatch:
        log.warning("%s: %s has %s; using it because it loads as %s (a fine-tuned or converted checkpoint?)",
                    entry.id, source, mismatch, entry.arch)
    return _Record(size=size, mtime_ns=path.stat().st_mtime_ns, sha256=sha, validated=validate is not None,
                   source=source)


def _cached(entry: WeightEntry, slot: Path, validate: Validator | None, man: Manifest, *,
            user_given: bool) -> _Record | None:
    """The record of a usable cached ``slot`` (verifying it first when needed), else None.

    A cached file that fails its checks is deleted with a warning.
    """
    if not slot.is_file():
        return None
    rpath = _record_path(slot)
    rec = _read_record(rpath)
    trusted = rec is not None and rec.matches(slot) and (user_given or entry.sha256 in (None, rec.sha256))
    if trusted and (rec.validated or validate is None):
        return rec
    try:
        if trusted and validate is not None:
            try:
                validate(slot)
            except LipsyncError as exc:
                raise DownloadError(str(slot), f"not a usable {entry.id} file: {exc}") from None
            rec.validated = True
        else:
            rec = _verified(entry, slot, validate, man, user_given=user_given,
                            source=rec.source if rec else "cache")
    except DownloadError as exc:
        log.warning("%s: deleting the cached %s: %s", entry.id, slot.name, exc.reason)
        _remove(slot)
        return None
    _write_record(rpath, rec)
    return rec


def _use_local(entry: WeightEntry, path: Path, root: Path, validate: Validator | None, man: Manifest) -> Path:
    """A user's local file, verified (once per size and mtime), never modified; returns its weights-only copy,
    kept in the cache (``local/``), so later runs load it fast."""
    path = path.resolve()
    key = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    rpath = root / "local" / f"{key}.json"
    rec = _read_record(rpath)
    if rec is None or not rec.matches(path) or not (rec.validated or validate is None):
        try:
            rec = _verified(entry, path, validate, man, user_given=True, source=str(path))
        except DownloadError as exc:
            raise LipsyncError(f"{entry.id}: {exc}") from None
        _write_record(rpath, rec)
    return _loadable(entry, path, rec, stripped=root / "local" / f"{key}.stripped.pth", record=rpath)


# -- the weights-only copy ---------------------------------------------------------------------------

def _stripped_path(slot: Path) -> Path:
    return slot.with_name(f"{slot.stem}.stripped.pth")


def _loadable(entry: WeightEntry, slot: Path, rec: _Record, *, stripped: Path | None = None,
              record: Path | None = None) -> Path:
    """The weights-only copy of ``slot`` (made now if missing or stale), or ``slot`` when none can be made.

    The copy and ``rec`` live beside ``slot`` unless ``stripped``/``record`` say where (a user's own file
    gets nothing written beside it).

    A TorchScript export (what the official Wav2Lip link serves now) gets a copy of its parameters too,
    so the loader then reads a plain state dict.
    """
    stripped = stripped or _stripped_path(slot)
    if rec.stripped_matches(stripped):
        return stripped
    from ..models import checkpoints

    try:
        if checkpoints.checkpoint_format(slot) == "torchscript":
            state = checkpoints.read_torchscript_state(slot)
        else:
            state = checkpoints.extract_state_dict(checkpoints.read_checkpoint(slot), entry.convention, slot)
    except LipsyncError as exc:
        log.info("%s: no weights-only copy of %s (%s); using the original", entry.id, slot.name, exc)
        return slot
    checkpoints.save_stripped(state, stripped)
    st = stripped.stat()
    rec.stripped_size, rec.stripped_mtime_ns = st.st_size, st.st_mtime_ns
    _write_record(record or _record_path(slot), rec)
    return stripped


# -- records and cleanup ------------------------------------------------------------------------------

def _record_path(slot: Path) -> Path:
    return slot.with_name(slot.name + ".json")


def _lock_path(slot: Path) -> Path:
    return slot.with_name(slot.name + ".lock")


def _read_record(path: Path) -> _Record | None:
    try:
        return _Record(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _write_record(path: Path, rec: _Record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(rec), indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _remove(slot: Path) -> None:
    """Delete a cached file with its record and weights-only copy."""
    for p in (slot, _record_path(slot), _stripped_path(slot)):
        p.unlink(missing_ok=True)
