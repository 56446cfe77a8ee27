"""Score a video file end to end: face track, scene segments, reference crops, SyncNet or the expert.

Pass 1 tracks the face with the package's own tracking (same detectors and options as a run) on frames
resampled to 25 fps, and marks shot cuts with the tracker's own cut test. The frames with a face are split at
cuts and face gaps into *tracks* (the reference scores each face track of each shot). Pass 2 decodes again,
crops each frame as the scorer expects (:mod:`.crop`) and streams the crops through the network, so memory
does not grow with the video's length (the audio's samples and MFCCs are held: 1 h is about 150 MB).

Any track of at least 6 frames is scored (the reference pipeline drops tracks of 100 frames or fewer); each
track reports how many windows were scored.

JSON report (``ScoreReport.to_dict``, written by :func:`write_report`), schema ``lipsync-score/1``::

    {"schema": "lipsync-score/1",
     "video": str, "audio": str,            # the files scored (audio: the video itself unless --audio)
     "scorer": "syncnet" | "expert",
     "metric": "LSE-D/LSE-C" | "expert cosine similarity",
     "fps": 25.0, "frames": int, "seconds": float,
     "offset_convention": "offset_frames > 0: the audio leads the video (plays early); < 0: it lags",
     "overall": null | {"windows": int, "offset_frames": int, "offset_ms": float,
                        "lse_d": float, "lse_c": float        # syncnet
                        | "similarity": float},               # expert
     "tracks": [{"start_frame": int, "end_frame": int,        # end exclusive, 25 fps frames
                 "start_s": float, "end_s": float, "windows": int,
                 "offset_frames": int, "offset_ms": float,
                 "lse_d": float, "lse_c": float | "similarity": float,
                 "segments": [{"start_s": float, "end_s": float, "windows": int,
                               "confidence": float            # syncnet: mean per-window confidence
                               | "similarity": float}]}],     # expert: mean similarity at the track's shift
     "unscored": [{"start_frame": int, "end_frame": int, "reason": str}]}

``overall`` pools every track's windows (the mean distance or similarity per shift over all windows), so its
offset is the one to correct. Segments are one second long by default; the per-window confidence is the
reference's ``median(mdist) - dist`` at the chosen shift (LSE-C is its mean).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.options import SCORERS
from ..face.track import DetectionOptions, build_track, thumbnail
from ..face.types import Detector, FaceTrack
from ..media import audio as audio_mod
from ..media.face_video import FaceVideo
from ..media.probe import probe
from ..support.errors import LipsyncError
from . import crop as crop_mod
from .sync import FPS, SAMPLES_PER_FRAME, VSHIFT, WINDOW, ExpertResult, SyncResult, expert_stream, syncnet_stream

SCHEMA = "lipsync-score/1"
OFFSET_CONVENTION = "offset_frames > 0: the audio leads the video (plays early); < 0: it lags"
MIN_FRAMES = WINDOW + 1  # one window


@dataclass
class Segment:
    """One stretch of a track (a second by default)."""

    start_s: float
    end_s: float
    windows: int
    confidence: float | None = None  # syncnet
    similarity: float | None = None  # expert


@dataclass
class TrackScore:
    """The scores of one face track (a run of frames with the face, within one shot)."""

    start_frame: int
    end_frame: int  # exclusive
    windows: int
    offset_frames: int
    lse_d: float | None = None
    lse_c: float | None = None
    similarity: float | None = None
    segments: list[Segment] = field(default_factory=list)

    @property
    def offset_ms(self) -> float:
        return self.offset_frames * 1000.0 / FPS


@dataclass
class ScoreReport:
    """What :func:`score_video` measured; :meth:`to_dict` is the JSON schema of the module docstring."""

    video: str
    audio: str
    scorer: str
    frames: int
    tracks: list[TrackScore]
    unscored: list[dict[str, Any]]
    overall: dict[str, Any] | None

    @property
    def seconds(self) -> float:
        return self.frames / FPS

    def to_dict(self) -> dict[str, Any]:
        def track(t: TrackScore) -> dict[str, Any]:
            d = {"start_frame": t.start_frame, "end_frame": t.end_frame, "start_s": t.start_frame / FPS,
                 "end_s": t.end_frame / FPS, "windows": t.windows, "offset_frames": t.offset_frames,
                 "offset_ms": t.offset_ms, **_metric(self.scorer, t.lse_d, t.lse_c, t.similarity),
                 "segments": [{k: v for k, v in asdict(s).items() if v is not None} for s in t.segments]}
            return d

        return {"schema": SCHEMA, "video": self.video, "audio": self.audio, "scorer": self.scorer,
                "metric": "LSE-D/LSE-C" if self.scorer == "syncnet" else "expert cosine similarity",
                "fps": FPS, "frames": self.frames, "seconds": self.seconds, "offset_convention": OFFSET_CONVENTION,
                "overall": self.overall, "tracks": [track(t) for t in self.tracks], "unscored": self.unscored}

    def summary(self) -> str:
        """One line for the terminal."""
        o = self.overall
        if o is None:
            why = self.unscored[0]["reason"] if self.unscored else "no frames"
            return f"{Path(self.video).name}: nothing scored ({why})"
        metric = (f"LSE-D {o['lse_d']:.3f}  LSE-C {o['lse_c']:.3f}" if self.scorer == "syncnet"
                  else f"expert similarity {o['similarity']:.3f}")
        return (f"{Path(self.video).name}: {metric}  offset {o['offset_frames']:+d} frames ({o['offset_ms']:+.0f} ms; "
                f"+ = audio early)  {o['windows']} windows in {len(self.tracks)} track(s)")


def _metric(scorer: str, lse_d: float | None, lse_c: float | None, similarity: float | None) -> dict[str, float | None]:
    return {"lse_d": lse_d, "lse_c": lse_c} if scorer == "syncnet" else {"similarity": similarity}


def write_report(report: ScoreReport, path: str | os.PathLike) -> Path:
    """Write the report as JSON, atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    os.replace(tmp, p)
    return p


