"""``lipsync weights list|fetch|verify`` (lipsync_core.front.weights_cli.main), run in-process."""
from __future__ import annotations

from dataclasses import replace

import pytest

from lipsync_core.engine.catalog import CATALOG
from lipsync_core.front import weights_cli
from lipsync_core.weights.store import fetch, weights_dir
from tests.weights.conftest import checkpoint_bytes, url

A = checkpoint_bytes(1000)
B = checkpoint_bytes(2000)


@pytest.fixture
def two_weights(mirror, write_manifest, monkeypatch):
    """Variant ``original`` = checkpoint ``a`` + s3fd ``b``, both on the mirror; validation accepts anything."""
    monkeypatch.setattr(weights_cli, "_validator", lambda arch, manifest: lambda path: None)
    write_manifest({"a": {"data": A, "sources": [url(mirror.put("a.pth", A))]},
                    "b": {"data": B, "sources": [url(mirror.put("b.pth", B))], "arch": "s3fd", "convention": "raw"}})
    only_original = CATALOG.extend(roles=[replace(CATALOG.roles["checkpoint"], default="a"),
                                          replace(CATALOG.roles["s3fd"], default="b")])
    monkeypatch.setattr(weights_cli, "CATALOG", replace(only_original, variants={
        "original": replace(CATALOG.variants["original"], weights={})}))
    return mirror


def rows(text: str) -> dict[str, list[str]]:
    return {cols[2]: cols for cols in (line.split() for line in text.splitlines()[1:])}


def test_list_shows_each_variant_role_and_state(two_weights, capsys):
    fetch("a", progress=False)
    assert weights_cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"cache: {weights_dir()}"
    table = rows(out)
    assert table["a"][:2] == ["original", "checkpoint"] and table["a"][-1] == "verified"
    assert table["b"][:2] == ["original", "s3fd"] and table["b"][-1] == "missing"


def test_list_shows_the_scorers_and_an_unpinned_file_as_unpinned(mirror, write_manifest, monkeypatch, capsys):
    monkeypatch.setattr(weights_cli, "_validator", lambda arch, manifest: lambda path: None)
    write_manifest({"syncnet_v2": {"sources": [url(mirror.put("s.model", A))], "arch": "syncnet_v2",
                                   "convention": "raw"}})  # no size, no sha256: unpinned
    monkeypatch.setattr(weights_cli, "CATALOG", replace(CATALOG, variants={}))
    fetch("syncnet_v2", progress=False)
    assert weights_cli.main(["list"]) == 0
    assert rows(capsys.readouterr().out)["syncnet_v2"] == ["(scoring)", "syncnet", "syncnet_v2", "?", "unpinned"]


def test_fetch_variant_with_a_source_for_one_weight(two_weights, tmp_path, capsys):
    mine = tmp_path / "my_a.pth"
    mine.write_bytes(A)
    assert weights_cli.main(["fetch", "--variant", "original", "--source", f"checkpoint={mine}", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"a: {weights_dir() / 'local'}") and out[0].endswith(".stripped.pth")
    assert out[1] == f"b: {weights_dir() / 'b.stripped.pth'}"
    assert two_weights.gets("a.pth") == 0 and two_weights.gets("b.pth") == 1


def test_fetch_failure_prints_one_line_and_returns_1(two_weights, capsys):
    (two_weights.root / "a.pth").unlink()
    assert weights_cli.main(["fetch", "a", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lipsync: error: could not get a (a.pth): ") and err.count("\n") == 1
    assert "HTTP 404" in err


def test_fetch_needs_something_to_fetch(two_weights, capsys):
    assert weights_cli.main(["fetch"]) == 1
    assert "--variant" in capsys.readouterr().err


def test_bad_source_syntax_is_explained(two_weights, capsys):
    assert weights_cli.main(["fetch", "--source", "a"]) == 1
    assert "expected ID=SOURCE" in capsys.readouterr().err


def test_unknown_weight_id_names_the_known_ones(two_weights, capsys):
    assert weights_cli.main(["fetch", "nope"]) == 1
    assert "unknown weight id 'nope'; known: a, b" in capsys.readouterr().err


def test_verify_takes_changed_files_out_of_use_and_returns_1(two_weights, capsys):
    fetch("a", progress=False)
    fetch("b", progress=False)
    (weights_dir() / "b.pth").write_bytes(A[: len(B)].ljust(len(B), b"\0"))  # changed since it was downloaded
    assert weights_cli.main(["verify"]) == 1
    captured = capsys.readouterr()
    assert "a: ok" in captured.out and "b: DAMAGED" in captured.out
    assert captured.err.startswith("lipsync: error: 1 cached weight file(s) were not the manifest's")
    assert not (weights_dir() / "b.pth").exists()
    assert len(list(weights_dir().glob("b.moved-*.pth"))) == 1  # not ours any more: moved aside, not deleted
