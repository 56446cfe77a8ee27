"""``lipsync train prepare``: plain videos of one person -> the training dataset (see :mod:`.data` for the layout).

Per video, resampled to 25 fps with its sound at 16 kHz mono (what the original asks its data to be):

1. **Pass 1** tracks the face as a run does (its detector and options, or a fixed ``--box``; the face-track
   cache) and marks shot cuts with the tracker's own cut test (:mod:`lipsync_core.score.session`'s tracker).
   Boxes are the raw detections (no pads, no smoothing), as the original's ``preprocess.py`` crops.
2. **Planning**: the frames with a face are split at cuts and face gaps into *runs*; frames without a face, with
   a face smaller than ``min_face`` pixels, past the end of the audio, or in a run shorter than
   ``min_clip_seconds`` are dropped (and counted, by reason). Each run is cut into clips of about
   ``clip_seconds`` (the original samples clips uniformly, so many short clips make full, varied batches; LRS2's
   average is 2.3 s).
3. **Pass 2** decodes the frames at full resolution and writes each clip's face crops (``k.jpg`` from 0, JPEG
   quality 95 as the original's ``cv2.imwrite``; the crop is resized to 96x96 when loaded, as in the original).
   A sync check (:class:`SyncCheck`, SyncNet by default when its weights are given) scores each run as it is
   decoded; when the run ends its clips get their ``audio.wav``, or are deleted:

   * LSE-C below ``min_confidence`` (3, the level below which LatentSync's data filter treats a clip as out of
     sync, and :mod:`lipsync_core.score.fix` refuses to trust an offset): dropped, "low sync confidence";
   * an offset of 1 to ``max_shift`` (3) frames: the audio is shifted by it, so the clips are in sync (the notes'
     advice is to keep data within +-3 frames, best +-1);
   * a larger offset: dropped, "off-sync" (usually dubbing or another voice, not a constant delay).

Then the clips are split into train and validation: in each video the last ``val_fraction`` of its clips, a
contiguous stretch, so validation windows never neighbour training windows of the same moment. The summary
says how many minutes were kept and dropped and why, and warns below :data:`MIN_USEFUL_MINUTES`.

Resumable: each finished video is recorded in ``DATASET/prepare.json`` and skipped by a later call (more
videos can be added the same way); a video interrupted midway restarts, its face track coming from the track
cache. Clips of a video appear only once it is complete. Memory stays bounded: frames are streamed and audio is
read per run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import wave
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from ..engine.catalog import CATALOG
from ..engine.options import RunOptions
from ..engine.plan import make_config
from ..face.types import Box, FaceTrack
from ..media.face_video import FaceVideo
from ..media.ffmpeg import run_ffmpeg
from ..media.probe import probe
from ..support.errors import LipsyncError
from ..support.files import atomic_write_text
from ..support.options import opt
from .config import check_fields
from .data import CLIPS_DIR, FILELISTS_DIR, FPS, MIN_CLIP_FRAMES

if TYPE_CHECKING:
    from ..engine.session import Session

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = int(SAMPLE_RATE / FPS)  # 640
#: Minutes of kept footage below which the summary warns: nobody reports a good one-person fine-tune from
#: less than about an hour (primepake/wav2lip_288x288#45 and #87; Rudrabha/Wav2Lip#419).
MIN_USEFUL_MINUTES = 60.0
#: The original writes its crops with cv2.imwrite's default JPEG quality.
JPEG_QUALITY = 95
STATE = "prepare.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class Source:
    """One input video: a path (a folder stands for its videos), URL or Drive ID (what :func:`resolve_media` takes),
    optionally trimmed to [start, end) (seconds or [hh:]mm:ss)."""

    source: str
    start: str | float | None = None
    end: str | float | None = None

    @property
    def key(self) -> str:
        return json.dumps([str(self.source), self.start, self.end])


#: The weight roles ``lipsync train prepare`` takes (its run options are
#: :func:`~lipsync_core.engine.options.tracking_options`: how faces are found, where things run).
RUN_ROLES = (*CATALOG.detector_roles, "syncnet")

_P = "dataset"


@dataclass
class PrepareConfig:
    """Settings of ``lipsync train prepare`` besides its run options (tracking, device, caches, messages)."""

    out: str = ""  # the dataset folder (created, or added to)
    clip_seconds: float = opt(3.0, "length of the clips long takes are cut into", _P,
                              check=lambda v: v > MIN_CLIP_FRAMES / FPS, message="--clip_seconds must be above 0.6")
    min_clip_seconds: float = opt(1.0, "drop face runs between cuts or gaps shorter than this", _P,
                                  check=lambda v: v > MIN_CLIP_FRAMES / FPS,
                                  message="--min_clip_seconds must be above 0.6 (a clip needs 16 frames)")
    min_face: int = opt(48, "drop frames whose face is smaller than this many pixels", _P, check=lambda v: v >= 1,
                        message="--min_face must be at least 1")
    val_fraction: float = opt(0.1, "share of each video's clips held out for validation (its last ones)", _P,
                              check=lambda v: 0 <= v < 1, message="--val_fraction must be in [0, 1)")
    min_confidence: float = opt(3.0, "drop runs whose SyncNet confidence (LSE-C) is below this", _P,
                                check=lambda v: v >= 0, message="--min_confidence must be >= 0")
    max_shift: int = opt(3, "shift runs off by up to this many frames; drop those off by more", _P,
                         check=lambda v: v >= 0, message="--max_shift must be >= 0")
    no_sync_check: bool = opt(False, "keep every run without scoring its sync (no SyncNet download)", _P)

    def validate(self) -> PrepareConfig:
        if not self.out:
            raise LipsyncError("give the dataset folder to write with --out")
        check_fields(self)
        if self.clip_seconds < self.min_clip_seconds:
            raise LipsyncError("--clip_seconds must be at least --min_clip_seconds")
        return self


# ---------------------------------------------------------------------------------------------- sync check


@dataclass(frozen=True)
class SyncVerdict:
    """A run's measured A/V offset (frames; > 0: the audio leads, as :mod:`lipsync_core.score`) and confidence."""

    offset: int
    confidence: float


