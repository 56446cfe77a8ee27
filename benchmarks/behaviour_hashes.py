"""Behaviour hashes: prove that ``lipsync`` outputs stay bit-identical across a refactor, and time it.

Every configuration below is run through the ``lipsync`` CLI as a subprocess (one fresh process and a fresh
``--cache_dir`` per run, ``--no_progress``, ``LIPSYNC_OFFLINE=1`` so nothing is downloaded). For each output it
records the sha256 of the decoded frames (``ffmpeg -i OUT -f rawvideo -pix_fmt bgr24 -``), the frame count, the
frame size, the file's size and sha256, and the process's wall time.

Procedural weights (deterministic, in the published files' formats) are written once, by the package's own
helpers (``lipsync_core.testing.checkpoints``), and then reused unchanged: the run modes import nothing from the
package, so the same files and this same script serve the checkout before and after a refactor.

    # once, with the "before" checkout's interpreter (needs lipsync_core importable; skipped when present)
    BEFORE/.venv/bin/python behaviour_hashes.py prepare
    # record (calls prepare through the executable's own python when the weights are missing)
    python behaviour_hashes.py record --lipsync BEFORE/.venv/bin/lipsync --out before.json
    python behaviour_hashes.py record --lipsync AFTER/.venv/bin/lipsync --out after.json
    python behaviour_hashes.py compare before.json after.json        # exit 1 when any output differs
    # speed: original-variant auto and hq auto, through both executables alternately
    python behaviour_hashes.py time --lipsync BEFORE/.venv/bin/lipsync --lipsync AFTER/.venv/bin/lipsync \\
        --rounds 3

Weights (``--weights``, default ``$TMPDIR/lipsync_behaviour_weights``; ``manifest.json`` there lists each file's
sha256 and how it was made, and ``record`` refuses to run when a file no longer matches it):

- ``wav2lip.pth``: full Wav2Lip, legacy (non-zip) pickle, ``{"state_dict": {"module.…": …}}`` as the released file.
- ``s3fd.pth``: full S3FD, legacy pickle, bare state dict, heads set by ``steady_s3fd`` (what bench_pipeline.py
  does): every frame yields the same few candidates on steady boxes, so the default detector gives a track.
- ``retinaface.pth``: full ResNet-50 RetinaFace, bare state dict, face-class biases shifted by
  ``bias_retinaface_heads`` on frame 0 of the talking-head clip as the detector sees it (det_size 360, BGR minus
  the means), as tests/pipeline/test_variants.py does, so the codeformer variant's default detector gives a track.
- ``esrgan.pth``: RRDBNet x4 REDUCED as in tests/pipeline/test_variants.py (num_feat 8, num_block 1,
  num_grow_ch 4; ``{"params": …}``): the full 23-block net costs seconds per frame here.
- ``face_segmentation.pth``: full BiSeNet (its size is fixed), bare state dict.
- ``codeformer.pth``: full 512 CodeFormer, ``{"params_ema": …}``; ``parsenet.pth``: full ParseNet, bare.

Hashes depend on the machine as well as the code: ``--dtype auto`` means bfloat16 only on a CPU with AMX or
AVX-512 BF16, and thread counts can change float reductions, so ``before`` and ``after`` must come from the same
machine, the same torch/numpy/opencv/imageio-ffmpeg versions and the same ``--threads`` (recorded in ``_meta``;
``compare`` prints where the metas differ).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"  # ../shared/media beside the checkout
FACE = MEDIA / "talking_head_man_vrt2.mp4"
AUDIO = MEDIA / "speech_vrt1_44k1_stereo_5s.wav"
SITA = MEDIA / "anime2d" / "sita_redub_source_7s.mp4"
SITA_AUDIO = MEDIA / "anime2d" / "sita_redub_line.wav"
# top bottom left right on frame 0: eyebrows to chin, cheek to cheek (SITA_BOX of tests/pipeline/test_anime_runs.py,
# same rig and canvas as the re-dub clip; checked on its frame 0).
SITA_BOX = ("100", "250", "145", "370")
DEFAULT_WEIGHTS = Path(tempfile.gettempdir()) / "lipsync_behaviour_weights"

# weight role flag -> file in --weights
W = {"checkpoint_path": "wav2lip.pth", "s3fd_path": "s3fd.pth", "retinaface_path": "retinaface.pth",
     "sr_path": "esrgan.pth", "segmentation_path": "face_segmentation.pth", "codeformer_path": "codeformer.pth",
     "parsenet_path": "parsenet.pth"}
ROLES = {"original": ("checkpoint_path", "s3fd_path"),
         "hq": ("checkpoint_path", "s3fd_path", "sr_path", "segmentation_path"),
         "codeformer": ("checkpoint_path", "retinaface_path", "codeformer_path", "parsenet_path")}


def _talking(variant: str, dtype: str, *extra: str) -> dict:
    return {"face": str(FACE), "audio": str(AUDIO), "variant": variant, "roles": ROLES[variant],
            "args": ["--dtype", dtype, *extra]}


# name -> run. Every variant on its default detector (s3fd; retinaface for codeformer), default det_size/stride,
# blend, crf and preset. CodeFormer costs ~4-5 s a frame here: its runs stop the audio at 1 s (25 frames).
CONFIGS: dict[str, dict] = {
    "original_float32": _talking("original", "float32"),
    "original_auto": _talking("original", "auto"),
    "hq_float32": _talking("hq", "float32"),
    "hq_auto": _talking("hq", "auto"),
    "hq_int8": _talking("hq", "int8"),
    "codeformer_float32_audio_end1": _talking("codeformer", "float32", "--audio_end", "1"),
    "codeformer_auto_audio_end1": _talking("codeformer", "auto", "--audio_end", "1"),
    "sita_original_track_box_mouth": {"face": str(SITA), "audio": str(SITA_AUDIO), "variant": "original",
                                      "roles": ("checkpoint_path",),
                                      "args": ["--track_box", *SITA_BOX, "--mask_region", "mouth"]},
}
TIMED = ("original_auto", "hq_auto")


# ---------------------------------------------------------------------------------------------- weights (prepare)
def prepare(weights: Path) -> None:
    """Write the procedural weight files that are missing (needs lipsync_core: run with the base checkout)."""
    import cv2
    import torch

    from lipsync_core.media.video import read_frames
    from lipsync_core.testing.checkpoints import bias_retinaface_heads, procedural_module, steady_s3fd, write_checkpoint

    weights.mkdir(parents=True, exist_ok=True)
    how = {
        "wav2lip.pth": ("write_checkpoint('wav2lip', wrapper='state_dict', legacy=True, module_prefix=True)",
                        lambda p: write_checkpoint("wav2lip", p, wrapper="state_dict", legacy=True,
                                                   module_prefix=True)),
        "s3fd.pth": ("write_checkpoint('s3fd', model=steady_s3fd(procedural_module('s3fd')), legacy=True)",
                     lambda p: write_checkpoint("s3fd", p, model=steady_s3fd(procedural_module("s3fd")), legacy=True)),
        "retinaface.pth": ("write_checkpoint('retinaface_resnet50', model=bias_retinaface_heads(procedural_module("
                           "'retinaface_resnet50'), frame 0 of talking_head_man_vrt2.mp4 at 360x360 INTER_AREA, "
                           "BGR minus (104,117,123)))", None),
        "esrgan.pth": ("write_checkpoint('rrdbnet_x4', wrapper='params', num_feat=8, num_block=1, num_grow_ch=4)",
                       lambda p: write_checkpoint("rrdbnet_x4", p, wrapper="params", num_feat=8, num_block=1,
                                                  num_grow_ch=4)),
        "face_segmentation.pth": ("write_checkpoint('bisenet19')", lambda p: write_checkpoint("bisenet19", p)),
        "codeformer.pth": ("write_checkpoint('codeformer', wrapper='params_ema')",
                           lambda p: write_checkpoint("codeformer", p, wrapper="params_ema")),
        "parsenet.pth": ("write_checkpoint('parsenet')", lambda p: write_checkpoint("parsenet", p)),
    }
    for name, (_, make) in how.items():
        path = weights / name
        if path.exists():
            continue
        t0 = time.perf_counter()
        tmp = path.with_suffix(".partial")
        if name == "retinaface.pth":
            frame = read_frames(FACE, max_frames=1)[0]
            h, w = frame.shape[:2]
            s = 360 / max(h, w)
            small = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy(small).permute(2, 0, 1)[None].float()
            x = x - torch.tensor((104.0, 117.0, 123.0)).view(1, 3, 1, 1)
            net = bias_retinaface_heads(procedural_module("retinaface_resnet50"), x)
            write_checkpoint("retinaface_resnet50", tmp, model=net)
        else:
            make(tmp)
        tmp.replace(path)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)", flush=True)
    manifest = weights / "manifest.json"
    if not manifest.exists():
        import lipsync_core
        files = {n: {"sha256": sha256_file(weights / n), "bytes": (weights / n).stat().st_size, "how": how[n][0]}
                 for n in how}
        manifest.write_text(json.dumps({"made_with": {"lipsync_core": str(Path(lipsync_core.__file__).parent),
                                                      "torch": torch.__version__},
                                        "files": files}, indent=1) + "\n")
        print(f"wrote {manifest}")


def ensure_weights(weights: Path, lipsync: Path) -> dict:
    """The weights' manifest; missing files are made by ``prepare`` in ``lipsync``'s own interpreter."""
    if not (weights / "manifest.json").exists() or any(not (weights / f).exists() for f in W.values()):
        python = lipsync.parent / "python"
        print(f"preparing weights in {weights} with {python}", flush=True)
        subprocess.run([str(python), str(Path(__file__).resolve()), "prepare", "--weights", str(weights)], check=True)
    manifest = json.loads((weights / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        if sha256_file(weights / name) != entry["sha256"]:
            raise SystemExit(f"{weights / name} no longer matches {weights / 'manifest.json'}")
    return manifest


# ---------------------------------------------------------------------------------------------------- running
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_ffmpeg(lipsync: Path, given: str | None) -> str:
    """The ffmpeg that decodes for hashing: --ffmpeg, else what lipsync itself would use (LIPSYNC_FFMPEG, ffmpeg
    on PATH, else imageio-ffmpeg's binary from the executable's own environment)."""
    for cand in (given, os.environ.get("LIPSYNC_FFMPEG"), shutil.which("ffmpeg")):
        if cand:
            return shutil.which(cand) or cand
    out = subprocess.run([str(lipsync.parent / "python"), "-c", "import imageio_ffmpeg;print(imageio_ffmpeg."
                          "get_ffmpeg_exe())"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def frames_digest(ffmpeg: str, video: Path) -> dict:
    """sha256 of the decoded bgr24 frames, their count and size, and the file's bytes and sha256."""
    info = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(video)], capture_output=True, text=True)
    m = re.search(r"Video: .*?(\d{2,5})x(\d{2,5})", info.stderr)
    if not m:
        raise SystemExit(f"no video stream in {video}:\n{info.stderr[-2000:]}")
    w, h = int(m.group(1)), int(m.group(2))
    proc = subprocess.Popen([ffmpeg, "-v", "error", "-nostdin", "-i", str(video), "-f", "rawvideo", "-pix_fmt",
                             "bgr24", "-"], stdout=subprocess.PIPE)
    digest, n = hashlib.sha256(), 0
    assert proc.stdout is not None
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
        digest.update(chunk)
        n += len(chunk)
    if proc.wait() != 0:
        raise SystemExit(f"ffmpeg could not decode {video}")
    if n % (w * h * 3):
        raise SystemExit(f"{video}: {n} bytes of frames is not a whole number of {w}x{h} frames")
    return {"frames_sha256": digest.hexdigest(), "frames": n // (w * h * 3), "width": w, "height": h,
            "file_bytes": video.stat().st_size, "file_sha256": sha256_file(video)}


