"""S3FD network: the released checkpoint's keys, and the reference function loaded from its file format."""
from __future__ import annotations

import torch

from lipsync_core.models import load
from lipsync_core.models.s3fd import S3FD, L2Norm
from lipsync_core.testing.procedural import procedural_state_dict
from tests.models.parity import arrays, assert_listing, assert_matches, forward, keys


def test_state_dict_has_the_released_keys_shapes_and_dtypes(parity_dir):
    assert_listing(S3FD(), keys(parity_dir, "s3fd"))


def test_released_checkpoint_format_loads_and_reproduces_all_twelve_maps(parity_dir, tmp_path):
    # s3fd.pth: a raw state dict in the legacy pickle format.
    path = tmp_path / "s3fd.pth"
    torch.save(procedural_state_dict(keys(parity_dir, "s3fd")), path, _use_new_zipfile_serialization=False)
    io = arrays(parity_dir, "s3fd")
    out = forward(load("s3fd", path), io["in_x"])
    names = sorted(k for k in io if k.startswith("out_"))  # out_00_cls1 ... out_11_reg6, in list order
    assert len(out) == len(names) == 12
    for got, name in zip(out, names):
        assert_matches(got, io[name], name=name)


def test_l2norm_stays_finite_for_large_float16_activations():
    x = torch.full((1, 256, 2, 2), 300.0, dtype=torch.float16)  # squared sum over channels overflows float16
    out = L2Norm(256, 10.0)(x)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), torch.full((1, 256, 2, 2), 10.0 / 16.0), rtol=1e-3, atol=0)