class SyncSession(Protocol):
    def push(self, frame: np.ndarray) -> None: ...

    def verdict(self) -> SyncVerdict: ...


class SyncCheck(Protocol):
    """Scores a run of frames with its audio, streamed: :meth:`start` gets the run's 16 kHz int16 samples and
    its face boxes, then every full-resolution frame is pushed; None when the run is too short to score."""

    def start(self, samples: np.ndarray, boxes: Sequence[Box]) -> SyncSession | None: ...


class SyncNetCheck:
    """The SyncNet scorer of :mod:`lipsync_core.score` (its reference crop; LSE-C is the confidence).

    ``embedder`` is a :class:`lipsync_core.score.embed.SyncNetEmbedder` (or a constructed one in tests). The
    reference's JPEG round trip of the crops is left out: this is a filter, not a benchmark number.
    """

    def __init__(self, embedder, batch_size: int = 20) -> None:
        self.embedder = embedder
        self.batch_size = batch_size

    def start(self, samples: np.ndarray, boxes: Sequence[Box]) -> SyncSession | None:
        from ..score import crop as crop_mod
        from ..score.sync import SyncResult, n_windows, syncnet_stream

        if n_windows(len(boxes), len(samples)) < 1:
            return None
        params = crop_mod.crop_params(list(boxes))
        stream = syncnet_stream(samples, self.embedder.video, self.embedder.audio, n_frames=len(boxes),
                                batch_size=self.batch_size)

        class Session:
            k = 0

            def push(self, frame: np.ndarray) -> None:
                if self.k < len(params):
                    stream.push(crop_mod.syncnet_crop(frame, *params[self.k]))
                self.k += 1

            def verdict(self) -> SyncVerdict:
                result = SyncResult(stream.finish())
                return SyncVerdict(result.offset, result.lse_c)

        return Session()


