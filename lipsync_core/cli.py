"""Command line: ``lipsync [run] --face F --audio A [flags]`` and ``lipsync weights ...``.

Accepts every flag of the original ``inference.py`` with the same meaning, plus this package's own.
Expected errors print one line and exit 1; argument errors exit 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .config import BLENDS, DETECTORS, DTYPES, VARIANTS, RunConfig
from .errors import LipsyncError


def _bool(text: str) -> bool:
    """``--static`` takes an optional value; unlike the original, ``--static False`` means False."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _box(values: list[int]) -> tuple[int, int, int, int] | None:
    return None if list(values) == [-1, -1, -1, -1] else tuple(values)  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = argparse.ArgumentParser(prog="lipsync", description="Lip-sync a face video or image to a speech track "
                                "(Wav2Lip; variants original, hq, hq_gan, codeformer). "
                                "`lipsync weights --help` manages the model files.")
    io = p.add_argument_group("inputs and output (a local path, Google Drive ID or link, URL or YouTube URL)")
    io.add_argument("--face", required=True, help="video or image with the face")
    io.add_argument("--audio", required=True, help="speech: any audio or video file; 'same' uses the face video's")
    io.add_argument("--outfile", default="results/result_voice.mp4", help="output mp4 (default: %(default)s)")
    io.add_argument("--start", help="trim the face video from here (seconds or hh:mm:ss.ms)")
    io.add_argument("--end", help="trim the face video up to here")
    io.add_argument("--audio_start", help="trim the audio from here")
    io.add_argument("--audio_end", help="trim the audio up to here")
    io.add_argument("--cookies", help="cookies.txt for sites that ask for sign-in (YouTube)")
    io.add_argument("--max_seconds", type=float, help="refuse inputs longer than this")

    w = p.add_argument_group("model files (local path, Drive ID/link or URL; default: the manifest's for the variant)")
    w.add_argument("--variant", choices=VARIANTS, default="original")
    w.add_argument("--checkpoint_path", help="Wav2Lip generator (wav2lip.pth or wav2lip_gan.pth)")
    for role, what in (("s3fd", "S3FD face detector"), ("sr", "ESRGAN x4 super-resolution (HQ)"),
                       ("segmentation", "BiSeNet face segmentation (HQ)"), ("codeformer", "CodeFormer"),
                       ("retinaface", "RetinaFace detector (CodeFormer)"), ("parsenet", "ParseNet face parsing"),
                       ("upscaler", "RealESRGAN x2 background upscaler (--upscale 2)")):
        w.add_argument(f"--{role}_path", help=what)

    o = p.add_argument_group("the original inference.py options")
    o.add_argument("--static", type=_bool, nargs="?", const=True, default=d.static,
                   help="use only the first frame of the video")
    o.add_argument("--fps", type=float, default=d.fps, help="frame rate for still images (default: %(default)s)")
    o.add_argument("--pads", type=int, nargs=4, default=list(d.pads), metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="padding added to the detected face box (default: 0 10 0 0)")
    o.add_argument("--face_det_batch_size", type=int, default=d.face_det_batch_size)
    o.add_argument("--wav2lip_batch_size", type=int, default=d.wav2lip_batch_size)
    o.add_argument("--resize_factor", type=int, default=d.resize_factor, help="divide the video resolution by this")
    o.add_argument("--crop", type=int, nargs=4, default=list(d.crop), metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="crop the video to this region (-1: to the edge)")
    o.add_argument("--box", type=int, nargs=4, default=[-1, -1, -1, -1], metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="fixed face box on every frame; skips detection")
    o.add_argument("--rotate", action="store_true", help="rotate the video 90 degrees clockwise")
    o.add_argument("--nosmooth", action="store_true", help="do not smooth face boxes over time")

    x = p.add_argument_group("this package's options")
    x.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N (default: auto)")
    x.add_argument("--dtype", choices=DTYPES, default=d.dtype, help="compute dtype (auto: float16 on CUDA)")
    x.add_argument("--compile", action="store_true",
                   help="torch.compile the generator: slower start, faster frames (CUDA, long videos)")
    x.add_argument("--detector", choices=DETECTORS, help="face detector (default: the variant's)")
    x.add_argument("--det_size", type=int, default=d.det_size,
                   help="longest side of frames given to the detector; 0 = full resolution (default: %(default)s)")
    x.add_argument("--det_stride", type=int, default=d.det_stride,
                   help="detect every k-th frame and interpolate; re-detects at cuts (default: %(default)s)")
    x.add_argument("--face_point", type=int, nargs=2, metavar=("X", "Y"),
                   help="with several faces, follow the one nearest this point (default: the largest)")
    x.add_argument("--blend", choices=BLENDS, default=d.blend, help="feather (no seams) or hard (original)")
    x.add_argument("--audio_offset_ms", type=float, default=d.audio_offset_ms,
                   help="shift the audio windows relative to the video")
    x.add_argument("--crf", type=int, default=d.crf, help="H.264 quality, 0 = lossless (default: %(default)s)")
    x.add_argument("--preset", default=d.preset, help="x264 preset (default: %(default)s)")
    x.add_argument("--no_track_cache", dest="track_cache", action="store_false",
                   help="always re-detect faces instead of reusing the cached track")
    x.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")
    hq = p.add_argument_group("HQ variants")
    hq.add_argument("--no_sr", action="store_true", help="skip super-resolution (its model is not loaded)")
    hq.add_argument("--no_segmentation", action="store_true", help="skip the segmentation mask")
    hq.add_argument("--mask_feather", type=int, default=d.mask_feather, help="mask edge width in pixels")
    hq.add_argument("--mask_lower_face", type=float, help="keep the mask only in this lowest fraction of the face box")
    cf = p.add_argument_group("CodeFormer variant")
    cf.add_argument("--fidelity", type=float, default=d.fidelity, help="0 = quality, 1 = fidelity (default 0.7)")
    cf.add_argument("--sharpen", type=float, default=d.sharpen, help="unsharp-mask strength on the mouth; 0 = off")
    cf.add_argument("--upscale", type=int, choices=(1, 2), default=d.upscale, help="2 doubles the output resolution")
    return p


def run(argv: Sequence[str]) -> int:
    from .pipeline import lipsync

    args = vars(build_parser().parse_args(argv))
    face, audio, outfile, variant = (args.pop(k) for k in ("face", "audio", "outfile", "variant"))
    args["box"] = _box(args["box"])
    args["face_point"] = tuple(args["face_point"]) if args["face_point"] else None
    args["pads"], args["crop"] = tuple(args["pads"]), tuple(args["crop"])
    out = lipsync(face, audio, outfile, variant=variant, **args)
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lipsync`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.captureWarnings(True)
    try:
        if argv[:1] == ["weights"]:
            from .weights_cli import main as weights_main

            return weights_main(argv[1:])
        return run(argv[1:] if argv[:1] == ["run"] else argv)
    except LipsyncError as exc:
        print(f"lipsync: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lipsync: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
