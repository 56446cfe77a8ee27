"""Pass 1: the face track of a video, from the session's detector (or the user's box or keyframes) and the
detection options, through the face-track cache."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import astuple

import numpy as np

from ..face import cache
from ..face.boxtrack import BoxTrack, Keyframe, load_keyframes, parse_track_box, track_box
from ..face.plausibility import MotionSampler, check_track, hint
from ..face.track import DetectionOptions, build_track, detect_track, finalize_track
from ..face.types import FaceTrack
from ..media.face_video import FaceVideo
from .options import RunOptions
from .session import Session

log = logging.getLogger(__name__)

#: The longest side frames are decoded at when they are only counted.
COUNT_SIZE = 32


def track_faces(session: Session, video: FaceVideo, detection: DetectionOptions, n_needed: int) -> FaceTrack:
    """The face track over the first ``n_needed`` frames of ``video``.

    The detected track is cached per (video content, the keyed detection options, the detector's identity,
    device and precision); pads and smoothing are applied after the cache, so changing them never re-runs
    detection.
    """
    t0 = time.perf_counter()
    if session.plan.detector is None and detection.box is None and not detection.keyframed:
        # Nothing to detect (a variant whose stage finds its own region): the frames are only counted, decoded
        # at a thumbnail's size.
        w, h = video.frame_size
        counted = sum(1 for _ in session.timed(video.frames(max_frames=n_needed, det_size=COUNT_SIZE), "decode"))
        return FaceTrack.constant((0, h, 0, w), counted, fps=video.fps, frame_size=video.frame_size)
    frames = session.timed(video.frames(max_frames=n_needed, det_size=detection.detect_size), "decode")
    sampler = MotionSampler()
    if detection.keyframed:
        result = follow_box(session, frames, video, detection)
        if result.unsure:
            log.warning(result.report())
        else:
            session.info(result.report())
        return result.track
    if session.plan.detector is None:
        track = build_track(sampler.watch(frames), None, detection, frame_size=video.frame_size, fps=video.fps)
        if detection.box is not None:  # else the whole frame: no face is claimed
            _check_plausible(session, track, sampler)
        return track
    keys = None
    cache_dir = session.plan.options.fetch.cache_dir
    if not detection.no_track_cache:
        # Two entries per video and settings: the whole video (reused for audio of any length) and the
        # longest prefix detected so far (reused when it covers the frames this run needs).
        extra = video_key(video)
        keys = cache.track_keys(video.path, detection, session.detector_identity(),
                                {part: f"{extra};{part}" for part in ("whole", "prefix")})
        whole = cache.load_track(keys["whole"], cache_dir)
        prefix = cache.load_track(keys["prefix"], cache_dir)
        hit = whole if whole is not None else (prefix if prefix is not None and prefix.n_frames >= n_needed
                                               else None)
        if hit is not None:
            session.info("face track reused from the cache")
            _check_plausible(session, hit.head(n_needed), None)  # the checks on boxes alone
            return finalize_track(hit.head(n_needed), detection)
    timings = session.timings.seconds
    before = timings["decode"]
    bar = session.bar(n_needed, "detect")
    try:
        raw = detect_track(sampler.watch(frames), session.detector(), detection,
                           scale=video.detection_scale(detection.detect_size), frame_size=video.frame_size,
                           fps=video.fps, on_frames=bar.update)
    finally:
        bar.close()
    session.timings.add("detect", t0)
    timings["detect"] -= timings["decode"] - before
    if keys is not None:  # fewer frames than asked for: the video ended, this is all of it
        cache.save_track(keys["whole" if raw.n_frames < n_needed else "prefix"], raw, cache_dir, video=video.path)
    _check_plausible(session, raw, sampler)
    return finalize_track(raw, detection)


def track_group(options: RunOptions, detector_file: str | None) -> tuple | None:
    """What the face-track cache key of a run with ``options`` depends on besides the face video: the keyed
    detection options, how the video is opened, the detector's weights and where and in what it computes (as
    asked for: ``device`` and ``dtype`` resolve the same way on the same machine). Runs equal in this share one
    track; None when the run detects nothing or caches nothing."""
    det = options.detection
    if not det.detects or det.no_track_cache:
        return None
    return (options.fetch.cache_dir, json.dumps(det.cache_fields(), sort_keys=True), detector_file,
            options.compute.device, options.compute.dtype, astuple(options.video))


def video_key(video: FaceVideo) -> str:
    """What the session does to the video's frames, for the face-track cache key."""
    return (f"fps={video.fps:.6f};static={video.static};rf={video.resize_factor};"
            f"rot={video.rotate};crop={tuple(video.crop)}")


def keyframes(detection: DetectionOptions) -> list[Keyframe]:
    """The user's keyframes (``--track_box`` / ``--box_keyframes``)."""
    if detection.box_keyframes is not None:
        return load_keyframes(detection.box_keyframes)
    return [parse_track_box(k.split()) for k in detection.track_box or ()]


def follow_box(session: Session, frames: Iterator[np.ndarray], video: FaceVideo,
               detection: DetectionOptions) -> BoxTrack:
    """The keyframed box followed through ``frames`` (decoded at the detection size), with the unsure ranges."""
    t0 = time.perf_counter()
    timings = session.timings.seconds
    before = timings["decode"]
    result = track_box(frames, keyframes(detection), fps=video.fps, frame_size=video.frame_size,
                       scale=video.detection_scale(detection.detect_size))
    session.timings.add("track", t0)
    timings["track"] -= timings["decode"] - before
    return result


def _check_plausible(session: Session, track: FaceTrack, sampler: MotionSampler | None) -> None:
    """Warn about a track that is likely not a face (see :mod:`lipsync_core.face.plausibility`)."""
    det = session.plan.detector
    for suspicion in check_track(track, sampler):
        log.warning(suspicion.message(hint(None if det is None else det.name)))
