"""Mouth cues for 2D animation: ``lipsync cues`` against Rhubarb Lip Sync 1.14, accuracy and speed.

Accuracy: every take of ``benchmarks/cues_sentences.json`` (English sentences, each spoken by two espeak-ng voices
at 130 or 180 words/min) is synthesised with ``shared/tools/espeak_truth.py``, which records when each phoneme
starts. Both tools make a TSV cue track from the wav, once from the audio alone and once with the sentence as the
transcript (Rhubarb ``--dialogFile``, ours ``--dialog_file``); ``shared/tools/shapes.py`` scores each track: the
share of centiseconds whose mouth shape the spoken phone allows (Rhubarb's own animation rules, 0.04 s forgiven at
phone boundaries). Figures are pooled over centiseconds, per voice family (accent x sex x rate) and overall;
"always B" (one constant shape) is the floor.

Speed: 60 s of real speech (``shared/media/speech_eng_16k_mono_60s.wav``), whole processes timed from exec to
exit, Rhubarb and ours taking turns for ``--rounds`` rounds after one untimed run each; median wall time and
median CPU time (user + system of the child, ``getrusage(RUSAGE_CHILDREN)``).

    python benchmarks/bench_cues.py                                   # both, --rhubarb /tmp/rhubarb/bin/rhubarb
    PYTHONPATH=/work/wt-cues python benchmarks/bench_cues.py          # ours from another checkout
    python benchmarks/bench_cues.py --lipsync "/path/to/lipsync" --json cues.json --workdir /tmp/cues-bench

Ours runs as ``python -m lipsync_core cues ...`` with this interpreter, in the work folder, with this environment
(``PYTHONPATH`` first, then this checkout), unless ``--lipsync`` gives another command (split like a shell line,
so ``"env PYTHONPATH=... lipsync"`` works). Rhubarb is not part of this repository: build it with
``shared/tools/build_rhubarb.sh`` (from source, with the PTM en-us acoustic model in place of the continuous
model its mirror lacks) and pass its path; say "built from source with the PTM acoustic model" with its figures.
Needs espeak-ng (Debian ``espeak-ng``) for the truth.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SENTENCES = Path(__file__).resolve().parent / "cues_sentences.json"
SPEECH = "media/speech_eng_16k_mono_60s.wav"
RHUBARB_NOTE = "Rhubarb 1.14 built from source with the PTM acoustic model"
MODES = ("audio", "dialog")  # audio alone, audio + transcript


def find_shared(given: Path | None) -> Path:
    for d in [given] if given else [REPO.parent / "shared", REPO / "shared", Path("/work/shared")]:
        if d and (d / "tools" / "shapes.py").exists():
            return d
    raise SystemExit("shared tools not found (shapes.py, espeak_truth.py): pass --shared DIR")


def check_voices(voices: list[str]) -> None:
    """espeak_truth.py ignores espeak_SetVoiceByName's result, so a name it rejects ('en-gb') would silently be
    spoken by the previous voice: refuse those names here."""
    lib = ctypes.CDLL("libespeak-ng.so.1")
    lib.espeak_Initialize(2, 500, None, 0)  # AUDIO_OUTPUT_SYNCHRONOUS
    bad = [v for v in voices if lib.espeak_SetVoiceByName(v.encode()) != 0]
    if bad:
        raise SystemExit(f"espeak-ng does not know the voice(s) {bad}; see espeak-ng --voices=en")


def takes(doc: dict, limit: int | None) -> list[dict]:
    out = []
    for s in doc["sentences"][:limit]:
        for t in s["takes"]:
            v = doc["voices"][t["voice"]]
            family = f"{v['accent']} {v['sex']} {t['rate']}"
            key = hashlib.sha1(f"{s['text']}|{t['voice']}|{t['rate']}".encode()).hexdigest()[:8]
            name = f"{s['id']}_{t['voice'].replace('+', '_')}_{t['rate']}_{key}"
            out.append({"name": name, "sentence": s["id"], "text": s["text"], "voice": t["voice"],
                        "rate": t["rate"], "family": family, "accent": v["accent"], "sex": v["sex"]})
    return out


def make_truth(take: dict, folder: Path, shared: Path) -> None:
    """The take's wav, truth json and transcript in ``folder`` (kept: they are the cache)."""
    wav, js, txt = (folder / f"{take['name']}{ext}" for ext in (".wav", ".json", ".txt"))
    take.update(wav=str(wav), truth=str(js), dialog=str(txt))
    if not txt.exists():
        txt.write_text(take["text"] + "\n")
    if wav.exists() and js.exists():
        return
    proc = subprocess.run([sys.executable, str(shared / "tools" / "espeak_truth.py"), take["text"], str(wav), str(js),
                           "--voice", take["voice"], "--rate", str(take["rate"])], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"espeak_truth.py failed for {take['name']}:\n{proc.stderr[-2000:]}")


