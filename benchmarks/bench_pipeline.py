"""End-to-end benchmark: per-stage time, frames/s, real-time factor and peak RSS, default vs parity.

The parity run is the original's behaviour (full-resolution S3FD on every frame, fp32, hard paste); the
default run is this package's defaults; ``--original`` adds the original ``inference.py`` itself (a checkout) or,
without one, its emulation (``original_inference.py``: same steps, batches, precision and layout). Each run is
a fresh process (so peak RSS is its own); the median of ``--repeat`` runs is reported, as text and as JSON.

    python benchmarks/bench_pipeline.py --size 640x360 --seconds 5            # generated media, S3FD
    python benchmarks/bench_pipeline.py --seconds 10 60 --box --no-parity      # memory vs length, fixed box
    python benchmarks/bench_pipeline.py --face my.mp4 --audio my.wav
    python benchmarks/bench_pipeline.py --original                  # also the original inference.py (emulated)

Weights are procedural (no download): a Wav2Lip checkpoint in the 436 MB legacy training format (``module.``
keys, Adam state), so load-time memory is realistic, and an S3FD whose heads are set so every frame yields the
same handful of candidates on steady boxes, as real weights do on a talking head (``testing.checkpoints.steady_s3fd``).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARITY = {"det_size": 0, "det_stride": 1, "dtype": "float32", "blend": "hard"}
STAGE_ORDER = ("read", "decode", "detect", "mel", "decode_wait", "sync", "super_resolution", "segmentation", "blend",
               "upscale", "codeformer", "sharpen", "encode", "mux")


def prepare(work: Path, size: tuple[int, int], seconds: float, fps: float) -> dict[str, Path]:
    """Generated media and procedural checkpoints, reused from ``work`` when already there."""
    from lipsync_core.testing.checkpoints import procedural_module, steady_s3fd, write_checkpoint
    from lipsync_core.testing.media import speech_wav, talking_head_video

    work.mkdir(parents=True, exist_ok=True)
    files = {"wav2lip": work / "wav2lip_legacy.pth", "s3fd": work / "s3fd_steady.pth"}
    if not files["wav2lip"].exists():
        write_checkpoint("wav2lip", files["wav2lip"], wrapper="state_dict", legacy=True, module_prefix=True,
                         optimizer=True)
    if not files["s3fd"].exists():
        write_checkpoint("s3fd", files["s3fd"], model=steady_s3fd(procedural_module("s3fd")), legacy=True)
    w, h = size
    files["face"] = work / f"face_{w}x{h}_{seconds:g}s_{fps:g}.mp4"
    if not files["face"].exists():
        talking_head_video(files["face"], size=size, fps=fps, seconds=seconds, audio=False)
    files["audio"] = work / f"speech_{seconds:g}s.wav"
    if not files["audio"].exists():
        speech_wav(files["audio"], seconds)
    return files


def child(spec: dict) -> None:
    """One run in this process; prints a JSON line with timings and peak RSS."""
    if "original" in spec:
        return original_child(spec)
    from lipsync_core.engine.plan import make_config
    from lipsync_core.job import run, session_for

    session = session_for(make_config(spec["variant"], **spec["options"]))
    t0 = time.perf_counter()
    frames = run(session, spec["face"], spec["audio"], spec["outfile"])
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "stages": dict(session.timings.seconds), "peak_rss_mb": rss_mb,
                      "frames": frames}))


def original_child(spec: dict) -> None:
    """The original ``inference.py`` (when ``spec["original"]`` is its checkout) or its emulation
    (``original_inference.py``), timed like the others."""
    o = spec["options"]
    t0 = time.perf_counter()
    if spec["original"]:
        # The checkout must hold S3FD's weights at face_detection/detection/sfd/s3fd.pth, as its README says.
        subprocess.run([sys.executable, "inference.py", "--checkpoint_path", o["checkpoint_path"], "--face",
                        str(Path(spec["face"]).resolve()), "--audio", str(Path(spec["audio"]).resolve()),
                        "--outfile", str(Path(spec["outfile"]).resolve())], cwd=spec["original"], check=True,
                       capture_output=True)
        stages, rss = {}, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from original_inference import run

        stages = run(o["checkpoint_path"], o["s3fd_path"], spec["face"], spec["audio"], spec["outfile"])
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import cv2

    frames = int(cv2.VideoCapture(spec["outfile"]).get(cv2.CAP_PROP_FRAME_COUNT))
    print(json.dumps({"wall": time.perf_counter() - t0, "stages": stages, "peak_rss_mb": rss / 1024,
                      "frames": frames}))


def run_once(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_run(spec: dict, repeat: int) -> dict:
    runs = [run_once(spec) for _ in range(repeat)]
    stages = {k: statistics.median(r["stages"].get(k, 0.0) for r in runs) for k in runs[0]["stages"]}
    wall = statistics.median(r["wall"] for r in runs)
    frames = runs[0]["frames"]
    return {"wall_s": wall, "frames": frames, "fps": frames / wall, "stages_s": stages,
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs), "runs": runs}


def table(results: dict[str, dict], duration: float) -> str:
    names = list(results)
    stages = [s for s in STAGE_ORDER if any(s in r["stages_s"] for r in results.values())]
    lines = [f"{'':16}" + "".join(f"{n:>14}" for n in names)]
    for s in stages:
        lines.append(f"{s + ' (s)':16}" + "".join(f"{results[n]['stages_s'].get(s, 0.0):14.2f}" for n in names))
    for label, key, fmt in (("total (s)", "wall_s", "{:14.2f}"), ("frames/s", "fps", "{:14.2f}"),
                            ("peak RSS (MB)", "peak_rss_mb", "{:14.0f}")):
        lines.append(f"{label:16}" + "".join(fmt.format(results[n][key]) for n in names))
    lines.append(f"{'real-time x':16}" + "".join(f"{duration / results[n]['wall_s']:14.3f}" for n in names))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--size", default="640x360", help="generated video size WxH (default %(default)s)")
    ap.add_argument("--seconds", type=float, nargs="+", default=[5.0], help="clip length(s) to run")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--face", help="your own face video instead of a generated one")
    ap.add_argument("--audio", help="your own audio (default: generated speech as long as the clip)")
    ap.add_argument("--variant", default="original")
    ap.add_argument("--box", action="store_true", help="fixed face box (no detection), for memory-vs-length runs")
    ap.add_argument("--no-parity", dest="parity", action="store_false", help="skip the parity run")
    ap.add_argument("--original", nargs="?", const="", default=None, metavar="CHECKOUT",
                    help="also run the original inference.py: from its checkout if given (S3FD weights placed in it), "
                         "else its emulation (benchmarks/original_inference.py)")
    ap.add_argument("--dtype", help="the default run's --dtype (default: the package's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", type=Path, help="keep generated media/checkpoints here between invocations")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.child:
        return child(json.loads(args.child))

    w, h = (int(v) for v in args.size.lower().split("x"))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lipsync-bench-"))
    report: dict = {"machine": _machine(), "args": {k: str(v) for k, v in vars(args).items() if k != "child"}}
    for seconds in args.seconds:
        files = prepare(work, (w, h), seconds, args.fps)
        face, audio = args.face or str(files["face"]), args.audio or str(files["audio"])
        common = {"checkpoint_path": str(files["wav2lip"]), "s3fd_path": str(files["s3fd"]), "device": args.device,
                  "no_progress": True, "no_track_cache": True, "quiet": True}
        if args.box:
            common["box"] = (h // 4, h * 3 // 4, w // 3, w * 2 // 3)
        configs = {"default": {"dtype": args.dtype} if args.dtype else {}}
        if args.parity:
            configs["parity"] = PARITY
        if args.original is not None:
            configs["original"] = {}
        results = {}
        for name, extra in configs.items():
            spec = {"variant": args.variant, "face": face, "audio": audio, "outfile": str(work / f"out_{name}.mp4"),
                    "options": {**common, **extra}}
            if name == "original":
                spec["original"] = args.original
            results[name] = median_run(spec, args.repeat)
        from lipsync_core.media.probe import probe

        duration = probe(audio).duration
        print(f"\n== {Path(face).name} + {Path(audio).name} ({duration:.1f} s audio), median of {args.repeat} ==")
        print(table(results, duration))
        ratios = {}
        for ref in ("parity", "original"):
            if ref not in results:
                continue
            for name in ("default", "parity"):
                if name == ref or name not in results:
                    continue
                d, p = results[name], results[ref]
                r = {"end_to_end": p["wall_s"] / d["wall_s"],
                     "detection": p["stages_s"].get("detect", 0) / max(d["stages_s"].get("detect", 0), 1e-9)}
                print(f"{name} vs {ref}: {r['end_to_end']:.1f}x faster end to end, {r['detection']:.1f}x in detection")
                ratios[f"{name}_vs_{ref}"] = r
        results["ratios"] = ratios
        report[f"{seconds:g}s"] = results
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _machine() -> dict:
    import os
    import platform

    import torch

    return {"cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


if __name__ == "__main__":
    main()
