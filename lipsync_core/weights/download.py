"""Generic downloading: Google Drive through gdown, anything else over plain HTTP(S).

Every download is written to ``<dest>.part`` beside ``dest`` (with ``<dest>.part.src`` naming the source
the bytes came from and the server's validators for them, so a partial file is only ever resumed from the
same source), then checked (not a web page, the expected size, the caller's ``check``) and only then
renamed atomically to ``dest``. A file that fails a check is deleted; an interrupted transfer keeps its
partial file so the next call may resume it.

A partial file is resumed only when the result is provably the file the source holds: over HTTP with
``Range`` plus ``If-Range`` carrying the ETag (or Last-Modified) the first response gave, so a server whose
file changed answers with the whole new file; or when the caller knows the file's sha256 (the manifest's),
which the complete file must match. Otherwise the download starts again from zero. A resumed file that
fails its checks is downloaded once more from the start. The caller serialises downloads to one ``dest``
(``weights`` holds a lock); downloads to different places never share a file.

gdown is called with keywords that both gdown 5.x and 6.x accept (no ``fuzzy=``, no ``md5=``, no
``retries=``), never with the user's cookies, and its return value is checked (gdown 4.x returned None
instead of raising). Google Drive is reached only through gdown, at the hosts in :data:`GOOGLE_HOSTS` (the
tests send those to a loopback fake Drive with a ``requests`` transport adapter, from their side).
"""
from __future__ import annotations

import errno
import glob
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from ..support.errors import LipsyncError
from ..support.files import atomic_write_text, sha256_file
from .manifest import Source

log = logging.getLogger(__name__)

#: The Google Drive hosts: links to them name Drive files, and gdown talks to them (the share page, the large-file
#: confirmation, the download itself).
GOOGLE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")
CHUNK = 1 << 18
TIMEOUT = (20, 120)  # seconds: connect, between bytes
RETRIES = 2  # extra attempts after a transfer that was cut off part-way (each resumes)

# Drive file IDs are 25+ characters of [A-Za-z0-9_-] (33 today, 28 for old files, 44 for Docs).
_BARE_ID = re.compile(r"[A-Za-z0-9_-]{25,}")
_QUERY_ID = re.compile(r"[A-Za-z0-9_-]{10,}")
_PATH_ID = re.compile(r"/(?:file/(?:u/\d+/)?d|document/d|uc/d)/([A-Za-z0-9_-]{10,})")

Check = Callable[[Path], None]
_TRANSFER_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class DownloadError(LipsyncError):
    """A download that failed. ``what`` names the source, ``reason`` is short, ``hint`` says what to do."""

    def __init__(self, what: str, reason: str, hint: str = "") -> None:
        self.what, self.reason, self.hint = what, reason, hint
        super().__init__(f"{what}: {reason}" + (f"; {hint}" if hint else ""))


# -- sources ------------------------------------------------------------------------------------------

def drive_id(text: str) -> str | None:
    """The Google Drive file ID in ``text``: a bare ID or a share/``open``/``uc``/usercontent link; else None.

    A bare ID must mix upper- and lower-case letters, as every real one does (a 33-character random ID
    without both has a chance below 1e-7), so a file name such as ``my_talking_head_recording_final``
    is never taken for one. Raises LipsyncError for a Drive *folder* link (only single files can be
    downloaded).
    """
    s = text.strip()
    if _BARE_ID.fullmatch(s):
        return s if re.search(r"[a-z]", s) and re.search(r"[A-Z]", s) else None
    if not re.match(r"(?i)https?://", s):
        if not s.lower().startswith(GOOGLE_HOSTS):
            return None
        s = "https://" + s
    parts = urlsplit(s)
    if (parts.hostname or "").lower() not in GOOGLE_HOSTS:
        return None
    if "/folders/" in parts.path:
        raise LipsyncError(f"{text} is a Google Drive folder link; open the folder and share the file itself "
                           "('Anyone with the link'), then pass that file's link")
    ids = parse_qs(parts.query).get("id")
    if ids:  # validated: the ID becomes part of a cache path
        return ids[0] if _QUERY_ID.fullmatch(ids[0]) else None
    m = _PATH_ID.search(parts.path)
    return m.group(1) if m else None


