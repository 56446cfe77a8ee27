"""lipsync_core.weights.download: Drive ID/link parsing and plain HTTP downloads (resumable, checked, atomic)."""
from __future__ import annotations

import socket

import pytest

from lipsync_core.support import locks
from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights.download import DownloadError, drive_id, fetch_url, remote_source
from lipsync_core.weights.manifest import Source
from tests.weights.conftest import checkpoint_bytes

ID = "1cxHbSRYq3sh78NAer_sQiyrWz_FbCF82"
DATA = checkpoint_bytes(300_000)


@pytest.mark.parametrize("text", [
    ID,
    f"  {ID}\n",
    f"https://drive.google.com/file/d/{ID}/view?usp=sharing",
    f"https://drive.google.com/file/d/{ID}/view",
    f"https://drive.google.com/file/d/{ID}",
    f"https://drive.google.com/file/u/0/d/{ID}/view?usp=drive_link",
    f"https://drive.google.com/open?id={ID}",
    f"https://drive.google.com/uc?id={ID}",
    f"https://drive.google.com/uc?export=download&id={ID}",
    f"https://docs.google.com/uc?export=download&id={ID}",
    f"https://drive.usercontent.google.com/download?id={ID}&export=download&confirm=t",
    f"drive.google.com/file/d/{ID}/view?usp=sharing",
])
def test_drive_id_from_every_link_form(text):
    assert drive_id(text) == ID


@pytest.mark.parametrize("text", [
    "wav2lip_gan.pth", "checkpoints/wav2lip_gan.pth", "wav2lip_gan", "https://example.com/file/d/" + ID,
    "https://huggingface.co/Nekochu/Wav2Lip/resolve/main/wav2lip_gan.pth", "https://drive.google.com/drive/my-drive",
])
def test_drive_id_is_none_for_other_text(text):
    assert drive_id(text) is None


def test_drive_folder_link_says_to_share_the_file():
    with pytest.raises(LipsyncError, match="folder"):
        drive_id("https://drive.google.com/drive/folders/153HLrqlBNxzZcHi17PEvP09kkAfzRshM?usp=sharing")


def test_remote_source_kinds():
    assert remote_source(f"https://drive.google.com/file/d/{ID}/view") == Source("gdrive", ID)
    assert remote_source("https://example.com/w.pth") == Source("url", "https://example.com/w.pth")
    assert remote_source("no/such/file.pth") is None


def test_fetch_url_downloads_atomically(mirror, tmp_path):
    dest = tmp_path / "out" / "w.pth"
    assert fetch_url(mirror.put("w.pth", DATA), dest, expected_size=len(DATA), progress=False) == dest
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.pth"]


def test_fetch_url_resumes_a_cut_transfer_with_range(drive, tmp_path):
    fid = drive.add(DATA, cut=1)
    dest = tmp_path / "w.pth"
    fetch_url(f"{drive.base}/download?id={fid}", dest, progress=False)  # a plain URL to the same loopback server
    assert dest.read_bytes() == DATA
    ranges = [r for _host, _path, r in drive.requests(fid)]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_fetch_url_keeps_an_interrupted_download_for_the_next_call(drive, tmp_path):
    fid = drive.add(DATA, cut=100)
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match="resume"):
        fetch_url(f"{drive.base}/download?id={fid}", dest, progress=False)
    kept = dest.with_name("w.pth.part").stat().st_size
    assert 0 < kept < len(DATA)
    drive.files[fid].cut = 0
    n = len(drive.log)
    fetch_url(f"{drive.base}/download?id={fid}", dest, progress=False)
    assert dest.read_bytes() == DATA
    assert [r for _h, _p, r in drive.log[n:]] == [f"bytes={kept}-"]


def test_partial_download_from_another_source_is_not_resumed(drive, mirror, tmp_path):
    fid = drive.add(DATA, cut=100)
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError):
        fetch_url(f"{drive.base}/download?id={fid}", dest, progress=False)
    fetch_url(mirror.put("w.pth", DATA), dest, progress=False)
    assert dest.read_bytes() == DATA
    assert [r for _m, _p, r in mirror.log] == [None]


def test_web_page_instead_of_the_file_is_rejected(mirror, tmp_path):
    page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Sign in to continue</body></html>"
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match="web page"):
        fetch_url(mirror.put("w.pth", page), dest, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_wrong_announced_size_stops_before_downloading(mirror, tmp_path):
    with pytest.raises(DownloadError, match=f"offers {len(DATA):,} bytes, expected 123"):
        fetch_url(mirror.put("w.pth", DATA), tmp_path / "w.pth", expected_size=123, progress=False)
    assert not (tmp_path / "w.pth.part").exists()


def test_failed_check_deletes_the_download(mirror, tmp_path):
    def check(path):
        assert path.read_bytes() == DATA  # the check sees the complete file before it is renamed
        raise LipsyncError("not the expected model")

    with pytest.raises(LipsyncError, match="not the expected model"):
        fetch_url(mirror.put("w.pth", DATA), tmp_path / "w.pth", check=check, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_status_is_reported(mirror, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_url(f"{mirror.base}/missing.pth", tmp_path / "w.pth", progress=False)


def test_connection_refused_is_a_network_error(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="connection refused"):
        fetch_url(f"http://127.0.0.1:{port}/w.pth", tmp_path / "w.pth", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_host_is_a_dns_error(tmp_path):
    with pytest.raises(DownloadError, match="host not found"):
        fetch_url("http://weights.invalid/w.pth", tmp_path / "w.pth", progress=False)


def test_file_lock_is_exclusive_across_open_files(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    lock = tmp_path / "x.lock"
    with locks.file_lock(lock), open(lock, "a+b") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock, "a+b") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_drive_link_whose_id_is_not_an_id_is_not_a_drive_source():
    from lipsync_core.weights.download import drive_id

    assert drive_id("https://drive.google.com/uc?id=/../../../etc") is None
    assert drive_id("https://drive.google.com/uc?id=1AbCdEfGhIjKlMnOpQrStUvWxYz012345") == \
        "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def test_the_source_that_left_a_partial_download_is_tried_first(drive, mirror, tmp_path):
    from lipsync_core.weights.download import resumable_first
    from lipsync_core.weights.manifest import Source

    fid = drive.add(DATA, cut=100)
    dest = tmp_path / "w.pth"
    second = Source("url", f"{drive.base}/download?id={fid}")
    first = Source("url", mirror.put("w.pth", DATA))
    assert resumable_first(dest, [first, second]) == [first, second]  # nothing partial yet
    with pytest.raises(DownloadError):
        fetch_url(second.target, dest, progress=False)
    assert resumable_first(dest, [first, second]) == [second, first]
