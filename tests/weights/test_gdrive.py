"""Google Drive downloads through the real gdown code path (installed gdown and gdown 5.2) against the fake Drive."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lipsync_core.weights.store import weights_dir
from tests.conftest import REPO
from tests.support.google_route import child_pythonpath
from tests.weights.conftest import checkpoint_bytes, gdrive, url

DATA = checkpoint_bytes(300_000)  # > 1 MB, so a transfer cut half-way has written whole chunks


def cached_original() -> Path:
    return weights_dir() / "tiny.pth"


def leftovers() -> list[str]:
    """Files in the weights cache other than lock files."""
    root = weights_dir()
    return sorted(p.name for p in root.rglob("*") if p.is_file() and p.suffix != ".lock") if root.exists() else []


def test_direct_download(drive, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA)
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    out = fetch_with_gdown("tiny")
    assert out.error is None
    assert cached_original().read_bytes() == DATA
    assert out.path.is_file()


def test_large_file_confirm_page_is_followed(drive, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA, mode="confirm")
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    out = fetch_with_gdown("tiny")
    assert out.error is None
    assert cached_original().read_bytes() == DATA
    hosts = [host for host, _path, _range in drive.requests(fid)]
    assert hosts == ["drive.google.com", "drive.usercontent.google.com"]


def test_quota_page_falls_back_to_the_mirror(drive, mirror, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA, mode="quota")
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid), url(mirror.put("tiny.pth", DATA))]}})
    out = fetch_with_gdown("tiny")
    assert out.error is None
    assert drive.requests(fid) and mirror.gets("tiny.pth") == 1
    assert cached_original().read_bytes() == DATA


def test_quota_page_alone_explains_what_to_do(drive, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA, mode="quota")
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    out = fetch_with_gdown("tiny")
    assert out.path is None
    assert "\n" not in out.error
    for part in ("tiny", fid, "Too many users have viewed or downloaded this file recently", "24 h", "own Drive"):
        assert part in out.error
    assert leftovers() == []


def test_permission_page(drive, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA, mode="permission")
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    out = fetch_with_gdown("tiny")
    assert fid in out.error and "Anyone with the link" in out.error
    assert leftovers() == []


def test_cut_transfer_is_resumed_with_a_range_request(drive, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA, mode="confirm", cut=1)
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    out = fetch_with_gdown("tiny")
    assert out.error is None
    assert cached_original().read_bytes() == DATA
    ranges = [r for _host, path, r in drive.requests(fid) if path.startswith("/download")]
    assert ranges[0] is None and ranges[-1].startswith("bytes=") and ranges[-1] != "bytes=0-"


def test_interrupted_download_is_kept_and_resumed_by_the_next_fetch(drive, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA, mode="confirm", cut=100)  # every attempt of the first fetch is cut off
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    first = fetch_with_gdown("tiny")
    assert "the transfer stopped" in first.error and "resume" in first.error
    assert not cached_original().exists()
    drive.files[fid].cut = 0
    n = len(drive.log)
    second = fetch_with_gdown("tiny")
    assert second.error is None
    assert cached_original().read_bytes() == DATA
    resumed = [r for _host, path, r in drive.log[n:] if path.startswith("/download")]
    assert resumed[-1].startswith("bytes=") and resumed[-1] != "bytes=0-"


def test_truncated_file_from_drive_is_not_cached(drive, write_manifest, fetch_with_gdown):
    short = DATA[: len(DATA) // 3]
    fid = drive.add(short)
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    out = fetch_with_gdown("tiny")
    assert f"got {len(short):,} bytes, expected {len(DATA):,}" in out.error
    assert leftovers() == []


def test_user_given_share_link_is_downloaded_with_gdown(drive, write_manifest, fetch_with_gdown):
    fid = drive.add(DATA, mode="confirm")
    write_manifest({"tiny": {"data": DATA, "sources": []}})
    out = fetch_with_gdown("tiny", f"https://drive.google.com/file/d/{fid}/view?usp=sharing")
    assert out.error is None
    assert (weights_dir() / "sources" / f"gdrive-{fid}" / "tiny.pth").read_bytes() == DATA


def test_reroute_reaches_a_subprocess_and_writes_no_cookies(drive, write_manifest, tmp_path):
    fid = drive.add(DATA, mode="confirm")
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid)]}})
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": child_pythonpath(REPO)}
    r = subprocess.run([sys.executable, "-c", "from lipsync_core.weights.store import fetch; print(fetch('tiny'))"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert cached_original().read_bytes() == DATA
    assert len(drive.requests(fid)) == 2
    assert not (home / ".cache" / "gdown").exists()
