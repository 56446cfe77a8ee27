"""Shared fixtures: where ../shared is, isolated caches, and the rule for missing reference material.

Tests that need ``../shared`` skip with a visible reason when it is absent, except under ``CI=true``,
where its absence is a failure (CI always has it).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIPSYNC_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip (fail under CI) when it is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        msg = f"reference material missing: {p}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI must have ../shared)")
        pytest.skip(msg)
    return p


def shared_media(name: str) -> Path | None:
    """A real media file from ../shared/media, or None so the caller can generate one instead."""
    p = SHARED / "media" / name
    return p if p.is_file() else None


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return shared_path("reference", "parity")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's caches: weights, face tracks and gdown cookies go to a temp dir."""
    root = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("LIPSYNC_CACHE", str(root / "lipsync"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "xdg"))
    monkeypatch.delenv("LIPSYNC_OFFLINE", raising=False)
    monkeypatch.delenv("LIPSYNC_MANIFEST", raising=False)
