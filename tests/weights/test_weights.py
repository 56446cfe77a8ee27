"""acquire.weights.fetch: sources in order, a verified cache, user-given files, offline mode, concurrency."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lipsync_core.support import locks
from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights import store as weights
from lipsync_core.weights.store import fetch, weights_dir
from tests.conftest import REPO
from tests.weights.conftest import checkpoint_bytes, sha256, url

DATA = checkpoint_bytes(20_000)
OTHER = checkpoint_bytes(20_000, step=8)  # same size, other bytes


def cache_files() -> list[str]:
    """Everything in the weights cache except lock files."""
    root = weights_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.suffix not in (".lock", ".inuse"))


def rejecting_validator(path: Path) -> None:
    raise LipsyncError(f"{path} holds S3FD face detector weights, not Wav2Lip generator weights")


@pytest.fixture
def tiny(mirror, write_manifest):
    """Weight ``tiny`` whose only source is the mirror."""
    write_manifest({"tiny": {"data": DATA, "sources": [url(mirror.put("tiny.pth", DATA))]}})
    return mirror


def test_fetch_downloads_verifies_and_returns_a_weights_only_copy(tiny):
    path = fetch("tiny", progress=False)
    assert path == weights_dir() / "tiny.stripped.pth"
    assert (weights_dir() / "tiny.pth").read_bytes() == DATA  # the original, as published
    state = torch.load(path, weights_only=True)
    assert list(state) == ["w"]  # no optimizer, no "module." prefix
    assert torch.equal(state["w"], torch.linspace(0, 1, 20_000))
    assert path.stat().st_size < len(DATA)


def test_second_fetch_uses_the_cache_without_hashing_again(tiny, monkeypatch):
    calls = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p: calls.append(p) or real(p))
    first = fetch("tiny", progress=False)
    second = fetch("tiny", progress=False)
    assert first == second
    assert tiny.gets("tiny.pth") == 1
    assert len(calls) == 1


def test_cached_file_changed_on_disk_is_rechecked_moved_aside_and_replaced(tiny, caplog):
    fetch("tiny", progress=False)
    original = weights_dir() / "tiny.pth"
    original.write_bytes(OTHER)  # same size, other bytes (a sync tool mixing up files, say)
    st = original.stat()
    os.utime(original, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # coarse clocks: make the change visible
    with caplog.at_level(logging.WARNING):
        fetch("tiny", progress=False)  # no validator: nothing proves OTHER loads, so it is not used...
    assert "moved it aside to" in caplog.text
    assert original.read_bytes() == DATA
    assert tiny.gets("tiny.pth") == 2
    aside, = weights_dir().glob("tiny.moved-*.pth")  # ...and not deleted either
    assert aside.read_bytes() == OTHER


def test_next_source_is_tried_after_a_failure(mirror, write_manifest):
    write_manifest({"tiny": {"data": DATA, "sources": [url(f"{mirror.base}/gone.pth"),
                                                       url(mirror.put("tiny.pth", DATA))]}})
    fetch("tiny", progress=False)
    assert (weights_dir() / "tiny.pth").read_bytes() == DATA


def test_hash_mismatch_is_rejected_and_nothing_is_cached(mirror, write_manifest):
    write_manifest({"tiny": {"data": DATA, "sources": [url(mirror.put("tiny.pth", OTHER))]}})
    with pytest.raises(LipsyncError) as err:
        fetch("tiny", progress=False)
    message = str(err.value)
    assert message.startswith("could not get tiny (tiny.pth): ")
    assert f"sha256 {sha256(OTHER)[:12]}… differs from the manifest's {sha256(DATA)[:12]}…" in message
    assert cache_files() == []


def test_a_file_of_another_known_kind_is_named(mirror, write_manifest):
    write_manifest({"tiny": {"data": DATA, "sources": [url(mirror.put("tiny.pth", OTHER))]}},
                   known_files={sha256(OTHER): "Wav2Lip-SD-GAN.pt, a TorchScript export"})
    with pytest.raises(LipsyncError, match="this is Wav2Lip-SD-GAN.pt, a TorchScript export"):
        fetch("tiny", progress=False)


def test_validation_failure_names_what_the_file_is(tiny):
    with pytest.raises(LipsyncError, match="holds S3FD face detector weights, not Wav2Lip"):
        fetch("tiny", validate=rejecting_validator, progress=False)
    assert cache_files() == []


def test_every_failed_source_is_reported_on_one_line(mirror, write_manifest):
    write_manifest({"tiny": {"data": DATA, "sources": [url(f"{mirror.base}/gone.pth"),
                                                       url(mirror.put("other.pth", OTHER))]}})
    with pytest.raises(LipsyncError) as err:
        fetch("tiny", progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "tried 127.0.0.1/gone.pth: HTTP 404" in message
    assert "127.0.0.1/other.pth: sha256" in message
    assert "pass its local path" in message


def test_offline_cache_miss_is_an_error_without_network(tiny, monkeypatch):
    monkeypatch.setenv("LIPSYNC_OFFLINE", "1")
    with pytest.raises(LipsyncError, match="LIPSYNC_OFFLINE is set, so nothing is downloaded"):
        fetch("tiny", progress=False)
    assert tiny.log == []


def test_offline_cache_hit_works(tiny, monkeypatch):
    online = fetch("tiny", progress=False)
    monkeypatch.setenv("LIPSYNC_OFFLINE", "1")
    assert fetch("tiny", progress=False) == online
    assert tiny.gets("tiny.pth") == 1


def test_user_local_file_is_left_alone_and_loaded_from_a_weights_only_copy(tiny, tmp_path):
    mine = tmp_path / "mine" / "my_wav2lip.pth"
    mine.parent.mkdir()
    mine.write_bytes(DATA)
    before = mine.stat().st_mtime_ns
    got = fetch("tiny", source=str(mine), progress=False)
    assert got.parent == weights_dir() / "local" and got.name.endswith(".stripped.pth")
    assert list(torch.load(got, weights_only=True)) == ["w"]  # the state dict alone, prefix stripped
    assert mine.read_bytes() == DATA and mine.stat().st_mtime_ns == before
    assert list(mine.parent.iterdir()) == [mine]  # nothing written beside the user's file
    assert fetch("tiny", source=str(mine), progress=False) == got
    assert tiny.log == []


def test_user_file_with_another_hash_is_accepted_when_it_validates(tiny, tmp_path, caplog):
    mine = tmp_path / "finetuned.pth"
    mine.write_bytes(OTHER)
    checked = []
    with caplog.at_level(logging.WARNING):
        fetch("tiny", source=str(mine), validate=checked.append, progress=False)
    assert checked == [mine]
    assert "differs from the manifest's" in caplog.text and "loads as wav2lip" in caplog.text


def test_user_file_with_another_hash_needs_a_validator(tiny, tmp_path):
    mine = tmp_path / "finetuned.pth"
    mine.write_bytes(OTHER)
    with pytest.raises(LipsyncError, match="only be used once it is checked to load as wav2lip"):
        fetch("tiny", source=str(mine), progress=False)


def test_user_file_that_fails_validation_is_an_error_with_no_fallback(tiny, tmp_path):
    mine = tmp_path / "s3fd.pth"
    mine.write_bytes(OTHER)
    with pytest.raises(LipsyncError, match=f"tiny: {mine}: .*holds S3FD face detector weights"):
        fetch("tiny", source=str(mine), validate=rejecting_validator, progress=False)
    assert tiny.log == []


def test_user_url_goes_first_and_is_kept_apart(tiny, caplog):
    given = tiny.put("finetuned.pth", OTHER)
    with caplog.at_level(logging.WARNING):
        path = fetch("tiny", source=given, validate=lambda p: None, progress=False)
    assert tiny.gets("finetuned.pth") == 1 and tiny.gets("tiny.pth") == 0
    assert path.parent.parent == weights_dir() / "sources"
    assert (path.parent / "tiny.pth").read_bytes() == OTHER
    assert not (weights_dir() / "tiny.pth").exists()
    assert fetch("tiny", source=given, validate=lambda p: None, progress=False) == path
    assert tiny.gets("finetuned.pth") == 1


def test_failing_user_url_is_an_error_naming_the_flag_not_a_fallback(tiny):
    with pytest.raises(LipsyncError) as err:
        fetch("tiny", source=f"{tiny.base}/gone.pth", progress=False, flag="--checkpoint_path")
    message = str(err.value)
    assert message.startswith(f"--checkpoint_path {tiny.base}/gone.pth: HTTP 404")
    assert "Nothing else is used in its place" in message and "leave it out to use the default tiny.pth" in message
    assert "\n" not in message
    assert tiny.gets("tiny.pth") == 0 and cache_files() == []


def test_unusable_source_text_is_an_error(tiny):
    with pytest.raises(LipsyncError, match="not an existing file, a URL, or a Google Drive ID"):
        fetch("tiny", source="no/such/wav2lip.pth", progress=False)


def test_a_missing_local_file_named_like_a_drive_id_is_reported_missing(tiny):
    with pytest.raises(LipsyncError, match="^--checkpoint_path my_talking_head_recording_final: .*not an existing"):
        fetch("tiny", source="my_talking_head_recording_final", progress=False, flag="--checkpoint_path")
    assert tiny.log == []


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_user_file_reaches_the_validator_and_gets_a_weights_copy(tiny):
    module = torch.jit.script(torch.nn.Linear(3, 2))
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    seen = []
    path = fetch("tiny", source=tiny.put("Wav2Lip-SD-GAN.pt", buf.getvalue()), validate=seen.append,
                 progress=False)
    assert len(seen) == 1
    state = torch.load(path, weights_only=True)
    assert set(state) == {"weight", "bias"} and torch.equal(state["weight"], module.weight.detach())


def test_verify_moves_aside_a_cached_file_that_is_not_the_manifests(tiny):
    fetch("tiny", progress=False)
    assert weights.verify("tiny") is True
    (weights_dir() / "tiny.pth").write_bytes(OTHER)
    with pytest.raises(LipsyncError, match="is not the manifest's file .*moved it aside"):
        weights.verify("tiny")
    assert [p for p in cache_files() if "moved" in p] != [] and "tiny.pth" not in cache_files()
    assert weights.verify("tiny") is False


def test_verify_deletes_its_own_download_that_no_longer_loads(tiny):
    fetch("tiny", progress=False)
    cached = weights_dir() / "tiny.pth"
    st = cached.stat()
    cached.write_bytes(b"\0" * len(DATA))  # bit rot: same size and mtime as recorded, but it no longer loads
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(LipsyncError, match="deleted it"):
        weights.verify("tiny", validate=rejecting_validator)
    assert cache_files() == []


def test_status_reports_the_cache_state(tiny):
    assert weights.status("tiny") == "missing"
    fetch("tiny", progress=False)
    assert weights.status("tiny") == "verified"
    (weights_dir() / "tiny.pth.json").unlink()
    assert weights.status("tiny") == "cached"
    (weights_dir() / "tiny.pth").write_bytes(DATA[:100])
    assert weights.status("tiny") == "damaged"


def test_an_unpinned_weight_is_recorded_once_with_a_warning_and_never_called_verified(mirror, write_manifest,
                                                                                       caplog):
    write_manifest({"loose": {"sources": [url(mirror.put("loose.pth", DATA))]}})  # no size, no sha256
    with caplog.at_level(logging.WARNING):
        fetch("loose", progress=False)
    assert "recorded it as unpinned" in caplog.text and sha256(DATA) in caplog.text and f"{len(DATA):,}" in caplog.text
    assert weights.status("loose") == "unpinned"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        fetch("loose", progress=False)
    assert "unpinned" not in caplog.text


def test_cache_dir_resolution(tmp_path, monkeypatch):
    assert weights.cache_root(tmp_path / "given") == tmp_path / "given"
    monkeypatch.setenv("LIPSYNC_CACHE", str(tmp_path / "env"))
    assert weights.cache_root() == tmp_path / "env"
    monkeypatch.delenv("LIPSYNC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_root() == tmp_path / "xdg" / "lipsync"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.cache_root() == tmp_path / "home" / ".cache" / "lipsync"


def test_two_processes_fetching_at_once_download_once(tiny):
    script = ("import logging; logging.basicConfig(level=logging.INFO)\n"
              "from lipsync_core.weights.store import fetch\nprint(fetch('tiny', progress=False))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with locks.file_lock(weights_dir() / "tiny.pth.lock"):  # as if a third process were downloading
        procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:  # both must be waiting on the lock before it is released
            assert any("waiting for another process" in line for line in p.stderr), p.wait()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    paths = {out.strip() for out, _err in results}
    assert paths == {str(weights_dir() / "tiny.stripped.pth")}
    assert tiny.gets("tiny.pth") == 1
