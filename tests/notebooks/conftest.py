"""Fixtures for the notebook tests: procedural weights behind a fake Google Drive, a test manifest, media.

The notebooks run in a real kernel (a child process). Everything reaches it through the environment
it inherits: ``LIPSYNC_MANIFEST`` (the test manifest), ``LIPSYNC_TEST_GDRIVE`` (the loopback Drive, applied by
the test ``sitecustomize`` on its ``PYTHONPATH``: :mod:`tests.support.google_route`), ``LIPSYNC_CACHE`` (the
test's cache) and ``PYTHONPATH`` (this checkout, so the setup cell skips the install).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.testing.checkpoints import write_checkpoint
from lipsync_core.weights.manifest import load_manifest
from tests.conftest import REPO, shared_path
from tests.notebooks.nbrun import install_kernel
from tests.support.fake_drive import DriveFile, fake_drive
from tests.support.google_route import route_drive

#: Reduced enhancers: the real ones take seconds per face on a CPU (RRDBNet x4, CodeFormer at 512).
SMALL_SR = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
SMALL_CODEFORMER = {"img_size": 64, "nf": 32, "ch_mult": (1, 1, 2), "num_res_blocks": 1, "attn_resolutions": (16,),
                    "codebook_size": 64, "emb_dim": 32, "dim_embd": 64, "n_head": 8, "n_layers": 2, "dim_mlp": 128,
                    "connect_list": (32, 64)}

#: weight id -> write_checkpoint arguments, in each published file's wrapper. S3FD is left out: procedural S3FD
#: weights flood its NMS with candidates (minutes per frame on a CPU), so the tests detect with Haar, and its
#: manifest entry points at a Drive ID the fake Drive does not know (a fetch would fail loudly).
CHECKPOINTS: dict[str, dict] = {
    "wav2lip": {"arch": "wav2lip", "wrapper": "state_dict", "module_prefix": True},
    "wav2lip_gan": {"arch": "wav2lip", "wrapper": "state_dict", "module_prefix": True, "legacy": True},
    "face_segmentation": {"arch": "bisenet19"},
    "esrgan_yunying": {"arch": "rrdbnet_x4", "wrapper": "params", **SMALL_SR},
    "codeformer": {"arch": "codeformer", "wrapper": "params_ema", **SMALL_CODEFORMER},
    "retinaface_resnet50": {"arch": "retinaface_resnet50"},
    "parsenet": {"arch": "parsenet"},
    "realesrgan_x2": {"arch": "rrdbnet_x2", "wrapper": "params_ema", **SMALL_SR},
    "syncnet_v2": {"arch": "syncnet_v2"},
    "lipsync_expert": {"arch": "syncnet_color", "wrapper": "state_dict"},
}


@dataclass(frozen=True)
class TestWeights:
    """A manifest whose weights are procedural checkpoints served by a running fake Drive."""

    manifest: Path
    drive_url: str


def drive_id(weight_id: str) -> str:
    """A Drive-shaped (33 character) file ID for a test weight."""
    return ("test" + hashlib.sha256(weight_id.encode()).hexdigest())[:33]


@pytest.fixture(scope="session")
def test_weights(tmp_path_factory) -> TestWeights:
    root = tmp_path_factory.mktemp("nb-weights")
    real = load_manifest(REPO / "weights_manifest.json")
    served, entries = {}, {}
    for wid, entry in real.weights.items():
        record = {"file": entry.file, "size": None, "sha256": None, "license": entry.license, "arch": entry.arch,
                  "convention": entry.convention, "sources": [{"kind": "gdrive", "id": drive_id(wid)}]}
        if wid in CHECKPOINTS:
            spec = dict(CHECKPOINTS[wid])
            data = write_checkpoint(spec.pop("arch"), root / entry.file, **spec).read_bytes()
            served[drive_id(wid)] = DriveFile(data, name=entry.file, mode="confirm")  # the large-file page
            record.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
            record["sources"][0]["hash_bound"] = True
        entries[wid] = record
    manifest = root / "test_manifest.json"
    manifest.write_text(json.dumps({"schema_version": 1, "weights": entries}, indent=1))
    with fake_drive(served) as (url, _log):
        yield TestWeights(manifest, url)


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory) -> Path:
    return install_kernel(tmp_path_factory.mktemp("jupyter"))


@pytest.fixture
def kernel_env(test_weights, jupyter_path, tmp_path, monkeypatch) -> Path:
    """Point this process's environment (which kernels inherit) at the test weights; returns a kernel cwd."""
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("LIPSYNC_MANIFEST", str(test_weights.manifest))
    route_drive(monkeypatch, test_weights.drive_url)  # kernels: PYTHONPATH's sitecustomize
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # gdown keeps cookies under ~/.cache
    cwd = tmp_path / "nb"
    cwd.mkdir()
    return cwd


@dataclass(frozen=True)
class Media:
    face: Path  # a real talking-head clip (trimmed by the notebooks' start/end)
    speech: Path  # real speech, several seconds (trimmed by audio_start/audio_end)
    short_speech: Path  # 0.8 s of it, for the Simple notebook (which has no audio trim)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Media:
    face = shared_path("media", "talking_head_glasses_vrt5.mp4")
    speech = shared_path("media", "speech_vrt1_44k1_stereo_5s.wav")
    short = tmp_path_factory.mktemp("nb-media") / "speech.wav"
    run_ffmpeg(["-y", "-ss", "1.0", "-i", speech, "-t", "0.8", short], what="cut test speech")
    return Media(face, speech, short)
