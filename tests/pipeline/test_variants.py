"""The HQ and CodeFormer variants end to end, with reduced procedural models through the real loading path."""
from __future__ import annotations

import numpy as np
import pytest

from lipsync_core.engine.plan import Plan, make_config
from lipsync_core.media.probe import probe
from lipsync_core.media.video import read_frames
from lipsync_core.testing.checkpoints import write_checkpoint
from tests.conftest import shared_media
from tests.pipeline.conftest import _trim, mean_abs
from tests.pipeline.test_pipeline import run, unchanged

SMALL_CODEFORMER = dict(img_size=64, nf=32, ch_mult=(1, 1, 2), num_res_blocks=1, attn_resolutions=(16,),
                        codebook_size=64, emb_dim=32, dim_embd=64, n_head=8, n_layers=2, dim_mlp=128,
                        connect_list=(32, 64))


@pytest.fixture(scope="module")
def reduced(tmp_path_factory) -> dict[str, str]:
    """Checkpoints in the published formats; RRDBNet/CodeFormer/ParseNet reduced (BiSeNet's size is fixed)."""
    d = tmp_path_factory.mktemp("reduced")
    return {k: str(v) for k, v in {
        "sr_path": write_checkpoint("rrdbnet_x4", d / "esrgan.pth", wrapper="params", num_feat=8, num_block=1,
                                    num_grow_ch=4),
        "segmentation_path": write_checkpoint("bisenet19", d / "face_segmentation.pth"),
        "codeformer_path": write_checkpoint("codeformer", d / "codeformer.pth", wrapper="params_ema",
                                            **SMALL_CODEFORMER),
        "parsenet_path": write_checkpoint("parsenet", d / "parsenet.pth", down_steps=2, up_steps=2, base_ch=16,
                                          res_depth=1, ch_range=(16, 32)),
        "upscaler_path": write_checkpoint("rrdbnet_x2", d / "x2.pth", wrapper="params_ema", num_feat=8, num_block=1,
                                          num_grow_ch=4),
    }.items()}


@pytest.fixture(scope="module")
def cutaway(tmp_path_factory):
    real = shared_media("face_noface_cutaway_7s.mp4")
    if real is None:
        pytest.skip("needs ../shared/media/face_noface_cutaway_7s.mp4 (real faces and a cutaway)")
    # Source frames 50..69: faces on 50-59, none on 60-69.
    return _trim(real, tmp_path_factory.mktemp("cut") / "cut.mp4", 2.0, 0.8)


def check_cutaway_output(out, clip, speech):
    got, src = read_frames(out), read_frames(clip)
    assert len(got) == 20 and probe(out).has_audio
    assert probe(out).duration == pytest.approx(probe(speech).duration, abs=0.06)
    for k in range(10, 20):
        assert unchanged(got[k], src[k]), f"face-less frame {k} was changed"
    assert mean_abs(got[2], src[2]) > 0.2


@pytest.mark.parametrize("variant", ["hq", "hq_gan"])
def test_hq_variants_keep_faceless_frames_and_the_timeline(tmp_path, cutaway, speech, w2l_checkpoint, reduced,
                                                           variant):
    out = run(cutaway, speech, tmp_path / "out.mp4", w2l_checkpoint, variant=variant, det_stride=1,
              sr_path=reduced["sr_path"], segmentation_path=reduced["segmentation_path"], mask_lower_face=0.4)
    check_cutaway_output(out, cutaway, speech)


def test_codeformer_variant_keeps_faceless_frames_and_the_timeline(tmp_path, cutaway, speech, w2l_checkpoint,
                                                                   reduced):
    out = run(cutaway, speech, tmp_path / "out.mp4", w2l_checkpoint, variant="codeformer", det_stride=1,
              codeformer_path=reduced["codeformer_path"], parsenet_path=reduced["parsenet_path"], sharpen=0.5)
    check_cutaway_output(out, cutaway, speech)


def test_codeformer_upscale_2_doubles_the_output(tmp_path, face_clip, speech, w2l_checkpoint, reduced):
    face, box = face_clip
    short = _trim(face, tmp_path / "short.mp4", 0.0, 0.2)
    out = run(short, speech, tmp_path / "out.mp4", w2l_checkpoint, variant="codeformer", box=box, upscale=2,
              codeformer_path=reduced["codeformer_path"], parsenet_path=reduced["parsenet_path"],
              upscaler_path=reduced["upscaler_path"])
    w, h = probe(short).frame_size
    assert probe(out).frame_size == (2 * w, 2 * h)


