"""``lipsync batch``: many jobs from a CSV / JSON Lines list, or one face and a folder of audio files.

    lipsync batch JOBS [--ray [ADDRESS]] [--workers N] [--state FILE] [--retry_failed] [run flags]
    lipsync batch --face F --audio FOLDER [--outdir DIR] [...]        (or --face FOLDER --audio A)

Run flags given here are every job's defaults; a job's own column wins. stdout lists the outputs made or kept;
progress, the per-job lines and the summary table go to stderr. Exit codes: 0 every job done, 3 some failed,
1 nothing could start (a bad job list: every problem listed), 2 usage, 130 Ctrl-C, 143 SIGTERM (finished outputs
kept either way).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..engine.catalog import CATALOG
from ..engine.options import option_fields
from ..engine.plan import preset_config
from ..support import safety
from .cli import Parser, add_option


def build_parser() -> Parser:
    p = Parser(prog="lipsync batch", description="Run many lip-sync jobs; rerun the same command to resume.")
    p.add_argument("jobs", nargs="?", help="job list: .csv or .jsonl with face, audio, outfile and run options "
                   "by flag name (CSV: several numbers space-separated, booleans true/false, empty = unset)")
    short = p.add_argument_group("the short form, instead of JOBS: one face and a folder of audio files, or a "
                                 "folder of faces and one audio file")
    short.add_argument("--face", help="face video/image, or a folder of them")
    short.add_argument("--audio", help="audio file, or a folder of them")
    short.add_argument("--outdir", default="results", help="where the outputs go, one per pair, named after the "
                       "file that varies (default: %(default)s)")
    b = p.add_argument_group("running")
    b.add_argument("--workers", type=int, help="workers (default: one per GPU, else one; more than one runs each "
                   "in its own process)")
    b.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="run on Ray actors: the cluster at "
                   "ADDRESS (host:port or auto), or without ADDRESS the running one or a new local instance "
                   "(needs pip install \"lipsync_core[ray]\")")
    b.add_argument("--state", help="state file (default: beside the job list, JOBS.state.json; in --outdir for "
                   "the short form)")
    b.add_argument("--retry_failed", action="store_true", help="run again the jobs the state file has as failed")
    b.add_argument("--inputs_dir", help="where downloaded and trimmed inputs go (default: beside the state file); "
                   "on a cluster, a folder every machine reads")
    preset = preset_config("original")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in option_fields():
        name = f"every job's {f.metadata['group']} (a job's own column wins)"
        if name not in groups:
            groups[name] = p.add_argument_group(name)
        add_option(groups[name], f, getattr(preset, f.name), CATALOG)
    w = p.add_argument_group("every job's model files (a job's own column wins)")
    for role in CATALOG.roles.values():
        w.add_argument(role.flag, dest=role.option, default=argparse.SUPPRESS, help=role.help)
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``lipsync batch <argv>``; returns the exit status."""
    from .. import batch

    parser = build_parser()
    args = vars(parser.parse_args(list(argv)))
    jobs_file, face, audio, outdir = (args.pop(k) for k in ("jobs", "face", "audio", "outdir"))
    workers, ray, state, retry, inputs_dir = (args.pop(k) for k in ("workers", "ray", "state", "retry_failed",
                                                                     "inputs_dir"))
    if (jobs_file is None) == (face is None and audio is None) or (jobs_file is None and not (face and audio)):
        parser.error("give a job list (JOBS), or --face and --audio (one of them a folder)")
    if workers is not None and workers < 1:
        parser.error("--workers must be at least 1")
    if jobs_file is not None:
        jobs = batch.load_jobs(jobs_file)
        state = state or batch.default_state_path(jobs_file)
    else:
        jobs = batch.jobs_from_folder(face, audio, outdir)
        state = state or Path(outdir) / "lipsync-batch.state.json"
    ended: list[int] = []

    def report(e: batch.BatchEvent) -> None:
        r = e.result
        if r is None:
            return
        ended.append(e.index)
        what = r.error if r.status == "failed" else r.outfile
        took = f" in {r.seconds:.1f} s" if r.status == "done" and r.seconds is not None else ""
        print(f"lipsync: [{len(ended)}/{e.total}] row {r.row} {r.status}{took}: {what}", file=sys.stderr)

    cause = None
    try:
        results = batch.run_batch(jobs, workers=workers, ray_address=ray, state=state, defaults=args,
                            retry_failed=retry, inputs_dir=inputs_dir, on_event=report)
    except batch.BatchInterrupted as stop:
        results, cause = stop.results, stop.cause
    for r in results:
        if r.status in ("done", "skipped"):
            print(r.outfile)
    print(batch.summary_table(results), file=sys.stderr)
    print(f"lipsync: state file {Path(state).resolve()}", file=sys.stderr)
    if cause is not None:
        return safety.exit_status(cause)  # 130 Ctrl-C, 143 SIGTERM
    return batch.exit_code(results)
