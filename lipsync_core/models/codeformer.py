"""CodeFormer face restoration: a VQGAN autoencoder whose latent codes are predicted by a transformer.

Data flow of :meth:`CodeFormer.forward` for a face aligned to the model's ``img_size`` (512 for the
published ``codeformer.pth``), RGB in [-1, 1]:

1. the VQGAN encoder maps the image to ``lq_feat`` on a ``latent_res``² grid (16² at 512);
2. a transformer over those tokens (with a learned position embedding) predicts, per token, logits
   over the codebook; the top-1 code of each token is looked up in the codebook;
3. optionally the looked-up features are AdaIN-matched to ``lq_feat`` (mean/std per channel);
4. the VQGAN generator decodes them; after selected decoder blocks a controllable feature
   transformation mixes in the encoder features: ``dec + w * (dec * scale + shift)``. ``w = 0``
   trusts the codebook only (highest quality), ``w = 1`` the input most (highest fidelity).

Parameter names follow the published checkpoint (``params_ema``). The configuration is a dataclass so
that reduced test models go through the same class; :func:`build_from_state` reads it from the tensors'
shapes (only the head count is not recoverable from shapes; the published value 8 is used).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard, PrecisionCard
from .checkpoints import StateDict


@dataclass(frozen=True)
class CodeFormerConfig:
    """Architecture hyper-parameters; the defaults are the published 512 model's."""

    img_size: int = 512
    nf: int = 64  # channels of the first VQGAN stage
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)  # channel multiplier per resolution stage
    num_res_blocks: int = 2  # residual blocks per stage
    attn_resolutions: tuple[int, ...] = (16,)  # resolutions whose stages carry self-attention
    codebook_size: int = 1024
    emb_dim: int = 256  # codebook vector size = latent channels
    dim_embd: int = 512  # transformer width
    n_head: int = 8
    n_layers: int = 9
    dim_mlp: int = 1024
    connect_list: tuple[int, ...] = (32, 64, 128, 256)  # resolutions where encoder features are fused

    @property
    def latent_res(self) -> int:
        return self.img_size // 2 ** (len(self.ch_mult) - 1)

    def __post_init__(self) -> None:
        if self.latent_res * 2 ** (len(self.ch_mult) - 1) != self.img_size:
            raise ValueError(f"img_size {self.img_size} is not divisible by 2**{len(self.ch_mult) - 1}")
        if self.dim_embd % self.n_head:
            raise ValueError(f"dim_embd {self.dim_embd} is not divisible by n_head {self.n_head}")
        stage_res = {self.img_size >> i for i in range(len(self.ch_mult) - 1)}
        bad = [r for r in self.connect_list if r not in stage_res]
        if bad:
            raise ValueError(f"connect_list {bad} must be decoder resolutions above the latent grid, "
                             f"i.e. in {sorted(stage_res)}")


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """GroupNorm-swish-conv twice, plus the input (through a 1x1 conv when the width changes)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.norm1 = _group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.norm2 = _group_norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.conv_out = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.conv_out is None else self.conv_out(x))


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1-conv projections and a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        q, k, v = (p(n).flatten(2).transpose(1, 2) for p in (self.q, self.k, self.v))  # (B, HW, C)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(C)) v
        return x + self.proj_out(out.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Stride-2 3x3 conv after zero-padding one pixel on the right and bottom only."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder(nn.Module):
    """VQGAN encoder: image -> ``emb_dim`` x latent grid. ``taps[res]`` = block index whose output is fused."""

    def __init__(self, cfg: CodeFormerConfig) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, cfg.nf, 3, 1, 1)]
        self.taps: dict[int, int] = {}
        res, ch = cfg.img_size, cfg.nf
        for stage, mult in enumerate(cfg.ch_mult):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(ch, cfg.nf * mult))
                ch = cfg.nf * mult
                self.taps[res] = len(blocks) - 1  # the stage's last residual block
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(ch))
            if stage != len(cfg.ch_mult) - 1:
                blocks.append(Downsample(ch))
                res //= 2
        blocks += [ResBlock(ch, ch), AttnBlock(ch), ResBlock(ch, ch), _group_norm(ch),
                   nn.Conv2d(ch, cfg.emb_dim, 3, 1, 1)]
        self.blocks = nn.ModuleList(blocks)


class Generator(nn.Module):
    """VQGAN decoder: latent grid -> RGB. ``taps[res]`` = block after which encoder features are fused."""

    def __init__(self, cfg: CodeFormerConfig) -> None:
        super().__init__()
        ch = cfg.nf * cfg.ch_mult[-1]
        res = cfg.latent_res
        blocks: list[nn.Module] = [nn.Conv2d(cfg.emb_dim, ch, 3, 1, 1), ResBlock(ch, ch), AttnBlock(ch),
                                   ResBlock(ch, ch)]
        self.taps: dict[int, int] = {}
        for stage in reversed(range(len(cfg.ch_mult))):
            for r in range(cfg.num_res_blocks):
                blocks.append(ResBlock(ch, cfg.nf * cfg.ch_mult[stage]))
                ch = cfg.nf * cfg.ch_mult[stage]
                if r == 0 and res != cfg.latent_res:
                    self.taps[res] = len(blocks) - 1  # the first residual block after each upsampling
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(ch))
            if stage != 0:
                blocks.append(Upsample(ch))
                res *= 2
        blocks += [_group_norm(ch), nn.Conv2d(ch, 3, 3, 1, 1)]
        self.blocks = nn.ModuleList(blocks)


class VectorQuantizer(nn.Module):
    """The codebook. Only the lookup is used at inference (codes come from the transformer)."""

    def __init__(self, codebook_size: int, emb_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(codebook_size, emb_dim)

    def lookup(self, indices: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """(B, T) code indices -> (B, emb_dim, H, W) float32 features, token t at row t // W, column t % W."""
        feat = F.embedding(indices, self.embedding.weight.float())  # (B, T, C)
        return feat.transpose(1, 2).reshape(indices.shape[0], -1, *grid)


