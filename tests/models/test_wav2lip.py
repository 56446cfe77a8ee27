"""Wav2Lip generator: the released checkpoints' keys, and the reference function, in every form it is loaded."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lipsync_core.models import load, load_wav2lip
from lipsync_core.models.wav2lip import Wav2Lip, build_from_state
from lipsync_core.testing.procedural import procedural_state_dict
from tests.models.parity import arrays, assert_listing, assert_matches, built_strictly, forward, keys


@pytest.fixture(scope="module")
def io(parity_dir):
    return arrays(parity_dir, "wav2lip")


@pytest.fixture(scope="module")
def reference_model(parity_dir) -> Wav2Lip:
    return built_strictly(build_from_state, procedural_state_dict(keys(parity_dir, "wav2lip")))


def assert_reference(model: nn.Module, io: dict) -> None:
    assert_matches(forward(model, io["in_mel"], io["in_face"]), io["out"])


def test_state_dict_has_the_released_keys_shapes_and_dtypes(parity_dir):
    assert_listing(Wav2Lip(), keys(parity_dir, "wav2lip"))


def test_forward_reproduces_the_reference(reference_model, io):
    assert_reference(reference_model, io)


def test_released_training_checkpoint_loads_fused_frozen_and_reproduces_the_reference(reference_model, io, tmp_path,
                                                                                     monkeypatch):
    # wav2lip.pth: legacy pickle, tensors on cuda:0, every key prefixed "module.", Adam state and counters.
    ckpt = {"state_dict": {"module." + k: v for k, v in reference_model.state_dict().items()},
            "optimizer": torch.optim.Adam(reference_model.parameters(), lr=1e-3).state_dict(),
            "global_step": 396000, "global_epoch": 203}
    path = tmp_path / "wav2lip.pth"
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    monkeypatch.undo()

    model = load_wav2lip(path)
    assert isinstance(model, Wav2Lip) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # folded into the convolutions
    assert_reference(model, io)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace; the export format is TorchScript
def test_torchscript_export_loads_the_exact_weights(reference_model, io, tmp_path):
    path = tmp_path / "Wav2Lip-SD-GAN.pt"
    example = (torch.from_numpy(io["in_mel"][:1]), torch.from_numpy(io["in_face"][:1]))
    torch.jit.trace(reference_model, example, check_trace=False).save(str(path))
    model = load("wav2lip", path, fuse=False)
    assert isinstance(model, Wav2Lip)
    want = reference_model.state_dict()
    got = model.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
