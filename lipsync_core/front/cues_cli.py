"""``lipsync cues AUDIO [--out FILE] [--format tsv|json|xml|dat] [--dialog_file FILE] ...``: mouth cues for 2D
animation (Hanna-Barbera shapes A-F and extended G, H, X), as the files Moho, Toon Boom, After Effects and Spine
import (Rhubarb Lip Sync's formats).

The default output is ``<audio stem>.cues.<format>`` beside a local audio file, else in the working folder.
stdout carries only the written path; notes and warnings go to stderr. Exit codes as ``lipsync``'s: 1 for an
unusable input (one line), 2 for a bad option (one line naming it); nothing is written in either case.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..support.errors import LipsyncError
from .cli import Parser

log = logging.getLogger("lipsync_core.cues")


def build_parser() -> Parser:
    p = Parser(prog="lipsync cues", description="Mouth cues for 2D animation (shapes A-F, G, H, X) from speech, "
               "as TSV, JSON, XML (Rhubarb Lip Sync's formats) or Moho switch data (.dat).")
    p.add_argument("audio", help="speech: any audio or video file (or URL, Google Drive ID or link, YouTube URL)")
    p.add_argument("--out", help="the cue file to write (default: <audio stem>.cues.<format> beside a local "
                   "audio file, else in the working folder)")
    p.add_argument("--format", choices=("tsv", "json", "xml", "dat"), help="file format (default: from --out's "
                   "extension, else tsv)")
    p.add_argument("--dialog_file", metavar="FILE", help="the transcript (plain text): its words are aligned to "
                   "the speech, which is far more accurate than recognition")
    p.add_argument("--extended_shapes", default="GHX", metavar="SHAPES", help="the extended shapes the rig has, "
                   "any of G, H, X (default GHX; '' for none: G->A, H->C, X->A)")
    p.add_argument("--dat_fps", type=int, default=24, help="frame rate of .dat output, 24-100 (default 24)")
    p.add_argument("--preston_blair", action="store_true", help=".dat output names the shapes MBP, etc, E, AI, "
                   "O, U, FV, L, rest")
    p.add_argument("--recognizer", choices=("pocketsphinx", "phonetic"), default="pocketsphinx",
                   help="pocketsphinx: aligns the --dialog_file's English words (default); phonetic: ignores the "
                   "transcript, for any language; without a transcript both decode phones")
    p.add_argument("--start", help="use the audio from here (seconds or [hh:]mm:ss)")
    p.add_argument("--end", help="use the audio up to here (seconds or [hh:]mm:ss)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no notes or warnings (errors still print)")
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``lipsync cues <argv>``; returns the exit status (LipsyncError propagates to ``lipsync``'s main)."""
    from ..cues import check_shapes
    from ..cues.formats import check_dat_options, format_for
    from ..support.times import parse_time

    p = build_parser()
    a = p.parse_args(list(argv))
    fmt = a.format or format_for(a.out)
    try:  # option errors: one line naming the option, exit 2, before any work
        check_dat_options(fmt, a.dat_fps, a.preston_blair)
        shapes = check_shapes(a.extended_shapes)
        start, end = parse_time(a.start, name="--start"), parse_time(a.end, name="--end")
    except LipsyncError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    level = log.level
    if a.quiet:
        log.setLevel(logging.ERROR)
    try:
        return _write(a, fmt, shapes, start, end)
    finally:
        log.setLevel(level)


def _write(a: argparse.Namespace, fmt: str, shapes: str, start: float | None, end: float | None) -> int:
    """Make the cues and write the file (the options are already checked)."""
    from ..cues import idle_shape, mouth_cues, read_dialog
    from ..cues.formats import CueFile, render
    from ..support import files

    dialog = read_dialog(a.dialog_file)
    with tempfile.TemporaryDirectory(prefix="lipsync-cues-") as work:
        audio = _local_audio(a.audio, start, end, Path(work), progress=not (a.no_progress or a.quiet))
        if audio != Path(a.audio):
            start = end = None  # the fetched copy is already trimmed
        out = Path(a.out) if a.out else _default_out(a.audio, fmt)
        if out.resolve() == audio.resolve():
            raise LipsyncError(f"--out {out} is the input audio; choose another file")
        cues = mouth_cues(audio, dialog, extended_shapes=shapes, recognizer=a.recognizer, start=start, end=end,
                          progress=not (a.no_progress or a.quiet))
        info = CueFile(sound_file=str(Path(a.audio).resolve()) if audio == Path(a.audio) else a.audio,
                       duration=cues[-1].end if cues else 0.0, idle=idle_shape(shapes), recognizer=a.recognizer,
                       dialog=dialog is not None)
        text = render(cues, info, fmt, fps=a.dat_fps, preston_blair=a.preston_blair)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_text(out, text)
    print(out)
    return 0


def _local_audio(source: str, start: float | None, end: float | None, work: Path, *, progress: bool) -> Path:
    """``source`` itself when it is a local file; a URL, Drive or YouTube source is fetched (and trimmed)."""
    if os.path.exists(source) or "://" not in source and not _drive_like(source):
        return Path(source)
    from ..inputs.resolve import resolve_media

    return resolve_media(source, start=start, end=end, kind="audio", workdir=work, progress=progress)


def _drive_like(source: str) -> bool:
    """A bare Google Drive file ID (long, no path separators or dots), as the run accepts."""
    return len(source) >= 25 and all(c.isalnum() or c in "-_" for c in source)


def _default_out(source: str, fmt: str) -> Path:
    """``<stem>.cues.<fmt>`` beside a local file, else in the working folder."""
    if os.path.exists(source):
        src = Path(source)
        return src.with_name(f"{src.stem}.cues.{fmt}")
    stem = source.rstrip("/").rsplit("/", 1)[-1].split("?")[0].rsplit(".", 1)[0] or "audio"
    return Path(f"{''.join(c if c.isalnum() or c in '-_' else '_' for c in stem)[:60]}.cues.{fmt}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
