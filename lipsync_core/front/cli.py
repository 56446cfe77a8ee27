"""Command line: ``lipsync [run] --face F --audio A [flags]`` and the subcommands (``lipsync weights|batch ...``).

The run flags are generated from :class:`~lipsync_core.engine.options.RunOptions`'s field metadata and the catalog's
roles; ``--help`` shows the chosen variant's preset values (``lipsync --variant codeformer --help``). Only flags
given on the command line reach :func:`~lipsync_core.engine.options.make_config`, so the variant's preset fills the
rest.

Exit codes: 0 success; 1 an expected error (one line on stderr); 2 a usage error (unknown flag, bad value);
3 a batch where some jobs failed; 130 Ctrl-C; 143 SIGTERM (``timeout``, ``docker stop``), handled like Ctrl-C:
partial output and temporary files are removed. stdout carries only the output path(s); progress, the summary,
warnings and errors go to stderr.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import Field
from typing import Any, NoReturn

from ..engine.catalog import CATALOG, Catalog
from ..engine.options import option_fields
from ..engine.plan import preset_config
from ..support import safety
from ..support.errors import LipsyncError
from ..support.options import choices_of
from ..support.version import __version__

#: ``lipsync <name> ...`` -> the module whose ``main(argv) -> int`` runs it.
SUBCOMMANDS = {"weights": "lipsync_core.front.weights_cli", "score": "lipsync_core.front.score_cli",
               "cache": "lipsync_core.front.cache_cli", "batch": "lipsync_core.front.batch_cli",
               "train": "lipsync_core.front.train_cli", "cues": "lipsync_core.front.cues_cli",
               "chart": "lipsync_core.front.chart_cli"}


class Parser(argparse.ArgumentParser):
    """Usage errors as one line with the closest valid flag, exit 2 (no usage dump)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False  # a flag's prefix never stands for the flag
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            flags = [o for a in self._actions for o in a.option_strings]
            hints = []
            for word in message.split(":", 1)[1].split():
                match = difflib.get_close_matches(word.split("=")[0], flags, 1) if word.startswith("-") else []
                hints.append(f"{word} (did you mean {match[0]}?)" if match else word)
            message = f"unrecognized argument(s): {' '.join(hints)}"
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _bool(text: str) -> bool:
    """``--static`` takes an optional value; unlike the original, ``--static False`` means False."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return "unset" if value is None else str(value)


def add_option(group: argparse._ArgumentGroup, f: Field, shown: Any, catalog: Catalog) -> None:
    """One ``--flag`` for RunOptions field ``f``; its help shows ``shown`` as the default."""
    meta = f.metadata
    kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
    help_text = meta["help"]
    annotation = str(f.type)
    if annotation == "bool":
        if f.name == "static":  # the original's flag takes a value
            kwargs.update(type=_bool, nargs="?", const=True, metavar="BOOL")
        else:
            kwargs["action"] = "store_true"
    elif meta.get("repeat"):
        kwargs.update(action="append", nargs="+", metavar=meta["metavar"])
    elif annotation.startswith("tuple"):
        kwargs.update(type=int, nargs=len(meta["metavar"]), metavar=meta["metavar"])
    else:
        kwargs["type"] = int if annotation.startswith("int") else float if annotation.startswith("float") else str
        choices = choices_of(f, catalog)
        if choices is not None:
            kwargs["choices"] = choices
    if annotation != "bool" or f.name == "static":
        help_text += f" (default: {_shown(shown)})"
    group.add_argument(f"--{f.name}", help=help_text, **kwargs)


def add_run_options(parser: argparse.ArgumentParser, options: Sequence[str], roles: Sequence[str], title: str,
                    catalog: Catalog = CATALOG) -> None:
    """A subcommand's share of the run flags: ``options`` (RunOptions fields, shown with the original variant's
    defaults) in a group called ``title``, and the ``--<role>_path`` flags of ``roles``."""
    from ..engine.options import OPTIONS

    preset = preset_config("original", catalog)
    group = parser.add_argument_group(title)
    for name in options:
        add_option(group, OPTIONS[name], getattr(preset, name), catalog)
    files = parser.add_argument_group("model files (local path, Drive ID/link, URL or manifest id)")
    for name in roles:
        role = catalog.roles[name]
        files.add_argument(role.flag, dest=role.option, default=argparse.SUPPRESS,
                           help=f"{role.help} (default: {role.default})")


def build_parser(variant: str = "original", catalog: Catalog = CATALOG) -> Parser:
    """The ``lipsync run`` parser; defaults shown are ``variant``'s."""
    preset = preset_config(variant, catalog)
    p = Parser(prog="lipsync", description="Lip-sync a face video or image to a speech track (Wav2Lip). "
               f"Subcommands: {', '.join(SUBCOMMANDS)} (lipsync SUBCOMMAND --help).")
    p.add_argument("--version", action="version", version=f"lipsync_core {__version__}")
    io = p.add_argument_group("inputs and output (a local path, Google Drive ID or link, URL or YouTube URL)")
    io.add_argument("--face", required=True, help="video or image with the face")
    io.add_argument("--audio", required=True, help="speech: any audio or video file; 'same' uses the face video's")
    io.add_argument("--outfile", default="results/result_voice.mp4", help="output mp4 (default: %(default)s)")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in option_fields():
        name = f.metadata["group"]
        if name not in groups:
            groups[name] = p.add_argument_group(name)
        add_option(groups[name], f, getattr(preset, f.name), catalog)
        if f.name == "variant":
            w = p.add_argument_group("model files (local path, Drive ID/link, URL or manifest id; default: the "
                                     "variant's from the weights manifest)")
            for role in catalog.roles.values():
                w.add_argument(role.flag, dest=role.option, default=argparse.SUPPRESS,
                               help=f"{role.help} (default for {variant}: {catalog.weight_id(variant, role.name)})")
    return p


def _variant_of(argv: Sequence[str]) -> str:
    """The ``--variant`` given in ``argv`` (for the help's defaults), else original."""
    for i, a in enumerate(argv):
        if a == "--variant" and i + 1 < len(argv) and argv[i + 1] in CATALOG.variants:
            return argv[i + 1]
        if a.startswith("--variant=") and a.split("=", 1)[1] in CATALOG.variants:
            return a.split("=", 1)[1]
    return "original"


def run(argv: Sequence[str]) -> int:
    args = vars(build_parser(_variant_of(argv)).parse_args(argv))
    from ..job import lipsync  # after parsing: --help and a mistyped flag answer without loading torch

    face, audio, outfile = args.pop("face"), args.pop("audio"), args.pop("outfile")
    out = lipsync(face, audio, outfile, **args)
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lipsync`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.captureWarnings(True)
    try:
        with safety.sigterm_as_interrupt():
            if argv[:1] and argv[0] in SUBCOMMANDS:
                return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
            return run(argv[1:] if argv[:1] == ["run"] else argv)
    except LipsyncError as exc:
        print(f"lipsync: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, safety.Terminated)
        print(f"lipsync: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return safety.exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
