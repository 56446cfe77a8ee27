"""Scoring with a run's own machinery: its detector and options, the face-track cache, weights and runtime.

:func:`scoring_session` turns run options into a session that only tracks faces (raw boxes: no pads, no
smoothing) and loads the scorer's weights (roles ``syncnet`` / ``expert``); :func:`score_file` scores a video with
it. :func:`after_run` is what ``--score`` and ``--fix_offset`` do once a run has written its output,
:func:`fix_source_offset` what ``--fix_offset`` does first with ``--audio same``.

``--score`` writes ``<output>.score.json``: the :mod:`.video` report of the output, plus ``reference`` (the
same report for the face video scored with its own audio, or null when it has none) and ``fix`` (null, or
``{"applied", "offset_frames", "delay_ms", "reason"}`` from ``--fix_offset``).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..compute.runtime import Runtime
from ..engine.catalog import Catalog, Variant
from ..engine.options import RunOptions
from ..engine.plan import CATALOG, Plan
from ..engine.session import Session
from ..engine.track import track_faces
from ..face.types import FaceTrack
from ..media.face_video import FaceVideo
from ..media.probe import probe
from ..support import files
from .fix import MIN_FIX_CONFIDENCE, FixResult, fix_offset
from .sync import FPS
from .video import ScoreReport, Tracker, scan_cuts, score_video

#: The variant a scoring session runs: no render stage, so no generator weights are fetched.
SCORE_VARIANT = Variant("score", "scoring only (no render stages)", ())


def scoring_session(options: RunOptions, *, runtime: Runtime | None = None,
                    catalog: Catalog | None = None) -> Session:
    """A session with ``options``' detection options and weights that tracks raw boxes and loads the scorer(s)
    ``options`` ask for (``score`` -> ``scorer``, ``fix_offset`` -> syncnet); its weights are fetched."""
    cat = (catalog or CATALOG).extend(variants=[SCORE_VARIANT])
    raw = replace(options, variant=SCORE_VARIANT.name, detection=options.detection.raw())
    session = Session(Plan.from_options(raw, cat), runtime=runtime)
    session.fetch_weights()
    return session


@dataclass
class _CutScanning(FaceVideo):
    """The face video, recording while it is decoded whether each frame follows a shot cut."""

    threshold: float = 0.06
    cuts: list[bool] = field(default_factory=list)

    def frames(self, *, max_frames: int | None = None, det_size: int | None = None) -> Iterator[np.ndarray]:
        self.cuts.clear()
        return scan_cuts(super().frames(max_frames=max_frames, det_size=det_size), self.threshold, self.cuts)


def tracker(session: Session) -> Tracker:
    """Pass 1 of scoring through :func:`track_faces` (the session's detector, options and track cache) plus the
    cut test."""
    settings = session.plan.options.detection

    def track(video: FaceVideo) -> tuple[FaceTrack, list[bool]]:
        scanning = _CutScanning(video.path, video.info, video.fps, video.static, threshold=settings.cut_threshold)
        bound = math.ceil(video.info.duration * video.fps) + round(video.fps)  # more than it has: all of it
        face_track = track_faces(session, scanning, settings, bound)
        cuts = scanning.cuts
        if len(cuts) != face_track.n_frames:  # the track came from the cache: scan for cuts alone
            cuts = []
            for _ in scan_cuts(video.frames(max_frames=face_track.n_frames, det_size=settings.detect_size),
                               settings.cut_threshold, cuts):
                pass
        return face_track, cuts

    return track


def score_file(session: Session, video: str | os.PathLike, *, audio: str | os.PathLike | None = None,
               scorer: str | None = None) -> ScoreReport:
    """Score ``video`` (with ``audio``, default its own) with a :func:`scoring_session`'s detector and weights."""
    from .embed import ExpertEmbedder, SyncNetEmbedder

    scorer = scorer or session.plan.options.scoring.scorer
    embedder = (SyncNetEmbedder if scorer == "syncnet" else ExpertEmbedder)(session.model(scorer),
                                                                           session.runtime.device)
    return score_video(video, embedder=embedder, scorer=scorer, audio=audio, tracker=tracker(session))


def report_path(outfile: str | os.PathLike) -> Path:
    """Where ``--score`` writes its JSON: ``<output stem>.score.json`` beside the output."""
    p = Path(outfile)
    return p.with_name(f"{p.stem}.score.json")


def after_run(run: Session, face: Path, outfile: Path) -> dict[str, Any] | None:
    """``--fix_offset`` and ``--score`` on a finished output; returns what was written to the JSON (or None)."""
    cfg = run.plan.options.scoring
    scoring = scoring_session(run.plan.options, runtime=run.runtime, catalog=run.plan.catalog)
    fixed: FixResult | None = None
    report: ScoreReport | None = None
    if cfg.fix_offset:
        report = score_file(scoring, outfile, scorer="syncnet")
        fixed = fix_offset(outfile, report)
        run.info(fixed.summary())
    if not cfg.score:
        return None
    if report is None or cfg.scorer != "syncnet":
        report = score_file(scoring, outfile)
    reference = None
    info = probe(face)
    if info.has_audio and not info.is_image:
        reference = score_file(scoring, face)
    data = {**report.to_dict(), "reference": reference.to_dict() if reference else None,
            "fix": None if fixed is None else {"applied": fixed.applied, "offset_frames": fixed.offset_frames,
                                               "delay_ms": fixed.delay_ms, "reason": fixed.reason}}
    files.atomic_write_text(report_path(outfile), json.dumps(data, indent=1))
    line = f"sync: {report.summary()}"
    if reference is not None:
        line += f" | face video with its own audio: {reference.summary().split(': ', 1)[1]}"
    run.info(line)
    return data


def fix_source_offset(run: Session, face: Path, workdir: Path) -> Path:
    """With ``--audio same``: the face video's own audio, shifted into ``workdir`` when its A/V offset is at least
    a frame and confident (as :func:`fix_offset`); else the face video itself (its audio is used as it is)."""
    from ..media.shift import write_shifted_audio

    info = probe(face)
    if info.is_image or not info.has_audio:
        return face
    report = score_file(scoring_session(run.plan.options, runtime=run.runtime, catalog=run.plan.catalog), face,
                        scorer="syncnet")
    o = report.overall
    if o is None or o["offset_frames"] == 0 or o["lse_c"] < MIN_FIX_CONFIDENCE:
        why = ("nothing scored" if o is None else "in sync" if o["offset_frames"] == 0
               else f"LSE-C {o['lse_c']:.2f} < {MIN_FIX_CONFIDENCE:g}, left as it is")
        run.info(f"face video's own A/V offset: {why}")
        return face
    delay = o["offset_frames"] * 1000.0 / FPS
    run.info(f"face video's own audio {'delayed' if delay > 0 else 'advanced'} by {abs(delay):.0f} ms "
             f"(its A/V offset was {o['offset_frames']:+d} frames) before syncing")
    return write_shifted_audio(face, delay, workdir / "face_audio_aligned.wav")