# ---------------------------------------------------------------------------------------------- planning


@dataclass
class ClipPlan:
    """One clip to write: frames [start, end) of the 25 fps video, and its run."""

    name: str
    start: int
    end: int
    run: int


@dataclass
class Plan:
    """Runs (face frames between cuts and gaps, [start, end)), their clips, and the frames dropped by reason."""

    runs: list[tuple[int, int]]
    clips: list[ClipPlan]
    dropped: Counter = field(default_factory=Counter)


def plan_clips(track: FaceTrack, cuts: np.ndarray, n_audio_frames: int, cfg: PrepareConfig, video: str) -> Plan:
    """Split the track into runs and clips (see the module docstring); every frame is kept or counted dropped."""
    n = track.n_frames
    reason = np.full(n, "", dtype=object)
    for i, box in enumerate(track.boxes):
        if i >= n_audio_frames:
            reason[i] = "past the end of the audio"
        elif box is None:
            reason[i] = "no face"
        elif min(box[1] - box[0], box[3] - box[2]) < cfg.min_face:
            reason[i] = f"face smaller than {cfg.min_face} px"
    plan = Plan([], [])
    min_frames = max(MIN_CLIP_FRAMES + 1, round(cfg.min_clip_seconds * FPS))
    target = max(min_frames, round(cfg.clip_seconds * FPS))
    i = 0
    while i < n:
        if reason[i]:
            plan.dropped[reason[i]] += 1
            i += 1
            continue
        j = i + 1
        while j < n and not reason[j] and not cuts[j]:
            j += 1
        if j - i < min_frames:
            plan.dropped[f"runs shorter than {cfg.min_clip_seconds:g} s between cuts or face gaps"] += j - i
        else:
            run = len(plan.runs)
            plan.runs.append((i, j))
            parts = math.ceil((j - i) / target)
            bounds = np.linspace(i, j, parts + 1).round().astype(int)
            for a, b in zip(bounds[:-1], bounds[1:]):
                plan.clips.append(ClipPlan(f"{video}/{len(plan.clips):05d}", int(a), int(b), run))
        i = j
    return plan


# ---------------------------------------------------------------------------------------------- the job


@dataclass
class PrepareSummary:
    """What a dataset holds after :func:`prepare`, and what was dropped (seconds per reason)."""

    root: Path
    videos: int
    train_clips: int
    val_clips: int
    train_seconds: float
    val_seconds: float
    dropped: dict[str, float]
    sync_checked: bool
    warnings: list[str]

    @property
    def kept_minutes(self) -> float:
        return (self.train_seconds + self.val_seconds) / 60.0

    def text(self) -> str:
        lines = [f"dataset {self.root}: {self.videos} video(s), {_duration(self.train_seconds + self.val_seconds)} "
                 f"kept ({self.train_clips} training clips, {_duration(self.train_seconds)}; "
                 f"{self.val_clips} validation clips, {_duration(self.val_seconds)})"]
        total = sum(self.dropped.values())
        if total:
            lines.append(f"dropped {_duration(total)}:")
            lines += [f"  {_duration(seconds):>9}  {why}" for why, seconds in
                      sorted(self.dropped.items(), key=lambda kv: -kv[1])]
        if not self.sync_checked:
            lines.append("clips were not sync-checked (no SyncNet weights given): off-sync footage stays in")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def expand_sources(sources: Sequence[Source | str]) -> list[Source]:
    """``sources`` as :class:`Source` items, a folder (a mounted Google Drive folder, say) replaced by its videos
    in name order, each with the folder's trim."""
    from ..batch.jobs import media_files
    from ..media.probe import IMAGE_SUFFIXES

    out: list[Source] = []
    for s in sources:
        src = s if isinstance(s, Source) else Source(str(s))
        if Path(str(src.source)).expanduser().is_dir():
            out += [Source(str(f), src.start, src.end) for f in media_files(Path(src.source).expanduser(), "face")
                    if f.suffix.lower() not in IMAGE_SUFFIXES]
        else:
            out.append(src)
    return out


