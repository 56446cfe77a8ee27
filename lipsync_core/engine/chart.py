"""The chart variant's preparation before its first frame: where the mouth is on every source frame and the
mouth chart (a folder's drawings, or the clip's own: :func:`~lipsync_core.stages.chart.extract_chart`).

Used by the chart stage's build (the render pass) and by ``lipsync chart extract``.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

from ..face.boxtrack import Keyframe, parse_track_box
from ..face.mouthtrack import MouthTrack, default_mouth, follow_face, ring_track
from ..face.track import DetectionOptions
from ..face.types import FaceTrack, MouthInBox
from ..media.face_video import FaceVideo
from ..stages.chart import MouthChart, extract_chart, load_chart_dir, mouth_patches, patch_size
from ..support.errors import LipsyncError
from .options import RenderOptions

#: Where the mouth is in a face box without a detector's own placement (a --track_box or --box face).
_PHOTO_MOUTH = MouthInBox()


def follows_face(detection: DetectionOptions, detector: object | None) -> bool:
    """Whether the run has a face track to carry the mouth (a detector, keyframes or a fixed box); else the
    track is the whole frame and the mouth is followed by the area around it."""
    return detector is not None or detection.keyframed or detection.box is not None


def mouth_keyframes(render: RenderOptions) -> list[Keyframe]:
    """The ``--mouth_box`` keyframes."""
    return [parse_track_box(k.split(), "--mouth_box") for k in render.mouth_box or ()]


def mouth_track(video: FaceVideo, track: FaceTrack, mouths: list[Keyframe], *, follows_face: bool,
                placement: MouthInBox = _PHOTO_MOUTH, keep: tuple[int, int] | None = None) -> MouthTrack:
    """The mouth on every frame of ``track``: carried by the face track when the run has one (``follows_face``),
    else followed by the area around the ``--mouth_box`` keyframes (one more decode of the clip, which keeps the
    parts of the frames that patches of ``keep`` size need: ``MouthTrack.crops``)."""
    w, h = video.frame_size
    for kf in mouths:
        t, b, l, r = kf.box
        if b > h or r > w:
            raise LipsyncError(f"--mouth_box {t} {b} {l} {r} lies outside the {w}x{h} frame")
    if follows_face:
        return follow_face(track, mouths or default_mouth(track, placement))
    if not mouths:
        raise LipsyncError("the chart variant needs the mouth: --mouth_box TOP BOTTOM LEFT RIGHT [@SECONDS] "
                           "(or a face track: --detector anime or --track_box)")
    mouth, _ = ring_track(video.frames(max_frames=track.n_frames), mouths, fps=video.fps, frame_size=video.frame_size,
                          keep=keep)
    return mouth


def chart_for(video: FaceVideo, track: FaceTrack, render: RenderOptions, *, follows_face: bool,
              placement: MouthInBox = _PHOTO_MOUTH) -> tuple[MouthTrack, MouthChart]:
    """The mouth track and the chart of a run with ``render`` options."""
    auto = render.mouth_chart == "auto"
    mouths = mouth_keyframes(render)
    keep = patch_size(_box_size(mouths[0].box)) if auto and mouths else None
    mouth = mouth_track(video, track, mouths, follows_face=follows_face, placement=placement, keep=keep)
    if all(p is None for p in mouth.placements):
        raise LipsyncError("the mouth is on no frame (no face track there); check --mouth_box")
    if not auto:
        return mouth, load_chart_dir(render.mouth_chart, mouth.size)
    patches = mouth_patches(video.frames(max_frames=track.n_frames), mouth, video.frame_size)
    mouth.crops = {}  # not needed any more
    return mouth, extract_chart(patches, mouth.size, render.extended_shapes)


def _box_size(box: tuple[int, int, int, int]) -> tuple[int, int]:
    t, b, l, r = box
    return r - l, b - t


def started(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """``fn(*args, **kwargs)`` computed in a forked process while the caller goes on (the cues' decoder holds
    the GIL, so a thread would not overlap with the mouth's tracking); returns the call that waits for its
    result (or raises its exception). Without ``fork`` the function runs at once."""
    if not hasattr(os, "fork"):
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - raised again when the result is asked for
            err = exc

            def fail() -> Any:
                raise err
            return fail
        return lambda: value
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            out: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the parent
            out = (False, exc)
        try:
            send.send_bytes(pickle.dumps(out))
        except Exception as exc:  # noqa: BLE001 - an unpicklable exception: its message
            send.send_bytes(pickle.dumps((False, LipsyncError(f"{type(exc).__name__}: {exc}"))))

    proc = ctx.Process(target=child, name="lipsync-cues", daemon=False)
    proc.start()
    send.close()

    def result() -> Any:
        try:
            ok, value = pickle.loads(receive.recv_bytes())
        except EOFError:
            proc.join()
            raise LipsyncError(f"the cue process ended without a result (exit status {proc.exitcode})") from None
        finally:
            receive.close()
        proc.join()
        if not ok:
            raise value
        return value
    return result
