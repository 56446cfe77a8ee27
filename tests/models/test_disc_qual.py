"""Wav2Lip_disc_qual (visual quality discriminator): the released checkpoint's keys, and the reference function."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.models import identify, load
from lipsync_core.models.disc_qual import DiscQual, build_from_state
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import procedural_module, write_checkpoint
from lipsync_core.testing.procedural import load_rows, procedural_state_dict
from tests.conftest import shared_path
from tests.models.parity import assert_listing, assert_matches, built_strictly


@pytest.fixture(scope="module")
def training_dir():
    return shared_path("reference", "training")


@pytest.fixture(scope="module")
def rows(training_dir):
    return load_rows(training_dir / "disc_qual_keys.json")


@pytest.fixture(scope="module")
def io(training_dir):
    with np.load(training_dir / "disc_qual_io.npz") as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def reference_model(rows) -> DiscQual:
    return built_strictly(build_from_state, procedural_state_dict(rows))


def test_state_dict_has_the_released_keys_shapes_and_dtypes(rows):
    assert_listing(DiscQual(), rows)
    assert sum(p.numel() for p in DiscQual().parameters()) == 14_113_793


def test_forward_reproduces_features_logits_scores_and_the_adversarial_loss(reference_model, io):
    face = torch.from_numpy(io["in_face"])
    with torch.no_grad():
        assert_matches(reference_model.features(face).flatten(1), io["feat"], name="feat")
        assert_matches(reference_model.logits(face), io["logit"], name="logit")
        out = reference_model(face)
        assert_matches(out, io["out"], name="out")
        loss = nn.functional.binary_cross_entropy(out, torch.ones_like(out))
    assert_matches(loss, io["perceptual_loss"], name="perceptual_loss")


def test_frames_are_folded_time_major(reference_model, io):
    face = torch.from_numpy(io["in_face"])  # (B=2, 3, T=5, 96, 96)
    with torch.no_grad():
        per_frame = reference_model.logits(face[:, :, 3])  # frame t=3 of both samples
        torch.testing.assert_close(reference_model.logits(face)[3 * 2:3 * 2 + 2], per_frame)


def test_the_procedural_builder_matches_the_key_listing(rows, reference_model):
    built = procedural_module("disc_qual")
    for (key, *_), (name, tensor) in zip(rows, built.state_dict().items()):
        assert key == name
        assert torch.equal(tensor, reference_model.state_dict()[key])


def test_released_checkpoint_format_loads_strictly_and_is_identified(tmp_path, reference_model, io):
    # visual_quality_disc.pth: legacy pickle {'state_dict', 'optimizer', 'global_step', 'global_epoch'}, no prefix.
    path = write_checkpoint("disc_qual", tmp_path / "visual_quality_disc.pth", wrapper="state_dict", legacy=True,
                            optimizer=True, model=reference_model)
    assert identify(path) == "disc_qual"
    model = load("disc_qual", path)
    with torch.no_grad():
        assert_matches(model.logits(torch.from_numpy(io["in_face"])), io["logit"], name="logit")


def test_a_discriminator_file_given_as_the_generator_says_where_it_belongs(tmp_path):
    path = write_checkpoint("disc_qual", tmp_path / "visual_quality_disc.pth", wrapper="state_dict")
    with pytest.raises(LipsyncError, match="holds Wav2Lip visual quality discriminator weights, not Wav2Lip generator"):
        load("wav2lip", path)
