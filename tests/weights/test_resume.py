"""A resumed download never splices two files: resumed only with If-Range or a known sha256, else from zero."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights import download
from lipsync_core.weights.download import DownloadError, fetch_url
from lipsync_core.weights.store import fetch, weights_dir
from tests.support.servers import static_server
from tests.weights.conftest import checkpoint_bytes, sha256, url

OLD = checkpoint_bytes(300_000)
NEW = checkpoint_bytes(300_000, step=8)  # same size: only the content tells them apart
assert len(OLD) == len(NEW) and OLD != NEW


def leave_partial(dest: Path, url_: str, data: bytes, **validators: str) -> None:
    """The state an interrupted earlier download of ``url_`` left: half of ``data`` and its record."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.with_name(dest.name + ".part").write_bytes(data[: len(data) // 2])
    tag = {"source": download.part_key(download.Source("url", url_)), **validators}
    dest.with_name(dest.name + ".part.src").write_text(json.dumps(tag))


@pytest.fixture
def plain_server(tmp_path):
    """A server that honours Range but sends no ETag or Last-Modified."""
    root = tmp_path / "served"
    root.mkdir()
    with static_server(root, validators=False) as (base, log):
        yield root, base, log


def test_file_changed_on_the_server_between_attempts_is_downloaded_whole(drive, tmp_path):
    fid = drive.add(OLD, cut=100)
    dest, link = tmp_path / "w.pth", f"{drive.base}/download?id={fid}"
    with pytest.raises(DownloadError, match="resume"):
        fetch_url(link, dest, progress=False)
    assert 0 < dest.with_name("w.pth.part").stat().st_size < len(OLD)
    drive.files[fid].data, drive.files[fid].cut = NEW, 0  # replaced under the same ID
    fetch_url(link, dest, progress=False)
    assert dest.read_bytes() == NEW  # not OLD's first half + NEW's second half


def test_unchanged_file_is_resumed_with_if_range(drive, tmp_path):
    fid = drive.add(OLD, cut=100)
    dest, link = tmp_path / "w.pth", f"{drive.base}/download?id={fid}"
    with pytest.raises(DownloadError):
        fetch_url(link, dest, progress=False)
    kept = dest.with_name("w.pth.part").stat().st_size
    drive.files[fid].cut = 0
    n = len(drive.log)
    fetch_url(link, dest, progress=False)
    assert dest.read_bytes() == OLD
    assert [r for _h, _p, r in drive.log[n:]] == [f"bytes={kept}-"]


def test_server_without_validators_is_not_resumed(plain_server, tmp_path):
    root, base, log = plain_server
    (root / "w.pth").write_bytes(NEW)
    dest = tmp_path / "w.pth"
    leave_partial(dest, f"{base}/w.pth", OLD)
    fetch_url(f"{base}/w.pth", dest, progress=False)
    assert dest.read_bytes() == NEW
    assert [r for _m, _p, r in log] == [None]  # no Range request: started from zero


def test_known_sha256_allows_resuming_from_a_server_without_validators(plain_server, tmp_path):
    root, base, log = plain_server
    (root / "w.pth").write_bytes(OLD)
    dest = tmp_path / "w.pth"
    leave_partial(dest, f"{base}/w.pth", OLD)
    fetch_url(f"{base}/w.pth", dest, sha256=sha256(OLD), progress=False)
    assert dest.read_bytes() == OLD
    assert [r for _m, _p, r in log] == [f"bytes={len(OLD) // 2}-"]


def test_a_splice_caught_by_the_sha256_is_downloaded_again_from_zero(plain_server, tmp_path):
    root, base, log = plain_server
    (root / "w.pth").write_bytes(OLD)
    dest = tmp_path / "w.pth"
    leave_partial(dest, f"{base}/w.pth", NEW)  # the partial came from another version of the file
    fetch_url(f"{base}/w.pth", dest, sha256=sha256(OLD), progress=False)
    assert dest.read_bytes() == OLD
    assert [r for _m, _p, r in log] == [f"bytes={len(OLD) // 2}-", None]


def test_a_spliced_weight_is_never_recorded_as_verified(plain_server, write_manifest):
    root, base, _log = plain_server
    (root / "w.pth").write_bytes(NEW)  # the server now holds another file than the manifest pins
    write_manifest({"tiny": {"data": OLD, "sources": [url(f"{base}/w.pth")]}})
    leave_partial(weights_dir() / "tiny.pth", f"{base}/w.pth", OLD)
    with pytest.raises(LipsyncError, match="sha256"):
        fetch("tiny", progress=False)
    left = sorted(p.name for p in weights_dir().iterdir() if p.suffix not in (".lock", ".inuse"))
    assert left == []


def test_users_drive_file_replaced_under_its_id_is_downloaded_whole(drive, write_manifest):
    write_manifest({"tiny": {"data": OLD}})
    fid = drive.add(OLD, cut=100)
    with pytest.raises(LipsyncError, match="transfer stopped"):
        fetch("tiny", source=fid, validate=lambda p: None, progress=False)
    drive.files[fid].data, drive.files[fid].cut = NEW, 0
    n = len(drive.log)
    path = fetch("tiny", source=fid, validate=lambda p: None, progress=False)
    assert (path.parent / "tiny.pth").read_bytes() == NEW
    assert all(r is None for _h, _p, r in drive.log[n:])  # no sha256 to prove a resume: from zero