def command(lipsync: Path, cfg: dict, weights: Path, out: Path, cache: Path) -> list[str]:
    cmd = [str(lipsync), "--face", cfg["face"], "--audio", cfg["audio"], "--outfile", str(out),
           "--variant", cfg["variant"], "--device", "cpu", "--cache_dir", str(cache), "--no_progress"]
    for role in cfg["roles"]:
        cmd += [f"--{role}", str(weights / W[role])]
    return cmd + cfg["args"]


def child_env(threads: int | None) -> dict:
    env = dict(os.environ, LIPSYNC_OFFLINE="1", PYTHONHASHSEED="0")
    if threads:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
    return env


def run_one(lipsync: Path, name: str, weights: Path, ffmpeg: str, threads: int | None,
            keep: Path | None = None) -> dict:
    cfg = CONFIGS[name]
    with tempfile.TemporaryDirectory(prefix=f"bh_{name}_") as tmp:
        out, cache = Path(tmp) / f"{name}.mp4", Path(tmp) / "cache"
        cmd = command(lipsync, cfg, weights, out, cache)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(threads))
        wall = time.perf_counter() - t0
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{name}.log").write_text(" ".join(cmd) + "\n\n" + proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{' '.join(cmd)}\n{proc.stderr[-3000:]}")
        result = {**frames_digest(ffmpeg, out), "wall_s": round(wall, 3),
                  "command": ["lipsync" if c == str(lipsync) else c.replace(tmp, "<tmp>") for c in cmd]}
        if keep is not None:
            shutil.copyfile(out, keep / out.name)
    return result


