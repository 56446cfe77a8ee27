"""``lipsync chart extract CLIP --out DIR [--mouth_box TOP BOTTOM LEFT RIGHT [@SECONDS]]... [detection options]``:
the mouth chart the chart variant takes from a clip (``--mouth_chart auto``), written as PNGs named by shape
(``A.png`` ... ``X.png``), ``chart.json`` (where the mouth box is in them, so the folder keeps their margin) and
``contact_sheet.png``, so a user can check, rename or redraw them and pass the folder back with
``--mouth_chart DIR``. stdout carries only the folder; exit codes as ``lipsync``'s.
"""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..engine.catalog import CATALOG
from ..engine.options import OPTIONS, tracking_options
from ..engine.plan import preset_config
from .cli import Parser, add_option, add_run_options

#: The frames a clip is read to at most (pass 1 reads until the clip ends).
MAX_FRAMES = 10**7


def build_parser() -> Parser:
    preset = preset_config("chart")
    p = Parser(prog="lipsync chart", description="Mouth charts for the chart variant (2D re-dub).")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("extract", help="write the mouth drawings a clip shows, named by shape, and a contact sheet",
                       description="Write the chart --mouth_chart auto takes from CLIP: <shape>.png for each mouth "
                       "shape found and contact_sheet.png.")
    e.add_argument("clip", help="the 2D clip (a path, URL, Google Drive ID or link, or YouTube URL)")
    e.add_argument("--out", required=True, metavar="DIR", help="the folder to write (created if missing)")
    chart = e.add_argument_group("the mouth")
    for name in ("mouth_box", "extended_shapes"):
        add_option(chart, OPTIONS[name], getattr(preset, name), CATALOG)
    add_run_options(e, tracking_options(), CATALOG.detector_roles,
                    "face detection (as for a run; none by default: the area around --mouth_box is followed)")
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``lipsync chart <argv>``; returns the exit status (LipsyncError propagates to ``lipsync``'s main)."""
    from ..engine.chart import chart_for, follows_face
    from ..engine.plan import make_config
    from ..engine.track import track_faces
    from ..face.types import MouthInBox
    from ..inputs.resolve import resolve_media
    from ..job import session_for
    from ..stages.chart import CONTACT_SHEET, chart_files
    from ..support.errors import LipsyncError

    args = vars(build_parser().parse_args(list(argv)))
    args.pop("command")
    clip, out = args.pop("clip"), Path(args.pop("out"))
    cfg = make_config("chart", **args)
    existing = chart_files(out)
    if existing:  # perhaps drawings the user redrew: never overwritten
        raise LipsyncError(f"--out {out} already holds a chart ({', '.join(p.name for p in existing)}); choose a "
                           "new folder, or move those files away")
    session = session_for(cfg)
    with tempfile.TemporaryDirectory(prefix="lipsync-chart-") as work:
        path = resolve_media(clip, kind="face", workdir=Path(work), progress=cfg.progress, cookies=cfg.cookies)
        session.fetch_weights()
        video = session.open_video(path)
        track = track_faces(session, video, cfg.detection, MAX_FRAMES)
        det = session.plan.detector
        _, chart = chart_for(video, track, cfg.render, follows_face=follows_face(cfg.detection, det),
                             placement=det.mouth if det is not None else MouthInBox())
    written = chart.save(out)
    drawn = sum(p.name != CONTACT_SHEET and p.suffix == ".png" for p in written)
    session.info(f"{drawn} drawings, the chart file and the contact sheet: {', '.join(p.name for p in written)}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
