"""The weights manifest: its schema and the repository's filled-in copy (variants: tests/test_plan.py)."""
from __future__ import annotations

import json
import re

import pytest

from lipsync_core.models.registry import FILE_SPECS, SPECS
from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights.download import drive_id
from lipsync_core.weights.manifest import load_manifest, manifest_path, parse_manifest
from tests.conftest import REPO

MANIFEST = REPO / "weights_manifest.json"
SHA256 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(MANIFEST)


def test_the_repository_manifest_is_the_default(monkeypatch):
    monkeypatch.delenv("LIPSYNC_MANIFEST", raising=False)
    assert manifest_path().resolve() in (MANIFEST.resolve(), (REPO / "lipsync_core" / MANIFEST.name).resolve())


#: Weights whose size and sha256 are published nowhere: recorded on first download, reported as unpinned.
UNPINNED = {"syncnet_v2"}


def test_every_entry_has_size_hash_licence_and_a_registry_arch(manifest):
    for wid, e in manifest.weights.items():
        assert e.license.strip(), wid
        if wid in UNPINNED:
            assert e.size is None and e.sha256 is None, wid
        else:
            assert SHA256.fullmatch(e.sha256), wid
        if e.arch in FILE_SPECS:  # not a torch checkpoint (the anime face cascade)
            assert isinstance(e.size, int) and e.size > 100_000 and not e.file.endswith(".pth"), wid
            continue
        assert wid in UNPINNED or (isinstance(e.size, int) and e.size > 1_000_000), wid
        assert e.arch in SPECS, wid
        assert e.file.endswith((".pth", ".model")), wid
    hashes = [e.sha256 for e in manifest.weights.values() if e.sha256]
    assert len(set(hashes)) == len(hashes)


def test_checkpoint_conventions_follow_the_published_files(manifest):
    conventions = {wid: e.convention for wid, e in manifest.weights.items()}
    assert conventions["wav2lip"] == conventions["wav2lip_gan"] == "state_dict"
    assert conventions["esrgan_yunying"] == "params"  # wav2lip-hq's apply_sr.py loads ['params']
    assert conventions["codeformer"] == "params_ema"
    assert conventions["s3fd"] == conventions["face_segmentation"] == "raw"


def test_sources_are_ordered_hash_bound_first_and_drive_last(manifest):
    for wid, e in manifest.weights.items():
        assert e.sources, wid
        kinds = [s.kind for s in e.sources]
        assert kinds == sorted(kinds, key=lambda k: k == "gdrive"), wid  # no URL after a Drive ID
        urls = [s for s in e.sources if s.kind == "url"]
        bound = [s.hash_bound for s in urls]
        assert bound == sorted(bound, reverse=True), wid  # no hash-bound URL after an unbound one
        assert e.sources[0].hash_bound or wid in UNPINNED, wid  # nothing to bind an unpinned file to


def test_sources_are_direct_downloads(manifest):
    for wid, e in manifest.weights.items():
        for s in e.sources:
            if s.kind == "url":
                assert s.target.startswith("https://"), (wid, s)
                assert "/blob/" not in s.target and "sharepoint.com" not in s.target, (wid, s)
                if "huggingface.co" in s.target:
                    assert "/resolve/" in s.target, (wid, s)
            else:
                assert drive_id(s.target) == s.target, (wid, s)


def test_official_drive_link_serving_another_file_is_not_a_source(manifest):
    # Since 2025-04 the official README's "Wav2Lip + GAN" Drive link serves Wav2Lip-SD-GAN.pt (TorchScript).
    sd_gan = "15G3U08c8xsCkOqQxE38Z2XXDnPcOptNk"
    assert all(s.target != sd_gan for e in manifest.weights.values() for s in e.sources)
    sd_gan_sha = "180cfd49d31d47f195d5bfc62830ffe2c40724b7bbbce6faadc73ac6ab1a3b8e"
    assert "Wav2Lip-SD-GAN.pt" in manifest.known_files[sd_gan_sha]


def test_known_files_are_not_weights(manifest):
    weights = {e.sha256 for e in manifest.weights.values()}
    for sha, what in manifest.known_files.items():
        assert SHA256.fullmatch(sha) and sha not in weights and what


def _minimal() -> dict:
    return {"schema_version": 1,
            "weights": {"w": {"file": "w.pth", "size": None, "sha256": None, "license": "x", "arch": "wav2lip",
                              "convention": "state_dict", "sources": [{"kind": "gdrive", "id": "abc"}]}}}


def test_minimal_manifest_parses_with_optional_fields_absent(tmp_path):
    m = parse_manifest(_minimal(), tmp_path / "m.json")
    assert m.known_files == {} and m.entry("w").sources[0].hash_bound is False


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d["weights"]["w"].update(convention="pickle"), "convention"),
    (lambda d: d["weights"]["w"]["sources"].append({"kind": "ftp", "url": "ftp://x"}), "source kind"),
    (lambda d: d["weights"]["w"].update(arch="gfpgan"), "arch"),
])
def test_schema_violations_are_reported(tmp_path, breakage, message):
    data = _minimal()
    breakage(data)
    with pytest.raises(ValueError, match=message):
        parse_manifest(data, tmp_path / "m.json")


def test_manifest_env_var_and_missing_file(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_minimal()))
    monkeypatch.setenv("LIPSYNC_MANIFEST", str(path))
    assert set(load_manifest().weights) == {"w"}
    monkeypatch.setenv("LIPSYNC_MANIFEST", str(tmp_path / "absent.json"))
    with pytest.raises(LipsyncError, match="LIPSYNC_MANIFEST"):
        load_manifest()


def test_unknown_ids_name_the_known_ones(manifest):
    with pytest.raises(LipsyncError, match="known: anime_face_cascade, codeformer, esrgan_yunying, face_segmentation"):
        manifest.entry("wav2lip_hd")

