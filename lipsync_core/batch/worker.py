"""A batch worker: runs jobs one after another, keeping loaded models between jobs that use the same weights.

The same class runs in the driver's process (one worker), in a subprocess per worker, or as a Ray actor.
Every job's output is rendered under a name carrying this host and process (:mod:`.scratch`) and renamed into
place only when complete, so no partial output is ever seen at the job's path.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import RunConfig
from ..errors import LipsyncError
from . import scratch

log = logging.getLogger(__name__)


@dataclass
class PreparedJob:
    """A job as the driver hands it to a worker: resolved config, local inputs, fetched weights."""

    index: int  # position in the batch
    row: int | None
    cfg: RunConfig  # the job's resolved config (its identity); the worker runs it without input trims
    face: str  # local, already trimmed face video or image
    audio: str  # local, already trimmed audio
    outfile: str
    key: str
    weights: dict[str, str] = field(default_factory=dict)  # role -> local path the driver fetched
    weight_sha: dict[str, str] = field(default_factory=dict)  # role -> sha256 of that file


@dataclass
class Outcome:
    """What a worker reports for one job (or one face-track priming)."""

    ok: bool
    worker: str
    error: str | None = None
    size: int | None = None
    mtime: float | None = None
    duration: float | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def one_line(exc: BaseException) -> str:
    """An exception as one line (a LipsyncError's message; anything else with its type)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, LipsyncError) else f"{type(exc).__name__}: {text}"


class Worker:
    """Runs :class:`PreparedJob` s. ``device`` replaces a job's ``auto`` device (one GPU per worker);
    ``cache_dir`` is the cache root the driver uses (faces tracks, weights), applied in a worker process
    of its own; ``threads`` caps torch's CPU threads there."""

    def __init__(self, device: str | None = None, cache_dir: str | None = None, threads: int | None = None,
                 own_process: bool = False) -> None:
        self.device = device
        self.name = f"{scratch.host()}:{os.getpid()}"
        if own_process:
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
            if cache_dir:
                # The pipeline reads its cache root from the process environment; this process is ours alone.
                os.environ["LIPSYNC_CACHE"] = cache_dir
            if threads:
                import torch

                torch.set_num_threads(threads)
        self._pipelines: dict[tuple, object] = {}

    def info(self) -> str:
        """``host:pid`` of this worker."""
        return self.name

    # -- models ----------------------------------------------------------------------------------------------
    def _config(self, job: PreparedJob) -> RunConfig:
        # Inputs arrive resolved and trimmed: the job's trims and download options do not apply again.
        cfg = replace(job.cfg, start=None, end=None, audio_start=None, audio_end=None, cookies=None,
                      max_seconds=None)
        if cfg.device == "auto" and self.device:
            cfg = replace(cfg, device=self.device)
        return cfg

    def _pipeline(self, job: PreparedJob, cfg: RunConfig):
        """The pipeline (and its loaded models) for this job's weights, made on first use."""
        from ..pipeline import Pipeline

        key = (cfg.device, cfg.dtype, cfg.variant, cfg.compile, tuple(sorted(job.weights.items())))
        pipe = self._pipelines.get(key)
        if pipe is None:
            pipe = Pipeline(cfg)
            if all(Path(p).is_file() for p in job.weights.values()):
                pipe._weights.update({role: Path(p) for role, p in job.weights.items()})
            else:  # another machine without the driver's folder: this node's cache, filled through the manifest
                self._check_same_weights(pipe, job)
            self._pipelines[key] = pipe
        pipe.cfg = cfg
        return pipe

    def _check_same_weights(self, pipe, job: PreparedJob) -> None:
        from ..weights import sha256_file

        for role, path in pipe.fetch_weights().items():
            want = job.weight_sha.get(role)
            if want and sha256_file(path) != want:
                raise LipsyncError(f"the {role} weights on {scratch.host()} differ from the driver's; give every "
                                   "node the same files (a shared folder)")

    # -- work ------------------------------------------------------------------------------------------------
    def run(self, job: PreparedJob) -> Outcome:
        """Render one job to its outfile (atomically); a failure is reported, never raised (Ctrl-C is)."""
        t0 = time.perf_counter()
        out = Path(job.outfile)
        tmp = scratch.temp_output(out)
        try:
            cfg = self._config(job)
            pipe = self._pipeline(job, cfg)
            out.parent.mkdir(parents=True, exist_ok=True)
            scratch.reclaim(out)
            before = dict(pipe.timings.seconds)
            pipe.run(job.face, job.audio, tmp)
            os.replace(tmp, out)
            timings = {k: v - before.get(k, 0.0) for k, v in pipe.timings.seconds.items()}
        except Exception as exc:  # noqa: BLE001 - one job's failure is reported; the batch goes on
            if not isinstance(exc, LipsyncError):
                log.error("job %s failed unexpectedly", job.row, exc_info=True)
            return Outcome(ok=False, worker=self.name, error=one_line(exc), seconds=time.perf_counter() - t0)
        finally:
            tmp.unlink(missing_ok=True)
        from ..media.probe import probe

        st = out.stat()
        return Outcome(ok=True, worker=self.name, size=st.st_size, mtime=st.st_mtime, duration=probe(out).duration,
                       seconds=time.perf_counter() - t0, timings=timings)

    def prime(self, job: PreparedJob) -> Outcome:
        """Pass 1 only: detect the face track of ``job``'s face into the track cache, so the jobs sharing that
        face (running on other workers) read it instead of detecting it again."""
        t0 = time.perf_counter()
        try:
            from .. import audio as audio_mod
            from ..stages.read import FaceVideo

            cfg = self._config(job)
            pipe = self._pipeline(job, cfg)
            pipe.fetch_weights()
            video = FaceVideo.open(job.face, still_fps=cfg.fps, static=cfg.static, resize_factor=cfg.resize_factor,
                                   rotate=cfg.rotate, crop=tuple(cfg.crop))
            n_needed = audio_mod.frames_for_audio(audio_mod.load_audio(job.audio).size, video.fps)
            pipe.track(video, n_needed)
            pipe._release_detector()
        except Exception as exc:  # noqa: BLE001 - the jobs themselves will report it
            return Outcome(ok=False, worker=self.name, error=one_line(exc), seconds=time.perf_counter() - t0)
        return Outcome(ok=True, worker=self.name, seconds=time.perf_counter() - t0)
