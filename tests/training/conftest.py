"""Fixtures for training tests: the shared training reference material, and its parity mini-batch."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import shared_path


@pytest.fixture(scope="session")
def training_dir():
    return shared_path("reference", "training")


@pytest.fixture(scope="session")
def losses_io(training_dir) -> dict[str, np.ndarray]:
    with np.load(training_dir / "losses_io.npz") as npz:
        return dict(npz)


@pytest.fixture(scope="session")
def training_manifest(training_dir) -> dict:
    return json.loads((training_dir / "manifest.json").read_text())
