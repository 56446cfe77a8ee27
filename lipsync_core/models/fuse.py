"""Inference-time folding of BatchNorm into the convolution before it.

In eval mode ``BN(conv(x)) = conv'(x)`` with per-output-channel ``s = gamma / sqrt(var + eps)``,
``W' = s * W`` and ``b' = s * (b - mean) + beta``: one kernel instead of two, and no separate
normalisation pass over the activations.
"""
from __future__ import annotations

import torch
from torch import nn

_Conv = nn.Conv2d | nn.ConvTranspose2d | nn.Conv3d | nn.Linear
#: The norm each layer type is folded with (Linear: the per-feature BatchNorm1d of an MLP head).
_NORM_FOR = {nn.Conv2d: nn.BatchNorm2d, nn.ConvTranspose2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d,
             nn.Linear: nn.BatchNorm1d}


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a Conv2d/ConvTranspose2d (``BatchNorm2d``), a Conv3d
    (``BatchNorm3d``) or a Linear layer (``BatchNorm1d``) in an ``nn.Sequential``, and every pair a module
    declares in its ``fold_pairs`` (``(conv, norm)`` submodule names, dotted paths allowed, that its ``forward``
    applies back to back, e.g. a ResNet block's ``bn1(conv1(x))``).

    The folded norm is replaced by ``nn.Identity`` and ``module`` is returned (changed in place). Folding
    uses the running statistics, so it is only for inference: a norm in training mode raises ``ValueError``.
    Norms elsewhere are left alone.
    """
    for parent in module.modules():
        pairs: list[tuple[str, str]] = list(getattr(parent, "fold_pairs", ()))
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            pairs += list(zip(names, names[1:]))
        for conv_name, bn_name in pairs:
            conv, bn = _find(parent, conv_name), _find(parent, bn_name)
            # The exact types (a subclass may change forward); the isinstance checks only narrow for the checker.
            if (type(conv) in _NORM_FOR and type(bn) is _NORM_FOR[type(conv)] and isinstance(conv, _Conv)
                    and isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.running_var is not None):
                if bn.training:
                    raise ValueError("fold_batchnorm needs eval-mode BatchNorm (call .eval() first)")
                _fold(conv, bn)
                parent.set_submodule(bn_name, nn.Identity())
    return module


def _find(parent: nn.Module, name: str) -> nn.Module | None:
    try:
        return parent.get_submodule(name)
    except AttributeError:  # an optional part this instance lacks (e.g. a layer built without its norm)
        return None


@torch.no_grad()
def _fold(conv: _Conv, bn: nn.modules.batchnorm._BatchNorm) -> None:
    # Per-channel factors in float64 (cheap vectors); the weight is scaled in place in its own dtype.
    assert bn.running_var is not None and bn.running_mean is not None  # tracked statistics (checked by the caller)
    scale = bn.running_var.double().add(bn.eps).rsqrt()
    shift = -bn.running_mean.double() * scale
    if bn.weight is not None:  # affine
        assert bn.bias is not None  # affine norms have both
        scale = scale * bn.weight.double()
        shift = shift * bn.weight.double() + bn.bias.double()
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    w = conv.weight
    if isinstance(conv, nn.ConvTranspose2d):
        # Weight is (in, out/groups, kh, kw): output channel g*(out/groups)+j lives at [group g inputs, j].
        g = conv.groups
        w.view(g, -1, *w.shape[1:]).mul_(scale.to(w.dtype).view(g, 1, -1, 1, 1))
    else:
        w.mul_(scale.to(w.dtype).view(-1, *([1] * (w.dim() - 1))))
    if conv.bias is None:
        conv.bias = nn.Parameter(bias.to(w.dtype), requires_grad=w.requires_grad)
    else:
        conv.bias.copy_(bias.to(w.dtype))
