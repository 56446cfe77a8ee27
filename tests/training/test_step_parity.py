"""The whole training step against the original, run on the parity mini-batch (reference/training/README.md §9.3).

Float64, as the README's primary check: procedural generator, expert and discriminator weights loaded strictly,
the expert in the original's training mode, fresh Adam states, two steps of hq_wav2lip_train.py with
syncnet_wt 0.03 and disc_wt 0.07 on the same batch. This variant exercises every term (L1, sync, adversarial,
both discriminator losses) and Adam's second step.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.models.disc_qual import DiscQual
from lipsync_core.models.syncnet import SyncNetColor
from lipsync_core.models.wav2lip import Wav2Lip
from lipsync_core.testing.procedural import load_rows, procedural_state_dict
from lipsync_core.training.config import BETAS_GAN
from lipsync_core.training.data import HostBatch, to_batch
from lipsync_core.training.step import LossWeights, Nets, train_step
from tests.models.parity import keys

RTOL = 1e-6  # the README's float64 check, on every scalar
VARIANT = "hq_sw003"


def built(cls, rows) -> torch.nn.Module:
    model = cls()
    model.load_state_dict(procedural_state_dict(rows), strict=True)
    return model.double()


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.fixture(scope="module")
def run(parity_dir, training_dir, losses_io):
    """Two float64 steps; per step the scalars the reference records, plus the generator's step-1 output."""
    torch.manual_seed(0)
    gen = built(Wav2Lip, keys(parity_dir, "wav2lip"))
    expert = built(SyncNetColor, keys(parity_dir, "syncnet_color")).train()  # the original never calls eval()
    disc = built(DiscQual, load_rows(training_dir / "disc_qual_keys.json"))
    nets = Nets(gen, expert, disc)
    gen_opt = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=BETAS_GAN)
    disc_opt = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=BETAS_GAN)
    host = HostBatch(losses_io["batch_window_u8"], losses_io["batch_wrong_u8"], losses_io["batch_indiv_mels"],
                     losses_io["batch_mel"])
    batch = to_batch(host, dtype=torch.float64)  # built in float32 as the original, then cast exactly
    outputs: list[torch.Tensor] = []
    hook = gen.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    steps = []
    for _ in range(2):
        g_before, d_before = flat(gen), flat(disc)
        result = train_step(nets, gen_opt, batch, LossWeights(sync=0.03, disc=0.07), disc_opt=disc_opt)
        steps.append({"result": result,
                      "per_param": np.array([float(p.grad.norm()) for p in gen.parameters()]),
                      "gen_delta_norm": float((flat(gen) - g_before).norm()),
                      "disc_delta_norm": float((flat(disc) - d_before).norm())})
    hook.remove()
    bn = dict(gen.named_modules())
    return {"steps": steps, "g1": torch.stack(torch.split(outputs[0], 4), dim=2), "bn": bn, "gen": gen}


def ref(io, name):
    return io[f"step_{VARIANT}_{name}"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["l1", "sync", "perceptual", "loss", "disc_real", "disc_fake", "gen_grad_norm",
                                  "disc_grad_norm"])
def test_losses_and_gradient_norms_of_both_steps(run, losses_io, name):
    got = [getattr(s["result"], name) for s in run["steps"]]
    np.testing.assert_allclose(got, ref(losses_io, name), rtol=RTOL)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gen_delta_norm", "disc_delta_norm"])
def test_adam_updates_of_both_steps(run, losses_io, name):
    np.testing.assert_allclose([s[name] for s in run["steps"]], ref(losses_io, name), rtol=RTOL)


@pytest.mark.slow
def test_per_parameter_gradient_norms(run, losses_io, training_manifest):
    names = list(losses_io["gen_param_names"])
    assert names == [n for n, _ in run["gen"].named_parameters()]
    zero = set(training_manifest["training_steps"]["zero_gradient_params"])  # biases cancelled by BatchNorm
    is_zero = np.array([n in zero for n in names])
    for step, expected in zip(run["steps"], ref(losses_io, "gen_grad_norm_per_param")):
        got = step["per_param"]
        np.testing.assert_allclose(got[~is_zero], expected[~is_zero], rtol=RTOL, atol=1e-9 * expected.max())
        assert np.all(got[is_zero] <= 1e-12 * expected.max())


@pytest.mark.slow
def test_batchnorm_statistics_after_two_steps(run, losses_io):
    modules = run["bn"]
    bns = [modules[n] for n in losses_io["gen_bn_names"]]
    for stat in ("running_mean", "running_var"):
        expected = ref(losses_io, f"gen_bn_{stat}_sum")
        got = np.array([float(getattr(m, stat).sum()) for m in bns])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    assert [int(m.num_batches_tracked) for m in bns] == list(ref(losses_io, "gen_bn_num_batches_tracked"))


@pytest.mark.slow
def test_generated_window_of_the_first_step(run, losses_io):
    expected = losses_io["gen_out_step1_s4"]
    got = run["g1"][:, :, :, ::4, ::4].numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
