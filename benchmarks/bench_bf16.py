"""bfloat16 (or int8) against float32 on real media, per model, with procedural weights: the numbers behind
``ModelSpec.cpu_bf16`` (and what ``--dtype int8`` costs, ``--precision int8``: the ``cpu_int8`` models only).

For every talking-head clip of ``../shared/media`` (first ``--frames`` frames), each network runs on the input
its stage gives it (faces cropped at the Haar box, 96 px for Wav2Lip and ESRGAN, 512 for BiSeNet and CodeFormer,
256 for ParseNet, a 128 px frame region for RealESRGAN x2) in float32 and under bfloat16 autocast:

- image outputs: PSNR of bf16 against fp32 with the fp32 output's range as peak (procedural weights do not
  keep outputs in [0, 1]);
- parsers: the share of pixels whose class (argmax) is the same;
- detectors: the face track (pass 1 at ``--det_size``, detection on every frame, the tracker's choice of face) in
  both dtypes, mean IoU of the boxes per clip. The heads' face biases are shifted so the first frame has a few
  candidates, as real weights give (all procedural anchors would fire otherwise); the backbone is untouched.

    python benchmarks/bench_bf16.py --frames 16
    python benchmarks/bench_bf16.py --precision int8
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import cv2
import numpy as np
import torch

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
CLIPS = ("talking_head_man_vrt2.mp4", "talking_head_woman_vrt4.mp4", "talking_head_glasses_vrt5.mp4",
         "talking_head_vfr_vrt1.mp4", "beard_man_portrait_latentsync_demo2_10s.mp4")


def psnr(ref: np.ndarray, out: np.ndarray) -> float:
    ref, out = ref.astype(np.float64), out.astype(np.float64)
    mse = np.mean((ref - out) ** 2)
    peak = ref.max() - ref.min()
    return float("inf") if mse == 0 else float(20 * np.log10(peak / np.sqrt(mse)))


PRECISION = "bf16"  # set by --precision


def lowered(arch: str, module: torch.nn.Module) -> torch.nn.Module:
    """``module`` as ``--dtype int8`` runs it (quantized on its first call); unchanged for bf16 (autocast)."""
    from lipsync_core.compute.quantize import Int8OnFirstCall
    from lipsync_core.models.registry import SPECS

    if PRECISION != "int8":
        return module
    return Int8OnFirstCall(copy.deepcopy(module), keep_float=SPECS[arch].float_classes())


def both(arch: str, *xs: torch.Tensor, **kw) -> tuple[np.ndarray, np.ndarray]:
    """(fp32, lower precision) first output of ``arch`` as float numpy."""
    outs = []
    for low in (False, True):
        model = lowered(arch, net(arch)) if low else net(arch)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=low and PRECISION == "bf16"):
            o = model(*xs, **kw)
        o = o[0] if isinstance(o, (tuple, list)) else o
        outs.append(o.float().numpy())
    return outs[0], outs[1]


@torch.no_grad()
def calibrate_s3fd(net: torch.nn.Module, x: torch.Tensor, candidates: int = 3) -> torch.nn.Module:
    """Shift every head's face-logit bias by one amount so ``x`` has ``candidates`` anchors above 0.5."""
    maps = net(x)
    diffs = []
    for level in range(6):
        cls = maps[2 * level].float()
        diffs.append((cls[:, 1] - cls[:, 0]).flatten())
    kth = torch.topk(torch.cat(diffs), candidates).values[-1]
    for name in ("conv3_3_norm", "conv4_3_norm", "conv5_3_norm", "fc7", "conv6_2", "conv7_2"):
        conf = getattr(net, f"{name}_mbox_conf")
        conf.bias[-1] -= float(kth) - 1e-3  # the face logit is the last channel (conv3_3: after 3 max-out bg)
    return net


def box_iou(a: tuple, b: tuple) -> float:
    h = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    w = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    union = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - h * w
    return h * w / union if union > 0 else 0.0


def detector_iou(name: str, frames: list[np.ndarray], det_size: int) -> tuple[float, float]:
    """(mean, min) per-frame IoU of the lower-precision track against the fp32 one (frames where both have a
    face)."""
    from lipsync_core.face.detectors.retinaface import RetinaFaceDetector
    from lipsync_core.face.detectors.s3fd import S3FDDetector
    from lipsync_core.face.track import DetectionOptions, detect_track
    from lipsync_core.media.face_video import detection_scale, detection_size
    from lipsync_core.testing.checkpoints import bias_retinaface_heads

    h, w = frames[0].shape[:2]
    size = detection_size((w, h), det_size)
    small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    x = torch.from_numpy(small[0]).permute(2, 0, 1)[None].float()
    mean = torch.tensor([104., 117., 123.]).view(1, 3, 1, 1)
    arch = "s3fd" if name == "s3fd" else "retinaface_resnet50"
    if name == "s3fd":
        detector_net = calibrate_s3fd(copy.deepcopy(net(arch)), x.flip(1) - mean)
    else:
        detector_net = bias_retinaface_heads(copy.deepcopy(net(arch)), x - mean)
    settings = DetectionOptions(detector=name, det_size=det_size or 0, det_stride=1)
    tracks = []
    for low in (False, True):
        cls = S3FDDetector if name == "s3fd" else RetinaFaceDetector
        dt = torch.bfloat16 if low and PRECISION == "bf16" else torch.float32
        det = cls(lowered(arch, detector_net) if low else copy.deepcopy(detector_net), dtype=dt)
        tracks.append(detect_track(small, det, settings, scale=detection_scale((w, h), det_size), frame_size=(w, h),
                                   fps=25.0))
    ious = [box_iou(a, b) for a, b in zip(tracks[0].boxes, tracks[1].boxes) if a is not None and b is not None]
    missing = sum((a is None) != (b is None) for a, b in zip(tracks[0].boxes, tracks[1].boxes))
    ious += [0.0] * missing
    return (float(np.mean(ious)), float(np.min(ious))) if ious else (float("nan"), float("nan"))


