"""A loopback fake Google Drive: the pages and downloads gdown meets on the real one, for tests.

Pass the URL :func:`fake_drive` yields to :func:`tests.support.google_route.route_drive` and every request
lipsync_core (and gdown inside it) makes to drive.google.com, docs.google.com or drive.usercontent.google.com
lands here, in this process or in a child process.

Per file ID the server plays one of these roles (:class:`DriveFile` ``mode``):

* ``direct``: ``/uc?id=`` answers with the file (``Content-Disposition: attachment``), as for small files;
* ``confirm``: ``/uc?id=`` answers with the large-file "can't scan for viruses" page whose form leads to
  ``drive.usercontent.google.com/download?id=…&export=download&confirm=t&uuid=…``, which serves the file;
* ``quota``: the "Too many users have viewed or downloaded this file recently" page;
* ``permission``: a 403 "You need access" page (a file not shared as "Anyone with the link").

File responses carry a strong ``ETag`` (a hash of the content) and honour ``Range: bytes=N-`` (206 +
``Content-Range``) and ``If-Range`` (a stale validator gets the whole file); replacing ``data`` plays a
Drive file updated under the same ID. ``cut`` makes the first that many
file responses (whole or ranged) announce their full length but stop half-way and drop the connection.
An unknown ID gets a 404 page.
"""
from __future__ import annotations

import hashlib
import http.server
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .servers import serving

MODES = ("direct", "confirm", "quota", "permission")

QUOTA_MESSAGE = ("Too many users have viewed or downloaded this file recently. Please try accessing the file "
                 "again later. If the file you are trying to access is particularly large or is shared with "
                 "many people, it may take up to 24 hours to be able to view or download the file. If you still "
                 "can't access a file after 24 hours, contact your domain administrator.")


@dataclass
class DriveFile:
    """One file of the fake Drive and how the server treats it."""

    data: bytes
    name: str = "file.bin"
    mode: str = "direct"
    cut: int = 0  # how many file responses stop half-way

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} not in {MODES}")


def _page(title: str, body: str) -> bytes:
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
            f"<body>\n{body}\n</body></html>\n").encode()


def _confirm_page(file_id: str, name: str, size: int) -> bytes:
    return _page("Google Drive - Virus scan warning", (
        f"<p class=\"uc-warning-caption\">Google Drive can't scan this file for viruses.</p>"
        f"<p>{name} ({size // 1024} K) is too large for Google to scan for viruses. "
        "Would you still like to download this file?</p>\n"
        "<form id=\"download-form\" action=\"https://drive.usercontent.google.com/download\" method=\"get\">"
        "<input type=\"submit\" id=\"uc-download-link\" value=\"Download anyway\"/>"
        f"<input type='hidden' name='id' value='{file_id}'><input type='hidden' name='export' value='download'>"
        "<input type=\"hidden\" name=\"confirm\" value=\"t\"><input type=\"hidden\" name=\"uuid\" value=\"0000-uuid\">"
        "</form>"))


def _handler(files: dict[str, DriveFile], log: list, lock: threading.Lock) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _file(self, f: DriveFile) -> None:
            etag = f'"{hashlib.sha256(f.data).hexdigest()[:16]}"'
            m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
            if m and self.headers.get("If-Range") not in (None, etag):
                m = None  # the file changed since the client's partial copy
            start = int(m.group(1)) if m else 0
            chunk = f.data[start:]
            with lock:
                cut, f.cut = f.cut > 0, max(f.cut - 1, 0)
            self.send_response(206 if m else 200)
            if m:
                self.send_header("Content-Range", f"bytes {start}-{len(f.data) - 1}/{len(f.data)}")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", f"attachment; filename=\"{f.name}\"")
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.end_headers()
            if cut:
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            fid = (parse_qs(url.query).get("id") or [""])[0]
            log.append((self.headers.get("Host"), self.path, self.headers.get("Range")))
            f = files.get(fid)
            if f is None:
                self._send(404, _page("Google Drive - 404", "<p>Sorry, the requested file does not exist.</p>"))
            elif url.path == "/download":
                if f.mode == "confirm" and "confirm" not in parse_qs(url.query):
                    self._send(400, _page("Bad request", "<p>missing confirm</p>"))
                else:
                    self._file(f)
            elif f.mode == "direct":
                self._file(f)
            elif f.mode == "confirm":
                self._send(200, _confirm_page(fid, f.name, len(f.data)))
            elif f.mode == "quota":
                self._send(200, _page("Google Drive - Quota exceeded",
                                      f"<p class=\"uc-error-caption\">Sorry, you can't view or download this file "
                                      f"at this time.</p><p class=\"uc-error-subcaption\">{QUOTA_MESSAGE}</p>"))
            else:
                self._send(403, _page("Google Drive - You need access",
                                      "<p>You need access</p><p>Ask for access, or switch to an account with access."
                                      "</p><button>Request access</button>"))

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hanging up are part of the tests
            super().handle_error(request, client_address)


@contextmanager
def fake_drive(files: dict[str, DriveFile]) -> Iterator[tuple[str, list]]:
    """Serve ``files`` (ID -> DriveFile) on 127.0.0.1; yields (base URL, request log of (Host, path, Range))."""
    log: list = []
    with serving(_Server(("127.0.0.1", 0), _handler(files, log, threading.Lock()))) as url:
        yield url, log
