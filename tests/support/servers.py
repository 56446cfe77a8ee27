"""Loopback HTTP servers for tests: a static file server with or without byte-range support.

With ``validators`` (the default) every file response carries a strong ``ETag`` (a hash of the content)
and ``Last-Modified`` (the file's mtime), and ``If-Range`` is honoured: a Range request whose validator no
longer matches gets the whole current file (200), as RFC 9110 says. ``validators=False`` plays a server
that sends neither (and so cannot prove a partial download is still the same file).
"""
from __future__ import annotations

import email.utils
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _handler(root: Path, ranges: bool, log: list, validators: bool) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _serve(self, body: bool) -> None:
            log.append((self.command, self.path, self.headers.get("Range")))
            path = root / self.path.split("?", 1)[0].lstrip("/")
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
            modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
            m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")) if ranges else None
            if_range = self.headers.get("If-Range")
            if m and validators and if_range is not None and if_range not in (etag, modified):
                m = None  # the file changed since the client's partial copy: send all of it
            if m:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
                chunk = data[start:end + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{start + len(chunk) - 1}/{len(data)}")
            else:
                chunk = data
                self.send_response(200)
            if ranges:
                self.send_header("Accept-Ranges", "bytes")
            if validators:
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if body:
                self.wfile.write(chunk)

        def do_GET(self) -> None:
            self._serve(True)

        def do_HEAD(self) -> None:
            self._serve(False)

    return Handler


@contextmanager
def serving(server: http.server.HTTPServer) -> Iterator[str]:
    """Run ``server`` in a thread; yields its base URL and shuts it down afterwards."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def static_server(root: str | Path, *, ranges: bool = True, validators: bool = True) -> Iterator[tuple[str, list]]:
    """Serve ``root`` on 127.0.0.1; yields (base URL, request log of (method, path, Range))."""
    log: list = []
    handler = _handler(Path(root), ranges, log, validators)
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url, log