def check_drive_link(text: str) -> None:
    """Raise LipsyncError when ``text`` is a link to Google Drive that names no file (a mistyped or cut
    share link, a link to a Drive page), so it is reported as invalid rather than tried as a download."""
    s = text.strip()
    if not re.match(r"(?i)https?://", s):
        if not s.lower().startswith(GOOGLE_HOSTS):
            return
        s = "https://" + s
    host = (urlsplit(s).hostname or "").lower()
    if host in GOOGLE_HOSTS and drive_id(s) is None:
        raise LipsyncError(f"{text.strip()} is not a valid Google Drive file link (no file ID in it); in Drive, "
                           "use Share > Copy link on the file itself and pass that link, or its file ID")


def remote_source(text: str) -> Source | None:
    """A :class:`~lipsync_core.manifest.Source` for a URL, Drive ID or Drive link; None for anything else.

    Raises LipsyncError for a Google Drive link that names no file (:func:`check_drive_link`).
    """
    fid = drive_id(text)
    if fid is not None:
        return Source(kind="gdrive", target=fid)
    check_drive_link(text)
    if re.match(r"(?i)https?://", text.strip()):
        return Source(kind="url", target=text.strip())
    return None


def describe(source: Source) -> str:
    """A short human name for a source, e.g. ``Google Drive file 1aB…`` or ``HF Nekochu/Wav2Lip``."""
    if source.kind == "gdrive":
        return f"Google Drive file {source.target}"
    parts = urlsplit(source.target)
    host = (parts.hostname or "").removeprefix("www.")
    segs = [p for p in parts.path.split("/") if p]
    if host == "huggingface.co" and len(segs) >= 2:
        return "HF " + "/".join(segs[:3] if segs[0] == "spaces" else segs[:2])
    if host == "github.com" and len(segs) >= 2:
        return "GitHub " + "/".join(segs[:2])
    return f"{host}/{segs[-1]}" if segs else host


def fetch(source: Source, dest: str | Path, *, expected_size: int | None = None, sha256: str | None = None,
          check: Check | None = None, progress: bool = True) -> Path:
    """Download ``source`` (URL or Drive ID) to ``dest``; see :func:`fetch_url` and :func:`fetch_gdrive`."""
    if source.kind == "gdrive":
        return fetch_gdrive(source.target, dest, expected_size=expected_size, sha256=sha256, check=check,
                            progress=progress)
    return fetch_url(source.target, dest, expected_size=expected_size, sha256=sha256, check=check, progress=progress)


# -- plain HTTP -------------------------------------------------------------------------------------

