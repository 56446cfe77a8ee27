"""The weights cache never destroys a file that would load, and a user's own source is never swapped for another."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights import store as weights
from lipsync_core.weights.store import fetch, weights_dir
from tests.weights.conftest import checkpoint_bytes, gdrive, url

DATA = checkpoint_bytes(20_000)
OTHER = checkpoint_bytes(20_000, step=8)  # a loadable checkpoint that is not the manifest's file
JUNK = b"PK\x03\x04 not really a checkpoint" * 100


def loads(path: Path) -> None:
    """A validator: the file must be a torch checkpoint (stands in for models.validator(arch))."""
    try:
        torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is "not this model"
        raise LipsyncError(f"{path.name} is not a checkpoint ({type(exc).__name__})") from None


def cache_files(root: Path | None = None) -> list[str]:
    root = root or weights_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.suffix not in (".lock", ".inuse"))


@pytest.fixture
def tiny(mirror, write_manifest):
    write_manifest({"tiny": {"data": DATA, "sources": [url(mirror.put("tiny.pth", DATA))]}})
    return mirror


@pytest.fixture(params=["local cache", "Drive folder"])
def cache(request, tmp_path) -> Path | None:
    """The cache root: the default one, or a notebook's Drive folder given as ``cache_dir``."""
    return None if request.param == "local cache" else tmp_path / "content" / "drive" / "MyDrive" / "lipsync"


def drop(cache: Path | None, data: bytes) -> Path:
    """The user drops their own copy into the cache where the manifest's file goes."""
    path = weights_dir(cache) / "tiny.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- files found in the cache ---------------------------------------------------------------------------------------
def test_own_copy_that_loads_is_used_with_a_warning_and_never_downloaded_over(tiny, cache, caplog):
    mine = drop(cache, OTHER)
    with caplog.at_level(logging.WARNING):
        path = fetch("tiny", cache_dir=cache, validate=loads, progress=False)
    assert "differs from the manifest's" in caplog.text and "loads as wav2lip" in caplog.text
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.linspace(0, 1, 20_000))
    assert mine.read_bytes() == OTHER and tiny.log == []
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert fetch("tiny", cache_dir=cache, validate=loads, progress=False) == path
    assert "differs from the manifest's" in caplog.text  # said on every use
    assert weights.status("tiny", cache_dir=cache) == "differs"


def test_own_copy_that_does_not_load_is_moved_aside_and_said_so(tiny, cache, caplog):
    drop(cache, JUNK)
    with caplog.at_level(logging.WARNING):
        fetch("tiny", cache_dir=cache, validate=loads, progress=False)
    aside, = weights_dir(cache).glob("tiny.moved-*.pth")
    assert aside.read_bytes() == JUNK
    assert f"moved it aside to {aside}" in caplog.text
    assert (weights_dir(cache) / "tiny.pth").read_bytes() == DATA and tiny.gets("tiny.pth") == 1


def test_exact_copy_without_a_record_is_used_silently(tiny, cache, caplog):
    drop(cache, DATA)
    with caplog.at_level(logging.WARNING):
        fetch("tiny", cache_dir=cache, validate=loads, progress=False)
    assert caplog.text == "" and tiny.log == []
    assert weights.status("tiny", cache_dir=cache) == "verified"


def test_an_older_manifests_file_that_loads_is_kept_in_use(mirror, write_manifest, caplog):
    write_manifest({"tiny": {"data": OTHER, "sources": [url(mirror.put("tiny.pth", OTHER))]}})
    fetch("tiny", validate=loads, progress=False)
    write_manifest({"tiny": {"data": DATA, "sources": [url(mirror.put("tiny.pth", DATA))]}})  # the manifest moved on
    with caplog.at_level(logging.WARNING):
        fetch("tiny", validate=loads, progress=False)
    assert "differs from the manifest's" in caplog.text
    assert (weights_dir() / "tiny.pth").read_bytes() == OTHER and mirror.gets("tiny.pth") == 1


def test_only_its_own_download_that_no_longer_loads_is_deleted(tiny, caplog):
    fetch("tiny", progress=False)
    cached = weights_dir() / "tiny.pth"
    st = cached.stat()
    cached.write_bytes(b"\0" * len(DATA))  # damaged in place: size and mtime as recorded
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))
    with caplog.at_level(logging.WARNING):
        fetch("tiny", validate=loads, progress=False)
    assert "deleted it" in caplog.text
    assert cached.read_bytes() == DATA and not list(weights_dir().glob("*.moved-*"))


# -- a user's own source ----------------------------------------------------------------------------------------------
def test_users_drive_id_that_fails_is_an_error_and_the_manifest_file_is_not_fetched(tiny, drive):
    fid = drive.add(DATA, mode="permission")
    with pytest.raises(LipsyncError) as err:
        fetch("tiny", source=fid, progress=False, flag="--checkpoint_path")
    assert str(err.value).startswith(f"--checkpoint_path {fid} (and there is no local file of that name): "
                                     "Google Drive did not serve the file")
    assert tiny.gets("tiny.pth") == 0 and cache_files() == []


def test_offline_with_a_users_url_is_an_error_not_the_default(tiny, monkeypatch):
    fetch("tiny", progress=False)  # the manifest's file is cached...
    monkeypatch.setenv("LIPSYNC_OFFLINE", "1")
    with pytest.raises(LipsyncError, match="^--checkpoint_path http.*finetuned.pth is not in the cache"):
        fetch("tiny", source=f"{tiny.base}/finetuned.pth", progress=False, flag="--checkpoint_path")  # ...not used


def test_one_of_the_manifests_own_sources_may_stand_in_for_another(mirror, drive, write_manifest):
    fid = drive.add(DATA, mode="quota")
    write_manifest({"tiny": {"data": DATA, "sources": [gdrive(fid), url(mirror.put("tiny.pth", DATA))]}})
    path = fetch("tiny", source=fid, progress=False, flag="--checkpoint_path")  # the same file: sha256 pinned
    assert path == weights_dir() / "tiny.stripped.pth" and mirror.gets("tiny.pth") == 1


def test_naming_the_weight_id_means_the_manifests_file(tiny):
    assert fetch("tiny", source="tiny", progress=False) == weights_dir() / "tiny.stripped.pth"


def test_an_invalid_drive_share_link_is_reported_as_invalid(tiny):
    with pytest.raises(LipsyncError, match="not a valid Google Drive file link"):
        fetch("tiny", source="https://drive.google.com/file/d/abc/view?usp=sharing", progress=False)
    assert tiny.log == []
