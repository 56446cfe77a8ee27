"""The training loop: resume equivalence, the saved schedule, validation, early stopping, checkpoints on disk."""
from __future__ import annotations

import json

import pytest
import torch

from lipsync_core.models.checkpoints import read_checkpoint
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.training import TinyDisc, TinyExpert, TinyGenerator, synthetic_dataset
from lipsync_core.training import checkpoint as ckpt
from lipsync_core.training import trainer as trainer_mod
from lipsync_core.training.config import TrainConfig
from lipsync_core.training.data import Dataset
from lipsync_core.training.step import Nets
from lipsync_core.training.trainer import METRICS, Trainer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return Dataset.open(synthetic_dataset(tmp_path_factory.mktemp("ds"), clips=3, frames=30, val_clips=1))


def tiny_nets(gan: bool = False, seed: int = 0) -> Nets:
    """Tiny networks; ``seed`` sets the generator's and discriminator's starting weights (a resumed run's are
    overwritten), the expert is always the same (it comes from a file, not from the checkpoints)."""
    torch.manual_seed(0)
    expert = TinyExpert()
    torch.manual_seed(seed)
    return Nets(TinyGenerator(width=8), expert, TinyDisc() if gan else None, frozen=("audio_encoder",))


def config(out, **kw) -> TrainConfig:
    base = dict(dataset="unused", out=str(out), batch_size=2, lr=1e-3, disc_lr=1e-3, eval_interval=2, val_windows=4,
                log_interval=1, workers=1, no_progress=True, patience=0)
    return TrainConfig(**{**base, **kw})


def state(trainer: Trainer) -> dict:
    return {"gen": trainer.nets.generator.state_dict(), "gen_opt": trainer.gen_opt.state_dict(),
            "disc": trainer.nets.disc.state_dict(), "disc_opt": trainer.disc_opt.state_dict(),
            "sampler": trainer.sampler.state(), "sync_wt": trainer.sync_wt, "step": trainer.step,
            "best": (trainer.best_val, trainer.best_step, trainer.bad_evals)}


def assert_same(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_resume_reaches_the_same_state_as_an_uninterrupted_run(dataset, tmp_path, monkeypatch):
    # The original's switch, made to fire at the first validation: resuming must keep the sync loss on.
    monkeypatch.setattr(trainer_mod, "SYNC_SWITCH_BELOW", 1e9)
    kw = dict(gan=True, sync_warmup=True, steps=6)
    whole = Trainer(config(tmp_path / "a", **kw), dataset, tiny_nets(gan=True))
    whole.run()
    first = Trainer(config(tmp_path / "b", **{**kw, "steps": 4}), dataset, tiny_nets(gan=True))
    first.run()
    assert first.sync_wt > 0
    resumed = Trainer(config(tmp_path / "b", **kw, resume=True), dataset, tiny_nets(gan=True, seed=1))
    resumed.run()
    assert_same(state(resumed), state(whole))
    records = [json.loads(line) for line in (tmp_path / "b" / METRICS).read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]


def test_a_new_run_refuses_a_folder_with_checkpoints_and_resume_starts_fresh_in_an_empty_one(dataset, tmp_path):
    Trainer(config(tmp_path / "a", steps=2), dataset, tiny_nets()).run()
    with pytest.raises(LipsyncError, match="--resume"):
        Trainer(config(tmp_path / "a", steps=4), dataset, tiny_nets()).run()
    result = Trainer(config(tmp_path / "new", steps=2, resume=True), dataset, tiny_nets()).run()
    assert result.step == 2


def test_checkpoints_keep_the_original_keys_plus_one_and_the_last_ones_only(dataset, tmp_path):
    out = tmp_path / "run"
    Trainer(config(out, steps=8, keep_checkpoints=2, gan=True), dataset, tiny_nets(gan=True)).run()
    assert ckpt.periodic(out) == [6, 8]
    assert {p.name for p in out.glob("disc_checkpoint_step*.pth")} == {"disc_checkpoint_step000000006.pth",
                                                                     "disc_checkpoint_step000000008.pth"}
    saved = read_checkpoint(out / "checkpoint_step000000008.pth")
    assert set(saved) == {"state_dict", "optimizer", "global_step", "global_epoch", ckpt.EXTRA_KEY}
    assert saved["global_step"] == 8 and saved[ckpt.EXTRA_KEY]["syncnet_wt"] == 0.03
    assert set(read_checkpoint(out / "disc_checkpoint_step000000008.pth")) == {
        "state_dict", "optimizer", "global_step", "global_epoch"}
    assert not list(out.glob(".*.part"))


def test_validation_starts_from_the_initial_weights_keeps_the_best_and_stops_without_progress(dataset, tmp_path):
    # Everything with BatchNorm frozen and a rate too small to move a weight: validations can only tie.
    cfg = config(tmp_path / "run", steps=20, lr=1e-30, patience=2,
                 freeze=("audio_encoder", "face_encoder_blocks", "face_decoder_blocks"))
    torch.manual_seed(0)
    nets = Nets(TinyGenerator(width=8), TinyExpert(), frozen=cfg.freeze)
    events = []
    result = Trainer(cfg, dataset, nets, on_event=lambda kind, rec: events.append((kind, rec))).run()
    assert (result.stopped, result.step, result.best_step) == ("early_stop", 4, 0)
    vals = [rec for kind, rec in events if kind == "val"]
    assert [v["step"] for v in vals] == [0, 2, 4] and all("val_sync" in v and "val_l1" in v for v in vals)
    best = read_checkpoint(tmp_path / "run" / ckpt.BEST)  # the starting weights: nothing beat them
    assert best["global_step"] == 0 and best["optimizer"] is None
