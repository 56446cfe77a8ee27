"""Sending Google Drive traffic to the loopback fake Drive (:mod:`tests.support.fake_drive`), from the test side.

The package talks to Google Drive through gdown, which builds its own ``requests`` session per download and
follows the large-file page to ``drive.usercontent.google.com``; so the redirection happens below both: every
``requests.Session`` gets a transport adapter for the hosts in :data:`lipsync_core.weights.download.GOOGLE_HOSTS`
that sends ``https://<google host>/path?query`` to ``<fake>/path?query`` (keeping the original ``Host`` header,
which the fake logs). The real gdown still parses the real pages; nothing in the package knows about it.

* In this process: the :func:`route_drive` helper (with pytest's ``monkeypatch``, undone after the test).
* In child processes (the CLI, the gdown 5.2 subprocess, notebook kernels): :func:`route_drive` also sets
  :data:`ENV` and puts :data:`SITE_DIR` on ``PYTHONPATH``; its ``sitecustomize`` applies :func:`reroute` at
  start-up when :data:`ENV` is set. A test that builds a child's ``PYTHONPATH`` itself keeps
  :func:`child_pythonpath`'s entries.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:  # not imported at run time: a child process loads this module at start-up
    import pytest

#: The fake Drive's base URL, for child processes (read by ``sitecustomize``, never by the package).
ENV = "LIPSYNC_TEST_GDRIVE"
#: The folder holding the ``sitecustomize`` that reroutes a child process.
SITE_DIR = Path(__file__).resolve().parent / "sitecustomize"


class LoopbackAdapter(HTTPAdapter):
    """Sends ``https://<google host>/path?query`` to ``<base>/path?query``, without proxies."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = urlsplit(base)

    def send(self, request, **kwargs):  # type: ignore[override]  # rewrites the request, same contract
        u = urlsplit(request.url)
        request.headers["Host"] = u.hostname
        request.url = urlunsplit((self.base.scheme, self.base.netloc, u.path, u.query, ""))
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)


def _hosts() -> tuple[str, ...]:
    from lipsync_core.weights.download import GOOGLE_HOSTS

    return GOOGLE_HOSTS


def mount(sess: requests.Session, base: str) -> requests.Session:
    """``sess`` with the Google hosts sent to ``base``."""
    for host in _hosts():
        sess.mount(f"https://{host}/", LoopbackAdapter(base))
    return sess


def rerouted_init(base: str, original=requests.Session.__init__):
    """A ``requests.Session.__init__`` that mounts the loopback adapters after the original one."""

    def __init__(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        mount(self, base)

    return __init__


def reroute(base: str) -> None:
    """Reroute every session this process creates from now on (a child process's ``sitecustomize``)."""
    requests.Session.__init__ = rerouted_init(base)  # type: ignore[method-assign]


def child_pythonpath(*first: str | os.PathLike) -> str:
    """A ``PYTHONPATH`` for a child process: ``first``, then this process's (which carries :data:`SITE_DIR`)."""
    return os.pathsep.join(filter(None, [*map(str, first), os.environ.get("PYTHONPATH", "")]))


def route_drive(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    """Send this process's and its future children's Google Drive requests to the fake at ``base``."""
    monkeypatch.setattr(requests.Session, "__init__", rerouted_init(base))
    monkeypatch.setenv(ENV, base)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SITE_DIR), os.environ.get("PYTHONPATH")])))
