"""One lip-sync run: guards, inputs, weights, the face video, pass 1 (face track), pass 2 (render), then the
score hooks. The only module that sees every option group; the passes each take their own.

Before any work: the output must not be an input (nor a weight file given by path), its folder must be writable
(missing folders are created, and removed again if the run fails), and what killed runs left there and in the
temp dir is reclaimed. The output appears only when complete (see :class:`~lipsync_core.media.video.VideoWriter`).
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .compute.runtime import Runtime
from .engine.catalog import Catalog
from .engine.options import RunOptions
from .engine.plan import Plan, make_config
from .engine.render import Speech, render
from .engine.session import Session
from .engine.track import track_faces
from .support import files, safety
from .support.errors import LipsyncError


def session_for(options: RunOptions, *, catalog: Catalog | None = None, runtime: Runtime | None = None) -> Session:
    """A session for a run with ``options`` (on ``runtime``, shared with other runs, if given)."""
    return Session(Plan.from_options(options, catalog), runtime=runtime)


def run(session: Session, face: str | Path, audio: str | Path, outfile: str | Path) -> int:
    """Lip-sync ``face`` to ``audio`` into ``outfile`` (.mp4, .m4v, .mov or .mkv) as the session's plan says;
    returns the frames written (the session keeps the timings)."""
    from .face.align import landmarks_from_box
    from .inputs.resolve import resolve_inputs

    plan = session.plan
    options = plan.options
    outfile = Path(outfile)
    given = {"face": face, "audio": audio, **{plan.catalog.roles[r].flag: plan.source(r) for r in plan.roles}}
    safety.check_not_an_input(outfile, given)
    safety.output_format(outfile)
    safety.reclaim_leftovers(*([outfile.parent] if outfile.parent.is_dir() else []))
    started = time.perf_counter()
    inputs, scoring = options.inputs, options.scoring
    with safety.OutputPlace(outfile) as place, _work_dir() as work:
        face_path, audio_path = resolve_inputs(
            face, audio, start=inputs.start, end=inputs.end, audio_start=inputs.audio_start,
            audio_end=inputs.audio_end, workdir=work, cookies=options.fetch.cookies, max_seconds=inputs.max_seconds,
            progress=options.progress)
        session.fetch_weights()
        if scoring.fix_offset and audio_path == face_path:  # --audio same: align the source's own A/V first
            from .score.session import fix_source_offset

            audio_path = fix_source_offset(session, face_path, Path(work))
        video = session.open_video(face_path)
        t0 = time.perf_counter()
        speech = Speech.load(audio_path, options.render, name=audio)
        session.timings.add("mel", t0)
        n_out = speech.frames(video.fps)
        w, h = video.frame_size
        place.check_space(safety.estimate_output_bytes(w * plan.scale, h * plan.scale, speech.duration, video.fps))
        detection = options.detection
        if detection.box is not None:
            _check_box(detection.box, video.frame_size)
        track = track_faces(session, video, detection, n_out)
        session.release_detector()
        if plan.needs_landmarks and track.landmarks is None:
            track.landmarks = [None if b is None else landmarks_from_box(b) for b in track.boxes]
        if not track.any_face:
            raise LipsyncError(f"no face found in any frame of {face}; {_no_face_hint(plan)}")
        written = render(session, plan, video, track, speech, outfile, options.output)
        seconds = time.perf_counter() - started
        session.info(f"{written} frames in {seconds:.1f} s ({written / max(seconds, 1e-9):.1f} frames/s): "
                     f"{outfile}")
        if scoring.score or scoring.fix_offset:
            from .score.session import after_run

            after_run(session, face_path, outfile)
    return written


def lipsync(face: str | Path, audio: str | Path, outfile: str | Path, variant: str = "original",
            **options: Any) -> Path:
    """Lip-sync ``face`` (video or image) to ``audio`` and write an mp4 to ``outfile``; returns its path.
    ``options`` are the run options by flag name (``det_stride=4``, ``checkpoint_path=...``)."""
    run(session_for(make_config(variant, **options)), face, audio, outfile)
    return Path(outfile)


def _no_face_hint(plan: Plan) -> str:
    others = [d for d in plan.catalog.detectors if d != plan.options.detection.detector]
    return (f"try --detector {' or '.join(others)}, --det_size 0 (full-resolution detection), "
            "--track_box TOP BOTTOM LEFT RIGHT [@SECONDS] (a box set on a frame and followed), "
            "or a clip where the face is visible")


@contextmanager
def _work_dir() -> Iterator[Path]:
    """The run's temporary folder, named with its run tag (a killed run's is reclaimed by the next one)."""
    work = files.make_temp_dir("work")
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_box(box: tuple[int, int, int, int], size: tuple[int, int]) -> None:
    t, b, l, r = box
    w, h = size
    if b > h or r > w:
        raise LipsyncError(f"--box {t} {b} {l} {r} lies outside the {w}x{h} frame")
