"""Batch throughput: 8 jobs of 3 s (one face x 8 audio tracks) as one batch vs 8 fresh ``lipsync`` processes.

Both sides start with a warm face-track cache and verified weights (one untimed run first), so the difference
is what a fresh process pays per job: interpreter start, imports, weights check, model load. Reported:
jobs/hour, per-job overhead (wall time per job minus its render work: decode, mel, sync, blend, encode), the
ratio, and where each side's time goes.

    python benchmarks/bench_batch.py --rounds 3           # 640x360, --detector haar, CPU; best of 3 rounds
    python benchmarks/bench_batch.py --size 1280x720 --jobs 8 --seconds 3 --json out.json

Weights are procedural (no download): a full-size Wav2Lip in the 436 MB legacy training format.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RENDER = ("decode", "detect", "mel", "decode_wait", "sync", "blend", "encode")


def prepare(work: Path, size: tuple[int, int], seconds: float, n_jobs: int) -> dict:
    from lipsync_core.testing.checkpoints import write_checkpoint
    from lipsync_core.testing.media import speech_wav, talking_head_video

    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "wav2lip_legacy.pth"
    if not ckpt.exists():
        write_checkpoint("wav2lip", ckpt, wrapper="state_dict", legacy=True, module_prefix=True, optimizer=True)
    w, h = size
    face = work / f"face_{w}x{h}_{seconds:g}s.mp4"
    if not face.exists():
        talking_head_video(face, size=size, seconds=seconds, audio=False)
    audio = []
    for i in range(n_jobs):
        a = work / "audio" / f"take{i}.wav"
        a.parent.mkdir(exist_ok=True)
        if not a.exists():
            speech_wav(a, seconds, seed=i)
        audio.append(a)
    return {"checkpoint": ckpt, "face": face, "audio": audio}


def run_flags(files: dict, args) -> list[str]:
    return ["--checkpoint_path", str(files["checkpoint"]), "--detector", "haar", "--device", args.device,
            "--no_progress"]


def child_env(cache: Path) -> dict:
    return {**os.environ, "LIPSYNC_CACHE": str(cache), "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def child_breakdown(spec: dict) -> None:
    """One fresh process's job, instrumented: imports, weights check, model load, then the run's stages."""
    t0 = time.perf_counter()
    import torch  # noqa: F401 - counted with the imports it comes with

    from lipsync_core.engine.plan import make_config
    from lipsync_core.job import run, session_for
    t_import = time.perf_counter() - t0
    pipe = session_for(make_config("original", **spec["options"]))
    t1 = time.perf_counter()
    pipe.fetch_weights()
    t_weights = time.perf_counter() - t1
    t2 = time.perf_counter()
    pipe.model("checkpoint")
    t_load = time.perf_counter() - t2
    t3 = time.perf_counter()
    run(pipe, spec["face"], spec["audio"], spec["outfile"])
    t_run = time.perf_counter() - t3
    render = sum(pipe.timings.seconds.get(k, 0.0) for k in RENDER)
    print(json.dumps({"imports": t_import, "weights_check": t_weights, "model_load": t_load,
                      "inputs_and_setup": t_run - render, "stages": dict(pipe.timings.seconds)}))


def child_batch(spec: dict) -> None:
    """The batch side: one process, every job through run_batch; prints per-job timings."""
    t0 = time.perf_counter()
    from lipsync_core.batch import run_batch

    t_import = time.perf_counter() - t0
    results = run_batch(spec["jobs"], defaults=spec["options"], workers=spec["workers"])
    bad = [r for r in results if r.status != "done"]
    if bad:
        raise SystemExit(f"batch job failed: {bad[0].error}")
    print(json.dumps({"imports": t_import, "jobs": [{"seconds": r.seconds, "stages": r.timings} for r in results]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child-breakdown", help=argparse.SUPPRESS)
    ap.add_argument("--child-batch", help=argparse.SUPPRESS)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="batch worker counts to measure (default: 1, the CPU default, and 2)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of both sides in turn; the best counts")
    ap.add_argument("--workdir", type=Path, help="keep generated media and checkpoint here between invocations")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.child_breakdown:
        return child_breakdown(json.loads(args.child_breakdown))
    if args.child_batch:
        return child_batch(json.loads(args.child_batch))

    w, h = (int(v) for v in args.size.lower().split("x"))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lipsync-bench-batch-"))
    files = prepare(work, (w, h), args.seconds, args.jobs)
    env = child_env(work / "cache")
    out = work / "out"
    flags = run_flags(files, args)
    lipsync = [sys.executable, "-m", "lipsync_core"]
    # Warm: the face track in the cache, the weights verified and their weights-only copy made.
    timed([*lipsync, "--face", str(files["face"]), "--audio", str(files["audio"][0]), "--outfile",
           str(out / "warm.mp4"), *flags], env)

    start = timed([sys.executable, "-c", "pass"], env)

    def fresh_block() -> list[float]:
        return [timed([*lipsync, "--face", str(files["face"]), "--audio", str(a), "--outfile",
                       str(out / f"fresh_{a.stem}.mp4"), *flags], env) for a in files["audio"]]

    def batch_block(workers: int) -> tuple[float, dict]:
        t0 = time.perf_counter()
        spec = {"jobs": jobs, "options": options, "workers": workers}
        proc = subprocess.run([sys.executable, __file__, "--child-batch", json.dumps(spec)], env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"batch failed:\n{proc.stderr[-3000:]}")
        return wall, json.loads(proc.stdout.strip().splitlines()[-1])

    options = {"checkpoint_path": str(files["checkpoint"]), "detector": "haar", "device": args.device,
               "no_progress": True, "quiet": True}
    spec = {"face": str(files["face"]), "audio": str(files["audio"][0]), "outfile": str(out / "breakdown.mp4"),
            "options": options}
    proc = subprocess.run([sys.executable, __file__, "--child-breakdown", json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"breakdown run failed:\n{proc.stderr[-3000:]}")
    breakdown = json.loads(proc.stdout.strip().splitlines()[-1])

    jobs = [{"face": str(files["face"]), "audio": str(a), "outfile": str(out / f"batch_{a.stem}.mp4")}
            for a in files["audio"]]
    n = args.jobs
    # Both sides take turns for --rounds rounds (load from other users hits them alike); the best round counts.
    fresh_rounds: list[list[float]] = []
    batch_rounds: dict[int, list[tuple[float, dict]]] = {w: [] for w in args.workers}
    for _ in range(args.rounds):
        fresh_rounds.append(fresh_block())
        for workers in args.workers:
            batch_rounds[workers].append(batch_block(workers))
    fresh = min(fresh_rounds, key=sum)
    fresh_wall = sum(fresh)
    fresh_render = sum(breakdown["stages"].get(k, 0.0) for k in RENDER)
    report = {"rounds": args.rounds,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
                   f"Python {platform.python_version()}",
        "case": f"{n} jobs x {args.seconds:g} s, {w}x{h}, one face, --detector haar, warm track cache, {args.device}",
        "fresh": {"wall_s": fresh_wall, "rounds_wall_s": [sum(r) for r in fresh_rounds],
                  "per_job_s": statistics.median(fresh), "jobs_per_hour": n / fresh_wall * 3600,
                  "per_job_overhead_s": statistics.median(fresh) - fresh_render,
                  "breakdown_s": {"process_start": start, "imports": breakdown["imports"],
                                  "weights_check": breakdown["weights_check"], "model_load": breakdown["model_load"],
                                  "inputs_and_setup": breakdown["inputs_and_setup"], "render": fresh_render}},
    }
    for workers in args.workers:
        batch_wall, batch = min(batch_rounds[workers], key=lambda r: r[0])
        render = [sum(j["stages"].get(k, 0.0) for k in RENDER) for j in batch["jobs"]]
        report[f"batch_workers_{workers}"] = {
            "wall_s": batch_wall, "per_job_s": batch_wall / n, "jobs_per_hour": n / batch_wall * 3600,
            "per_job_overhead_s": (batch_wall - sum(render) / workers) / n,
            "ratio": fresh_wall / batch_wall, "rounds_wall_s": [r[0] for r in batch_rounds[workers]],
            "breakdown_s": {"process_start": start, "imports": batch["imports"],
                            "render_per_job": statistics.median(render),
                            "per_job_setup": statistics.median(j["seconds"] - r for j, r in zip(batch["jobs"], render)),
                            "before_and_between_jobs": batch_wall - start - batch["imports"]
                            - sum(j["seconds"] for j in batch["jobs"]) / workers}}
    print(f"{report['case']}\n{report['machine']}")
    for side, r in report.items():
        if not isinstance(r, dict):
            continue
        ratio = f", {r['ratio']:.2f}x the fresh processes' jobs/h" if "ratio" in r else ""
        rounds = " / ".join(f"{w:.1f}" for w in r["rounds_wall_s"])
        print(f"{side:>16}: {r['wall_s']:6.1f} s for {n} jobs (rounds {rounds} s), {r['jobs_per_hour']:5.0f} jobs/h, "
              f"per-job overhead {r['per_job_overhead_s']:.2f} s{ratio}")
        print(" " * 18 + ", ".join(f"{k} {v:.2f}s" for k, v in r["breakdown_s"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
