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
    <file>.lock                    serialises fetches of one file across processes (its mtime: last use)
    <file>.inuse                   held shared by each process using the file, so pruning skips it
    <file>.part, <file>.part.src   an interrupted download, its source and the server's validators
    <stem>.moved-<time><suffix>    a file found in the cache that was not the right model, moved aside
    sources/<key>/<file>           a download from a user-given URL or Drive ID (it may differ from the
                                   manifest's file, so it never takes the manifest file's place)
    local/<key>.json               what was verified about a user's local file
    local/<key>.stripped.pth       its weights-only copy

A cached file is checked by size on every use and by sha256 once; its record remembers the result
(re-checked when size or mtime change). A file with no matching record was put there by someone else
(the user's own copy, a synced Drive folder, an older version): it is treated like a local file given
by path, used (with a warning when it differs from the manifest) when it loads as the right model, and
otherwise moved aside, never deleted. Only a file this package downloaded and recorded, found not to
load, is deleted. Weights-only copies and records are derived data, remade when needed.

The cache is optional: when it cannot be written (read-only, no permission, full disk) a warning says so
once, local files are used in place and downloads go to a temporary folder removed at exit.
An entry whose size and sha256 are not published (null in the manifest) is *unpinned*: its first
download is recorded, with a warning showing the size and sha256 found, and it is listed as ``unpinned``,
never as verified. ``LIPSYNC_OFFLINE=1`` turns a cache miss into an error without touching the network.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..support import environment, files, locks, paths
from ..support.errors import LipsyncError
from ..support.files import sha256_file
from . import download
from .download import DownloadError
from .manifest import Manifest, Source, WeightEntry, load_manifest

log = logging.getLogger(__name__)

Validator = Callable[[Path], None]
OFFLINE_ENV = environment.OFFLINE


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
    differs: str | None = None  # how an accepted file differs from the manifest's (warned on every use)

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


def fetch(weight_id: str, *, source: str | Path | None = None, cache_dir: str | Path | None = None,
          validate: Validator | None = None, manifest: Manifest | None = None, progress: bool = True,
          flag: str | None = None) -> Path:
    """A verified local path for ``weight_id``, downloading it when needed (see the module doc for which path).

    ``source`` (a local path, URL, Google Drive ID or share link) is the user's choice: when it cannot be
    fetched or does not load, that is an error, never a silent switch to the manifest's file (which may be
    another model). Only when it is one of the manifest's own sources of this weight (the same file) are
    the others tried as well; naming the weight id itself means the manifest's file. ``flag`` says how the
    user gave ``source`` (``--checkpoint_path``) in messages. ``validate(path)``
    (``lipsync_core.models.validator(arch)``) must raise LipsyncError when the file does not load as the
    expected architecture; a user-given file whose size or sha256 differs from the manifest is accepted,
    with a warning, only when it validates. Raises LipsyncError naming the weight, every source tried and
    what to do.
    """
    man = manifest or load_manifest()
    entry = man.entry(weight_id)
    root = weights_dir(cache_dir)
    sources = list(entry.sources)
    text = None if source is None else str(source).strip()
    if text is not None and text != entry.id:
        given = f"{flag} {text}" if flag else text
        local, remote = _user_source(text, given)
        if local is not None:
            return _use_local(entry, local, root, validate, man, flag)
        assert remote is not None
        same = [s for s in entry.sources if (s.kind, s.target) == (remote.kind, remote.target)]
        if same:  # one of the manifest's own sources: the same file, so its other sources may stand in
            sources = same + [s for s in entry.sources if s not in same]
        else:
            slot = root / "sources" / _key(remote) / entry.file
            try:
                return _obtain(entry, slot, [remote], validate, man, user_given=True, progress=progress)
            except _Offline:
                raise LipsyncError(f"{given} is not in the cache and {OFFLINE_ENV} is set, so nothing is downloaded; "
                                   f"unset {OFFLINE_ENV} or pass a local file") from None
            except _Exhausted as exc:
                raise LipsyncError(_user_failure(entry, given, text, remote, exc.failures[0], flag)) from None
    try:
        return _obtain(entry, root / entry.file, sources, validate, man, user_given=False, progress=progress)
    except _Offline:
        raise LipsyncError(f"{weight_id} ({entry.file}) is not in the cache ({root}) and {OFFLINE_ENV} is set, "
                           f"so nothing is downloaded; unset {OFFLINE_ENV} or pass the file's local path") from None
    except _Exhausted as exc:
        raise LipsyncError(_summary(entry, exc.failures)) from None


def status(weight_id: str, *, cache_dir: str | Path | None = None, manifest: Manifest | None = None) -> str:
    """Cache state without hashing: ``verified``, ``unpinned`` (recorded, but no published sha256 to check
    it against), ``differs`` (accepted although it is not the manifest's file), ``cached`` (not hash-checked yet),
    ``damaged`` (not the manifest's size; judged on next use), ``partial`` (an interrupted download) or
    ``missing``."""
    entry = (manifest or load_manifest()).entry(weight_id)
    path = weights_dir(cache_dir) / entry.file
    if path.is_file():
        rec = _read_record(_record_path(path))
        if rec is not None and rec.matches(path):
            if rec.differs:
                return "differs"
            if rec.sha256 == (entry.sha256 or rec.sha256):
                return "verified" if entry.sha256 else "unpinned"
        return "cached" if entry.size in (None, path.stat().st_size) else "damaged"
    return "partial" if path.with_name(path.name + ".part.src").exists() else "missing"


def verify(weight_id: str, *, cache_dir: str | Path | None = None, validate: Validator | None = None,
           manifest: Manifest | None = None) -> bool:
    """Re-check a cached weight by size, sha256 and ``validate``.

    Returns False when the weight is not cached. When it is not the manifest's file, raises LipsyncError
    after deleting it (a download of this package that no longer loads) or moving it aside (anything else).
    """
    man = manifest or load_manifest()
    entry = man.entry(weight_id)
    path = weights_dir(cache_dir) / entry.file
    if not path.is_file():
        return False
    with locks.file_lock(_lock_path(path)):
        if not path.is_file():
            return False
        old = _read_record(_record_path(path))
        ours = old is not None and old.matches(path)
        try:
            rec = _verified(entry, path, validate, man, user_given=False, source=f"the cached {entry.file}")
        except DownloadError as exc:
            loads = False if isinstance(exc, _NotLoadable) else _loads(validate, path)  # refused: no second load
            done = _evict(entry, path, exc.reason, delete=ours and loads is False)
            raise LipsyncError(f"{weight_id}: the cached {entry.file} is not the manifest's file ({exc.reason}); "
                               f"{done}; fetch it again") from None
        if old is not None:
            rec.stripped_size, rec.stripped_mtime_ns = old.stripped_size, old.stripped_mtime_ns
        _write_record(_record_path(path), rec)
    return True


# -- sources --------------------------------------------------------------------------------------

def _user_source(text: str, given: str) -> tuple[Path | None, Source | None]:
    """A user's ``source``: an existing local file, or a URL / Drive ID / share link."""
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_file():
            raise LipsyncError(f"{given}: a directory; pass the weight file itself")
        return path, None
    remote = download.remote_source(text)
    if remote is None:
        raise LipsyncError(f"{given}: not an existing file, a URL, or a Google Drive ID or share link; check the path")
    return None, remote


def _user_failure(entry: WeightEntry, given: str, text: str, remote: Source, failure: DownloadError,
                  flag: str | None) -> str:
    """One line for a user-given source that failed: why, and that nothing else was used in its place."""
    also = " (and there is no local file of that name)" if remote.kind == "gdrive" and text == remote.target else ""
    instead = (f"fix {flag}, or leave it out to use the default {entry.file}" if flag
               else f"fix the source, or leave it out to use the default {entry.file}")
    hint = f"; {failure.hint}" if failure.hint else ""
    return (f"{given}{also}: {failure.reason}{hint}. Nothing else is used in its place (it may be another model "
            f"than the default): {instead}")


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


class _NotLoadable(DownloadError):
    """The file does not load as the expected model (``validate`` refused it)."""


def _obtain(entry: WeightEntry, slot: Path, sources: list[Source], validate: Validator | None, man: Manifest, *,
            user_given: bool, progress: bool) -> Path:
    """The loadable path for ``slot``: from the cache, else downloaded from the first source that works.

    When the cache cannot be written, the download goes to a temporary folder instead (removed at exit).
    """
    lock = _lock_path(slot)
    with locks.file_lock(lock):
        _touch(lock)  # its mtime is the entry's last use (`lipsync cache list`)
        rec = _cached(entry, slot, validate, man, user_given=user_given)
        if rec is not None:
            locks.hold_shared(_inuse_path(slot))  # taken before the fetch lock goes: prune never sees a gap
            return _loadable(entry, slot, rec)
        if environment.offline():
            raise _Offline(str(slot))
        if not sources:
            raise _Exhausted([DownloadError("the manifest", "lists no source for it",
                                            "pass the file's local path, a URL or a Google Drive ID")])
        if _writable(slot.parent):
            try:
                return _download(entry, slot, sources, validate, man, user_given=user_given, progress=progress)
            except OSError as exc:
                if not files.unwritable(exc):
                    raise
                files.cache_unwritable(_root_of(slot), exc, f"downloading {entry.file}")
                download.discard(slot)
        scratch = _scratch_slot(entry)
        try:
            return _download(entry, scratch, sources, validate, man, user_given=user_given, progress=progress)
        except OSError as exc:
            if not files.unwritable(exc):
                raise
            raise LipsyncError(f"could not get {entry.id}: {entry.file} cannot be written to the cache "
                               f"({_root_of(slot)}) nor to {scratch.parent} ({exc.strerror}); free some space, "
                               "or pass the file's local path") from None


def _download(entry: WeightEntry, slot: Path, sources: list[Source], validate: Validator | None, man: Manifest, *,
              user_given: bool, progress: bool) -> Path:
    failures: list[DownloadError] = []
    for src in download.resumable_first(slot, sources):
        verified: list[_Record] = []

        def check(part: Path, label: str = download.describe(src), out: list[_Record] = verified) -> None:
            out.append(_verified(entry, part, validate, man, user_given=user_given, source=label))

        try:
            download.fetch(src, slot, expected_size=None if user_given else entry.size,
                           sha256=None if user_given else entry.sha256, check=check, progress=progress)
        except DownloadError as exc:
            failures.append(exc)
            if len(failures) < len(sources):
                log.warning("%s: %s: %s; trying the next source", entry.id, exc.what, exc.reason)
            continue
        rec = verified[-1]  # a resumed file that failed its check was fetched (and checked) again
        _write_record(_record_path(slot), rec)
        if entry.sha256 is None and not user_given:  # said once: later runs trust this record
            log.warning("%s: no published size or sha256 to verify %s against; recorded it as unpinned "
                        "(%s bytes, sha256 %s)", entry.id, entry.file, f"{rec.size:,}", rec.sha256)
        locks.hold_shared(_inuse_path(slot))
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

def _identify(man: Manifest, sha: str) -> str:
    """`` (this is …)`` when the hash belongs to another known file."""
    for other in man.weights.values():
        if other.sha256 == sha:
            return f" (this is {other.file}, weight {other.id})"
    known = man.known_files.get(sha)
    return f" (this is {known})" if known else ""


def _verified(entry: WeightEntry, path: Path, validate: Validator | None, man: Manifest, *, user_given: bool,
              source: str) -> _Record:
    """Check size, sha256 and ``validate``; a :class:`_Record` of the result, or DownloadError
    (:class:`_NotLoadable` when ``validate`` refused the file).

    A manifest source must match exactly. A user's file may differ (their own fine-tuned or converted
    checkpoint) when it validates; it is then accepted with a warning, and the record says how it differs.
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
            raise _NotLoadable(source, f"not a usable {entry.id} file: {exc}",
                               f"use a {entry.arch} checkpoint") from None
    rec = _Record(size=size, mtime_ns=path.stat().st_mtime_ns, sha256=sha, validated=validate is not None,
                  source=source, differs=mismatch or None)
    if mismatch:
        _warn_differs(entry, rec, source)
    return rec


def _loads(validate: Validator | None, path: Path) -> bool | None:
    """Whether ``path`` loads as the model (None: no validator to tell)."""
    if validate is None:
        return None
    try:
        validate(path)
    except LipsyncError:
        return False
    return True


def _warn_differs(entry: WeightEntry, rec: _Record, label: str) -> None:
    log.warning("%s: %s has %s; using it because it loads as %s (a fine-tuned or converted checkpoint?)",
                entry.id, label, rec.differs, entry.arch)


def _cached(entry: WeightEntry, slot: Path, validate: Validator | None, man: Manifest, *,
            user_given: bool) -> _Record | None:
    """The record of a usable cached ``slot`` (verifying it first when needed), else None.

    A file this package downloaded and recorded (unchanged since) is trusted; if it no longer loads it is
    deleted. Anything else found there is judged like a user's local file: used when it loads as the right
    model (with a warning when it differs from the manifest), otherwise moved aside.
    """
    if not slot.is_file():
        return None
    rpath = _record_path(slot)
    rec = _read_record(rpath)
    ours = rec is not None and rec.matches(slot)
    label = f"the cached {slot.name}"
    if rec is not None and ours and (user_given or rec.differs or entry.sha256 in (None, rec.sha256)):
        if not rec.validated and validate is not None:
            try:
                validate(slot)
            except LipsyncError as exc:
                _evict(entry, slot, f"it does not load: {exc}", delete=True)
                return None
            rec.validated = True
            _write_record(rpath, rec)
        if rec.differs:
            _warn_differs(entry, rec, label)
        return rec
    # Not what this package recorded there: someone's own copy, a file changed since, an older manifest's file.
    try:
        rec = _verified(entry, slot, validate, man, user_given=True, source=label)
    except _NotLoadable as exc:
        _evict(entry, slot, exc.reason, delete=ours)
        return None
    except DownloadError as exc:
        _evict(entry, slot, exc.reason, delete=False)
        return None
    _write_record(rpath, rec)
    return rec


def _use_local(entry: WeightEntry, path: Path, root: Path, validate: Validator | None, man: Manifest,
               flag: str | None) -> Path:
    """A user's local file, verified (once per size and mtime), never modified; returns its weights-only copy,
    kept in the cache (``local/``), so later runs load it fast (the file itself when the cache is unwritable)."""
    path = path.resolve()
    key = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    rpath = root / "local" / f"{key}.json"
    rec = _read_record(rpath)
    if rec is None or not rec.matches(path) or not (rec.validated or validate is None):
        try:
            rec = _verified(entry, path, validate, man, user_given=True, source=str(path))
        except DownloadError as exc:
            raise LipsyncError(f"{flag} {exc}" if flag else f"{entry.id}: {exc}") from None
        _write_record(rpath, rec)
    else:
        _touch(rpath)  # the user chose this file: how it differs was said when it was first verified
    locks.hold_shared(rpath.with_suffix(".inuse"))
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
    try:
        checkpoints.save_stripped(state, stripped)
    except OSError as exc:
        if not files.unwritable(exc):
            raise
        files.cache_unwritable(_root_of(stripped), exc, f"writing the weights-only copy of {slot.name}")
        return slot
    st = stripped.stat()
    rec.stripped_size, rec.stripped_mtime_ns = st.st_size, st.st_mtime_ns
    _write_record(record or _record_path(slot), rec)
    return stripped


# -- records, cleanup, an unwritable cache ---------------------------------------------------------------------

def _record_path(slot: Path) -> Path:
    return slot.with_name(slot.name + ".json")


def _lock_path(slot: Path) -> Path:
    return slot.with_name(slot.name + ".lock")


def _inuse_path(slot: Path) -> Path:
    """Held shared by every process that uses ``slot`` (``lipsync cache prune`` needs it exclusively)."""
    return slot.with_name(slot.name + ".inuse")


def _root_of(path: Path) -> Path:
    """The cache root ``path`` lies in (the parent of its ``weights`` folder), for reporting it once."""
    return next((p.parent for p in path.parents if p.name == "weights"), path.parent)


def _read_record(path: Path) -> _Record | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(_Record)}
        return _Record(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _write_record(path: Path, rec: _Record) -> None:
    """Write ``rec`` atomically; an unwritable cache only means it is not remembered."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.atomic_write_text(path, json.dumps(asdict(rec), indent=1))
    except OSError as exc:
        if not files.unwritable(exc):
            raise
        files.cache_unwritable(_root_of(path), exc, f"recording {path.name}")


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache keeps no last-use times


def aside_path(slot: Path) -> Path:
    """A free name for moving ``slot`` aside: ``<stem>.moved-<UTC time><suffix>`` beside it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for n in range(1, 1000):
        p = slot.with_name(f"{slot.stem}.moved-{stamp}{'' if n == 1 else f'-{n}'}{slot.suffix}")
        if not p.exists():
            return p
    raise LipsyncError(f"too many files moved aside beside {slot}; remove some (lipsync cache prune --moved)")


def _evict(entry: WeightEntry, slot: Path, reason: str, *, delete: bool) -> str:
    """Take ``slot`` out of use: deleted when ``delete`` (only this package's own download that does not load),
    else moved aside. Its record and weights-only copy (derived data) go too. Returns what was done."""
    try:
        if delete:
            slot.unlink()
            done = "deleted it"
        else:
            aside = aside_path(slot)
            os.replace(slot, aside)
            done = f"moved it aside to {aside} (kept; `lipsync cache prune --moved` removes such files)"
        for p in (_record_path(slot), _stripped_path(slot)):
            p.unlink(missing_ok=True)
    except OSError as exc:
        if not files.unwritable(exc):
            raise
        files.cache_unwritable(_root_of(slot), exc, f"moving {slot.name} aside")
        done = "left it in place (the cache cannot be written)"
    log.warning("%s: %s is not usable (%s); %s", entry.id, slot, reason, done)
    return done


def _writable(folder: Path) -> bool:
    """Whether downloads can be written to ``folder`` (created if needed); reports an unwritable cache once."""
    probe = files.temp_name(folder / "probe")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with files._open_new(probe) as f:
            f.write(b"\0")
        return True
    except OSError as exc:
        if not files.unwritable(exc):
            raise
        files.cache_unwritable(_root_of(folder / "x"), exc, "preparing a download")
        return False
    finally:
        files.remove_quietly(probe)


def _scratch_slot(entry: WeightEntry) -> Path:
    """Where a weight is downloaded when the cache cannot be written: a temporary folder removed at exit."""
    folder = files.make_temp_dir("weights")
    atexit.register(shutil.rmtree, folder, True)
    return folder / entry.file
