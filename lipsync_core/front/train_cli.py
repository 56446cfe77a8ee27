"""``lipsync train prepare CLIPS... --out DATASET`` and ``lipsync train run DATASET [--init ...] [--gan] ...``.

``prepare`` turns plain videos of one person into the training dataset (:mod:`lipsync_core.training.prepare`)
and prints its summary to stderr and the dataset folder to stdout. ``run`` fine-tunes Wav2Lip on it
(:mod:`lipsync_core.training.trainer`), prints the losses and validations to stderr and the best checkpoint's
path to stdout; ``--resume`` continues an interrupted run. Flags are generated from the fields of
:class:`~lipsync_core.training.prepare.PrepareConfig`, :class:`~lipsync_core.training.config.TrainConfig` and,
for face detection, :class:`~lipsync_core.engine.options.RunOptions`. Exit codes as ``lipsync``'s.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ..engine.catalog import CATALOG
from ..engine.options import tracking_options
from ..engine.plan import make_config
from .cli import Parser, add_option, add_run_options

_TRIM = "#t="


def parse_source(text: str):
    """``SOURCE`` or ``SOURCE#t=START,END`` (the media-fragment form; either time may be empty) -> Source."""
    from ..training.prepare import Source

    if _TRIM not in text:
        return Source(text)
    source, times = text.rsplit(_TRIM, 1)
    start, _, end = times.partition(",")
    return Source(source, start or None, end or None)


COMMANDS = {"prepare": "videos -> training dataset (face crops, audio, train/val split)",
            "run": "fine-tune on a prepared dataset (resumable)"}


def build_parser() -> Parser:
    """``lipsync train``: which command (each has its own parser, so a mistyped flag gets its closest match)."""
    p = Parser(prog="lipsync train", description="Fine-tune Wav2Lip on your own footage of one person: "
               + "; ".join(f"{k}: {v}" for k, v in COMMANDS.items()) + " (lipsync train COMMAND --help).")
    p.add_argument("command", choices=tuple(COMMANDS))
    return p


def prepare_parser() -> Parser:
    from ..training.prepare import RUN_ROLES, PrepareConfig

    p = Parser(prog="lipsync train prepare", description="Turn plain videos of one person into the training "
               "dataset. Faceless stretches, cuts, tiny faces and off-sync runs are dropped; long takes become short "
               "clips. Adds to an existing dataset; videos already in it are skipped.")
    p.add_argument("clips", nargs="+", metavar="CLIP",
                   help="a video (path, URL, YouTube URL, Google Drive ID or link); append #t=START,END to use "
                        "a part of it (seconds or hh:mm:ss, e.g. talk.mp4#t=1:00,12:30)")
    p.add_argument("--out", required=True, metavar="DATASET", help="the dataset folder to write (or add to)")
    _add_fields(p.add_argument_group("dataset"), PrepareConfig, skip=("out",))
    add_run_options(p, tracking_options(), RUN_ROLES, "face detection, device and inputs (as for a run)")
    return p


def run_parser() -> Parser:
    from ..training.config import FREEZABLE, ROLES, TrainConfig

    p = Parser(prog="lipsync train run", description="Fine-tune Wav2Lip on a dataset made by `lipsync train "
               "prepare`, as the original training does; validates and checkpoints as it goes (--resume continues).")
    p.add_argument("dataset", metavar="DATASET", help="the folder `lipsync train prepare` wrote")
    w = p.add_argument_group("model files (local path, Drive ID/link, URL or manifest id)")
    gen = ROLES["checkpoint"]
    w.add_argument("--init", gen.flag, dest=gen.option, default=argparse.SUPPRESS,
                   help="the generator to start from (default: wav2lip, or wav2lip_gan with --gan)")
    for name in ("expert", "disc", "syncnet"):
        role = ROLES[name]
        w.add_argument(role.flag, dest=role.option, default=argparse.SUPPRESS,
                       help=f"{role.help} (default: {role.default})")
    groups: dict[str, Any] = {}
    for f in fields(TrainConfig):
        if "help" not in f.metadata:
            continue
        group = groups.setdefault(f.metadata["group"], p.add_argument_group(f.metadata["group"]))
        if f.name == "freeze":
            frozen = f.default
            assert isinstance(frozen, tuple)  # a plain default (the parts' names), not a factory
            group.add_argument("--freeze", nargs="*", choices=FREEZABLE, default=argparse.SUPPRESS,
                               help=f"{f.metadata['help']} (default: {' '.join(frozen)}; none: train all)")
        else:
            add_option(group, f, f.default, CATALOG)
    return p


def _add_fields(group, cls, skip: tuple[str, ...] = ()) -> None:
    for f in fields(cls):
        if "help" in f.metadata and f.name not in skip:
            add_option(group, f, f.default, CATALOG)


def main(argv: Sequence[str]) -> int:
    """Run ``lipsync train <argv>``; returns the exit status (errors propagate to ``lipsync``'s main)."""
    argv = list(argv)
    if not argv or argv[0].startswith("-"):
        build_parser().parse_args(argv)  # --help, or a usage error: exits
    command = build_parser().parse_args(argv[:1]).command
    if command == "prepare":
        return _prepare(vars(prepare_parser().parse_args(argv[1:])))
    return _run(vars(run_parser().parse_args(argv[1:])))


def _prepare(args: dict[str, Any]) -> int:
    from ..training.prepare import RUN_ROLES, PrepareConfig, prepare

    sources = [parse_source(c) for c in args.pop("clips")]
    run_names = {*tracking_options(), *(CATALOG.roles[r].option for r in RUN_ROLES)}
    run = make_config("original", **{k: args.pop(k) for k in list(args) if k in run_names})
    summary = prepare(sources, PrepareConfig(**args), run)
    print(summary.text(), file=sys.stderr)
    print(summary.root)
    return 0


def _run(args: dict[str, Any]) -> int:
    from ..training.checkpoint import BEST
    from ..training.config import TrainConfig
    from ..training.trainer import train

    if "freeze" in args:
        args["freeze"] = tuple(args["freeze"])
    cfg = TrainConfig(**args)

    def report(kind: str, record: dict[str, Any]) -> None:
        if kind == "val":
            shown = {k: f"{v:.4f}" for k, v in record.items() if k.startswith("val_") or k == "lse_c"}
            best = " (best)" if record.get("best") else ""
            print(f"lipsync: step {record['step']}: {shown}{best}", file=sys.stderr)
        elif kind == "stop":
            why = "early stop (no better validation)" if record["reason"] == "early_stop" else "all steps done"
            print(f"lipsync: {why} at step {record['step']}; best step {record['best_step']}", file=sys.stderr)

    result = train(cfg, on_event=report)
    print(result.out / BEST)
    return 0