class TransformerSALayer(nn.Module):
    """Pre-norm transformer layer; the position embedding is added to queries and keys, not values."""

    def __init__(self, dim: int, n_head: int, dim_mlp: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, n_head, batch_first=True)
        self.linear1 = nn.Linear(dim, dim_mlp)
        self.linear2 = nn.Linear(dim_mlp, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        n = self.norm1(x)
        qk = n + pos
        x = x + self.self_attn(qk, qk, n, need_weights=False)[0]
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class FuseSFTBlock(nn.Module):
    """Controllable feature transformation: ``dec + w * (dec * scale + shift)`` from [enc, dec]."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.encode_enc = ResBlock(2 * in_ch, out_ch)
        self.scale = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.LeakyReLU(0.2),
                                   nn.Conv2d(out_ch, out_ch, 3, 1, 1))
        self.shift = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.LeakyReLU(0.2),
                                   nn.Conv2d(out_ch, out_ch, 3, 1, 1))

    def forward(self, enc: torch.Tensor, dec: torch.Tensor, w: float) -> torch.Tensor:
        f = self.encode_enc(torch.cat([enc, dec], dim=1))
        return dec + w * (dec * self.scale(f) + self.shift(f))


def adaptive_instance_norm(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Give ``content`` the per-channel mean and (unbiased) std of ``style``; both (B, C, H, W)."""
    def stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = t.flatten(2)
        return flat.mean(2)[..., None, None], (flat.var(2) + eps).sqrt()[..., None, None]

    c_mean, c_std = stats(content)
    s_mean, s_std = stats(style)
    return (content - c_mean) / c_std * s_std + s_mean


class CodeFormer(nn.Module):
    """CodeFormer. ``forward(x, w, adain)`` -> ``(restored, logits, lq_feat)``; see the module docstring."""

    def __init__(self, cfg: CodeFormerConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or CodeFormerConfig()
        # Registration order reproduces the checkpoint's state_dict order (position_emb first).
        self.encoder = Encoder(cfg)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.emb_dim)
        self.generator = Generator(cfg)
        self.position_emb = nn.Parameter(torch.zeros(cfg.latent_res ** 2, cfg.dim_embd))
        self.feat_emb = nn.Linear(cfg.emb_dim, cfg.dim_embd)
        self.ft_layers = nn.ModuleList(TransformerSALayer(cfg.dim_embd, cfg.n_head, cfg.dim_mlp)
                                       for _ in range(cfg.n_layers))
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(cfg.dim_embd),
                                            nn.Linear(cfg.dim_embd, cfg.codebook_size, bias=False))
        enc_ch: dict[int, int] = {}
        for res, i in self.encoder.taps.items():
            tap = self.encoder.blocks[i]
            assert isinstance(tap, ResBlock)  # a stage's last residual block
            enc_ch[res] = tap.conv2.out_channels
        self.fuse_convs_dict = nn.ModuleDict({str(r): FuseSFTBlock(enc_ch[r], enc_ch[r]) for r in cfg.connect_list})

    @property
    def img_size(self) -> int:
        return self.cfg.img_size

    def _code_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Codebook logits (B, T, K) in float32 whatever the compute dtype: the argmax over them is discrete."""
        # The head is (LayerNorm, Linear) as built in __init__.
        norm, fc = cast(nn.LayerNorm, self.idx_pred_layer[0]), cast(nn.Linear, self.idx_pred_layer[1])
        t = F.layer_norm(tokens.float(), norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps)
        return F.linear(t, fc.weight.float())

    def forward(self, x: torch.Tensor, w: float = 0.0, adain: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Restore faces ``x`` (B, 3, img_size, img_size), RGB in [-1, 1], with fidelity weight ``w``.

        Returns ``(out (B, 3, S, S), logits (B, T, codebook_size), lq_feat (B, emb_dim, R, R))``.
        """
        if x.shape[-2:] != (self.cfg.img_size, self.cfg.img_size):
            raise ValueError(f"CodeFormer needs {self.cfg.img_size}x{self.cfg.img_size} input, got {tuple(x.shape)}")
        enc_taps = {i: res for res, i in self.encoder.taps.items() if res in self.cfg.connect_list}
        enc_feats: dict[int, torch.Tensor] = {}
        # Everything the code choice depends on (encoder, transformer, logits) runs in the weights' dtype
        # (float32 as loaded) even under autocast: the argmax is discrete, and fp16/bf16 rounding exceeds the
        # smallest top-1/top-2 logit margins (1.8e-3 with the parity weights: bf16 flipped 8 of 256 codes there,
        # changing the whole image). The decoder, the larger part of the cost, runs in the autocast dtype.
        with torch.autocast(device_type=x.device.type, enabled=False):
            h = x.to(self.feat_emb.weight.dtype)
            for i, block in enumerate(self.encoder.blocks):
                h = block(h)
                if i in enc_taps:
                    enc_feats[enc_taps[i]] = h
            lq_feat = h

            tokens = self.feat_emb(lq_feat.flatten(2).transpose(1, 2))  # (B, T, dim_embd)
            for layer in self.ft_layers:
                tokens = layer(tokens, self.position_emb)
            logits = self._code_logits(tokens)
            quant = self.quantize.lookup(logits.argmax(dim=2), lq_feat.shape[-2:])
            if adain:
                quant = adaptive_instance_norm(quant, lq_feat.float())
        h = quant.to(lq_feat.dtype)

        gen_taps = {i: res for res, i in self.generator.taps.items() if res in self.cfg.connect_list}
        for i, block in enumerate(self.generator.blocks):
            h = block(h)
            if w > 0 and i in gen_taps:
                res = gen_taps[i]
                h = self.fuse_convs_dict[str(res)](enc_feats[res], h, w)
        return h, logits, lq_feat


