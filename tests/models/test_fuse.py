"""BatchNorm folding: same function, fewer modules."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lipsync_core.models.fuse import fold_batchnorm
from lipsync_core.models.wav2lip import ConvBlock


def randomise_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so folding has something to get wrong."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
            if m.affine:
                m.weight.data.copy_(torch.randn(n, generator=g))
                m.bias.data.copy_(torch.randn(n, generator=g))
    return module.eval()


def assert_fold_preserves(module: nn.Module, x: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        before = module(x)
        fold_batchnorm(module)
        after = module(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4 * before.abs().max().item())
    return module


@pytest.mark.parametrize("bias", [True, False])
def test_conv_bn_pair_folds_to_same_output(bias):
    torch.manual_seed(0)
    model = randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3, bias=bias), nn.BatchNorm2d(8), nn.ReLU()))
    assert_fold_preserves(model, torch.randn(2, 3, 10, 10))
    assert isinstance(model[1], nn.Identity)
    assert model[0].bias is not None


@pytest.mark.parametrize("layer, norm, x", [
    (nn.Conv3d(3, 8, (2, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(8), torch.randn(2, 3, 5, 6, 6)),
    (nn.Linear(6, 8), nn.BatchNorm1d(8), torch.randn(4, 6)),
])
def test_conv3d_and_linear_fold_with_their_norms(layer, norm, x):
    torch.manual_seed(0)
    model = randomise_bn(nn.Sequential(layer, norm, nn.ReLU()))
    assert_fold_preserves(model, x)
    assert isinstance(model[1], nn.Identity)


def test_a_norm_of_another_dimension_is_not_folded():
    model = randomise_bn(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm2d(4)))
    fold_batchnorm(model)
    assert isinstance(model[1], nn.BatchNorm2d)


@pytest.mark.parametrize("groups", [1, 2])
def test_transposed_conv_bn_pair_folds_to_same_output(groups):
    torch.manual_seed(0)
    model = randomise_bn(nn.Sequential(nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, groups=groups), nn.BatchNorm2d(6)))
    assert_fold_preserves(model, torch.randn(2, 4, 5, 5))
    assert isinstance(model[1], nn.Identity)


def test_non_affine_bn_folds():
    torch.manual_seed(0)
    model = randomise_bn(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, affine=False)))
    assert_fold_preserves(model, torch.randn(1, 3, 4, 4))


def test_residual_conv_blocks_fold_to_same_output():
    torch.manual_seed(0)
    model = randomise_bn(nn.Sequential(ConvBlock(3, 8, 3, 2, 1), ConvBlock(8, 8, 3, 1, 1, residual=True),
                                       ConvBlock(8, 4, 3, 2, 1, transpose=True, output_padding=1)))
    assert_fold_preserves(model, torch.randn(2, 3, 12, 12))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_bn_not_after_a_conv_is_left_alone():
    model = randomise_bn(nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3)))
    fold_batchnorm(model)
    assert isinstance(model[1], nn.BatchNorm2d)


def test_training_mode_bn_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(model)


@pytest.mark.parametrize("arch", ["bisenet19", "retinaface_resnet50", "parsenet"])
def test_declared_conv_norm_pairs_outside_sequentials_fold_too(arch):
    """ResNet blocks (BiSeNet, RetinaFace) and ParseNet's layers keep conv and norm as attributes: they declare
    ``fold_pairs``, so every BatchNorm of these networks folds and the output is unchanged."""
    from lipsync_core.testing.checkpoints import procedural_module

    small = {"parsenet": {"down_steps": 2, "up_steps": 2, "res_depth": 1}}.get(arch, {})
    net = randomise_bn(procedural_module(arch, **small))

    class First(nn.Module):  # these networks return tuples; the first output depends on every folded norm
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)[0]

    model = assert_fold_preserves(First().eval(), torch.randn(1, 3, 64, 64) * (50 if arch.startswith("retina") else 1))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
