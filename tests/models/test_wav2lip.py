"""Wav2Lip generator: the released checkpoints' keys, and the reference function, in every form it is loaded."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.models import load, load_wav2lip
from lipsync_core.models.wav2lip import Wav2Lip, build_from_state
from lipsync_core.testing.procedural import load_rows, procedural_state_dict


@pytest.fixture(scope="module")
def rows(parity_dir):
    return load_rows(parity_dir / "wav2lip_keys.json")


@pytest.fixture(scope="module")
def io(parity_dir):
    return dict(np.load(parity_dir / "wav2lip_io.npz"))


@pytest.fixture(scope="module")
def reference_model(rows) -> Wav2Lip:
    state = procedural_state_dict(rows)
    model = build_from_state(state)
    model.load_state_dict(state, strict=True)
    return model.eval()


def run(model: nn.Module, io: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.from_numpy(io["in_mel"]), torch.from_numpy(io["in_face"]))


def assert_reference(out: torch.Tensor, io: dict) -> None:
    ref = torch.from_numpy(io["out"])
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_state_dict_has_the_released_keys_shapes_and_dtypes(rows):
    got = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in Wav2Lip().state_dict().items()]
    assert got == [row[:3] for row in rows]


def test_forward_reproduces_the_reference(reference_model, io):
    assert_reference(run(reference_model, io), io)


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
    assert_reference(run(model, io), io)


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