# ---------------------------------------------------------------------------------------------- tracks


@dataclass
class Span:
    start: int
    end: int  # exclusive
    face: bool


def split_tracks(track: FaceTrack, cuts: np.ndarray) -> list[Span]:
    """Runs of frames with and without the face, also split where ``cuts[i]`` (a cut before frame i)."""
    spans: list[Span] = []
    for i, box in enumerate(track.boxes):
        face = box is not None
        if spans and spans[-1].face == face and not cuts[i]:
            spans[-1].end = i + 1
        else:
            spans.append(Span(i, i + 1, face))
    return spans


def scan_cuts(frames: Iterable[np.ndarray], threshold: float, out: list[bool]) -> Iterator[np.ndarray]:
    """``frames`` unchanged, appending to ``out`` whether each one follows a cut (the tracker's own test)."""
    prev = None
    for frame in frames:
        thumb = thumbnail(frame)
        out.append(prev is not None and float(np.abs(thumb - prev).mean()) > threshold)
        prev = thumb
        yield frame


# ---------------------------------------------------------------------------------------------- scoring


#: Pass 1 of scoring: the 25 fps face video -> its face track (raw boxes) and, per frame, whether a cut precedes it.
Tracker = Callable[[FaceVideo], tuple[FaceTrack, list[bool]]]


def score_video(video: str | os.PathLike, *, embedder: Any, scorer: str = "syncnet",
                audio: str | os.PathLike | None = None, detector: Detector | None = None,
                settings: DetectionOptions | None = None, tracker: Tracker | None = None, jpeg: bool = True,
                batch_size: int = 20, segment_seconds: float = 1.0, vshift: int = VSHIFT) -> ScoreReport:
    """Score ``video`` (with its own audio, or ``audio``) end to end; see the module docstring.

    ``embedder`` has ``video(windows)`` and ``audio(windows)`` (:mod:`.embed`, or a constructed one in
    tests). The face is tracked by ``tracker`` (a run's pipeline: :func:`lipsync_core.score.session.tracker`),
    else by ``detector`` with ``settings`` (or the fixed ``settings.box``). Boxes are used as detected (no
    pads, no smoothing: the reference filters the crop itself). ``jpeg`` reproduces the reference's JPEG
    round trip of the SyncNet crops.
    """
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {SCORERS}, got {scorer!r}")
    info = probe(video).require_video("video to score")
    if info.is_image:
        raise LipsyncError(f"{video} is a still image; scoring needs a video with moving lips")
    audio_path = Path(audio) if audio is not None else Path(video)
    samples = audio_mod.load_audio_int16(audio_path)
    face_video = FaceVideo(Path(video), info, FPS, static=False)
    if tracker is None:
        settings = replace(settings or DetectionOptions(), pads=(0, 0, 0, 0), nosmooth=True)
        cuts: list[bool] = []
        frames = scan_cuts(face_video.frames(det_size=settings.detect_size), settings.cut_threshold, cuts)
        track = build_track(frames, detector, settings, scale=face_video.detection_scale(settings.detect_size),
                            frame_size=face_video.frame_size, fps=FPS)
    else:
        track, cuts = tracker(face_video)
    spans = split_tracks(track, np.asarray(cuts, bool))
    n_audio_frames = len(samples) // SAMPLES_PER_FRAME

    scored: list[tuple[Span, int]] = []  # spans to score, with their usable frame count
    unscored: list[dict[str, Any]] = []
    for span in spans:
        usable = min(span.end, n_audio_frames) - span.start
        reason = ("no face" if not span.face else
                  "past the end of the audio" if usable <= 0 else
                  f"shorter than {MIN_FRAMES} frames (one window)" if usable < MIN_FRAMES else "")
        if reason:
            unscored.append({"start_frame": span.start, "end_frame": span.end, "reason": reason})
        else:
            scored.append((span, usable))

    results: list[tuple[Span, SyncResult | ExpertResult]] = []
    if scored:
        frame_iter = enumerate(face_video.frames(max_frames=scored[-1][0].start + scored[-1][1]))
        for span, usable in scored:
            results.append((span, _score_span(frame_iter, span, usable, track, samples, embedder, scorer, jpeg,
                                              batch_size, vshift)))
    tracks = [_track_score(span, res, scorer, segment_seconds) for span, res in results]
    return ScoreReport(video=str(video), audio=str(audio_path), scorer=scorer, frames=track.n_frames,
                       tracks=tracks, unscored=unscored, overall=_overall(results, scorer, vshift))