def commands(rhubarb: str | None, ours: list[str] | None) -> dict:
    """side -> function(wav, out, dialog or None) -> argv."""
    cmds = {}
    if rhubarb:
        cmds["rhubarb"] = lambda wav, out, dialog: [rhubarb, "-f", "tsv", "-o", out, wav] + (
            ["--dialogFile", dialog] if dialog else [])
    if ours:
        cmds["ours"] = lambda wav, out, dialog: [*ours, "cues", wav, "--out", out] + (
            ["--dialog_file", dialog] if dialog else [])
    return cmds


def run(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str | None]:
    """(wall s, CPU s of the child, error or None); one child at a time, so the RUSAGE_CHILDREN delta is its own."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    err = None if proc.returncode == 0 else f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-800:].strip()}"
    return wall, cpu, err


def accuracy_pass(items: list[dict], cmds: dict, env: dict, work: Path, shapes, jobs: int) -> list[dict]:
    """Every (take, side, mode) track, scored. Runs ``jobs`` at a time (their timing is not reported)."""
    tasks = [(t, side, mode) for t in items for side in cmds for mode in MODES]

    def one(task):
        t, side, mode = task
        out = work / "tracks" / side / mode / f"{t['name']}.tsv"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmds[side](t["wav"], str(out), t["dialog"] if mode == "dialog" else None), env=env,
                              cwd=work, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        row = {"take": t["name"], "side": side, "mode": mode, "seconds": seconds, "accuracy": None}
        if proc.returncode != 0 or not out.exists():
            row["error"] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-800:].strip()}"
            return row
        truth = json.loads(Path(t["truth"]).read_text())
        cues = shapes.read_cues(str(out))
        row["accuracy"] = shapes.accuracy(truth, cues)
        row["idle_only"] = all(shape == "X" for _, shape in cues)  # no mouth movement at all: nothing recognised
        warnings = [line for line in proc.stderr.splitlines() if "warn" in line.lower()]
        if warnings:
            row["warnings"] = warnings[-3:]
        return row

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, tasks))


def pooled(rows: list[tuple[float, float]]) -> float | None:
    """Accuracy pooled over centiseconds: rows of (accuracy, duration)."""
    total = sum(d for _, d in rows)
    return sum(a * d for a, d in rows) / total if rows and total else None


def summarise(items: list[dict], rows: list[dict], sides: list[str], shapes) -> dict:
    dur = {}
    floor = {}
    for t in items:
        truth = json.loads(Path(t["truth"]).read_text())
        dur[t["name"]] = truth["duration"]
        floor[t["name"]] = shapes.accuracy(truth, [(0.0, "B")])
    groups: dict[str, list[str]] = defaultdict(list)
    for t in items:
        groups[t["family"]].append(t["name"])
    families = sorted(groups, key=lambda f: (f.split()[0] != "en-us", f.split()[1] != "male", int(f.split()[2])))
    marginals = {"en-us": lambda t: t["accent"] == "en-us", "en-gb": lambda t: t["accent"] == "en-gb",
                 "male": lambda t: t["sex"] == "male", "female": lambda t: t["sex"] == "female",
                 "rate 130": lambda t: t["rate"] == 130, "rate 180": lambda t: t["rate"] == 180}
    table: dict[str, dict] = {}
    order = [(f, groups[f]) for f in families] + [
        (m, [t["name"] for t in items if pick(t)]) for m, pick in marginals.items()] + [
        ("overall", [t["name"] for t in items])]
    for label, names in order:
        entry = {"takes": len(names), "speech_s": round(sum(dur[n] for n in names), 2),
                 "always_B": pooled([(floor[n], dur[n]) for n in names])}
        members = set(names)
        for side in sides:
            for mode in MODES:
                got = [r for r in rows if r["side"] == side and r["mode"] == mode and r["take"] in members]
                ok = [(r["accuracy"], dur[r["take"]]) for r in got if r["accuracy"] is not None]
                entry[f"{side}_{mode}"] = pooled(ok)
                entry[f"{side}_{mode}_failed"] = len(got) - len(ok)
                entry[f"{side}_{mode}_clip_mean"] = statistics.mean(a for a, _ in ok) if ok else None
                entry[f"{side}_{mode}_idle_only"] = sum(bool(r.get("idle_only")) for r in got)
        table[label] = entry
    return table


def speed_pass(wav: Path, cmds: dict, env: dict, work: Path, rounds: int) -> dict:
    """Whole processes on ``wav``: sides take turns, one untimed run each first; median wall and CPU seconds."""
    out = work / "speed"
    out.mkdir(parents=True, exist_ok=True)
    walls: dict[str, list[float]] = {s: [] for s in cmds}
    cpus: dict[str, list[float]] = {s: [] for s in cmds}
    for r in range(rounds + 1):
        for side, cmd in cmds.items():
            wall, cpu, err = run(cmd(str(wav), str(out / f"{side}.tsv"), None), env, work)
            if err:
                raise SystemExit(f"{side} failed on {wav}: {err}")
            if r:  # round 0 is the untimed warm-up (page cache, .pyc files)
                walls[side].append(wall)
                cpus[side].append(cpu)
    with wave.open(str(wav), "rb") as w:
        seconds = w.getnframes() / w.getframerate()
    res = {"audio": str(wav), "audio_s": round(seconds, 2), "rounds": rounds}
    for side in cmds:
        wall, cpu = statistics.median(walls[side]), statistics.median(cpus[side])
        cues = len((out / f"{side}.tsv").read_text().splitlines())
        res[side] = {"wall_s": wall, "cpu_s": cpu, "walls_s": walls[side], "cpus_s": cpus[side],
                     "cpu_s_per_speech_s": cpu / seconds, "realtime_x": seconds / wall, "cues": cues}
    if "rhubarb" in cmds and "ours" in cmds:
        res["ours_over_rhubarb"] = {"wall": res["ours"]["wall_s"] / res["rhubarb"]["wall_s"],
                                    "cpu": res["ours"]["cpu_s"] / res["rhubarb"]["cpu_s"]}
    return res


def pct(v: float | None) -> str:
    return "   -  " if v is None else f"{100 * v:5.1f}%"


def print_table(table: dict, sides: list[str]) -> None:
    names = {"rhubarb": "Rhubarb", "ours": "ours"}
    head = f"{'family':<20}{'takes':>6}{'speech':>8}"
    for side in sides:
        head += f"{names[side] + ' audio':>15}{names[side] + ' +text':>15}"
    print(head + f"{'always B':>10}")
    for label, e in table.items():
        if label in ("en-us", "overall"):
            print("-" * len(head + " " * 10))
        line = f"{label:<20}{e['takes']:>6}{e['speech_s']:>7.1f}s"
        for side in sides:
            for mode in MODES:
                failed = e[f"{side}_{mode}_failed"]
                line += f"{pct(e[f'{side}_{mode}']) + (f' ({failed} failed)' if failed else ''):>15}"
        print(line + f"{pct(e['always_B']):>10}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rhubarb", default="/tmp/rhubarb/bin/rhubarb" if Path("/tmp/rhubarb/bin/rhubarb").exists()
                    else None, help="the rhubarb executable (default /tmp/rhubarb/bin/rhubarb if present)")
    ap.add_argument("--lipsync", help="our command, split like a shell line (default: this python -m lipsync_core)")
    ap.add_argument("--sides", nargs="+", choices=["rhubarb", "ours"], default=["rhubarb", "ours"])
    ap.add_argument("--shared", type=Path, help="the shared folder with tools/ and media/ (default ../shared)")
    ap.add_argument("--sentences", type=Path, default=SENTENCES)
    ap.add_argument("--limit", type=int, help="only the first N sentences (a quick check)")
    ap.add_argument("--speech", type=Path, help=f"audio for the speed figures (default <shared>/{SPEECH})")
    ap.add_argument("--rounds", type=int, default=3, help="speed rounds of both sides in turn; the median counts")
    ap.add_argument("--jobs", type=int, default=2, help="tracks made at once in the accuracy pass (not timed)")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--workdir", type=Path, help="keep the truth wavs/json (a cache) and the tracks here")
    ap.add_argument("--json", type=Path, help="save the figures here")
    args = ap.parse_args()

    shared = find_shared(args.shared)
    sys.path.insert(0, str(shared / "tools"))
    import shapes  # shared/tools/shapes.py: the scorer

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="lipsync-bench-cues-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.environ.get("PYTHONPATH"), str(REPO)] if p)}
    report: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
                               f"Python {platform.python_version()}", "rhubarb_note": RHUBARB_NOTE}

    rhubarb = None
    if "rhubarb" in args.sides:
        if not args.rhubarb or not Path(args.rhubarb).exists():
            print("Rhubarb: not found (build it with shared/tools/build_rhubarb.sh, pass --rhubarb PATH); skipped")
        else:
            rhubarb = str(Path(args.rhubarb).resolve())
            version = subprocess.run([rhubarb, "--version"], capture_output=True, text=True).stdout.strip()
            report["rhubarb"] = {"path": rhubarb, "version": version}
    ours = None
    if "ours" in args.sides:
        ours = shlex.split(args.lipsync) if args.lipsync else [sys.executable, "-m", "lipsync_core"]
        probe = subprocess.run([*ours, "cues", "--help"], env=env, cwd=work, capture_output=True, text=True)
        where = subprocess.run([sys.executable, "-c", "import lipsync_core; print(lipsync_core.__file__)"], env=env,
                               cwd=work, capture_output=True, text=True).stdout.strip()
        report["ours"] = {"command": ours, "lipsync_core": where if not args.lipsync else None}
        if probe.returncode != 0:
            print(f"ours: `{shlex.join([*ours, 'cues', '--help'])}` failed (lipsync_core from {where}); skipped:\n"
                  f"  {(probe.stderr or probe.stdout).strip().splitlines()[-1:]}")
            report["ours"]["error"] = (probe.stderr or probe.stdout)[-800:]
            ours = None
    cmds = commands(rhubarb, ours)
    sides = list(cmds)
    if not sides:
        raise SystemExit("nothing to measure: neither Rhubarb nor `lipsync cues` is available")
    print(f"{report['machine']}; {load_note()}")
    if rhubarb:
        print(f"Rhubarb: {report['rhubarb']['version']} ({rhubarb}): {RHUBARB_NOTE}")
    if ours:
        print(f"ours: {shlex.join(ours)} cues (lipsync_core from {report['ours']['lipsync_core'] or '?'})")

    if not args.no_accuracy:
        doc = json.loads(args.sentences.read_text())
        items = takes(doc, args.limit)
        check_voices(sorted({t["voice"] for t in items}))
        truth_dir = work / "truth"
        truth_dir.mkdir(exist_ok=True)
        for t in items:
            make_truth(t, truth_dir, shared)
        t0 = time.perf_counter()
        rows = accuracy_pass(items, cmds, env, work, shapes, args.jobs)
        table = summarise(items, rows, sides, shapes)
        print(f"\nAccuracy: share of centiseconds whose shape the spoken phone allows (shared/tools/shapes.py), "
              f"pooled; {len(items)} espeak-ng takes of {len({t['sentence'] for t in items})} sentences "
              f"({time.perf_counter() - t0:.0f} s). Rhubarb = {RHUBARB_NOTE}.")
        print_table(table, sides)
        for side in sides:
            for mode in MODES:
                idle = [r["take"] for r in rows if r["side"] == side and r["mode"] == mode and r.get("idle_only")]
                if idle:
                    print(f"  {side} {'+text' if mode == 'dialog' else 'audio'}: {len(idle)} of {len(items)} tracks "
                          f"are idle (X) throughout: {', '.join(idle)}")
        for r in rows:
            if r.get("error"):
                print(f"  {r['side']} {r['mode']} failed on {r['take']}: {r['error'].splitlines()[-1][:200]}")
        report["accuracy"] = {"sentences": str(args.sentences), "takes": len(items), "table": table,
                              "per_take": rows,
                              "takes_detail": [{k: t[k] for k in ("name", "voice", "rate", "family")} for t in items]}

    if not args.no_speed:
        wav = args.speech or shared / SPEECH
        speed = speed_pass(wav, cmds, env, work, args.rounds)
        report["speed"] = speed
        print(f"\nSpeed: {wav.name} ({speed['audio_s']:.0f} s of real speech), whole processes exec to exit, "
              f"sides in turn, median of {args.rounds} rounds; {load_note()}")
        for side in sides:
            s = speed[side]
            label = f"Rhubarb ({RHUBARB_NOTE})" if side == "rhubarb" else "ours"
            print(f"  {label}: wall {s['wall_s']:.2f} s ({' / '.join(f'{w:.2f}' for w in s['walls_s'])}), "
                  f"CPU {s['cpu_s']:.2f} s = {s['cpu_s_per_speech_s']:.3f} CPU s per speech s, "
                  f"{s['realtime_x']:.1f}x real time, {s['cues']} cue lines")
        if "ours_over_rhubarb" in speed:
            q = speed["ours_over_rhubarb"]
            print(f"  ours / Rhubarb: wall {q['wall']:.2f}x, CPU {q['cpu']:.2f}x")
    print(f"\nwork folder: {work}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def load_note() -> str:
    """The 1-minute load average against the CPU count, to print next to the figures."""
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    except OSError:
        return ""


if __name__ == "__main__":
    main()
