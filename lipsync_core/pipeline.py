"""The one pipeline: resolve inputs and weights, pass 1 (face track), pass 2 (streaming render).

Variants differ only in their :class:`~lipsync_core.config.RunConfig` (weights per role, detector,
enhancement stages); this module never branches on the variant's name.
"""
from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import audio as audio_mod
from .config import RunConfig, make_config
from .errors import LipsyncError
from .face.types import FaceTrack
from .stages.base import Batch, Runtime, Stage
from .stages.read import FaceVideo

log = logging.getLogger(__name__)

#: Detectors with weights; each one's weight role has its name (``--s3fd_path``, ``--retinaface_path``).
DETECTOR_ROLES = ("s3fd", "retinaface")
#: Roles a run may need that a variant's manifest row does not name (e.g. ``--detector retinaface`` on original).
ROLE_FALLBACK = {"s3fd": "s3fd", "retinaface": "retinaface_resnet50", "checkpoint": "wav2lip"}


def resolve_runtime(device: str, dtype: str) -> Runtime:
    """``auto`` picks CUDA when present; the compute dtype defaults to float16 on CUDA, float32 on CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LipsyncError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if dtype == "auto":
        dtype = "float16" if dev.type == "cuda" else "float32"
    return Runtime(device=dev, dtype=getattr(torch, dtype))


def required_roles(cfg: RunConfig) -> list[str]:
    """The weight roles this configuration loads (nothing it skips is downloaded)."""
    roles = ["checkpoint"]
    if cfg.box is None and cfg.detector in DETECTOR_ROLES:
        roles.append(cfg.detector)  # with a fixed box nothing is detected (CodeFormer aligns on box landmarks)
    stages = set(cfg.stages)
    if "sr" in stages and not cfg.no_sr:
        roles.append("sr")
    if "segmentation" in stages and not cfg.no_segmentation:
        roles.append("segmentation")
    if "codeformer" in stages:
        roles += ["codeformer", "parsenet"]
    if "upscale" in stages and cfg.upscale == 2:
        roles.append("upscaler")
    return roles


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
    """One configured lip-sync job runner; :meth:`run` may be called for several inputs."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.runtime = resolve_runtime(cfg.device, cfg.dtype)
        self.timings = Timings()
        self._models: dict[str, Any] = {}
        self._weights: dict[str, Path] = {}
        self.frames_written = 0

    # -- weights ---------------------------------------------------------------------------------
    def fetch_weights(self) -> dict[str, Path]:
        """Fetch (or find in the cache) every checkpoint this run needs, before any video is decoded."""
        from . import models, weights
        from .manifest import load_manifest

        manifest = load_manifest()
        for role in required_roles(self.cfg):
            if role in self._weights:
                continue
            wid = self._weight_id(role)
            source = getattr(self.cfg, f"{role}_path")
            if source == wid:
                source = None  # named by its manifest id (e.g. --checkpoint_path wav2lip_gan): its own sources
            self._weights[role] = weights.fetch(wid, source=source, validate=models.validator(manifest.entry(wid).arch))
        return self._weights

    def _model(self, role: str) -> torch.nn.Module:
        from . import models
        from .manifest import load_manifest

        if role not in self._models:
            arch = load_manifest().entry(self._weight_id(role)).arch
            self._models[role] = models.load(arch, self._weights[role], device=self.runtime.device)
        return self._models[role]

    def _weight_id(self, role: str) -> str:
        """The manifest entry for ``role``: the one its ``--<role>_path`` names, else the variant's."""
        from .manifest import load_manifest

        manifest = load_manifest()
        default = manifest.roles(self.cfg.variant).get(role) or ROLE_FALLBACK[role]
        given = getattr(self.cfg, f"{role}_path")
        if given not in manifest.weights or Path(given).exists():
            return default
        arch = manifest.entry(default).arch
        if manifest.entry(given).arch != arch:
            fits = sorted(w for w, e in manifest.weights.items() if e.arch == arch)
            raise LipsyncError(f"--{role}_path {given} names weights of another kind; use one of {', '.join(fits)}, "
                               "a file, a URL or a Drive ID")
        return given

    # -- pass 1 ----------------------------------------------------------------------------------
    def _detector(self):
        name = self.cfg.detector
        if name == "haar":
            from .face.haar import HaarDetector

            return HaarDetector()
        if name == "s3fd":
            from .face.s3fd import S3FDDetector

            return S3FDDetector(self._model("s3fd"), device=self.runtime.device, dtype=self.runtime.dtype,
                                batch_size=self.cfg.face_det_batch_size)
        from .face.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(self._model("retinaface"), device=self.runtime.device, dtype=self.runtime.dtype,
                                  batch_size=self.cfg.face_det_batch_size)

    def detection_settings(self):
        from .face.track import DetectionSettings

        c = self.cfg
        return DetectionSettings(detector=c.detector, det_size=c.det_size or None, det_stride=c.det_stride,
                                 batch_size=c.face_det_batch_size, pads=tuple(c.pads), nosmooth=c.nosmooth,
                                 face_point=c.face_point, box=c.box)

    def track(self, video: FaceVideo, n_needed: int) -> FaceTrack:
        """Pass 1: the face track over the first ``n_needed`` source frames.

        The detected track is cached per (video content, detection settings, detector); pads and smoothing are
        applied after the cache, so changing them never re-runs detection.
        """
        from .face import cache
        from .face.track import build_track, detect_track, finalize_track

        t0 = time.perf_counter()
        settings = self.detection_settings()
        frames = self._timed(video.frames(max_frames=n_needed, det_size=settings.det_size), "decode")
        if settings.box is not None:
            return build_track(frames, None, settings, frame_size=video.frame_size, fps=video.fps)
        keys = None
        if self.cfg.track_cache:
            # Two entries per video and settings: the whole video (reused for audio of any length) and the
            # longest prefix detected so far (reused when it covers the frames this run needs).
            ident, extra = self._detector_identity(), self._video_key_extra(video)
            keys = {part: cache.track_key(video.path, settings, ident, extra=f"{extra};{part}")
                    for part in ("whole", "prefix")}
            whole, prefix = cache.load_track(keys["whole"]), cache.load_track(keys["prefix"])
            hit = whole if whole is not None else (prefix if prefix is not None and prefix.n_frames >= n_needed
                                                   else None)
            if hit is not None:
                log.info("face track reused from cache")
                return finalize_track(hit.head(n_needed), settings)
        before = self.timings.seconds["decode"]
        raw = detect_track(self._progress(frames, "detect", n_needed), self._detector(), settings,
                           scale=video.detection_scale(settings.det_size), frame_size=video.frame_size, fps=video.fps)
        self.timings.add("detect", t0)
        self.timings.seconds["detect"] -= self.timings.seconds["decode"] - before
        if keys is not None:  # fewer frames than asked for: the video ended, this is all of it
            cache.save_track(keys["whole" if raw.n_frames < n_needed else "prefix"], raw)
        return finalize_track(raw, settings)

    def _release_detector(self) -> None:
        """Pass 1 is over: the detector's weights (90-110 MB) are not needed while rendering."""
        for role in DETECTOR_ROLES:
            self._models.pop(role, None)

    def _detector_identity(self) -> str:
        name = self.cfg.detector
        if name not in DETECTOR_ROLES:
            return name  # Haar: OpenCV's bundled cascade
        st = self._weights[name].stat()
        return f"{name}:{self._weights[name].name}:{st.st_size}:{st.st_mtime_ns}"

    def _video_key_extra(self, video: FaceVideo) -> str:
        return (f"fps={video.fps:.6f};static={video.static};rf={video.resize_factor};"
                f"rot={video.rotate};crop={tuple(video.crop)}")

    # -- pass 2 ----------------------------------------------------------------------------------
    def build_stages(self) -> list[Stage]:
        """The render stages of this configuration, in order, prepared on the runtime."""
        from .stages.blend import BlendStage
        from .stages.sync import SyncStage

        cfg = self.cfg
        chosen = set(cfg.stages)
        stages: list[Stage] = [SyncStage(self._model("checkpoint"), batch_size=cfg.wav2lip_batch_size,
                                         compile=cfg.compile)]
        if "sr" in chosen and not cfg.no_sr:
            from .stages.hq import SuperResolution

            stages.append(SuperResolution(self._model("sr")))
        if "segmentation" in chosen and not cfg.no_segmentation:
            from .stages.hq import SegmentationMask

            stages.append(SegmentationMask(self._model("segmentation"), feather_px=cfg.mask_feather,
                                           lower_face=cfg.mask_lower_face))
        stages.append(BlendStage(cfg.blend))
        if "upscale" in chosen and cfg.upscale == 2:
            from .stages.upscale import UpscaleStage

            stages.append(UpscaleStage(self._model("upscaler")))
        if "codeformer" in chosen:
            from .stages.restore import CodeFormerRestore

            stages.append(CodeFormerRestore(self._model("codeformer"), self._model("parsenet"),
                                            fidelity=cfg.fidelity))
        if "sharpen" in chosen and cfg.sharpen > 0:
            from .stages.restore import Sharpen

            stages.append(Sharpen(cfg.sharpen))
        for stage in stages:
            stage.prepare(self.runtime)
        return stages

    def _batches(self, video: FaceVideo, track: FaceTrack, mel: np.ndarray, n_out: int) -> Iterator[Batch]:
        """Decoded batches of output frames with their boxes and mel windows (runs in a prefetch thread)."""
        w, h = video.frame_size
        bs = render_batch_frames(self.cfg.wav2lip_batch_size, w * h * 3, self.runtime.device.type)
        idx: list[int] = []
        srcs: list[int] = []
        frames: list[np.ndarray] = []
        has_lm = track.landmarks is not None

        def make() -> Batch:
            return Batch(indices=list(idx), frames=list(frames), boxes=[track.boxes[s] for s in srcs],
                         mels=audio_mod.mel_windows(mel, video.fps, idx, offset_ms=self.cfg.audio_offset_ms),
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
               duration: float, outfile: Path) -> None:
        """Pass 2: decode, sync, enhance, blend and encode, overlapping decode with compute."""
        from .media.video import VideoWriter

        stages = self.build_stages()
        scale = self.cfg.upscale if "upscale" in self.cfg.stages else 1
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
            batches = self._batches(video, track, mel, n_out)
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
        """Lip-sync ``face`` to ``audio`` into ``outfile`` (mp4); returns the output path."""
        from .inputs import resolve_inputs

        cfg = self.cfg
        outfile = Path(outfile)
        outfile.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="lipsync-") as work:
            face_path, audio_path = resolve_inputs(
                face, audio, start=cfg.start, end=cfg.end, audio_start=cfg.audio_start, audio_end=cfg.audio_end,
                workdir=Path(work), cookies=cfg.cookies, max_seconds=cfg.max_seconds)
            self.fetch_weights()
            video = FaceVideo.open(face_path, still_fps=cfg.fps, static=cfg.static, resize_factor=cfg.resize_factor,
                                   rotate=cfg.rotate, crop=tuple(cfg.crop))
            t0 = time.perf_counter()
            wav = audio_mod.load_audio(audio_path)
            if wav.size == 0:
                raise LipsyncError(f"{audio} contains no audio samples")
            duration = wav.size / audio_mod.SAMPLE_RATE
            mel = audio_mod.melspectrogram(wav)
            self.timings.add("mel", t0)
            n_out = audio_mod.frames_for_audio(wav.size, video.fps)
            if cfg.box is not None:
                _check_box(cfg.box, video.frame_size)
            track = self.track(video, n_out)
            self._release_detector()
            if "codeformer" in cfg.stages and track.landmarks is None:
                from .face.align import landmarks_from_box

                track.landmarks = [None if b is None else landmarks_from_box(b) for b in track.boxes]
            if not track.any_face:
                raise LipsyncError(f"no face found in any frame of {face}; try --detector haar or s3fd, "
                                   "a fixed --box top bottom left right, or a clip where the face is visible")
            self.render(video, track, mel, n_out, audio_path, duration, outfile)
        return outfile

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

    def _progress(self, it: Iterator, desc: str, total: int | None) -> Iterator:
        bar = self._bar(total, desc)
        try:
            for x in it:
                yield x
                bar.update(1)
        finally:
            bar.close()


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
