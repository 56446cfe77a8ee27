"""The anime face cascade is a manifest weight like the checkpoints: pinned, downloaded, verified, cached."""
from __future__ import annotations

import json

import pytest

from lipsync_core import models
from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights.manifest import load_manifest
from lipsync_core.weights.store import fetch, weights_dir
from tests.conftest import REPO
from tests.face.anime_media import cascade


def test_the_repository_manifest_pins_the_published_cascade():
    entry = load_manifest(REPO / "weights_manifest.json").entry("anime_face_cascade")
    assert (entry.size, entry.sha256) == (246945, "9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30")
    assert entry.arch == "opencv_cascade" and "MIT" in entry.license
    assert entry.sources[0].target.startswith("https://raw.githubusercontent.com/nagadomi/lbpcascade_animeface/"
                                              "4433ab1ae1166ea75acfe99eb0f18709dac329a0/")


@pytest.fixture
def cascade_entry(mirror, write_manifest):
    """The repository's entry for the cascade, served by a loopback mirror."""
    data = cascade().read_bytes()
    raw = json.loads((REPO / "weights_manifest.json").read_text())["weights"]["anime_face_cascade"]
    raw["sources"] = [{"kind": "url", "url": mirror.put("lbpcascade_animeface.xml", data), "hash_bound": True}]
    write_manifest({"anime_face_cascade": raw})
    return data


def test_fetch_downloads_verifies_and_caches_the_cascade_as_published(cascade_entry, monkeypatch):
    validate = models.validator("opencv_cascade")
    path = fetch("anime_face_cascade", validate=validate, progress=False)
    assert path == weights_dir() / "lbpcascade_animeface.xml" and path.read_bytes() == cascade_entry
    monkeypatch.setenv("LIPSYNC_OFFLINE", "1")
    assert fetch("anime_face_cascade", validate=validate, progress=False) == path  # offline: from the cache


def test_a_users_truncated_cascade_is_refused(cascade_entry, tmp_path):
    cut = tmp_path / "mine.xml"
    cut.write_bytes(cascade_entry[:50_000])
    with pytest.raises(LipsyncError, match="not a usable anime_face_cascade file"):
        fetch("anime_face_cascade", source=cut, validate=models.validator("opencv_cascade"), progress=False)