_NETS: dict[str, torch.nn.Module] = {}


def net(arch: str) -> torch.nn.Module:
    """``arch`` with procedural weights as ``models.load`` prepares it (built once)."""
    from lipsync_core.models.fuse import fold_batchnorm
    from lipsync_core.testing.checkpoints import procedural_module

    if arch not in _NETS:
        _NETS[arch] = fold_batchnorm(procedural_module(arch)).to(memory_format=torch.channels_last)
    return _NETS[arch]


def model_rows(frames: list[np.ndarray], box: tuple[int, int, int, int], mels: np.ndarray) -> dict[str, str]:
    from lipsync_core.face.align import estimate_affine, face_template, landmarks_from_box, warp_face
    from lipsync_core.stages.sync import face_inputs

    t, b, l, r = box
    crops = [f[t:b, l:r] for f in frames]
    rgb = lambda imgs, s: torch.from_numpy(np.stack([cv2.resize(c, (s, s))[..., ::-1] for c in imgs]).astype(  # noqa
        np.float32) / 255.0).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    rows: dict[str, str] = {}
    rows["rrdbnet_x4"] = f"PSNR {psnr(*both('rrdbnet_x4', rgb(crops, 96))):.1f} dB"
    rows["rrdbnet_x2"] = f"PSNR {psnr(*both('rrdbnet_x2', rgb([crops[0]], 128))):.1f} dB"
    if PRECISION == "int8":
        return rows
    faces = torch.from_numpy(face_inputs(frames, [box] * len(frames))).permute(0, 3, 1, 2)
    mel = torch.from_numpy(mels[:, None].astype(np.float32))
    rows["wav2lip"] = f"PSNR {psnr(*both('wav2lip', mel, faces)):.1f} dB"
    a, c = both("bisenet19", (rgb(crops[:2], 512) - 0.45) / 0.226)
    rows["bisenet19"] = f"same class {100 * np.mean(a.argmax(1) == c.argmax(1)):.1f} %"
    tmpl = face_template(512)
    aligned = [warp_face(f, estimate_affine(landmarks_from_box(box), tmpl), 512) for f in frames[:1]]
    x = rgb(aligned, 512) * 2 - 1
    rows["codeformer"] = f"PSNR {psnr(*both('codeformer', x, w=0.7, adain=True)):.1f} dB"
    a, c = both("parsenet", torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear"))
    rows["parsenet"] = f"same class {100 * np.mean(a.argmax(1) == c.argmax(1)):.1f} %"
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=MEDIA)
    ap.add_argument("--frames", type=int, default=16, help="frames per clip for the detectors' tracks")
    ap.add_argument("--model-frames", type=int, default=4, help="frames per clip for the other networks")
    ap.add_argument("--det_size", type=int, default=360)
    ap.add_argument("--precision", choices=("bf16", "int8"), default="bf16")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    global PRECISION
    PRECISION = args.precision
    from lipsync_core.face.detectors.haar import HaarDetector
    from lipsync_core.media import audio as audio_mod
    from lipsync_core.media.video import FrameReader

    speech = audio_mod.melspectrogram(audio_mod.load_audio(args.media / "speech_vrt1_44k1_stereo_5s.wav"))
    report: dict = {}
    for clip in CLIPS:
        path = args.media / clip
        if not path.is_file():
            continue
        with FrameReader(path, max_frames=args.frames) as reader:
            frames = list(reader)
        d = max(HaarDetector().detect(frames[:1])[0], key=lambda d: d.area).box
        box = (int(d[1]), int(d[3]), int(d[0]), int(d[2]))
        mels = audio_mod.mel_windows(speech, 25.0, list(range(len(frames))))
        n = args.model_frames
        rows = model_rows(frames[:n], box, mels[:n])
        for det in ("s3fd", "retinaface"):
            mean, low = detector_iou(det, frames, args.det_size)
            rows[det] = f"track IoU mean {mean:.3f} min {low:.3f}"
        print(f"\n== {clip} ({len(frames)} frames) ==", flush=True)
        for k, v in rows.items():
            print(f"  {k:14} {v}", flush=True)
        report[clip] = rows
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
