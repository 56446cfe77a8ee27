"""Fixtures for the weights tests: small checkpoints, a test manifest, a loopback mirror and fake Drive, gdown 5.2."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights import store as weights
from lipsync_core.weights.manifest import Manifest, load_manifest
from tests.conftest import REPO
from tests.support.fake_drive import DriveFile, fake_drive
from tests.support.google_route import child_pythonpath, route_drive
from tests.support.servers import static_server

GDOWN_OLD = "5.2.0"


def checkpoint_bytes(n: int = 1000, step: int = 7) -> bytes:
    """A Wav2Lip-style training checkpoint: ``module.``-prefixed state dict plus optimizer state."""
    buf = io.BytesIO()
    torch.save({"state_dict": {"module.w": torch.linspace(0, 1, n)},
                "optimizer": {"state": {0: {"exp_avg": torch.ones(n)}}}, "global_step": step}, buf)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def url(u: str) -> dict:
    return {"kind": "url", "url": u}


def gdrive(file_id: str) -> dict:
    return {"kind": "gdrive", "id": file_id}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One cache per test, so no test sees another's files."""
    monkeypatch.setenv("LIPSYNC_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def write_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Manifest]:
    """``write(weights={id: {"data": bytes, "sources": [...], ...}}, known_files=...)``.

    Writes a manifest (size and sha256 from ``data`` unless given), points LIPSYNC_MANIFEST at it, returns it.
    """
    counter = iter(range(1000))

    def write(weights: dict[str, dict], known_files: dict | None = None) -> Manifest:
        entries = {}
        for wid, spec in weights.items():
            spec = dict(spec)
            data = spec.pop("data", None)
            entries[wid] = {"file": f"{wid}.pth", "license": "test", "arch": "wav2lip", "convention": "state_dict",
                            "size": len(data) if data is not None else None,
                            "sha256": sha256(data) if data is not None else None, "sources": [], **spec}
        path = tmp_path / f"manifest{next(counter)}.json"
        path.write_text(json.dumps({"schema_version": 1, "weights": entries,
                                    "known_files": known_files or {}}))
        monkeypatch.setenv("LIPSYNC_MANIFEST", str(path))
        return load_manifest()

    return write


@dataclass
class Mirror:
    """This test's folder on the loopback static HTTP server (one server for the session: starting and
    stopping one per test costs half a second each)."""

    root: Path
    base: str
    _log: list
    _prefix: str

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"{self.base}/{name}"

    @property
    def log(self) -> list[tuple]:
        """This test's requests: (method, path, Range)."""
        return [entry for entry in self._log if entry[1].startswith(self._prefix)]

    def gets(self, name: str) -> int:
        return sum(1 for method, path, _ in self.log if method == "GET" and path == f"{self._prefix}{name}")


@pytest.fixture(scope="session")
def _mirror_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, list]]:
    root = tmp_path_factory.mktemp("mirror")
    with static_server(root) as (base, log):
        yield root, base, log


@pytest.fixture
def mirror(_mirror_server, request: pytest.FixtureRequest) -> Mirror:
    root, base, log = _mirror_server
    sub = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    (root / sub).mkdir()
    return Mirror(root / sub, f"{base}/{sub}", log, f"/{sub}/")


@dataclass
class FakeDrive:
    """The loopback fake Google Drive; the Google hosts are rerouted to it (:func:`route_drive`)."""

    base: str
    files: dict[str, DriveFile]
    log: list
    _n: Iterator[int] = field(default_factory=lambda: iter(range(10_000)))

    def add(self, data: bytes, mode: str = "direct", cut: int = 0) -> str:
        file_id = f"1TestFile{next(self._n):04d}" + "x" * 20
        self.files[file_id] = DriveFile(data, name="model.pth", mode=mode, cut=cut)
        return file_id

    def requests(self, file_id: str) -> list[tuple]:
        return [entry for entry in self.log if file_id in entry[1]]


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    files: dict[str, DriveFile] = {}
    with fake_drive(files) as (base, log):
        route_drive(monkeypatch, base)
        yield FakeDrive(base, files, log)


@pytest.fixture(scope="session")
def gdown_old() -> Path:
    """gdown 5.2 installed once into its own target folder (kept in the temp dir between sessions)."""
    target = Path(tempfile.gettempdir()) / "lipsync-tests" / f"gdown-{GDOWN_OLD}"
    if not (target / "gdown" / "__init__.py").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="gdown-", dir=target.parent))
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(tmp),
                            f"gdown=={GDOWN_OLD}"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            msg = f"cannot install gdown {GDOWN_OLD} from the package index: {r.stderr.strip()[-300:]}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(msg)
            pytest.skip(msg)
        try:
            os.replace(tmp, target)
        except OSError:  # another session installed it first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass
class Outcome:
    path: Path | None = None
    error: str | None = None


_FETCH_SCRIPT = """
import json, sys
import gdown
from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights.store import fetch
try:
    out = {"path": str(fetch(sys.argv[1], source=sys.argv[2] or None, progress=False))}
except LipsyncError as exc:
    out = {"error": str(exc)}
out["gdown"] = gdown.__version__
print(json.dumps(out))
"""


@pytest.fixture(params=["installed", GDOWN_OLD], ids=["gdown-installed", f"gdown-{GDOWN_OLD}"])
def fetch_with_gdown(request: pytest.FixtureRequest) -> Callable[..., Outcome]:
    """``run(weight_id, source=None) -> Outcome``: :func:`weights.fetch` with the installed gdown (in this
    process) or with gdown 5.2 (in a subprocess whose PYTHONPATH puts it first)."""
    if request.param == "installed":
        def run_here(weight_id: str, source: str | None = None) -> Outcome:
            try:
                return Outcome(path=weights.fetch(weight_id, source=source, progress=False))
            except LipsyncError as exc:
                return Outcome(error=str(exc))

        return run_here
    target = request.getfixturevalue("gdown_old")

    def run_old(weight_id: str, source: str | None = None) -> Outcome:
        env = {**os.environ, "PYTHONPATH": child_pythonpath(target, REPO)}  # keeps the Drive rerouting
        r = subprocess.run([sys.executable, "-c", _FETCH_SCRIPT, weight_id, source or ""], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["gdown"] == GDOWN_OLD
        return Outcome(path=Path(out["path"]) if "path" in out else None, error=out.get("error"))

    return run_old