def prepare(sources: Sequence[Source | str], cfg: PrepareConfig, run: RunOptions | None = None, *,
            sync_check: SyncCheck | None = None) -> PrepareSummary:
    """Turn ``sources`` into the dataset at ``cfg.out`` (adding to what is there); returns its summary.

    ``run`` holds the tracking run options (detector, box, device, weights by role, ...; default:
    :func:`~lipsync_core.engine.options.make_config`'s). Faces are tracked with that configuration's detector and the
    face-track cache; each run is sync-checked with SyncNet (role ``syncnet``) unless ``cfg.no_sync_check``, or
    with ``sync_check`` when one is given.
    """
    from ..inputs.resolve import resolve_media

    cfg.validate()
    run = run or make_config()
    root = Path(cfg.out)
    (root / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    state = _read_state(root)
    todo = expand_sources(sources)
    pending = [src for src in todo if src.key not in state["videos"]]
    for src in todo:
        if src not in pending:
            log.info("%s: prepared already, skipped", src.source)
    if pending:
        pipe, check = _tooling(run, cfg, sync_check)
        for src in pending:
            name = _video_name(src)
            with tempfile.TemporaryDirectory(prefix="lipsync-prepare-") as work:
                path = resolve_media(src.source, start=src.start, end=src.end, kind="face", workdir=work,
                                     cookies=run.cookies)
                record = prepare_video(Path(path), name, root, cfg, pipe=pipe, sync_check=check, workdir=Path(work))
            state["videos"][src.key] = {"source": str(src.source), "start": src.start, "end": src.end, **record}
            _write_state(root, state)
    return write_split(root, state, cfg.val_fraction)


def _tooling(run: RunOptions, cfg: PrepareConfig, sync_check: SyncCheck | None) -> tuple[Session, SyncCheck | None]:
    """A tracking-only pipeline with ``run``'s detector (weights fetched; raw boxes, no pads or smoothing) and the
    sync check: ``sync_check``, else SyncNet unless ``cfg.no_sync_check``."""
    from ..score.session import scoring_session

    use_syncnet = sync_check is None and not cfg.no_sync_check
    pipe = scoring_session(run.replace(score=use_syncnet, scorer="syncnet", fix_offset=False))
    if use_syncnet:
        from ..score.embed import SyncNetEmbedder

        sync_check = SyncNetCheck(SyncNetEmbedder(pipe.model("syncnet"), pipe.runtime.device))
    return pipe, None if cfg.no_sync_check else sync_check


def prepare_video(path: Path, name: str, root: Path, cfg: PrepareConfig, *, pipe: Session,
                  sync_check: SyncCheck | None, workdir: Path) -> dict:
    """Prepare one local video into ``root/clips/<name>/``; returns its record for ``prepare.json``."""
    from ..score.session import tracker

    info = probe(path).require_video()
    if info.is_image:
        raise LipsyncError(f"{path} is a still image; training needs videos of the person speaking")
    if not info.has_audio:
        raise LipsyncError(f"{path} has no audio track; training needs the person's speech with the picture")
    wav = workdir / "audio.wav"
    run_ffmpeg(["-y", "-i", str(path), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
                "-c:a", "pcm_s16le", str(wav)], what=f"extract the audio of {path}")
    with wave.open(str(wav), "rb") as w:
        n_samples = w.getnframes()
    video = FaceVideo(path, info, FPS, static=False)
    track, cut_list = tracker(pipe)(video)  # pass 1: the run's detector and track cache, raw boxes, shot cuts
    plan = plan_clips(track, np.asarray(cut_list, dtype=bool), n_samples // SAMPLES_PER_FRAME, cfg, name)
    dropped = {k: v / FPS for k, v in plan.dropped.items()}  # seconds per reason
    partial = root / CLIPS_DIR / f"{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    kept = _pass2(video, track, plan, wav, n_samples, partial, cfg, sync_check, dropped, pipe.plan.options.progress)
    final = root / CLIPS_DIR / name
    shutil.rmtree(final, ignore_errors=True)
    if kept:
        os.replace(partial, final)
    else:
        shutil.rmtree(partial, ignore_errors=True)
    return {"name": name, "clips": kept, "dropped": dict(dropped), "sync_checked": sync_check is not None,
            "seconds": track.n_frames / FPS}


def _pass2(video: FaceVideo, track: FaceTrack, plan: Plan, wav: Path, n_samples: int, partial: Path,
           cfg: PrepareConfig, sync_check: SyncCheck | None, dropped: dict[str, float], progress: bool) -> list[dict]:
    """Write every planned clip's crops, check each run's sync, then give its clips audio or delete them."""
    if not plan.clips:
        return []
    clip_of = np.full(track.n_frames, -1, dtype=np.int64)
    for c, clip in enumerate(plan.clips):
        clip_of[clip.start:clip.end] = c
    run_end = {end: r for r, (_, end) in enumerate(plan.runs)}
    sessions: dict[int, SyncSession | None] = {}
    kept: list[dict] = []
    last = plan.runs[-1][1]
    for f, frame in enumerate(_progress(video.frames(max_frames=last), "crops", progress, total=last)):
        c = clip_of[f]
        if c >= 0:
            clip = plan.clips[c]
            if clip.run not in sessions:
                start, end = plan.runs[clip.run]
                run_boxes = [box for box in track.boxes[start:end] if box is not None]
                assert len(run_boxes) == end - start  # runs hold frames with a face only (plan_clips)
                sessions[clip.run] = None if sync_check is None else sync_check.start(
                    _read_samples(wav, start * SAMPLES_PER_FRAME, (end - start) * SAMPLES_PER_FRAME), run_boxes)
            box = track.boxes[f]
            assert box is not None  # a clip's frame has a face
            t, b, left, r = box
            folder = partial / clip.name.split("/", 1)[1]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{f - clip.start}.jpg"), frame[t:b, left:r],
                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            session = sessions[clip.run]
            if session is not None:
                session.push(frame)
        if f + 1 in run_end:
            kept += _finish_run(run_end[f + 1], plan, sessions.pop(run_end[f + 1], None), wav, n_samples, partial,
                                cfg, dropped)
    return kept


def _finish_run(run: int, plan: Plan, session: SyncSession | None, wav: Path, n_samples: int, partial: Path,
                cfg: PrepareConfig, dropped: dict[str, float]) -> list[dict]:
    """Judge a finished run by its sync verdict; write its clips' audio (shifted if needed) or delete them."""
    start, end = plan.runs[run]
    clips = [c for c in plan.clips if c.run == run]
    verdict = session.verdict() if session is not None else None
    reason = ""
    if verdict is not None:
        if verdict.confidence < cfg.min_confidence:
            reason = f"low sync confidence (LSE-C below {cfg.min_confidence:g})"
        elif abs(verdict.offset) > cfg.max_shift:
            reason = f"off-sync by more than {cfg.max_shift} frames"
    if reason:
        dropped[reason] = dropped.get(reason, 0) + (end - start) / FPS
        for clip in clips:
            shutil.rmtree(partial / clip.name.split("/", 1)[1], ignore_errors=True)
        return []
    offset = verdict.offset if verdict is not None else 0
    records = []
    for clip in clips:
        folder = partial / clip.name.split("/", 1)[1]
        # Frame f's sound is at frame f - offset of the audio track (offset > 0: the audio came early).
        lo = (clip.start - offset) * SAMPLES_PER_FRAME
        n = (clip.end - clip.start) * SAMPLES_PER_FRAME
        samples = _read_samples(wav, lo, n)
        missing = [f for f in range(clip.start, clip.end)
                   if (f - offset) < 0 or (f - offset + 1) * SAMPLES_PER_FRAME > n_samples]
        for f in missing:  # a shift past either end of the audio: those frames have no sound of their own
            (folder / f"{f - clip.start}.jpg").unlink(missing_ok=True)
        if missing:
            key = "no audio after the sync shift"
            dropped[key] = dropped.get(key, 0) + len(missing) / FPS
        _write_wav(folder / "audio.wav", samples)
        records.append({"name": clip.name, "frames": clip.end - clip.start - len(missing), "start_frame": clip.start,
                        "offset": offset, "confidence": None if verdict is None else verdict.confidence})
    return records


# ---------------------------------------------------------------------------------------------- split and state


def write_split(root: Path, state: dict, val_fraction: float) -> PrepareSummary:
    """Write ``filelists/{train,val}.txt`` from every prepared video and return the dataset's summary."""
    train: list[dict] = []
    val: list[dict] = []
    dropped: Counter = Counter()
    sync_checked = bool(state["videos"])
    for record in state["videos"].values():
        clips = record["clips"]
        n_val = math.ceil(val_fraction * len(clips)) if len(clips) >= 2 else 0
        train += clips[:len(clips) - n_val]
        val += clips[len(clips) - n_val:]
        dropped.update(record["dropped"])
        sync_checked = sync_checked and record["sync_checked"]
    if not val and len(train) >= 2 and val_fraction > 0:  # one clip per video: hold out the last one overall
        val, train = train[-1:], train[:-1]
    lists = root / FILELISTS_DIR
    lists.mkdir(parents=True, exist_ok=True)
    for split, clips in (("train", train), ("val", val)):
        atomic_write_text(lists / f"{split}.txt", "".join(c["name"] + "\n" for c in clips))
    summary = PrepareSummary(root, len(state["videos"]), len(train), len(val),
                             sum(c["frames"] for c in train) / FPS, sum(c["frames"] for c in val) / FPS,
                             dict(dropped), sync_checked, [])
    if summary.kept_minutes < MIN_USEFUL_MINUTES:
        summary.warnings.append(
            f"only {summary.kept_minutes:.1f} min of usable footage: people who fine-tuned Wav2Lip on one person "
            f"report needing an hour or more (a few minutes gave poor results); expect over-fitting")
    if not val:
        summary.warnings.append("no validation clips: training cannot keep the best checkpoint or stop early")
    return summary


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _read_state(root: Path) -> dict:
    path = root / STATE
    if path.is_file():
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("version") == STATE_VERSION:
            return state
        raise LipsyncError(f"{path} was written by another version of lipsync_core: prepare into a new folder")
    return {"version": STATE_VERSION, "videos": {}}


def _write_state(root: Path, state: dict) -> None:
    atomic_write_text(root / STATE, json.dumps(state, indent=1))


def _video_name(src: Source) -> str:
    stem = Path(str(src.source).split("?")[0].rstrip("/")).stem or "video"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:40].strip("_") or "video"
    return f"{slug}-{hashlib.sha1(src.key.encode()).hexdigest()[:8]}"


def _read_samples(wav: Path, start: int, n: int) -> np.ndarray:
    """Samples [start, start+n) of a 16-bit mono WAV as int16, zeros where outside the file."""
    out = np.zeros(n, np.int16)
    with wave.open(str(wav), "rb") as w:
        total = w.getnframes()
        lo, hi = max(0, start), min(total, start + n)
        if hi > lo:
            w.setpos(lo)
            out[lo - start:hi - start] = np.frombuffer(w.readframes(hi - lo), "<i2")
    return out


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.asarray(samples, "<i2").tobytes())


def _progress(it, desc: str, enabled: bool, total: int | None = None):
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, total=total, unit="frame", disable=not enabled, leave=False)