def meta(lipsync: Path, ffmpeg: str, weights: Path, manifest: dict, threads: int | None) -> dict:
    probe = ("import json,os,torch,numpy,cv2,imageio_ffmpeg;print(json.dumps({'torch':torch.__version__,"
             "'numpy':numpy.__version__,'opencv':cv2.__version__,'imageio_ffmpeg':imageio_ffmpeg.__version__,"
             "'torch_threads':torch.get_num_threads(),'cpu_capability':torch.backends.cpu.get_cpu_capability()}))")
    r = subprocess.run([str(lipsync.parent / "python"), "-c", probe], capture_output=True, text=True,
                       env=child_env(threads))
    versions = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-300:]}
    ver = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.splitlines()[:1]
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"lipsync": str(lipsync), "python_env": versions, "hash_ffmpeg": ffmpeg, "hash_ffmpeg_version": ver,
            "threads_env": threads, "nproc": os.cpu_count(),
            "cpu_bf16": sorted(flags & {"amx_bf16", "avx512_bf16"}),
            "weights": str(weights), "weights_sha256": {n: e["sha256"] for n, e in manifest["files"].items()},
            "media": {str(p): sha256_file(p) for p in (FACE, AUDIO, SITA, SITA_AUDIO)}}


def cmd_record(a: argparse.Namespace) -> None:
    lipsync = Path(a.lipsync).absolute()
    manifest = ensure_weights(a.weights, lipsync)
    ffmpeg = find_ffmpeg(lipsync, a.ffmpeg)
    names = a.only or list(CONFIGS)
    out = Path(a.out)
    results = json.loads(out.read_text()) if a.only and out.exists() else {}
    results["_meta"] = meta(lipsync, ffmpeg, a.weights, manifest, a.threads)
    for name in names:
        r = run_one(lipsync, name, a.weights, ffmpeg, a.threads, a.keep)
        results[name] = r
        print(f"{name:32} {r['frames_sha256'][:16]}  {r['frames']:4d} fr  {r['width']}x{r['height']}  "
              f"{r['file_bytes']:9d} B  {r['wall_s']:7.1f} s", flush=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
    for name in a.repeat or []:
        again = run_one(lipsync, name, a.weights, ffmpeg, a.threads)
        same = again["frames_sha256"] == results[name]["frames_sha256"]
        fsame = again["file_sha256"] == results[name]["file_sha256"]
        results.setdefault("_repeat", {})[name] = {"frames_sha256": again["frames_sha256"],
                                                    "file_sha256": again["file_sha256"], "wall_s": again["wall_s"],
                                                    "frames_identical": same, "file_identical": fsame}
        print(f"repeat {name}: frames {'identical' if same else 'DIFFER'}, file {'identical' if fsame else 'DIFFERS'}"
              f" ({again['wall_s']:.1f} s)", flush=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


def cmd_compare(a: argparse.Namespace) -> None:
    A, B = (json.loads(Path(p).read_text()) for p in (a.a, a.b))
    bad = 0
    ma, mb = A.get("_meta", {}), B.get("_meta", {})
    for k in sorted((set(ma) | set(mb)) - {"lipsync"}):  # the executables differ by design
        if ma.get(k) != mb.get(k):
            print(f"note: _meta.{k} differs: {ma.get(k)!r} vs {mb.get(k)!r}")
    for name in [n for n in A if not n.startswith("_")] + [n for n in B if not n.startswith("_") and n not in A]:
        if name not in A or name not in B:
            print(f"{name:32} only in {'A' if name in A else 'B'}")
            bad += 1
            continue
        ra, rb = A[name], B[name]
        diff = [k for k in ("frames_sha256", "frames", "width", "height") if ra[k] != rb[k]]
        file_diff = [k for k in ("file_sha256", "file_bytes") if ra.get(k) != rb.get(k)]
        if diff:
            bad += 1
            print(f"{name:32} DIFFERS: " + ", ".join(f"{k} {ra[k]} -> {rb[k]}" for k in diff))
        elif file_diff:
            print(f"{name:32} same frames, but the file differs ({ra['file_bytes']} -> {rb['file_bytes']} bytes)")
        else:
            print(f"{name:32} identical ({ra['frames']} frames; {ra['wall_s']:.1f} s -> {rb['wall_s']:.1f} s)")
    print(f"{bad} config(s) differ" if bad else "all configs identical")
    sys.exit(1 if bad else 0)


def cmd_time(a: argparse.Namespace) -> None:
    exes = [Path(e).absolute() for e in a.lipsync]
    manifest = ensure_weights(a.weights, exes[0])
    del manifest
    ffmpeg = find_ffmpeg(exes[0], a.ffmpeg)
    names = a.configs or list(TIMED)
    walls: dict[str, dict[int, list[float]]] = {n: {i: [] for i in range(len(exes))} for n in names}
    hashes: dict[str, dict[int, set]] = {n: {i: set() for i in range(len(exes))} for n in names}
    for r in range(a.rounds):
        order = list(range(len(exes))) if r % 2 == 0 else list(reversed(range(len(exes))))  # alternate who goes first
        for name in names:
            for i in order:
                res = run_one(exes[i], name, a.weights, ffmpeg, a.threads)
                walls[name][i].append(res["wall_s"])
                hashes[name][i].add(res["frames_sha256"])
                print(f"round {r + 1} {name:16} exe {i} ({exes[i]}): {res['wall_s']:.2f} s", flush=True)
    report = {"executables": [str(e) for e in exes], "rounds": a.rounds, "configs": {}}
    print()
    for name in names:
        meds = {}
        for i, e in enumerate(exes):
            w = walls[name][i]
            meds[i] = statistics.median(w)
            print(f"{name:16} exe {i}: median {meds[i]:.2f} s, min {min(w):.2f}, max {max(w):.2f}, "
                  f"spread {max(w) - min(w):.2f} s ({100 * (max(w) - min(w)) / meds[i]:.1f} %)  {e}")
        if len(exes) > 1:
            rel = 100 * (meds[1] - meds[0]) / meds[0]
            same = len(set().union(*hashes[name].values())) == 1
            print(f"{name:16} exe 1 vs exe 0: {rel:+.1f} % median; outputs {'identical' if same else 'DIFFER'}")
        report["configs"][name] = {"walls_s": {str(i): walls[name][i] for i in walls[name]},
                                   "median_s": {str(i): meds[i] for i in meds},
                                   "frames_sha256": {str(i): sorted(hashes[name][i]) for i in hashes[name]}}
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {a.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="procedural weights folder")
        p.add_argument("--ffmpeg", help="ffmpeg used to decode outputs for hashing (default: what lipsync uses)")
        p.add_argument("--threads", type=int, default=2,
                       help="OMP_NUM_THREADS/MKL_NUM_THREADS for the runs (0: leave unset; default %(default)s)")

    p = sub.add_parser("prepare", help="write the procedural weights (needs lipsync_core)")
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    p = sub.add_parser("record", help="run every config and write the hashes JSON")
    common(p)
    p.add_argument("--lipsync", required=True, help="the lipsync executable")
    p.add_argument("--out", required=True)
    p.add_argument("--only", nargs="+", choices=list(CONFIGS), help="run only these (merged into an existing --out)")
    p.add_argument("--repeat", nargs="+", choices=list(CONFIGS), default=[],
                   help="run these again and check the output is identical (determinism)")
    p.add_argument("--keep", type=Path, help="keep outputs and logs in this folder")
    p = sub.add_parser("compare", help="which configs differ between two hashes JSONs (exit 1 if any)")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("time", help="time configs through two executables, alternating")
    common(p)
    p.add_argument("--lipsync", action="append", required=True, help="executable (give it twice: A and B)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), help=f"default: {' '.join(TIMED)}")
    p.add_argument("--out", help="also write the timings as JSON")
    a = ap.parse_args()
    if a.mode == "prepare":
        prepare(a.weights)
    else:
        {"record": cmd_record, "compare": cmd_compare, "time": cmd_time}[a.mode](a)


if __name__ == "__main__":
    main()
