"""Checkpoint files: every published format reads back, every broken download is named, wrong models are named."""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from lipsync_core.models import identify, load, validator
from lipsync_core.models.checkpoints import (
    CONVENTIONS,
    checkpoint_format,
    extract_state_dict,
    read_checkpoint,
    save_stripped,
)
from lipsync_core.models.syncnet import SyncNetColor
from lipsync_core.support.errors import LipsyncError


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())


def adam_state(model: nn.Module) -> dict:
    """A real Adam state dict after one step (exp_avg / exp_avg_sq tensors per parameter)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 8, 8)).mean().backward()
    opt.step()
    return opt.state_dict()


def save(obj: object, path: Path, *, legacy: bool = False, on_cuda: bool = False,
         monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    """torch.save, optionally in the pre-1.6 format and/or with every storage tagged as living on cuda:0."""
    if on_cuda:
        assert monkeypatch is not None
        monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    if on_cuda:
        monkeypatch.undo()
    return path


def training_checkpoint(model: nn.Module, prefix: str = "") -> dict:
    """The layout of Wav2Lip's released files: state_dict + Adam state + counters."""
    return {"state_dict": {prefix + k: v for k, v in model.state_dict().items()},
            "optimizer": adam_state(model), "global_step": 396000, "global_epoch": 203}


def assert_same_state(got: dict[str, torch.Tensor], model: nn.Module) -> None:
    want = model.state_dict()
    assert list(got) == list(want)
    for k, v in want.items():
        assert got[k].device.type == "cpu"
        assert torch.equal(got[k], v), k


# --- reading every format -------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_raw_state_dict_reads_in_both_serialisations(tmp_path, legacy):
    model = tiny_model()
    path = save(model.state_dict(), tmp_path / "w.pth", legacy=legacy)
    assert checkpoint_format(path) == ("legacy" if legacy else "zip")
    assert_same_state(extract_state_dict(read_checkpoint(path), "raw", path), model)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_tensors_saved_on_cuda_load_onto_the_cpu(tmp_path, monkeypatch, legacy):
    model = tiny_model()
    path = save(training_checkpoint(model), tmp_path / "w.pth", legacy=legacy, on_cuda=True, monkeypatch=monkeypatch)
    assert_same_state(extract_state_dict(read_checkpoint(path), "state_dict", path), model)


@pytest.mark.parametrize("prefix", ["", "module."], ids=["plain", "data_parallel"])
def test_training_checkpoint_yields_its_state_dict_without_prefix(tmp_path, monkeypatch, prefix):
    model = tiny_model()
    path = save(training_checkpoint(model, prefix), tmp_path / "wav2lip.pth", legacy=True, on_cuda=True,
                monkeypatch=monkeypatch)
    obj = read_checkpoint(path)
    assert obj["optimizer"]["state"]  # the Adam tensors were read too, and are ignored
    assert_same_state(extract_state_dict(obj, "state_dict", path), model)


def test_params_ema_is_preferred_over_params(tmp_path):
    ema, plain = tiny_model(), nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    path = save({"params": plain.state_dict(), "params_ema": ema.state_dict()}, tmp_path / "w.pth")
    assert_same_state(extract_state_dict(read_checkpoint(path), "params_ema", path), ema)
    assert_same_state(extract_state_dict(read_checkpoint(path), "params", path), plain)


def test_params_ema_convention_falls_back_to_params(tmp_path):
    model = tiny_model()
    path = save({"params": model.state_dict()}, tmp_path / "esrgan.pth")
    assert_same_state(extract_state_dict(read_checkpoint(path), "params_ema", path), model)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_plain_state_dict_is_accepted_under_every_convention(tmp_path, convention):
    model = tiny_model()
    path = save(model.state_dict(), tmp_path / "w.pth")
    assert_same_state(extract_state_dict(read_checkpoint(path), convention, path), model)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_stripped_copy_holds_only_the_weights_and_reads_back(tmp_path, monkeypatch, convention):
    model = tiny_model()
    big = save(training_checkpoint(model, "module."), tmp_path / "wav2lip.pth", legacy=True, on_cuda=True,
               monkeypatch=monkeypatch)
    small = tmp_path / "cache" / "wav2lip.weights.pth"
    save_stripped(extract_state_dict(read_checkpoint(big), "state_dict", big), small)
    assert checkpoint_format(small) == "zip"
    assert set(read_checkpoint(small)) == set(model.state_dict())
    assert_same_state(extract_state_dict(read_checkpoint(small), convention, small), model)
    assert [p.name for p in small.parent.iterdir()] == [small.name]  # no temporary file left behind


