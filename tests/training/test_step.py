"""The training step's behaviour around the original's arithmetic (which test_step_parity.py checks)."""
from __future__ import annotations

import pytest
import torch

from lipsync_core.testing.training import TinyDisc, TinyExpert, TinyGenerator, synthetic_dataset
from lipsync_core.training.config import BETAS, BETAS_GAN, TrainConfig
from lipsync_core.training.data import Dataset, WindowSampler, load_batch, to_batch
from lipsync_core.training.step import LossWeights, Nets, make_optimizer, set_hyperparameters, train_step


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = synthetic_dataset(tmp_path_factory.mktemp("ds"), clips=3, frames=30, val_clips=1)
    data = Dataset.open(root)
    return to_batch(load_batch(data.train, WindowSampler(data.train, seed=0).draw_batch(4)))


class Untouchable(TinyExpert):
    def forward(self, *args):
        raise AssertionError("the expert ran")


def test_with_sync_weight_zero_the_expert_is_not_run(batch):
    torch.manual_seed(0)
    nets = Nets(TinyGenerator(), Untouchable())
    result = train_step(nets, make_optimizer(nets.generator, 1e-3, BETAS), batch, LossWeights(sync=0.0))
    assert result.sync is None and result.loss == result.l1


def test_the_loss_weighs_sync_adversarial_and_l1_as_the_original(batch):
    torch.manual_seed(0)
    nets = Nets(TinyGenerator(), TinyExpert(), TinyDisc())
    r = train_step(nets, make_optimizer(nets.generator, 1e-3, BETAS_GAN), batch, LossWeights(sync=0.03, disc=0.07),
                   disc_opt=make_optimizer(nets.disc, 1e-3, BETAS_GAN))
    assert r.loss == pytest.approx(0.03 * r.sync + 0.07 * r.perceptual + 0.9 * r.l1, rel=1e-6)
    assert r.disc_real is not None and r.disc_fake is not None and r.disc_grad_norm > 0


def test_frozen_parts_keep_their_weights_and_batchnorm_statistics(batch):
    torch.manual_seed(0)
    gen = TinyGenerator()
    nets = Nets(gen, TinyExpert(), frozen=("audio_encoder",))
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    opt = make_optimizer(gen, 1e-3, BETAS)
    for _ in range(2):
        train_step(nets, opt, batch, LossWeights(sync=0.01))
    after = gen.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("audio_encoder.") for k in changed)
    assert any(k.startswith("face_encoder_blocks.") and k.endswith("running_mean") for k in changed)
    assert any(k.startswith("face_decoder_blocks.") and k.endswith("weight") for k in changed)
    assert len(opt.param_groups[0]["params"]) == len(list(gen.parameters()))  # the whole model, as the original


def test_a_resumed_optimizer_takes_the_configured_rate_not_the_files():
    gen = TinyGenerator()
    stale = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.9, 0.999))  # as stored in wav2lip.pth
    opt = make_optimizer(gen, 1e-5, BETAS_GAN)
    opt.load_state_dict(stale.state_dict())
    assert opt.param_groups[0]["lr"] == 1e-3  # what Adam's load_state_dict does, and the original kept
    set_hyperparameters(opt, 1e-5, BETAS_GAN)
    assert opt.param_groups[0]["lr"] == 1e-5 and opt.param_groups[0]["betas"] == BETAS_GAN


def test_the_gan_run_uses_the_hq_scripts_betas_and_weights():
    plain, gan = TrainConfig(dataset="d"), TrainConfig(dataset="d", gan=True)
    assert (plain.betas, plain.sync_weight, plain.disc_weight) == ((0.9, 0.999), 0.01, 0.0)
    assert (gan.betas, gan.sync_weight, gan.disc_weight) == ((0.5, 0.999), 0.03, 0.07)


def test_a_tiny_generator_overfits_a_fixed_mini_batch(tmp_path):
    root = synthetic_dataset(tmp_path / "ds", clips=2, frames=30, val_clips=1)
    data = Dataset.open(root)
    fixed = to_batch(load_batch(data.train, WindowSampler(data.train, seed=0).draw_batch(2)))
    torch.manual_seed(0)
    nets = Nets(TinyGenerator(width=8), TinyExpert())
    opt = make_optimizer(nets.generator, 3e-3, BETAS)
    l1 = [train_step(nets, opt, fixed, LossWeights()).l1 for _ in range(20)]
    assert min(l1[-5:]) <= 0.5 * l1[0]
