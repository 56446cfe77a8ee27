"""CodeFormer: published key layout, numerical parity (code choice first), reduced configs, loading."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.models import load
from lipsync_core.models.codeformer import CodeFormer, CodeFormerConfig, build_from_state, config_from_state
from lipsync_core.models.parsenet import ParseNet, ParseNetConfig
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.checkpoints import procedural_module, write_checkpoint
from lipsync_core.testing.procedural import procedural_state_dict
from tests.models.parity import (
    F16_RTOL,
    arrays,
    assert_listing,
    assert_matches,
    built_strictly,
    forward,
    keys,
    regenerated_input,
)

#: A small model through the same class: 64x64 faces, a 16x16 token grid (64 / 2**2), two transformer layers.
SMALL = dict(img_size=64, nf=32, ch_mult=(1, 1, 2), num_res_blocks=1, attn_resolutions=(16,), codebook_size=64,
             emb_dim=32, dim_embd=64, n_head=8, n_layers=2, dim_mlp=128, connect_list=(32, 64))


@pytest.fixture(scope="module")
def reference_run(parity_dir):
    """The full model with the procedural weights, run once on the regenerated 512 input at w=0.5."""
    manifest, x = regenerated_input(parity_dir, "codeformer", "x")
    net = built_strictly(build_from_state, procedural_state_dict(keys(parity_dir, "codeformer")))
    out, logits, lq_feat = (t.numpy() for t in forward(net, x, w=0.5, adain=True))
    return manifest, x, arrays(parity_dir, "codeformer"), out, logits, lq_feat


def small_model() -> CodeFormer:
    return procedural_module("codeformer", **SMALL)


def test_state_dict_matches_published_listing(parity_dir):
    with torch.device("meta"):
        net = CodeFormer()
    assert_listing(net, keys(parity_dir, "codeformer"))


def test_published_configuration_is_read_from_the_listing(parity_dir):
    state = {key: torch.empty(shape, device="meta") for key, shape, _dt, _rule in keys(parity_dir, "codeformer")}
    assert config_from_state(state) == CodeFormerConfig()


def test_regenerated_input_matches_manifest_checksums(reference_run):
    manifest, x, *_ = reference_run
    assert np.allclose(x.ravel()[:8], manifest["first8"], rtol=0, atol=0)
    assert float(x.astype(np.float64).sum()) == pytest.approx(manifest["sum"], rel=1e-9)


def test_codebook_choice_matches_reference(reference_run):
    _, _, io, _, logits, _ = reference_run
    np.testing.assert_array_equal(logits.argmax(axis=2), io["top_idx"])


def test_top_logits_and_encoder_features_match_reference(reference_run):
    _, _, io, _, logits, lq_feat = reference_run
    assert_matches(np.take_along_axis(logits, io["logits_top5_idx"], axis=2), io["logits_top5_val"])
    assert_matches(lq_feat, io["lq_feat"])


def test_restored_image_matches_reference_exact_subsamples(reference_run):
    _, _, io, out, _, _ = reference_run
    assert_matches(out[:, :, ::4, ::4], io["out_w0p5_s4"])
    assert_matches(out[:, :, 224:288, 224:288], io["out_w0p5_crop"])


def test_restored_image_matches_reference_float16_copy(reference_run):
    _, _, io, out, _, _ = reference_run
    assert_matches(out, io["out_w0p5_f16"].astype(np.float32), rtol=F16_RTOL)


def test_reduced_configuration_is_read_from_state_shapes():
    small = small_model()
    state = small.state_dict()
    assert config_from_state(state) == CodeFormerConfig(**SMALL)
    rebuilt = built_strictly(build_from_state, state)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(rebuilt(x, w=0.3)[0], small(x, w=0.3)[0])


def test_output_shapes():
    with torch.no_grad():
        out, logits, lq_feat = small_model()(torch.zeros(3, 3, 64, 64))
    assert (out.shape, logits.shape, lq_feat.shape) == ((3, 3, 64, 64), (3, 256, 64), (3, 32, 16, 16))


def test_fusion_blocks_act_only_when_fidelity_is_positive():
    net = small_model()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        before = {w: net(x, w=w)[0] for w in (0.0, 0.5)}
        for p in net.fuse_convs_dict.parameters():
            p.mul_(1.5)
        after = {w: net(x, w=w)[0] for w in (0.0, 0.5)}
    assert torch.equal(before[0.0], after[0.0])
    assert not torch.allclose(before[0.5], after[0.5])


def test_code_choice_stays_float32_under_reduced_precision_autocast():
    net = small_model()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, logits, _ = net(torch.rand(1, 3, 64, 64) * 2 - 1, w=0.5)
    assert logits.dtype == torch.float32
    assert torch.isfinite(out.float()).all()


def test_wrong_input_size_is_rejected():
    with pytest.raises(ValueError, match="64x64"):
        small_model()(torch.zeros(1, 3, 32, 32))


def test_params_ema_checkpoint_loads_strictly(tmp_path):
    small = small_model()
    path = write_checkpoint("codeformer", tmp_path / "codeformer.pth", wrapper="params_ema", model=small)
    loaded = load("codeformer", path)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x, w=0.7)[0], small(x, w=0.7)[0])


def test_checkpoint_missing_a_tensor_is_a_one_line_error(tmp_path):
    state = small_model().state_dict()
    del state["ft_layers.1.linear2.weight"]
    torch.save({"params_ema": state}, tmp_path / "codeformer.pth")
    with pytest.raises(LipsyncError, match="missing keys.*ft_layers.1.linear2.weight") as err:
        load("codeformer", tmp_path / "codeformer.pth")
    assert "\n" not in str(err.value)


def test_parsenet_checkpoint_given_as_codeformer_names_what_it_is(tmp_path):
    parser = ParseNet(ParseNetConfig(down_steps=1, up_steps=1, base_ch=8, res_depth=1, ch_range=(8, 16)))
    path = write_checkpoint("parsenet", tmp_path / "codeformer.pth", model=parser)
    with pytest.raises(LipsyncError, match="ParseNet"):
        load("codeformer", path)