_BLOCK = re.compile(r"^encoder\.blocks\.(\d+)\.(.+)$")


def config_from_state(state: StateDict) -> CodeFormerConfig:
    """Read the architecture from a checkpoint's tensor shapes (the head count cannot be; 8 is used)."""
    kinds: dict[int, str] = {}
    out_ch: dict[int, int] = {}
    for key, t in state.items():
        m = _BLOCK.match(key)
        if not m:
            continue
        i, rest = int(m.group(1)), m.group(2)
        if rest == "norm1.weight":
            kinds[i] = "res"
        elif rest == "q.weight":
            kinds[i] = "attn"
        elif rest == "conv.weight":
            kinds[i] = "down"
        elif rest == "conv2.weight":
            out_ch[i] = t.shape[0]
        elif rest == "weight":
            kinds[i] = "conv" if t.dim() == 4 else "norm"
    seq = [kinds[i] for i in sorted(kinds)]
    # conv, stages separated by "down", then the middle (res, attn, res), norm, conv.
    if len(seq) < 6 or seq[0] != "conv" or seq[-5:] != ["res", "attn", "res", "norm", "conv"]:
        raise ValueError("not a CodeFormer encoder layout")
    stages: list[list[int]] = [[]]
    for i in sorted(kinds)[1:-5]:
        if kinds[i] == "down":
            stages.append([])
        else:
            stages[-1].append(i)
    nf = state["encoder.blocks.0.weight"].shape[0]
    res_blocks = [[i for i in s if kinds[i] == "res"] for s in stages]
    n_res = len(res_blocks[0])
    latent_tokens, dim_embd = state["position_emb"].shape
    img_size = math.isqrt(latent_tokens) * 2 ** (len(stages) - 1)
    n_layers = len({k.split(".")[1] for k in state if k.startswith("ft_layers.")})
    return CodeFormerConfig(
        img_size=img_size, nf=nf,
        ch_mult=tuple(out_ch[r[-1]] // nf for r in res_blocks),
        num_res_blocks=n_res,
        attn_resolutions=tuple(img_size >> s for s, blocks in enumerate(stages)
                               if any(kinds[i] == "attn" for i in blocks)),
        codebook_size=state["quantize.embedding.weight"].shape[0],
        emb_dim=state["quantize.embedding.weight"].shape[1],
        dim_embd=dim_embd, n_layers=n_layers,
        dim_mlp=state["ft_layers.0.linear1.weight"].shape[0] if n_layers else 2 * dim_embd,
        connect_list=tuple(sorted(int(k.split(".")[1]) for k in state if k.startswith("fuse_convs_dict.")
                                  and k.endswith("encode_enc.conv1.weight"))),
    )


def build_from_state(state: StateDict) -> CodeFormer:
    """An un-loaded :class:`CodeFormer` whose configuration matches ``state``'s shapes."""
    return CodeFormer(config_from_state(state))


CARD = ModelCard(
    "codeformer", "CodeFormer face restoration", build_from_state,
    CheckpointCard("params_ema", ("position_emb", "quantize.embedding.weight")),
    # The size is the checkpoint's (``CodeFormer.img_size``, 512 for the published model).
    InputCard(channels="RGB", value_range=(-1.0, 1.0), output_range=(-1.0, 1.0)),
    PrecisionCard(cpu_bf16=True),  # the code choice stays float32 inside the module (CodeFormer.forward)
)