def test_skipped_enhancers_are_neither_loaded_nor_downloaded(tmp_path, face_clip, speech, w2l_checkpoint,
                                                             monkeypatch):
    cfg = make_config("hq", no_sr=True, no_segmentation=True, detector="haar")
    assert Plan.from_options(cfg).roles == ["checkpoint"]
    monkeypatch.setenv("LIPSYNC_OFFLINE", "1")  # any download would be an error
    face, box = face_clip
    out = run(face, speech, tmp_path / "out.mp4", w2l_checkpoint, variant="hq", no_sr=True, no_segmentation=True,
              box=box, sr_path=str(tmp_path / "missing.pth"))
    assert len(read_frames(out)) == 20
    assert np.isfinite(probe(out).duration)


def test_codeformer_variant_runs_on_its_own_retinaface_track(tmp_path, face_clip, speech, w2l_checkpoint, reduced):
    import torch

    from lipsync_core.testing.checkpoints import bias_retinaface_heads, procedural_module

    face, _ = face_clip
    short = _trim(face, tmp_path / "short.mp4", 0.0, 0.2)
    w, h = probe(short).frame_size
    net = procedural_module("retinaface_resnet50", layers=(1, 1, 1, 1), width=8, out_channels=16)
    sample = torch.from_numpy(read_frames(short, max_frames=1)[0]).permute(2, 0, 1)[None].float() - 110
    retina = write_checkpoint("retinaface_resnet50", tmp_path / "retina.pth", model=bias_retinaface_heads(net, sample))
    out = run(short, speech, tmp_path / "out.mp4", w2l_checkpoint, variant="codeformer", detector=None, det_size=0,
              retinaface_path=str(retina), codeformer_path=reduced["codeformer_path"],
              parsenet_path=reduced["parsenet_path"])
    assert len(read_frames(out)) == 20 and probe(out).frame_size == (w, h)


def test_hq_in_int8_detects_and_upscales_quantized_and_stays_close_to_float32(tmp_path, face_clip, speech,
                                                                             w2l_checkpoint, reduced, capfd):
    import torch

    from lipsync_core.compute.quantize import Int8OnFirstCall
    from lipsync_core.testing.checkpoints import bias_retinaface_heads, procedural_module

    face, _ = face_clip
    short = _trim(face, tmp_path / "short.mp4", 0.0, 0.4)
    net = procedural_module("retinaface_resnet50", layers=(1, 1, 1, 1), width=8, out_channels=16)
    sample = torch.from_numpy(read_frames(short, max_frames=1)[0]).permute(2, 0, 1)[None].float() - 110
    retina = write_checkpoint("retinaface_resnet50", tmp_path / "retina.pth", model=bias_retinaface_heads(net, sample))
    options = dict(variant="hq", detector="retinaface", det_size=0, retinaface_path=str(retina),
                   sr_path=reduced["sr_path"], segmentation_path=reduced["segmentation_path"], no_track_cache=True)
    outs = {dt: run(short, speech, tmp_path / f"{dt}.mp4", w2l_checkpoint, dtype=dt, **options)
            for dt in ("float32", "int8")}
    assert "Warning" not in capfd.readouterr().err  # neither torch's C++ notices nor Python warnings reach users
    from lipsync_core.job import session_for

    pipe = session_for(make_config(dtype="int8", device="cpu", checkpoint_path=str(w2l_checkpoint), **options))
    pipe.fetch_weights()
    assert pipe.detector_identity().endswith(":int8")  # the face-track cache keeps int8 tracks apart
    for role in ("sr", "retinaface"):
        handle = pipe.handle(role)
        assert handle.int8 and isinstance(handle.module, Int8OnFirstCall), role
    got, ref = read_frames(outs["int8"]), read_frames(outs["float32"])
    assert len(got) == len(ref) == 20
    assert max(mean_abs(g, r) for g, r in zip(got, ref)) < 2.0  # whole frames; the face region carries it all
