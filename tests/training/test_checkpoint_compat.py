"""A checkpoint written by training loads where the original's loaders and this package's runs load one."""
from __future__ import annotations

import pytest
import torch

from lipsync_core.job import lipsync
from lipsync_core.media.probe import probe
from lipsync_core.media.video import read_frames
from lipsync_core.models import load
from lipsync_core.models.wav2lip import Wav2Lip
from lipsync_core.testing.checkpoints import procedural_module
from lipsync_core.testing.media import talking_head_video
from lipsync_core.training import checkpoint as ckpt
from lipsync_core.training.config import BETAS
from lipsync_core.training.step import make_optimizer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A full-size generator with Adam moments, saved the way training saves it: (model, periodic path, best)."""
    out = tmp_path_factory.mktemp("run")
    gen = procedural_module("wav2lip").train()
    opt = make_optimizer(gen, 1e-5, BETAS)
    for p in gen.parameters():
        p.grad = torch.full_like(p, 1e-3)
    opt.step()
    extra = {"syncnet_wt": 0.01}
    path = ckpt.save(out, 3000, 12, gen, opt, extra)
    best = ckpt.save_best(out, 3000, 12, gen, extra)
    return gen.eval(), path, best


def original_resume(path):
    """wav2lip_train.py's load_checkpoint: reads only its four keys, strips 'module.', loads strictly."""
    checkpoint = torch.load(path, map_location=lambda storage, loc: storage)
    model = Wav2Lip()
    model.load_state_dict({k.replace("module.", ""): v for k, v in checkpoint["state_dict"].items()})
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if checkpoint["optimizer"] is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return model, optimizer, checkpoint["global_step"], checkpoint["global_epoch"]


@pytest.mark.parametrize("which", ["periodic", "best"])
def test_the_original_loader_reads_it(trained, which):
    gen, periodic, best = trained
    model, optimizer, step, epoch = original_resume(periodic if which == "periodic" else best)
    assert (step, epoch) == (3000, 12)
    for (k, a), b in zip(gen.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    if which == "periodic":
        assert optimizer.param_groups[0]["lr"] == 1e-5 and len(optimizer.state) == len(list(model.parameters()))


def test_this_package_loads_it_as_a_generator(trained):
    gen, periodic, _ = trained
    model = load("wav2lip", periodic)
    mel, face = torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(mel, face), gen(mel, face), rtol=1e-4, atol=1e-5)


def test_a_normal_run_takes_it_as_checkpoint_path(trained, tmp_path):
    _, _, best = trained
    face = talking_head_video(tmp_path / "face.mp4", size=(128, 128), seconds=0.6)
    out = lipsync(face, face, tmp_path / "out.mp4", checkpoint_path=str(best), box=(16, 120, 20, 108),
                  device="cpu", no_progress=True, preset="ultrafast")
    assert len(read_frames(out)) == 15 and probe(out).has_audio


def test_an_interrupted_save_leaves_the_previous_checkpoint_whole(trained, tmp_path, monkeypatch):
    gen, periodic, _ = trained
    out = tmp_path / "run"
    first = ckpt.save(out, 1, 0, gen, None, {"syncnet_wt": 0.0})
    before = first.read_bytes()

    def dies(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # a Colab reset mid-write

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_best(out, 2, 0, gen, {"syncnet_wt": 0.0})
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(out, 1, 0, gen, None, {"syncnet_wt": 0.0})
    assert first.read_bytes() == before
    assert not (out / ckpt.BEST).exists() and [p.name for p in out.iterdir()] == [first.name]