def _score_span(frame_iter: Iterator[tuple[int, np.ndarray]], span: Span, usable: int, track: FaceTrack,
                samples: np.ndarray, embedder: Any, scorer: str, jpeg: bool, batch_size: int,
                vshift: int) -> SyncResult | ExpertResult:
    boxes = track.boxes[span.start:span.start + usable]
    seg_samples = samples[span.start * SAMPLES_PER_FRAME:(span.start + usable) * SAMPLES_PER_FRAME]

    def span_frames() -> Iterator[np.ndarray]:
        for i, frame in frame_iter:
            if i >= span.start:
                yield frame
                if i + 1 >= span.start + usable:
                    return

    if scorer == "syncnet":
        params = crop_mod.crop_params(boxes)  # type: ignore[arg-type]
        crops: Iterator[np.ndarray] = (crop_mod.syncnet_crop(f, *params[k]) for k, f in enumerate(span_frames()))
        if jpeg:
            crops = crop_mod.jpeg_round_trip(crops)
        stream = syncnet_stream(seg_samples, embedder.video, embedder.audio, n_frames=usable, vshift=vshift,
                                batch_size=batch_size)
        return SyncResult(stream.extend(crops).finish(), vshift)
    crops = (crop_mod.expert_crop(f, boxes[k]) for k, f in enumerate(span_frames()))  # type: ignore[arg-type]
    stream = expert_stream(seg_samples, embedder.video, embedder.audio, n_frames=usable, vshift=vshift,
                           batch_size=batch_size)
    return ExpertResult(stream.extend(crops).finish(), vshift)


def _track_score(span: Span, res: SyncResult | ExpertResult, scorer: str, segment_seconds: float) -> TrackScore:
    per_window = res.fconf if isinstance(res, SyncResult) else res.fsim
    step = max(1, round(segment_seconds * FPS))
    segments = []
    for lo in range(0, res.windows, step):
        vals = per_window[lo:lo + step]
        vals = vals[np.isfinite(vals)]  # the expert has no value where the shifted audio window is outside the clip
        if not len(vals):
            continue
        start = (span.start + lo) / FPS
        value = float(np.mean(vals))
        segments.append(Segment(start, start + min(step, res.windows - lo) / FPS, len(vals),
                                **({"confidence": value} if scorer == "syncnet" else {"similarity": value})))
    if isinstance(res, SyncResult):
        return TrackScore(span.start, span.end, res.windows, res.offset, lse_d=res.lse_d, lse_c=res.lse_c,
                          segments=segments)
    return TrackScore(span.start, span.end, res.windows, res.offset, similarity=res.similarity, segments=segments)


def _overall(results: list[tuple[Span, SyncResult | ExpertResult]], scorer: str, vshift: int) -> dict[str, Any] | None:
    """All tracks' windows pooled: the mean per shift over every window, then the reference's rules."""
    if not results:
        return None
    windows = sum(r.windows for _, r in results)
    fields: dict[str, float]
    if scorer == "syncnet":
        dists = np.concatenate([r.dists for _, r in results if isinstance(r, SyncResult)])
        reference = SyncResult(dists, vshift)
        pooled: SyncResult | ExpertResult = reference
        fields = {"lse_d": reference.lse_d, "lse_c": reference.lse_c}
    else:
        expert = ExpertResult(np.concatenate([r.sims for _, r in results if isinstance(r, ExpertResult)]), vshift)
        pooled, fields = expert, {"similarity": expert.similarity}
    return {"windows": windows, "offset_frames": pooled.offset, "offset_ms": pooled.offset * 1000.0 / FPS, **fields}
