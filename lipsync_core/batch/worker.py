"""A batch worker: runs jobs one after another, keeping loaded models between jobs that use the same weights.

The same class runs in the driver's process (one worker), in a subprocess per worker, or as a Ray actor; it
gets everything through its arguments and the jobs' configs (cache folder included), nothing from the
environment. Outputs appear only when complete, and what a killed worker left is reclaimed by the next run on
the same host (the pipeline's own guarantees, :mod:`lipsync_core.support.safety`).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.options import RunOptions
from ..support.errors import LipsyncError

if TYPE_CHECKING:
    from ..compute.runtime import Runtime
    from ..engine.session import Session

log = logging.getLogger(__name__)


@dataclass
class PreparedJob:
    """A job as the driver hands it to a worker: resolved config, local inputs, fetched weights."""

    index: int  # position in the batch
    row: int | None
    cfg: RunOptions  # the job's resolved config (its identity); the worker runs it without input trims
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
    """Runs :class:`PreparedJob` s on one :class:`~lipsync_core.compute.runtime.Runtime` per device and dtype, so models
    stay loaded from one job to the next. ``device`` replaces a job's ``auto`` device (one GPU per worker);
    ``threads`` caps torch's CPU threads; ``own_process``: this process runs nothing else (a subprocess or a Ray
    actor), so per-job messages and progress bars are left to the driver."""

    def __init__(self, device: str | None = None, threads: int | None = None, own_process: bool = False) -> None:
        from .state import Identities

        self.device = device
        self.own_process = own_process
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        if own_process:
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
            if threads:
                import torch

                torch.set_num_threads(threads)
        self._runtimes: dict[tuple[str, str], Runtime] = {}
        self._ids = Identities()

    def info(self) -> str:
        """``host:pid`` of this worker."""
        return self.name

    # -- models ----------------------------------------------------------------------------------------------
    def _config(self, job: PreparedJob) -> RunOptions:
        # Inputs arrive resolved and trimmed: the job's trims and download options do not apply again.
        cfg = job.cfg.replace(start=None, end=None, audio_start=None, audio_end=None, cookies=None, max_seconds=None)
        if cfg.device == "auto" and self.device:
            cfg = cfg.replace(device=self.device)
        if self.own_process:
            cfg = cfg.replace(quiet=True)
        return cfg

    def _runtime(self, cfg: RunOptions) -> Runtime:
        """The worker's runtime for the job's device and dtype (models loaded there stay loaded)."""
        from ..compute.runtime import Runtime

        key = (cfg.device, cfg.dtype)
        if key not in self._runtimes:
            self._runtimes[key] = Runtime.resolve(cfg.device, cfg.dtype)
        return self._runtimes[key]

    def _session(self, job: PreparedJob) -> Session:
        """A session for ``job`` on the worker's runtime, its weights fetched. The driver fetched every weight
        already: here that is a look-up in the cache (on another machine without the driver's cache, a download
        through the manifest), checked to be the driver's file."""
        from ..job import session_for

        cfg = self._config(job)
        session = session_for(cfg, runtime=self._runtime(cfg))
        for role, path in session.fetch_weights().items():
            want = job.weight_sha.get(role)
            if want and str(path) != job.weights.get(role) and self._ids.file(path) != want:
                raise LipsyncError(f"the {role} weights on {socket.gethostname()} ({path}) differ from the driver's; "
                                   "give every machine the same files (a shared folder or --cache_dir)")
        return session

    # -- work ------------------------------------------------------------------------------------------------
    def run(self, job: PreparedJob) -> Outcome:
        """Render one job to its outfile (atomically); a failure is reported, never raised (Ctrl-C is)."""
        t0 = time.perf_counter()
        out = Path(job.outfile)
        try:
            from ..job import run

            session = self._session(job)
            run(session, job.face, job.audio, out)
        except Exception as exc:  # noqa: BLE001 - one job's failure is reported; the batch goes on
            if not isinstance(exc, LipsyncError):
                log.error("job %s failed unexpectedly", job.row, exc_info=True)
            return Outcome(ok=False, worker=self.name, error=one_line(exc), seconds=time.perf_counter() - t0)
        from ..media.probe import probe

        st = out.stat()
        return Outcome(ok=True, worker=self.name, size=st.st_size, mtime=st.st_mtime, duration=probe(out).duration,
                       seconds=time.perf_counter() - t0, timings=dict(session.timings.seconds))

    def prime(self, job: PreparedJob) -> Outcome:
        """Pass 1 only: detect the face track of ``job``'s face into the track cache, so the jobs sharing that
        face (running on other workers) read it instead of detecting it again."""
        t0 = time.perf_counter()
        try:
            from ..engine.track import track_faces
            from ..media import audio as audio_mod

            session = self._session(job)
            video = session.open_video(job.face)
            track_faces(session, video, session.plan.options.detection,
                        audio_mod.frames_for_audio(audio_mod.load_audio(job.audio).size, video.fps))
        except Exception as exc:  # noqa: BLE001 - the jobs themselves will report it
            if not isinstance(exc, LipsyncError):
                log.error("face track of %s failed unexpectedly", job.face, exc_info=True)
            return Outcome(ok=False, worker=self.name, error=one_line(exc), seconds=time.perf_counter() - t0)
        return Outcome(ok=True, worker=self.name, seconds=time.perf_counter() - t0)
