"""Per-frame cost of full-resolution face detection: this package's detectors against a plain batched forward of
the same network and, for S3FD, against the original ``inference.py``'s detection loop (emulated).

Cases, timed interleaved in one process (the machine may be shared; see ``timing.py``):

- ``ours <dtype>``: ``S3FDDetector`` / ``RetinaFaceDetector.detect(frames)`` exactly as pass 1 calls it
  (preprocessing, batches capped by the CPU activation budget, vectorised decoding and NMS).
- ``ours int8``: the same with the network quantized to int8 as ``--dtype int8`` runs it (its one-time
  calibration, on the first call, is the untimed warm-up).
- ``forward fp32 b<B>``: only the network, on an already preprocessed NCHW float32 batch of ``B`` frames
  (``B`` = the frames per call, at most 16): the floor for plain fp32 inference.
- ``original``: the original Wav2Lip's ``face_detect`` loop, written here from ``reference/wav2lip_original.md``
  §3.2 step 6 and §4 (the original is not installed here): batches of ``face_det_batch_size`` = 16 frames
  (fewer when ``--frames`` is smaller), BGR->RGB, a float64 copy minus (104, 117, 123), NCHW float32, the
  network, softmax, a Python loop over every anchor above 0.05 in any image of the batch with per-anchor
  decoding, then per image numpy NMS at 0.3 and the > 0.5 cut, first box clipped and cast to int. The network
  is this package's S3FD module in NCHW (in-place ReLUs: if anything this flatters the original, whose
  ReLUs allocate).

Weights are procedural: S3FD with its heads set to a steady handful of candidates per frame, as real weights give
on a talking head (``testing.checkpoints.steady_s3fd``); RetinaFace with its face biases shifted so the frame
yields about three candidates. Frames are a drawn face scaled to each size (content does not change the cost).

    python benchmarks/bench_detect.py                                   # S3FD and RetinaFace at 360p, 720p, 1080p
    python benchmarks/bench_detect.py --detector s3fd --sizes 640x360 --frames 16 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved, load_note  # noqa: E402

ORIGINAL_BATCH = 16
SIZES = ("640x360", "1280x720", "1920x1080")


# ------------------------------------------------------------------------------------------------ the original
def _original_nms(dets: np.ndarray, thresh: float) -> list[int]:
    """``bbox.nms``: greedy, +1-pixel areas, numpy."""
    if len(dets) == 0:
        return []
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1, yy1 = np.maximum(x1[i], x1[order[1:]]), np.maximum(y1[i], y1[order[1:]])
        xx2, yy2 = np.minimum(x2[i], x2[order[1:]]), np.minimum(y2[i], y2[order[1:]])
        w, h = np.maximum(0.0, xx2 - xx1 + 1), np.maximum(0.0, yy2 - yy1 + 1)
        ovr = w * h / (areas[i] + areas[order[1:]] - w * h)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def _original_batch_decode(loc: torch.Tensor, priors: torch.Tensor, variances: tuple[float, float]) -> torch.Tensor:
    boxes = torch.cat((priors[:, :, :2] + loc[:, :, :2] * variances[0] * priors[:, :, 2:],
                       priors[:, :, 2:] * torch.exp(loc[:, :, 2:] * variances[1])), 2)
    boxes[:, :, :2] -= boxes[:, :, 2:] / 2
    boxes[:, :, 2:] += boxes[:, :, :2]
    return boxes


def original_detect_batch(net: torch.nn.Module, images: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """``FaceAlignment.get_detections_for_batch`` -> ``batch_detect`` -> NMS, on one batch of BGR frames."""
    images = images[..., ::-1]  # get_detections_for_batch: BGR -> RGB
    imgs = images.copy() - np.array([104, 117, 123])  # float64
    imgs = imgs.transpose(0, 3, 1, 2)
    imgs = torch.from_numpy(imgs).float()
    bb = imgs.shape[0]
    with torch.no_grad():
        olist = net(imgs)
    for i in range(len(olist) // 2):
        olist[i * 2] = F.softmax(olist[i * 2], dim=1)
    olist = [o.data.cpu() for o in olist]
    bboxlist = []
    for i in range(len(olist) // 2):
        ocls, oreg = olist[i * 2], olist[i * 2 + 1]
        stride = 2 ** (i + 2)
        for _, hindex, windex in zip(*np.where(ocls[:, 1, :, :] > 0.05)):
            axc, ayc = stride / 2 + windex * stride, stride / 2 + hindex * stride
            score = ocls[:, 1, hindex, windex]
            loc = oreg[:, :, hindex, windex].contiguous().view(bb, 1, 4)
            priors = torch.Tensor([[axc / 1.0, ayc / 1.0, stride * 4 / 1.0, stride * 4 / 1.0]]).view(1, 1, 4)
            box = _original_batch_decode(loc, priors, (0.1, 0.2))[:, 0] * 1.0
            bboxlist.append(torch.cat([box, score.unsqueeze(1)], 1).cpu().numpy())
    bboxlists = np.array(bboxlist) if bboxlist else np.zeros((1, bb, 5))
    results: list[tuple[int, int, int, int] | None] = []
    for i in range(bboxlists.shape[1]):
        keep = _original_nms(bboxlists[:, i, :], 0.3)
        dets = [x for x in bboxlists[keep, i, :] if x[-1] > 0.5]
        if not dets:
            results.append(None)
            continue
        x1, y1, x2, y2 = map(int, np.clip(dets[0], 0, None)[:-1])
        results.append((x1, y1, x2, y2))
    return results


def original_face_detect(net: torch.nn.Module, frames: list[np.ndarray], batch_size: int = ORIGINAL_BATCH) -> list:
    """``inference.face_detect``'s loop over the frames (without its OOM restart, which never fires here)."""
    out: list = []
    for i in range(0, len(frames), batch_size):
        out.extend(original_detect_batch(net, np.array(frames[i:i + batch_size])))
    return out