def test_stripped_copy_of_a_view_stores_only_the_view(tmp_path):
    big = torch.arange(100_000, dtype=torch.float32)
    save_stripped({"w": big[:10]}, tmp_path / "w.pth")
    assert (tmp_path / "w.pth").stat().st_size < 10_000
    assert torch.equal(read_checkpoint(tmp_path / "w.pth")["w"], big[:10])


# --- broken downloads -----------------------------------------------------------------------------------------

DRIVE_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>"
              b"Too many users have viewed or downloaded this file recently.</body></html>")
SHAREPOINT_PAGE = (b"\xef\xbb\xbf\r\n<html dir=\"ltr\"><head><title>Sign in to your account</title>"
                   b"<script src=\"https://iiitaphyd-my.sharepoint.com/_layouts/15/x.js\"></script></head></html>")


def _truncated(tmp_path: Path, legacy: bool) -> Path:
    path = save(training_checkpoint(tiny_model()), tmp_path / "full.pth", legacy=legacy)
    data = path.read_bytes()
    out = tmp_path / "wav2lip.pth"
    out.write_bytes(data[: len(data) * 2 // 3])
    return out


def trace_to(path: Path, module: nn.Module, example: torch.Tensor) -> Path:
    """Save a TorchScript export of ``module`` (tracing is deprecated upstream; the format is what we read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(module.eval(), example, check_trace=False).save(str(path))
    return path


def _torchscript(tmp_path: Path) -> Path:
    return trace_to(tmp_path / "model.pt", tiny_model(), torch.zeros(1, 3, 8, 8))


BROKEN = {
    "empty": (lambda d: _write(d, b""), "is empty"),
    "truncated_zip": (lambda d: _truncated(d, legacy=False), "the end of its zip archive is missing"),
    "truncated_legacy": (lambda d: _truncated(d, legacy=True), "truncated or damaged checkpoint (legacy format"),
    "drive_quota_page": (lambda d: _write(d, DRIVE_PAGE), "Google Drive web page"),
    "sharepoint_page": (lambda d: _write(d, SHAREPOINT_PAGE), "SharePoint/OneDrive web page"),
    "plain_html": (lambda d: _write(d, b"<html><body>404</body></html>"), "HTML web page"),
    "lfs_pointer": (lambda d: _write(d, b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n"),
                    "Git LFS pointer"),
    "torchscript": (_torchscript, "TorchScript archive"),
    "random_bytes": (lambda d: _write(d, bytes(range(7, 256)) * 40), "not a PyTorch checkpoint"),
    "no_tensors": (lambda d: save({"global_step": 3, "global_epoch": 1}, d / "w.pth"), "holds no tensors"),
    "python_objects": (lambda d: save({"args": argparse.Namespace(lr=1), "w": torch.ones(1)}, d / "w.pth"),
                       "argparse.Namespace"),
}


def _write(directory: Path, data: bytes) -> Path:
    path = directory / "wav2lip.pth"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", BROKEN)
def test_broken_file_raises_one_line_naming_file_and_problem(tmp_path, case):
    make, phrase = BROKEN[case]
    path = make(tmp_path)
    with pytest.raises(LipsyncError) as err:
        extract_state_dict(read_checkpoint(path), "state_dict", path)
    message = str(err.value)
    assert str(path) in message and phrase in message
    assert "\n" not in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(LipsyncError, match="checkpoint not found: .*absent.pth"):
        read_checkpoint(tmp_path / "absent.pth")


def test_load_reports_a_broken_file_the_same_way(tmp_path):
    path = _write(tmp_path, DRIVE_PAGE)
    with pytest.raises(LipsyncError, match="Google Drive web page"):
        load("wav2lip", path)


# --- the wrong model ------------------------------------------------------------------------------------------

def _fake_checkpoint(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A small checkpoint carrying another architecture's signature keys (identification reads only keys)."""
    return save({k: torch.zeros(s) for k, s in shapes.items()}, path)


S3FD_KEYS = {"conv1_1.weight": (64, 3, 3, 3), "fc7.weight": (8, 8, 1, 1), "conv3_3_norm_mbox_conf.weight": (4, 8, 3, 3)}
BISENET_KEYS = {"cp.resnet.conv1.weight": (64, 3, 7, 7), "conv_out.conv_out.weight": (19, 8, 1, 1)}
ESRGAN_X4_KEYS = {"conv_first.weight": (64, 3, 3, 3), "body.0.rdb1.conv1.weight": (32, 64, 3, 3),
                  "conv_up1.weight": (64, 64, 3, 3), "conv_up2.weight": (64, 64, 3, 3)}


@pytest.mark.parametrize(("keys", "arch", "phrase"), [
    (S3FD_KEYS, "wav2lip", "holds S3FD face detector weights, not Wav2Lip generator weights"),
    (BISENET_KEYS, "wav2lip", "holds BiSeNet face parsing (19 classes) weights, not Wav2Lip generator weights"),
    (ESRGAN_X4_KEYS, "rrdbnet_x2", "holds ESRGAN RRDBNet x4 weights, not ESRGAN RRDBNet x2 weights"),
])
def test_another_models_checkpoint_is_named(tmp_path, keys, arch, phrase):
    path = _fake_checkpoint(tmp_path / "x.pth", keys)
    with pytest.raises(LipsyncError) as err:
        load(arch, path)
    assert str(err.value) == f"{path} {phrase}"


def test_torchscript_of_another_model_is_named(tmp_path):
    class Head(nn.Module):  # carries S3FD's signature key names
        def __init__(self) -> None:
            super().__init__()
            self.fc7 = nn.Conv2d(3, 4, 1)
            self.conv3_3_norm_mbox_conf = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.conv3_3_norm_mbox_conf(self.fc7(x))

    path = trace_to(tmp_path / "Wav2Lip-SD-GAN.pt", Head(), torch.zeros(1, 3, 4, 4))
    with pytest.raises(LipsyncError, match=r"\(a TorchScript archive\) holds S3FD face detector weights"):
        load("wav2lip", path)


@pytest.fixture(scope="module")
def syncnet_state() -> dict[str, torch.Tensor]:
    return SyncNetColor().state_dict()


def test_key_mismatch_lists_missing_and_unexpected_keys(tmp_path, syncnet_state):
    state = dict(syncnet_state)
    del state["face_encoder.3.conv_block.1.running_var"]
    state["face_encoder.99.weight"] = torch.zeros(1)
    path = save({"state_dict": state}, tmp_path / "lipsync_expert.pth")
    with pytest.raises(LipsyncError, match=r"does not fit the Wav2Lip lip-sync expert \(SyncNet\) \("
                                           r"1 missing keys \(face_encoder.3.conv_block.1.running_var\); "
                                           r"1 unexpected keys \(face_encoder.99.weight\)"):
        validator("syncnet_color")(path)


def test_shape_mismatch_is_listed(tmp_path, syncnet_state):
    state = dict(syncnet_state, **{"audio_encoder.13.conv_block.0.bias": torch.zeros(256)})
    path = save({"state_dict": state}, tmp_path / "lipsync_expert.pth")
    with pytest.raises(LipsyncError, match=r"1 shape mismatches, file vs model "
                                           r"\(audio_encoder.13.conv_block.0.bias \(256,\) vs \(512,\)\)"):
        validator("syncnet_color")(path)


def test_validator_accepts_a_matching_checkpoint(tmp_path, syncnet_state):
    path = save({"state_dict": syncnet_state}, tmp_path / "lipsync_expert.pth")
    validator("syncnet_color")(path)  # no exception


def test_validator_rejects_another_model(tmp_path):
    path = _fake_checkpoint(tmp_path / "s3fd.pth", S3FD_KEYS)
    with pytest.raises(LipsyncError, match="S3FD face detector"):
        validator("syncnet_color")(path)


@pytest.mark.parametrize(("keys", "name"), [(S3FD_KEYS, "s3fd"), (BISENET_KEYS, "bisenet19"),
                                            (ESRGAN_X4_KEYS, "rrdbnet_x4"), ({"a.weight": (2, 2)}, None)])
def test_identify_names_the_architecture(tmp_path, keys, name):
    assert identify(_fake_checkpoint(tmp_path / "x.pth", keys)) == name


def test_identify_reads_wrapped_and_prefixed_checkpoints(tmp_path):
    state = {"module." + k: torch.zeros(s) for k, s in S3FD_KEYS.items()}
    assert identify(save({"state_dict": state, "optimizer": {}}, tmp_path / "x.pth", legacy=True)) == "s3fd"