def fetch_url(url: str, dest: str | Path, *, expected_size: int | None = None, sha256: str | None = None,
              check: Check | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through ``<dest>.part``: resumable, progress bar, checked, atomic.

    ``expected_size`` aborts early when the server announces another size; ``sha256`` (when known) is what
    the complete file must hash to (checked here, or by ``check`` when given: it then must check it), and lets
    a partial file be resumed from a server without validators. ``check(part_path)`` runs on the complete
    file before the rename; whatever it raises propagates after
    the file is deleted. Raises :class:`DownloadError` (a LipsyncError) naming the URL, what went wrong and
    what to do.
    """
    dest = Path(dest)
    what = describe(Source("url", url))
    key = part_key(Source("url", url))
    for fresh in (False, True):
        part, state = _claim_part(dest, key, resumable=sha256 is not None)
        resumed = part.exists() and part.stat().st_size > 0
        with _forget_if_empty(dest), requests.Session() as sess:
            _download_url(sess, url, dest, part, state, what, expected_size, sha256 is not None, progress)
        try:
            return _finish(part, dest, what, expected_size, check, sha256)
        except LipsyncError as exc:
            if fresh or not resumed:
                raise
            log.info("%s: the resumed download failed its check (%s); downloading it again from the start", what, exc)
    raise AssertionError("unreachable")


def _download_url(sess: requests.Session, url: str, dest: Path, part: Path, state: dict, what: str,
                  expected_size: int | None, sha_known: bool, progress: bool) -> None:
    """Transfer until ``part`` is complete, resuming cut-off transfers where that is provably safe."""
    for attempt in range(RETRIES + 1):
        have = part.stat().st_size if part.exists() else 0
        try:
            if _transfer(sess, url, dest, part, have, state, what, expected_size, sha_known, progress):
                return
        except _TRANSFER_ERRORS as exc:
            now = part.stat().st_size if part.exists() else 0
            if now > have and attempt < RETRIES:
                log.info("%s: transfer interrupted (%s); resuming", what, " ".join(str(exc).split()))
                continue
            raise _network_error(what, exc, resumable=now > 0) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                discard(dest)  # a partial file on a full disk only takes the space others need
            raise
    raise DownloadError(what, f"the transfer stopped after {part.stat().st_size:,} bytes",
                        "run again to resume (the partial download is kept)")


def _if_range(state: dict) -> str | None:
    """The validator a resumed request must carry: a strong ETag, else Last-Modified, else None."""
    etag = state.get("etag")
    if etag and not etag.startswith("W/"):  # If-Range needs a strong validator
        return etag
    return state.get("last_modified")


def _transfer(sess: requests.Session, url: str, dest: Path, part: Path, have: int, state: dict, what: str,
              expected_size: int | None, sha_known: bool, progress: bool) -> bool:
    """One GET, a Range request when ``have`` bytes may be resumed; True when the file is complete."""
    headers = {"Accept-Encoding": "identity"}
    validator = _if_range(state) if have else None
    if have and (validator or sha_known):
        headers["Range"] = f"bytes={have}-"
        if validator:
            headers["If-Range"] = validator
    elif have:
        log.info("%s: the server gave no ETag or Last-Modified for the partial download; starting again", what)
        have = 0
    with sess.get(url, headers=headers, stream=True, timeout=TIMEOUT) as r:
        if have and r.status_code == 416:  # the partial file already holds everything (the same file: If-Range)
            return True
        if r.status_code >= 400:
            hint = ("the server failed; try again later, or use another source or a local file" if r.status_code >= 500
                    else "the file is gone or private there; use another source or a local file")
            raise DownloadError(what, f"HTTP {r.status_code} {r.reason or ''}".rstrip(), hint)
        if r.headers.get("Content-Type", "").lower().startswith("text/html"):
            raise DownloadError(what, "the server sent a web page (text/html) instead of the file",
                                "use a direct download link (Hugging Face: /resolve/, not /blob/) or a local file")
        if have and not _continues(r, have, state):
            if r.status_code == 206:  # a ranged answer we cannot trust to continue our bytes: ask for all of it
                log.info("%s: the file changed on the server since the partial download; starting again", what)
                r.close()
                part.unlink(missing_ok=True)
                return _transfer(sess, url, dest, part, 0, state, what, expected_size, sha_known, progress)
            log.info("%s: the server sent the whole file (it changed, or ranges are not supported); starting again",
                     what)
            have = 0
        if not have:  # the validators of the bytes about to be written, for a later resume
            state.update(etag=r.headers.get("ETag"), last_modified=r.headers.get("Last-Modified"))
            _write_tag(dest, state)
        length = r.headers.get("Content-Length")
        total = have + int(length) if length is not None and length.isdigit() else None
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(what, f"the server offers {total:,} bytes, expected {expected_size:,}",
                                "it serves a different file; use another source")
        with open(part, "ab" if have else "wb") as f, _bar(total, have, dest.name, progress) as bar:
            for chunk in r.iter_content(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    return total is None or part.stat().st_size >= total


def _continues(r: requests.Response, have: int, state: dict) -> bool:
    """Whether a response to a Range request carries exactly the bytes after ``have`` of the same file."""
    if r.status_code != 206:
        return False
    m = re.match(r"bytes (\d+)-\d+/", r.headers.get("Content-Range", ""))
    if m is None or int(m.group(1)) != have:
        return False
    etag, known = r.headers.get("ETag"), state.get("etag")
    return not (etag and known and etag != known)  # a server that ignored If-Range but says the file changed


# -- Google Drive -----------------------------------------------------------------------------------

def _gdown_timeout(download: Callable) -> dict[str, Any]:
    """``timeout=`` for gdown versions that take one (6.x waits forever by default; 5.x has no such keyword)."""
    return {"timeout": TIMEOUT} if "timeout" in inspect.signature(download).parameters else {}


def fetch_gdrive(file_id: str, dest: str | Path, *, expected_size: int | None = None, sha256: str | None = None,
                 check: Check | None = None, progress: bool = True) -> Path:
    """Download a Google Drive file with gdown to ``dest``; same contract as :func:`fetch_url`.

    Handles the large-file confirmation page (gdown does), and turns the quota page ("Too many users
    have viewed or downloaded this file recently"), a file that is not shared publicly and network
    errors into a :class:`DownloadError` saying what to do. gdown resumes without ``If-Range``, so a
    partial download is resumed only when ``sha256`` is known (the complete file must match it); a
    Drive file can be replaced under the same ID, so otherwise every attempt starts from zero.
    """
    import gdown
    import gdown.exceptions as gexc

    dest = Path(dest)
    what = describe(Source("gdrive", file_id))
    part, _state = _claim_part(dest, part_key(Source("gdrive", file_id)), resumable=sha256 is not None)
    resume = sha256 is not None
    retrieval = gexc.FileURLRetrievalError
    # gdown 6.x also raises DownloadError (an incomplete transfer, a refused Range); 5.x lets requests errors out.
    other = tuple(e for e in (getattr(gexc, "DownloadError", None), requests.RequestException) if e is not None)
    attempt = 0
    with _forget_if_empty(dest):
        while not part.exists():  # an existing .part from this ID is a complete gdown download not yet checked
            if not resume:
                for p in _partials(part):
                    p.unlink()
            had = _partial_bytes(part)
            try:
                out = gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True,
                                     use_cookies=False, **_gdown_timeout(gdown.download))
            except retrieval as exc:
                raise _drive_error(what, str(exc)) from None
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else "error"
                raise DownloadError(what, f"HTTP {status}",
                                    "the file is gone or private; use another ID or a local file") from None
            except other as exc:
                now = _partial_bytes(part)
                range_refused = "byte range" in str(exc)  # gdown 6.x keeps a partial file it cannot resume
                if range_refused:
                    for p in _partials(part):
                        p.unlink()
                if attempt < RETRIES and (now > had or range_refused or not resume):
                    attempt += 1
                    log.info("%s: transfer interrupted (%s); resuming", what, " ".join(str(exc).split()))
                    continue
                if isinstance(exc, requests.RequestException) and now == 0:
                    raise _network_error(what, exc, resumable=False) from None
                raise DownloadError(what, f"the transfer stopped after {_partial_bytes(part):,} bytes",
                                    "run again to resume (the partial download is kept)") from None
            if out is None:
                raise DownloadError(what, "gdown returned no file (gdown 4.x reports failures this way)",
                                    "upgrade gdown (pip install -U gdown) or use another source")
    return _finish(part, dest, what, expected_size, check, sha256)


def _drive_error(what: str, message: str) -> DownloadError:
    if "Too many users have viewed or downloaded this file recently" in " ".join(message.split()):
        return DownloadError(what, "Google Drive download quota exceeded ('Too many users have viewed or "
                                   "downloaded this file recently')",
                             "wait up to 24 h, or copy the file into your own Drive and pass the copy's ID "
                             "or share link, or pass a local file")
    return DownloadError(what, "Google Drive did not serve the file (not shared as 'Anyone with the link', "
                               "deleted, or a wrong ID)",
                         "check that the link opens in a private browser window, use another ID, or pass a local file")


# -- partial files, checks -------------------------------------------------------------------------

def _partials(part: Path) -> list[Path]:
    """gdown's own in-flight files: ``<part name>`` + 8 random characters + ``.part``."""
    return [p for p in part.parent.glob(f"{glob.escape(part.name)}*.part") if len(p.name) == len(part.name) + 13]


def _partial_bytes(part: Path) -> int:
    return sum(p.stat().st_size for p in _partials(part))


def part_key(source: Source) -> str:
    """How a partial download records the source it came from."""
    return f"{source.kind}:{source.target}"


def _read_tag(dest: Path) -> dict:
    """The partial download's record: ``source`` (its :func:`part_key`) and the server's ``etag``/``last_modified``."""
    tag = dest.with_name(dest.name + ".part.src")
    try:
        text = tag.read_text(encoding="utf-8")
    except OSError:
        return {}
    try:
        state = json.loads(text)
    except ValueError:
        return {"source": text}  # written by an older version: the source alone, no validators
    return state if isinstance(state, dict) else {}


def _write_tag(dest: Path, state: dict) -> None:
    atomic_write_text(dest.with_name(dest.name + ".part.src"), json.dumps(state))


def resumable_first(dest: str | Path, sources: list[Source]) -> list[Source]:
    """``sources`` with the one that left a partial download of ``dest`` first, so its bytes are resumed."""
    key = _read_tag(Path(dest)).get("source")
    return sorted(sources, key=lambda src: part_key(src) != key)  # stable: the rest keep their order


def _claim_part(dest: Path, key: str, *, resumable: bool) -> tuple[Path, dict]:
    """``<dest>.part`` and its record. Kept for resuming only when it came from ``key`` and can be proven
    to be a prefix of the file: the server's validators were recorded, or ``resumable`` (a known sha256)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    state = _read_tag(dest)
    if state.get("source") == key and (resumable or _if_range(state)):
        return part, state
    discard(dest)
    state = {"source": key}
    _write_tag(dest, state)
    return part, state


def discard(dest: str | Path) -> None:
    """Delete the partial download state of ``dest`` (its ``.part``, gdown's partials and the source tag)."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    for p in [part, dest.with_name(dest.name + ".part.src"), *_partials(part)]:
        p.unlink(missing_ok=True)


@contextmanager
def _forget_if_empty(dest: Path) -> Iterator[None]:
    """On failure, keep the partial state of ``dest`` only when it holds bytes to resume from."""
    try:
        yield
    except BaseException:
        part = dest.with_name(dest.name + ".part")
        if not (part.exists() and part.stat().st_size) and not _partial_bytes(part):
            discard(dest)
        raise


def looks_like_html(path: str | Path) -> bool:
    """True when the file starts like a web page (a quota, login or error page saved under a model's name)."""
    with open(path, "rb") as f:
        head = f.read(1024).lstrip().lower()
    return head.startswith(b"<") and (b"<html" in head or head.startswith(b"<!doctype html"))


def _finish(part: Path, dest: Path, what: str, expected_size: int | None, check: Check | None,
            sha256: str | None = None) -> Path:
    try:
        size = part.stat().st_size
        if looks_like_html(part):
            raise DownloadError(what, f"got a web page ({size:,} bytes) instead of the file",
                                "the link does not lead to the file itself; use another source or a local file")
        if expected_size is not None and size != expected_size:
            raise DownloadError(what, f"got {size:,} bytes, expected {expected_size:,}",
                                "it serves a different or damaged file; use another source")
        if sha256 is not None and check is None and sha256_file(part) != sha256.lower():
            raise DownloadError(what, "the sha256 differs from the expected one",
                                "it serves a different or damaged file; use another source")
        if check is not None:
            check(part)
    except BaseException:
        discard(dest)
        raise
    os.replace(part, dest)
    dest.with_name(dest.name + ".part.src").unlink(missing_ok=True)
    return dest


def _network_error(what: str, exc: Exception, *, resumable: bool) -> DownloadError:
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        reason = "network error: timed out"
    elif any(s in text for s in ("NameResolutionError", "Name or service not known", "nodename nor servname",
                                 "Temporary failure in name resolution", "No address associated")):
        reason = "network error: host not found (DNS)"
    elif "Connection refused" in text or "ConnectionRefused" in text:
        reason = "network error: connection refused"
    elif resumable:
        reason = "network error: the transfer was cut off"
    else:
        reason = f"network error ({type(exc).__name__})"
    hint = ("run again to resume (the partial download is kept)" if resumable
            else "check the internet connection, or use another source or a local file")
    return DownloadError(what, reason, hint)


def _bar(total: int | None, initial: int, label: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                disable=not enabled, file=sys.stderr, leave=False)
