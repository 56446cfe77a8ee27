"""Caches are optional: a read-only, unwritable or full cache means no caching, one warning, and the run goes on."""
from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

import pytest
import torch

from lipsync_core.weights.store import fetch
from tests.support.faults import failing_creation, fill, made, readonly_bind, small_tmpfs
from tests.weights.conftest import checkpoint_bytes, url

DATA = checkpoint_bytes(20_000)


def warnings_about_the_cache(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]


@pytest.fixture
def tiny(mirror, write_manifest):
    write_manifest({"tiny": {"data": DATA, "sources": [url(mirror.put("tiny.pth", DATA))]}})
    return mirror


@pytest.fixture
def local_checkpoint(tmp_path) -> Path:
    p = tmp_path / "mine" / "wav2lip.pth"
    p.parent.mkdir()
    p.write_bytes(DATA)
    return p


def loads_as_tiny(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    w = state.get("w", state.get("state_dict", {}).get("module.w"))
    assert torch.equal(w, torch.linspace(0, 1, 20_000))


def test_read_only_cache_with_a_local_checkpoint(tiny, local_checkpoint, tmp_path, caplog):
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    with made(readonly_bind(empty)) as ro, caplog.at_level(logging.WARNING):
        path = fetch("tiny", source=local_checkpoint, cache_dir=ro, progress=False)
        loads_as_tiny(path)
        assert list(ro.iterdir()) == []
    assert len(warnings_about_the_cache(caplog)) == 1
    assert tiny.log == []


def test_prepared_read_only_cache_is_used_as_it_is(tiny, tmp_path, monkeypatch, caplog):
    prepared = tmp_path / "prepared"
    fetch("tiny", cache_dir=prepared, progress=False)
    before = sorted(p.name for p in (prepared / "weights").iterdir())
    with made(readonly_bind(prepared)) as ro, caplog.at_level(logging.WARNING):
        monkeypatch.setenv("LIPSYNC_OFFLINE", "1")
        path = fetch("tiny", cache_dir=ro, progress=False)
        assert path == ro / "weights" / "tiny.stripped.pth"
        loads_as_tiny(path)
    assert sorted(p.name for p in (prepared / "weights").iterdir()) == before
    assert tiny.gets("tiny.pth") == 1 and caplog.text == ""


def test_read_only_cache_downloads_to_a_temporary_folder(tiny, tmp_path, caplog):
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    with made(readonly_bind(empty)) as ro, caplog.at_level(logging.WARNING):
        path = fetch("tiny", cache_dir=ro, progress=False)
        loads_as_tiny(path)
        assert not path.is_relative_to(ro) and list(ro.iterdir()) == []
    assert len(warnings_about_the_cache(caplog)) == 1
    shutil.rmtree(path.parent)


def test_full_cache_downloads_to_a_temporary_folder(tiny, caplog):
    with made(small_tmpfs(64 * 1024)) as full, caplog.at_level(logging.WARNING):
        (full / "weights").mkdir()
        fill(full)
        path = fetch("tiny", cache_dir=full, progress=False)
        loads_as_tiny(path)
        assert not path.is_relative_to(full)
        assert sorted(p.name for p in (full / "weights").iterdir() if p.suffix != ".lock") == []
    assert len(warnings_about_the_cache(caplog)) == 1
    shutil.rmtree(path.parent)


def test_cache_filling_up_during_the_download_falls_back_to_a_temporary_folder(tiny, caplog):
    with made(small_tmpfs(64 * 1024)) as small, caplog.at_level(logging.WARNING):
        path = fetch("tiny", cache_dir=small, progress=False)  # DATA (~160 KB) does not fit in 64 KB
        loads_as_tiny(path)
        assert not path.is_relative_to(small)
        assert not [p for p in (small / "weights").iterdir() if ".part" in p.name]  # the partial freed its space
    assert len(warnings_about_the_cache(caplog)) == 1
    shutil.rmtree(path.parent)


@pytest.mark.parametrize("err", [errno.EROFS, errno.ENOSPC, errno.EACCES], ids=errno.errorcode.get)
@pytest.mark.parametrize("at", ["open", "write"])
def test_injected_write_errors_mean_no_caching(tiny, local_checkpoint, tmp_path, err, at, caplog):
    cache = tmp_path / "cache-root"
    with failing_creation(cache, err, at=at), caplog.at_level(logging.WARNING):
        loads_as_tiny(fetch("tiny", source=local_checkpoint, cache_dir=cache, progress=False))
        downloaded = fetch("tiny", cache_dir=cache, progress=False)
        loads_as_tiny(downloaded)
    assert not downloaded.is_relative_to(cache)
    assert len(warnings_about_the_cache(caplog)) == 1
    shutil.rmtree(downloaded.parent)


def test_cache_root_that_is_a_file_means_no_caching(tiny, local_checkpoint, tmp_path, caplog):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("oops")
    with caplog.at_level(logging.WARNING):
        loads_as_tiny(fetch("tiny", source=local_checkpoint, cache_dir=not_a_folder, progress=False))
        downloaded = fetch("tiny", cache_dir=not_a_folder, progress=False)
        loads_as_tiny(downloaded)
    assert len(warnings_about_the_cache(caplog)) == 1 and not_a_folder.read_text() == "oops"
    shutil.rmtree(downloaded.parent)
