"""The 2D re-dub on the Sita pair, scored against its truth render: accuracy, PSNR outside the mouth, speed.

    python benchmarks/bench_redub.py [--shared ../shared] [--rounds 3] [--json out.json]

Runs ``lipsync --variant chart --face sita_redub_source_7s.mp4 --audio sita_redub_line.wav --mouth_box ...
--mouth_chart auto`` (no transcript) as a fresh process per round, reads the frames/s of the run's summary line,
and scores each output with ``shared/tools/redub_score.py SOURCE TRUTH OUTPUT`` (the share of frames whose mouth
drawing falls in the truth's mouth group, and the PSNR outside the mouth against the source). Targets of issue
23: at least 80 %, 40 dB and 50 frames/s at 512x512 on this CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MOUTH_BOX = ("186", "226", "226", "288")  # top bottom left right of her mouth on frame 0
SUMMARY = re.compile(r"(\d+) frames in ([\d.]+) s \(([\d.]+) frames/s\)")


def ffmpeg_dir() -> str:
    """A folder holding ``ffmpeg`` for the scorer (which calls it by name): PATH's, else imageio-ffmpeg's."""
    if shutil.which("ffmpeg"):
        return ""
    import imageio_ffmpeg

    folder = Path(tempfile.mkdtemp(prefix="bench-redub-bin-"))
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    return str(folder)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    a = p.parse_args(argv)
    sita = a.shared / "media" / "anime2d"
    source, truth, line = (sita / n for n in ("sita_redub_source_7s.mp4", "sita_redub_truth_7s.mp4",
                                                "sita_redub_line.wav"))
    env = dict(os.environ)
    extra = ffmpeg_dir()
    if extra:
        env["PATH"] = f"{extra}{os.pathsep}{env.get('PATH', '')}"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-redub-") as work:
        for r in range(a.rounds):
            out = Path(work) / f"redub{r}.mp4"
            run = subprocess.run([sys.executable, "-m", "lipsync_core", "--variant", "chart", "--face", str(source),
                                  "--audio", str(line), "--mouth_box", *MOUTH_BOX, "--device", "cpu", "--no_progress",
                                  "--outfile", str(out)], capture_output=True, text=True, check=True, env=env)
            m = SUMMARY.search(run.stderr)
            assert m, run.stderr
            score = json.loads(subprocess.run([sys.executable, str(a.shared / "tools" / "redub_score.py"), str(source),
                                               str(truth), str(out)], capture_output=True, text=True, check=True,
                                              env=env).stdout)
            rows.append({"accuracy": score["accuracy"], "outside_psnr": score["outside_psnr"],
                         "frames_per_s": float(m.group(3)), "seconds": float(m.group(2)),
                         "load": os.getloadavg()[0]})
            print(f"round {r + 1}: {rows[-1]['accuracy']:.1%} of frames, {rows[-1]['outside_psnr']:.1f} dB outside "
                  f"the mouth, {rows[-1]['frames_per_s']:.1f} frames/s ({rows[-1]['seconds']:.1f} s, "
                  f"load {rows[-1]['load']:.1f})")
    med = {k: statistics.median(r[k] for r in rows) for k in ("accuracy", "outside_psnr", "frames_per_s")}
    print(f"median of {len(rows)}: {med['accuracy']:.1%} (target >= 80 %), {med['outside_psnr']:.1f} dB "
          f"(>= 40 dB), {med['frames_per_s']:.1f} frames/s (>= 50) on {os.cpu_count()} CPUs")
    if a.json:
        a.json.write_text(json.dumps({"rounds": rows, "median": med}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
