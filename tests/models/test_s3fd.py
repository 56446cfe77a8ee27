"""S3FD network: the released checkpoint's keys, and the reference function loaded from its file format."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.models import load
from lipsync_core.models.s3fd import S3FD, L2Norm
from lipsync_core.testing.procedural import load_rows, procedural_state_dict


@pytest.fixture(scope="module")
def rows(parity_dir):
    return load_rows(parity_dir / "s3fd_keys.json")


@pytest.fixture(scope="module")
def io(parity_dir):
    return dict(np.load(parity_dir / "s3fd_io.npz"))


def test_state_dict_has_the_released_keys_shapes_and_dtypes(rows):
    got = {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in S3FD().state_dict().items()}
    assert got == {row[0]: row[1:3] for row in rows}


def test_released_checkpoint_format_loads_and_reproduces_all_twelve_maps(rows, io, tmp_path):
    # s3fd.pth: a raw state dict in the legacy pickle format.
    path = tmp_path / "s3fd.pth"
    torch.save(procedural_state_dict(rows), path, _use_new_zipfile_serialization=False)
    model = load("s3fd", path)
    with torch.no_grad():
        out = model(torch.from_numpy(io["in_x"]))
    names = sorted(k for k in io if k.startswith("out_"))  # out_00_cls1 ... out_11_reg6, in list order
    assert len(out) == len(names) == 12
    for got, name in zip(out, names):
        ref = torch.from_numpy(io[name])
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item(), msg=name)


def test_l2norm_stays_finite_for_large_float16_activations():
    x = torch.full((1, 256, 2, 2), 300.0, dtype=torch.float16)  # squared sum over channels overflows float16
    out = L2Norm(256, 10.0)(x)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), torch.full((1, 256, 2, 2), 10.0 / 16.0), rtol=1e-3, atol=0)
