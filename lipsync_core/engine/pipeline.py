"""The one pipeline: resolve inputs and weights, pass 1 (face track), pass 2 (streaming render).

What runs is read from the run's :class:`~lipsync_core.engine.plan.Plan` (detector, stages, roles, output scale,
landmarks); models come from the :class:`~lipsync_core.compute.runtime.Runtime`. Nothing here names a variant or a
stage.
"""
from __future__ import annotations

import logging
import queue
import shutil
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..compute.runtime import Runtime
from ..face.types import FaceTrack
from ..media import audio as audio_mod
from ..media.face_video import FaceVideo
from ..stages.base import Batch, Stage
from ..support import files, safety
from ..support.errors import LipsyncError
from .options import RunConfig, make_config
from .plan import BuildContext, Catalog, Plan

log = logging.getLogger(__name__)


#: Bytes of decoded frames in one render batch (one batch is computed while one is decoded ahead): bounded so
#: peak host memory does not depend on resolution or length. A GPU gets larger batches to stay busy.
RENDER_BATCH_BYTES = {"cpu": 32 * 2**20, "cuda": 256 * 2**20}


def render_batch_frames(wav2lip_batch_size: int, frame_bytes: int, device_type: str = "cpu") -> int:
    """Frames per render batch: ``--wav2lip_batch_size``, fewer for large frames (on CPU 48 at 360p, 5 at 1080p;
    on CUDA 43 at 1080p)."""
    budget = RENDER_BATCH_BYTES.get(device_type, RENDER_BATCH_BYTES["cpu"])
    return max(1, min(wav2lip_batch_size, budget // frame_bytes))


@dataclass
class Timings:
    """Seconds spent per stage of the run (for the benchmark and the log)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, name: str, t0: float) -> None:
        self.seconds[name] += time.perf_counter() - t0


class Pipeline:
    """One configured lip-sync job runner; :meth:`run` may be called for several inputs.

    ``runtime`` may be shared between pipelines (a batch worker's): models are loaded once per runtime.
    """

    def __init__(self, cfg: RunConfig, *, catalog: Catalog | None = None, runtime: Runtime | None = None) -> None:
        self.cfg = cfg
        self.plan = Plan.from_config(cfg, catalog)
        self.runtime = runtime or Runtime.resolve(cfg.device, cfg.dtype)
        self.timings = Timings()
        self._weights: dict[str, Path] = {}
        self.frames_written = 0

    # -- weights ---------------------------------------------------------------------------------
    def fetch_weights(self) -> dict[str, Path]:
        """Fetch (or find in the cache) every checkpoint this run needs, before any video is decoded.

        Every role is tried; when some cannot be had, one LipsyncError lists all of them with the flag to use.
        """
        from .. import models
        from ..weights import store as weights
        from ..weights.manifest import load_manifest

        manifest = load_manifest()
        problems: list[str] = []
        for role in self.plan.roles:
            if role in self._weights:
                continue
            wid = self.plan.resolve_weight_id(role, manifest)
            source = self.plan.source(role)
            if source == wid:
                source = None  # named by its manifest id (e.g. --checkpoint_path wav2lip_gan): its own sources
            flag = self.plan.catalog.roles[role].flag
            try:
                self._weights[role] = weights.fetch(wid, source=source, cache_dir=self.cfg.cache_dir,
                                                    validate=models.validator(
                                                        manifest.entry(wid).arch,
                                                        lambda a: self.plan.catalog.flag_for_arch(a, manifest)),
                                                    progress=self.cfg.progress, flag=flag)
            except LipsyncError as exc:  # a user's own source names its flag already
                problems.append(str(exc) if str(exc).startswith(flag) else f"{exc} (give the file with {flag})")
        if problems:
            if self.plan.detector is not None and self.plan.detector.role and len(problems) == 1 \
                    and self.plan.detector.role not in self._weights:
                problems[0] += "; or use --detector haar, which needs no download"
            raise LipsyncError(problems[0] if len(problems) == 1 else
                               f"{len(problems)} weight files could not be had: " + " | ".join(problems))
        return self._weights

    def model(self, role: str) -> torch.nn.Module:
        """The loaded, placed model of ``role`` (fetched by :meth:`fetch_weights`)."""
        return self.runtime.model(self._arch(role), self._weights[role])

    def _arch(self, role: str) -> str:
        """The registry architecture of ``role``'s weights."""
        from ..weights.manifest import load_manifest

        manifest = load_manifest()
        return manifest.entry(self.plan.resolve_weight_id(role, manifest)).arch

    def _context(self) -> BuildContext:
        return BuildContext(cfg=self.cfg, runtime=self.runtime, model=self.model, path=self._weights.__getitem__,
                            detector=self.plan.detector)

    # -- pass 1 ----------------------------------------------------------------------------------
    def detection_settings(self):
        from ..face.track import DetectionSettings

        c = self.cfg
        det = self.plan.detector
        precision = self.runtime.precision_for(self._arch(det.role)) if det is not None and det.role else "float32"
        return DetectionSettings(detector=c.detector, dtype=precision,
                                 det_size=c.det_size or None, det_stride=c.det_stride,
                                 batch_size=c.face_det_batch_size, pads=tuple(c.pads), nosmooth=c.nosmooth,
                                 face_point=c.face_point, box=c.box)

    def track(self, video: FaceVideo, n_needed: int) -> FaceTrack:
        """Pass 1: the face track over the first ``n_needed`` source frames.

        The detected track is cached per (video content, detection settings, detector); pads and smoothing are
        applied after the cache, so changing them never re-runs detection.
        """
        from ..face import cache
        from ..face.plausibility import MotionSampler
        from ..face.track import build_track, detect_track, finalize_track

        t0 = time.perf_counter()
        settings = self.detection_settings()
        frames = self._timed(video.frames(max_frames=n_needed, det_size=settings.det_size), "decode")
        sampler = MotionSampler()
        if self.cfg.keyframed:
            result = self.follow_box(frames, video, settings.det_size)
            if result.unsure:
                log.warning(result.report())
            else:
                self.info(result.report())
            return result.track
        if self.plan.detector is None:
            track = build_track(sampler.watch(frames), None, settings, frame_size=video.frame_size, fps=video.fps)
            self._check_plausible(track, sampler)
            return track
        keys = None
        if not self.cfg.no_track_cache:
            # Two entries per video and settings: the whole video (reused for audio of any length) and the
            # longest prefix detected so far (reused when it covers the frames this run needs).
            ident, extra = self._detector_identity(), self._video_key_extra(video)
            keys = cache.track_keys(video.path, settings, ident,
                                    {part: f"{extra};{part}" for part in ("whole", "prefix")})
            whole = cache.load_track(keys["whole"], self.cfg.cache_dir)
            prefix = cache.load_track(keys["prefix"], self.cfg.cache_dir)
            hit = whole if whole is not None else (prefix if prefix is not None and prefix.n_frames >= n_needed
                                                   else None)
            if hit is not None:
                self.info("face track reused from the cache")
                self._check_plausible(hit.head(n_needed), None)  # the checks on boxes alone
                return finalize_track(hit.head(n_needed), settings)
        before = self.timings.seconds["decode"]
        bar = self._bar(n_needed, "detect")
        try:
            raw = detect_track(sampler.watch(frames), self.detector(), settings,
                               scale=video.detection_scale(settings.det_size), frame_size=video.frame_size,
                               fps=video.fps, on_frames=bar.update)
        finally:
            bar.close()
        self.timings.add("detect", t0)
        self.timings.seconds["detect"] -= self.timings.seconds["decode"] - before
        if keys is not None:  # fewer frames than asked for: the video ended, this is all of it
            cache.save_track(keys["whole" if raw.n_frames < n_needed else "prefix"], raw, self.cfg.cache_dir,
                             video=video.path)
        self._check_plausible(raw, sampler)
        return finalize_track(raw, settings)

    def keyframes(self) -> list:
        """The user's keyframes (``--track_box`` / ``--box_keyframes``)."""
        from ..face.boxtrack import load_keyframes, parse_track_box

        if self.cfg.box_keyframes is not None:
            return load_keyframes(self.cfg.box_keyframes)
        return [parse_track_box(k.split()) for k in self.cfg.track_box or ()]

    def follow_box(self, frames: Iterator[np.ndarray], video: FaceVideo, det_size: int | None):
        """The keyframed box followed through ``frames`` (decoded at ``det_size``): a ``face.boxtrack.BoxTrack``
        with the unsure ranges."""
        from ..face.boxtrack import track_box

        t0 = time.perf_counter()
        before = self.timings.seconds["decode"]
        result = track_box(frames, self.keyframes(), fps=video.fps, frame_size=video.frame_size,
                           scale=video.detection_scale(det_size))
        self.timings.add("track", t0)
        self.timings.seconds["track"] -= self.timings.seconds["decode"] - before
        return result

    def _check_plausible(self, track: FaceTrack, sampler) -> None:
        """Warn about a track that is likely not a face (see :mod:`face.plausibility`)."""
        from ..face.plausibility import check_track, hint

        for suspicion in check_track(track, sampler):
            log.warning(suspicion.message(hint(None if self.plan.detector is None else self.plan.detector.name)))

    def detector(self):
        """The plan's face detector, built on the runtime."""
        assert self.plan.detector is not None
        return self.plan.detector.build(self._context())

    def _release_detector(self) -> None:
        """Pass 1 is over: the detector's weights (90-110 MB) are not needed while rendering."""
        det = self.plan.detector
        if det is not None and det.role and det.role in self._weights:
            self.runtime.release(self._arch(det.role), self._weights[det.role])

    def _detector_identity(self) -> str:
        det = self.plan.detector
        assert det is not None
        if not det.role:
            return det.name
        path = self._weights[det.role]
        st = path.stat()
        return f"{det.name}:{path.name}:{st.st_size}:{st.st_mtime_ns}"

    def _video_key_extra(self, video: FaceVideo) -> str:
        return (f"fps={video.fps:.6f};static={video.static};rf={video.resize_factor};"
                f"rot={video.rotate};crop={tuple(video.crop)}")

    # -- pass 2 ----------------------------------------------------------------------------------
    def build_stages(self) -> list[Stage]:
        """The render stages of this configuration, in order, prepared on the runtime."""
        ctx = self._context()
        stages = [spec.build(ctx) for spec in self.plan.stages]
        for stage in stages:
            stage.prepare(self.runtime)
        return stages

    def _batches(self, video: FaceVideo, track: FaceTrack, mel: np.ndarray, n_out: int,
                 quiet: np.ndarray | None = None) -> Iterator[Batch]:
        """Decoded batches of output frames with their boxes and mel windows (runs in a prefetch thread);
        ``quiet`` flags the mel frames under ``--silence_gate_db``."""
        w, h = video.frame_size
        bs = render_batch_frames(self.cfg.wav2lip_batch_size, w * h * 3, self.runtime.device.type)
        if self.runtime.device.type == "cpu" and self.plan.cpu_frames:
            bs = min(bs, self.plan.cpu_frames)  # slow stages: the progress bar moves every few seconds
        idx: list[int] = []
        srcs: list[int] = []
        frames: list[np.ndarray] = []
        has_lm = track.landmarks is not None

        def make() -> Batch:
            return Batch(indices=list(idx), frames=list(frames), boxes=[track.boxes[s] for s in srcs],
                         mels=audio_mod.mel_windows(mel, video.fps, idx, offset_ms=self.cfg.audio_offset_ms,
                                                    quiet=quiet),
                         landmarks=[track.landmarks[s] for s in srcs] if has_lm else None)

        for out_i, (src, frame) in enumerate(video.looped(n_out, track.n_frames)):
            idx.append(out_i)
            srcs.append(src)
            frames.append(frame)
            if len(idx) == bs:
                yield make()
                idx.clear()
                srcs.clear()
                frames.clear()
        if idx:
            yield make()

    def render(self, video: FaceVideo, track: FaceTrack, mel: np.ndarray, n_out: int, audio_path: Path,
               duration: float, outfile: Path, quiet: np.ndarray | None = None) -> None:
        """Pass 2: decode, sync, enhance, blend and encode, overlapping decode with compute."""
        from ..media.video import VideoWriter

        stages = self.build_stages()
        scale = self.plan.scale
        w, h = video.frame_size
        prefetch: queue.Queue = queue.Queue(maxsize=1)  # one batch decoded ahead while one is computed

        stop = threading.Event()

        def hand_over(item: object) -> bool:
            """Queue ``item`` for the consumer; False once the consumer has stopped."""
            while not stop.is_set():
                try:
                    prefetch.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def producer() -> None:
            batches = self._batches(video, track, mel, n_out, quiet)
            try:
                for b in batches:
                    if not hand_over(b):
                        return
                hand_over(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                hand_over(exc)
            finally:
                batches.close()  # stops the frame reader's ffmpeg when we end early

        thread = threading.Thread(target=producer, name="lipsync-decode", daemon=True)
        thread.start()
        bar = self._bar(n_out, "render")
        try:
            with VideoWriter(outfile, size=(w * scale, h * scale), fps=video.fps, audio=audio_path,
                             audio_duration=duration, crf=self.cfg.crf, preset=self.cfg.preset) as writer:
                while True:
                    t0 = time.perf_counter()
                    item = prefetch.get()
                    self.timings.add("decode_wait", t0)
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    for stage in stages:
                        t0 = time.perf_counter()
                        stage(item)
                        self.timings.add(stage.name, t0)
                    t0 = time.perf_counter()
                    for frame in item.frames:
                        writer.write(frame)
                    self.timings.add("encode", t0)
                    bar.update(len(item.frames))
                self.frames_written = writer.frames_written
        finally:
            bar.close()
            stop.set()  # on an error or Ctrl-C the producer stops within one decoded frame, not the whole video
            thread.join()

    # -- the job ---------------------------------------------------------------------------------
    def run(self, face: str | Path, audio: str | Path, outfile: str | Path) -> Path:
        """Lip-sync ``face`` to ``audio`` into ``outfile`` (.mp4, .m4v, .mov or .mkv); returns the output path.

        Before any work: the output must not be an input (nor a weight file given by path), its folder must be
        writable (missing folders are created, and removed again if the run fails), and what killed runs left
        there and in the temp dir is reclaimed. The output appears only when complete (see VideoWriter).
        """
        from ..face.align import landmarks_from_box
        from ..inputs.resolve import resolve_inputs

        cfg = self.cfg
        outfile = Path(outfile)
        given = {"face": face, "audio": audio,
                 **{self.plan.catalog.roles[r].flag: self.plan.source(r) for r in self.plan.roles}}
        safety.check_not_an_input(outfile, given)
        safety.output_format(outfile)
        safety.reclaim_leftovers(*([outfile.parent] if outfile.parent.is_dir() else []))
        started = time.perf_counter()
        with safety.OutputPlace(outfile) as place, _work_dir() as work:
            face_path, audio_path = resolve_inputs(
                face, audio, start=cfg.start, end=cfg.end, audio_start=cfg.audio_start, audio_end=cfg.audio_end,
                workdir=work, cookies=cfg.cookies, max_seconds=cfg.max_seconds, progress=cfg.progress)
            self.fetch_weights()
            if cfg.fix_offset and audio_path == face_path:  # --audio same: align the source's own A/V first
                from ..score.session import fix_source_offset

                audio_path = fix_source_offset(self, face_path, Path(work))
            video = FaceVideo.open(face_path, still_fps=cfg.fps, static=cfg.static, resize_factor=cfg.resize_factor,
                                   rotate=cfg.rotate, crop=tuple(cfg.crop))
            t0 = time.perf_counter()
            wav = audio_mod.load_audio(audio_path)
            if wav.size == 0:
                raise LipsyncError(f"{audio} contains no audio samples")
            duration = wav.size / audio_mod.SAMPLE_RATE
            mel = audio_mod.melspectrogram(wav)
            quiet = None if cfg.silence_gate_db is None else audio_mod.quiet_frames(wav, cfg.silence_gate_db)
            self.timings.add("mel", t0)
            n_out = audio_mod.frames_for_audio(wav.size, video.fps)
            w, h = video.frame_size
            place.check_space(safety.estimate_output_bytes(w * self.plan.scale, h * self.plan.scale, duration,
                                                           video.fps))
            if cfg.box is not None:
                _check_box(cfg.box, video.frame_size)
            track = self.track(video, n_out)
            self._release_detector()
            if self.plan.needs_landmarks and track.landmarks is None:
                track.landmarks = [None if b is None else landmarks_from_box(b) for b in track.boxes]
            if not track.any_face:
                raise LipsyncError(f"no face found in any frame of {face}; {self._no_face_hint()}")
            self.render(video, track, mel, n_out, audio_path, duration, outfile, quiet)
            seconds = time.perf_counter() - started
            self.info(f"{self.frames_written} frames in {seconds:.1f} s "
                      f"({self.frames_written / max(seconds, 1e-9):.1f} frames/s): {outfile}")
            if cfg.score or cfg.fix_offset:
                from ..score.session import after_run

                after_run(self, face_path, outfile)
        return outfile

    def _no_face_hint(self) -> str:
        others = [d for d in self.plan.catalog.detectors if d != self.cfg.detector]
        return (f"try --detector {' or '.join(others)}, --det_size 0 (full-resolution detection), "
                "--track_box TOP BOTTOM LEFT RIGHT [@SECONDS] (a box set on a frame and followed), "
                "or a clip where the face is visible")

    def info(self, message: str) -> None:
        """A summary or info line on stderr, unless ``--quiet``."""
        if not self.cfg.quiet:
            print(f"lipsync: {message}", file=sys.stderr)

    # -- progress --------------------------------------------------------------------------------
    def _bar(self, total: int | None, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="frame", disable=not self.cfg.progress, leave=False)

    def _timed(self, it: Iterator, name: str) -> Iterator:
        """``it``, with the time spent producing each item added to timing ``name``."""
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self.timings.add(name, t0)
            yield item


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


def lipsync(face: str | Path, audio: str | Path, outfile: str | Path, variant: str = "original",
            **options: Any) -> Path:
    """Run the whole job with a configuration built from ``variant`` and ``options`` (RunConfig fields)."""
    cfg = make_config(variant, **options)
    return Pipeline(cfg).run(face, audio, outfile)
