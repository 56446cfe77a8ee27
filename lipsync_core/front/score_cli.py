"""``lipsync score VIDEO [--audio A] [--scorer syncnet|expert] [--json REPORT] [--fix OUT]``.

Finds and tracks the face with the same detectors and options as a run, crops it as SyncNet's reference
pipeline does and prints, per face track, LSE-D, LSE-C and the A/V offset (frames and ms; positive: the
audio is early), or the expert's similarity; ``--json`` writes the full report (schema in
:mod:`lipsync_core.score.video`), ``--fix OUT`` writes the video with its audio shifted by the measured
offset when that is confident (:mod:`lipsync_core.score.fix`). stdout carries the summary lines, stderr the
rest. Exit codes as ``lipsync``'s.
"""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..engine.catalog import CATALOG
from ..engine.options import OPTIONS, SCORERS, tracking_options
from ..engine.plan import make_config, preset_config
from .cli import Parser, add_option, add_run_options

ROLES = (*SCORERS, *CATALOG.detector_roles)


def build_parser() -> Parser:
    preset = preset_config("original")
    p = Parser(prog="lipsync score", description="Measure the lip sync of a video: LSE-D / LSE-C (SyncNet, the "
               "published metric) and the A/V offset, per face track and per second.")
    p.add_argument("video", help="the video to score (a path, URL, Google Drive ID or link, or YouTube URL)")
    p.add_argument("--audio", help="score the picture against this audio instead of the video's own")
    add_option(p.add_argument_group("scoring"), OPTIONS["scorer"], preset.scorer, CATALOG)
    p.add_argument("--json", metavar="REPORT", help="write the full report (per track, per second) as JSON")
    p.add_argument("--fix", metavar="OUT", help="write the video with its audio shifted by the measured offset "
                   "(when it is at least one frame and LSE-C >= 3; otherwise an unchanged copy)")
    add_run_options(p, tracking_options(), ROLES, "face detection and device (as for a run)")
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``lipsync score <argv>``; returns the exit status (errors propagate to ``lipsync``'s main)."""
    from ..inputs.resolve import resolve_inputs
    from ..score.fix import fix_offset
    from ..score.session import score_file, scoring_session
    from ..score.video import write_report

    args = vars(build_parser().parse_args(list(argv)))
    video, audio, json_out, fix_out = args.pop("video"), args.pop("audio"), args.pop("json"), args.pop("fix")
    cfg = make_config("original", score=True, fix_offset=bool(fix_out), **args)
    if fix_out and cfg.scorer != "syncnet":
        from ..support.errors import LipsyncError

        raise LipsyncError("--fix uses SyncNet's offset and confidence: drop --scorer expert")
    with tempfile.TemporaryDirectory(prefix="lipsync-score-") as work:
        # Inputs first (a missing file or a URL to download), then the weights: no download for a typo.
        video_path, audio_path = resolve_inputs(video, audio, workdir=Path(work), cookies=cfg.cookies)
        session = scoring_session(cfg)
        report = score_file(session, video_path, audio=None if audio_path == video_path else audio_path)
        report.video, report.audio = str(video), str(audio or video)
        for line in _lines(report):
            print(line)
        if json_out:
            write_report(report, json_out)
            session.info(f"report: {json_out}")
        if fix_out:
            session.info(fix_offset(video_path, report, fix_out).summary())
    return 0


def _lines(report) -> list[str]:
    """The summary, then one line per face track."""
    lines = [report.summary()]
    for t in report.tracks:
        metric = (f"LSE-D {t.lse_d:.3f}  LSE-C {t.lse_c:.3f}" if report.scorer == "syncnet"
                  else f"similarity {t.similarity:.3f}")
        worst = min(t.segments, key=lambda s: s.confidence if s.confidence is not None else s.similarity)
        worst_value = worst.confidence if worst.confidence is not None else worst.similarity
        lines.append(f"  track {t.start_frame / 25:6.2f}-{t.end_frame / 25:6.2f} s: {metric}  offset "
                     f"{t.offset_frames:+d} ({t.offset_ms:+.0f} ms)  {t.windows} windows; weakest second "
                     f"{worst.start_s:.0f}-{worst.end_s:.0f} s ({worst_value:.2f})")
    lines += [f"  unscored {u['start_frame'] / 25:.2f}-{u['end_frame'] / 25:.2f} s: {u['reason']}"
              for u in report.unscored]
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