# --------------------------------------------------------------------------------------------------- the cases
def _frames(size: tuple[int, int], n: int) -> list[np.ndarray]:
    from lipsync_core.testing.media import draw_face

    return [draw_face(size, t / 25.0, 0.5 + 0.4 * np.sin(t)) for t in range(n)]


def _networks() -> dict[str, torch.nn.Module]:
    from lipsync_core.models.fuse import fold_batchnorm
    from lipsync_core.testing.checkpoints import procedural_module, steady_s3fd

    return {"s3fd": steady_s3fd(procedural_module("s3fd")),
            "retinaface": fold_batchnorm(procedural_module("retinaface_resnet50"))}


def cases_for(name: str, net: torch.nn.Module, frames: list[np.ndarray], dtypes: list[str], original: bool,
              budgets_mb: list[int] | None = None) -> dict:
    import copy

    from lipsync_core.compute.runtime import Runtime
    from lipsync_core.face.detectors.retinaface import RetinaFaceDetector
    from lipsync_core.face.detectors.s3fd import S3FDDetector

    cls = S3FDDetector if name == "s3fd" else RetinaFaceDetector
    arch = "s3fd" if name == "s3fd" else "retinaface_resnet50"
    cases = {}
    for dt in dtypes:
        for mb in budgets_mb or [None]:
            kw = {} if mb is None else {"cpu_batch_bytes": mb * 2**20}
            # int8 as --dtype int8 runs it: the handle wraps the network, which quantizes on its first call
            # (interleaved()'s untimed warm-up call).
            rt = Runtime(cpu_int8=True) if dt == "int8" else Runtime(dtype=getattr(torch, dt))
            det = cls(rt.handle(copy.deepcopy(net), rt.card(arch)), **kw)
            cases[f"ours {dt}" + ("" if mb is None else f" {mb}MB")] = (lambda d=det: d.detect(frames))
    b = min(len(frames), ORIGINAL_BATCH)
    plain = copy.deepcopy(net).eval()
    x = torch.from_numpy(np.stack(frames[:b])).permute(0, 3, 1, 2).float().contiguous() - 117.0
    cases[f"forward fp32 b{b}"] = (lambda: [plain(x) for _ in range(0, len(frames), b)])
    if original and name == "s3fd":
        cases[f"original b{b}"] = (lambda: original_face_detect(plain, frames, b))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", nargs="+", default=["s3fd", "retinaface"], choices=["s3fd", "retinaface"])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), help="WxH frame sizes")
    ap.add_argument("--frames", type=int, default=16, help="frames per call at 360p; fewer at larger sizes so a "
                    "call holds about the same pixels (at least 2)")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "int8"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--budget-mb", type=int, nargs="+", help="also vary the detectors' CPU activation budget")
    ap.add_argument("--no-original", dest="original", action="store_false")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from lipsync_core.compute.hardware import cpu_info
    from lipsync_core.testing.checkpoints import bias_retinaface_heads

    print(f"{cpu_info().describe()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{load_note()} (shared machine: compare rows of one block only)")
    nets = _networks()
    report: dict = {}
    for size_text in args.sizes:
        w, h = (int(v) for v in size_text.lower().split("x"))
        n = max(2, round(args.frames * 640 * 360 / (w * h)))
        frames = _frames((w, h), n)
        for name in args.detector:
            net = nets[name]
            if name == "retinaface":
                x = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() - torch.tensor([104., 117., 123.]
                                                                                              ).view(1, 3, 1, 1)
                net = bias_retinaface_heads(net, x)
            cases = cases_for(name, net, frames, args.dtypes, args.original, args.budget_mb)
            results = interleaved(cases, rounds=args.rounds)
            per_frame = {k: t.per(n) for k, t in results.items()}
            print(f"\n== {name} {w}x{h}, {n} frames per call, seconds per frame ({load_note()}) ==")
            print(f"{'case':24}{'best':>9}{'median':>9}{'CPU':>9}")
            for k, t in per_frame.items():
                print(f"{k:24}{t.best:9.3f}{t.median:9.3f}{t.cpu:9.3f}")
            orig = next((t for k, t in per_frame.items() if k.startswith("original")), None)
            if orig is not None:
                for k, t in per_frame.items():
                    if k.startswith("ours"):
                        print(f"  original / {k}: {orig.best / t.best:.2f}x wall (best), {orig.cpu / t.cpu:.2f}x CPU")
            report[f"{name} {w}x{h}"] = {k: vars(t) for k, t in per_frame.items()}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
