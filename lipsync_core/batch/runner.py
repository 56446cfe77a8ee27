"""Run a batch: validate every job, fetch weights and resolve inputs once (driver side), skip what an earlier
run finished, dispatch the rest to workers, record each job in the state file as it ends.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.options import RunOptions
from ..inputs.resolve import SAME_AS_FACE, Kind, resolve_media
from ..support import files
from ..support.errors import LipsyncError
from ..support.paths import cache_dir
from .jobs import Job, as_job, resolve_jobs
from .pools import Finished, InlinePool, ProcessPool, RayPool, Task
from .state import DONE, FAILED, SKIPPED, Identities, Record, StateFile, job_key
from .worker import Outcome, PreparedJob, one_line

log = logging.getLogger(__name__)

#: A job that was neither finished nor failed because the batch was stopped (never written to the state file).
INTERRUPTED = "interrupted"


@dataclass
class JobResult:
    """How one job ended in this run."""

    row: int | None
    face: str
    audio: str
    outfile: str
    status: str  # done, skipped (done by an earlier run), failed, interrupted
    error: str | None = None
    size: int | None = None
    duration: float | None = None  # seconds of output video
    seconds: float | None = None  # wall time of the job
    attempts: int = 0
    worker: str | None = None
    key: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # per pipeline stage, for jobs run now


@dataclass
class BatchEvent:
    """Passed to ``on_event``: a job started on a worker, or ended (``result`` set)."""

    kind: str  # "started" or "finished"
    index: int  # 0-based position in the batch
    total: int
    worker: str | None = None
    result: JobResult | None = None


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch: finished jobs are kept and recorded, running ones discarded; ``results`` has all."""

    def __init__(self, results: list[JobResult], cause: KeyboardInterrupt | None = None) -> None:
        super().__init__("batch interrupted")
        self.results = results
        self.cause = cause  # what stopped it: Ctrl-C, or SIGTERM (``safety.Terminated``)


def default_state_path(job_list: str | os.PathLike) -> Path:
    """The state file beside a job list: ``jobs.csv`` -> ``jobs.state.json``."""
    p = Path(job_list)
    return p.with_name(f"{p.stem}.state.json")


def default_workers() -> int:
    """One worker per CUDA GPU, else one (on CPU, one worker with every core beats several sharing them)."""
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


def run_batch(jobs: Iterable[Job | dict[str, Any]], *, workers: int | None = None, ray_address: str | None = None,
              state: str | os.PathLike | None = None, defaults: dict[str, Any] | None = None,
              retry_failed: bool = False, inputs_dir: str | os.PathLike | None = None,
              on_event: Callable[[BatchEvent], None] | None = None) -> list[JobResult]:
    """Run ``jobs`` (:class:`~.jobs.Job` s or dicts with face, audio, outfile and run options by flag name).

    ``defaults``: options for every job unless a job sets its own (the command line's explicit flags).
    ``workers``: how many (default: one per GPU, else one); one runs in this process, more in subprocesses,
    or Ray actors with ``ray_address`` ("" = a local Ray instance, or the cluster ``ray start`` made).
    ``state``: the state file (resume: jobs it records as done with the same key and output are skipped;
    failed ones are retried with ``retry_failed``). ``inputs_dir``: where downloaded and trimmed inputs go
    (default: beside the state file, else a temporary folder); on a cluster every node must read it.
    Returns one result per job, in job order. Raises :class:`~.jobs.JobListError` (nothing run) for invalid
    jobs and :class:`BatchInterrupted` on Ctrl-C.
    """
    job_list = [as_job(j, i) for i, j in enumerate(jobs, 1)]
    if not job_list:
        raise LipsyncError("no jobs to run")
    configs = resolve_jobs(job_list, defaults)
    return _Batch(job_list, configs, state=StateFile(state) if state is not None else None,
                  retry_failed=retry_failed, inputs_dir=inputs_dir, on_event=on_event).run(workers, ray_address)


class _Batch:
    def __init__(self, jobs: list[Job], configs: list[RunOptions], *, state: StateFile | None, retry_failed: bool,
                 inputs_dir: str | os.PathLike | None, on_event: Callable[[BatchEvent], None] | None) -> None:
        self.jobs, self.configs, self.state = jobs, configs, state
        self.retry_failed = retry_failed
        self.on_event = on_event or (lambda event: None)
        self.ids = Identities()
        self.results: list[JobResult | None] = [None] * len(jobs)
        self._own_inputs = inputs_dir is None and state is None
        if inputs_dir is not None:
            self.inputs_dir = Path(inputs_dir)
        elif state is not None:
            self.inputs_dir = state.path.with_name(f"{state.path.stem}.inputs")
        else:
            self.inputs_dir = Path(tempfile.mkdtemp(prefix="lipsync-batch-inputs-"))
        self._resolved: dict[str, Path] = {}

    # -- the whole run ----------------------------------------------------------------------------------------
    def run(self, workers: int | None, ray_address: str | None) -> list[JobResult]:
        pool = None
        try:
            todo = self._prepare()
            if todo:
                pool = self._pool(workers, ray_address, len(todo))
                self._dispatch(pool, todo)
        except KeyboardInterrupt as exc:
            if pool is not None:
                pool.close(abort=True)
                pool = None
            self._reclaim_running()
            raise BatchInterrupted(self._final(), exc) from None
        finally:
            if pool is not None:
                pool.close()
            if self._own_inputs:
                shutil.rmtree(self.inputs_dir, ignore_errors=True)
        return self._final()

    def _final(self) -> list[JobResult]:
        out = []
        for job, res in zip(self.jobs, self.results):
            out.append(res or JobResult(job.row, job.face, job.audio, job.outfile, INTERRUPTED))
        return out

    def _pool(self, workers: int | None, ray_address: str | None, n_jobs: int):
        if ray_address is not None:
            return RayPool(ray_address, workers)
        n = min(workers or default_workers(), n_jobs)
        if n <= 1:
            return InlinePool()
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        devices = [f"cuda:{i % gpus}" if gpus else None for i in range(n)]
        threads = None if gpus else max(1, (os.cpu_count() or 1) // n)
        return ProcessPool(n, devices, threads)

    # -- before any job: weights, identities, skips, inputs ------------------------------------------------
    def _prepare(self) -> list[PreparedJob]:
        # Workers (other processes, other machines) get the cache folder in the job's config, never from their
        # environment: the driver's, unless the job names its own.
        self.configs = [c.replace(cache_dir=str(cache_dir(c.cache_dir))) for c in self.configs]
        weights = self._fetch_weights()
        todo: list[PreparedJob] = []
        for i, (job, cfg) in enumerate(zip(self.jobs, self.configs)):
            got = weights[i]
            if isinstance(got, str):
                self._finish(i, None, error=got)
                continue
            paths, shas = got
            try:
                key = job_key(cfg, self.ids.source(job.face), self.ids.source(job.audio), shas)
            except OSError as exc:
                self._finish(i, None, error=one_line(exc))
                continue
            out = str(Path(job.outfile).expanduser().resolve())
            if self.state is not None:
                rec = self.state.reusable(out, key)
                if rec is not None:
                    self._skip(i, rec)
                    continue
                old = self.state.get(out)
                if old is not None and old.status == FAILED and old.key == key and not self.retry_failed:
                    self.results[i] = JobResult(job.row, job.face, job.audio, out, FAILED, error=old.error,
                                                attempts=max(1, old.attempts), worker=old.worker, key=key)
                    continue
            todo.append(PreparedJob(index=i, row=job.row, cfg=cfg, face=job.face, audio=job.audio, outfile=out,
                                    key=key, weights={r: str(p) for r, p in paths.items()}, weight_sha=shas))
        ready = []
        for pj in todo:
            try:
                pj.face, pj.audio = (str(p) for p in self._inputs(pj.cfg, pj.face, pj.audio))
            except LipsyncError as exc:
                self._finish(pj.index, pj, error=one_line(exc))
                continue
            ready.append(pj)
        return self._order(ready)

    def _fetch_weights(self) -> list[tuple[dict[str, Path], dict[str, str]] | str]:
        """Per job: (role -> path, role -> sha256), or the one-line error; each weight set fetched once."""
        from ..engine.plan import Plan
        from ..engine.session import fetch_weights

        by_spec: dict[tuple, tuple[dict[str, Path], dict[str, str]] | str] = {}
        out = []
        for cfg in self.configs:
            plan = Plan.from_options(cfg)
            spec = (cfg.variant, cfg.cache_dir, tuple((r, plan.source(r)) for r in plan.roles))
            if spec not in by_spec:
                try:
                    paths = fetch_weights(plan)  # no runtime: the driver may have no GPU while the workers do
                    by_spec[spec] = (paths, {r: self.ids.file(p) for r, p in paths.items()})
                except LipsyncError as exc:
                    by_spec[spec] = one_line(exc)
            out.append(by_spec[spec])
        return out

    def _inputs(self, cfg: RunOptions, face: str, audio: str) -> tuple[Path, Path]:
        """Local, trimmed face and audio files (each distinct source and trim resolved once)."""
        opts = {"max_seconds": cfg.max_seconds, "cookies": cfg.cookies}
        face_path = self._resolve(face, cfg.start, cfg.end, "face", opts)
        if audio.strip().lower() in ("", SAME_AS_FACE):
            if cfg.audio_start is not None or cfg.audio_end is not None:
                raise LipsyncError("audio start/end need a separate audio source; with audio 'same' the face "
                                   "video's start/end trim both")
            return face_path, self._resolve(face, cfg.start, cfg.end, "audio", opts)
        return face_path, self._resolve(audio, cfg.audio_start, cfg.audio_end, "audio", opts)

    def _resolve(self, source: str, start, end, kind: Kind, opts: dict[str, Any]) -> Path:
        spec = json.dumps([source, start, end, kind, opts], default=str)
        if spec in self._resolved:
            return self._resolved[spec]
        local = Path(source).expanduser()
        if local.is_file() and start is None and end is None:
            path = resolve_media(local, kind=kind, max_seconds=opts["max_seconds"])  # checked, used in place
        else:
            path = self._resolve_into_folder(spec, source, start, end, kind, opts)
        self._resolved[spec] = path
        return path

    def _resolve_into_folder(self, spec: str, source: str, start, end, kind: Kind, opts: dict[str, Any]) -> Path:
        """Download/trim into ``inputs_dir/<hash>/`` (renamed into place when complete, reused on resume)."""
        final = self.inputs_dir / hashlib.sha256(spec.encode()).hexdigest()[:20]
        done = [p for p in final.iterdir() if p.is_file()] if final.is_dir() else []
        if len(done) == 1:
            return done[0]
        shutil.rmtree(final, ignore_errors=True)
        self.inputs_dir.mkdir(parents=True, exist_ok=True)
        files.reclaim(self.inputs_dir, prefix="lipsync-")  # what a killed run on this host left
        work = files.make_temp_dir("input", parent=self.inputs_dir)
        try:
            path = resolve_media(source, start=start, end=end, kind=kind, workdir=work, **opts)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return final / path.name

    def _order(self, todo: list[PreparedJob]) -> list[PreparedJob]:
        """Jobs sharing a face track together, the longest audio first (its track then covers the others'
        frames); jobs that detect nothing keep their place."""
        from ..media.probe import probe

        groups = [self._track_group(pj) for pj in todo]
        first: dict[Any, int] = {}
        keyed = []
        for pos, (pj, group) in enumerate(zip(todo, groups)):
            if group is None or groups.count(group) == 1:
                keyed.append(((pos, 0.0, pos), pj))
                continue
            first.setdefault(group, pos)
            try:
                length = probe(pj.audio).duration or 0.0
            except LipsyncError:
                length = 0.0
            keyed.append(((first[group], -length, pos), pj))
        return [pj for _, pj in sorted(keyed, key=lambda kv: kv[0])]

    @staticmethod
    def _track_group(pj: PreparedJob) -> tuple | None:
        """Jobs on the same face whose face-track cache keys agree share one track, detected once."""
        from ..engine.plan import Plan
        from ..engine.track import track_group

        det = Plan.from_options(pj.cfg).detector
        group = track_group(pj.cfg, pj.weights.get(det.role) if det is not None and det.role else None)
        return None if group is None else (pj.face, *group)

    # -- dispatch -------------------------------------------------------------------------------------------
    def _dispatch(self, pool, todo: list[PreparedJob]) -> None:
        queue: deque[Task] = deque(Task("run", pj) for pj in todo)
        primed: set = set()
        priming: set = set()
        self._running: dict[int, PreparedJob] = {}
        while queue or pool.busy():
            while pool.idle() and queue:
                task = self._next(queue, primed, priming, pool.size)
                if task is None:
                    break
                worker = pool.submit(task)
                if task.kind == "run":
                    self._running[task.job.index] = task.job
                    self.on_event(BatchEvent("started", task.job.index, len(self.jobs), worker=worker))
            for fin in pool.wait():
                self._handle(fin, queue, primed, priming)

    def _next(self, queue: deque[Task], primed: set, priming: set, workers: int) -> Task | None:
        """The next task: a job whose face track is ready, or a face's track, detected once for all the jobs
        that share it (with one worker, jobs simply run in order and the first one's track is reused)."""
        groups = [self._track_group(t.job) for t in queue]
        for task, group in zip(list(queue), groups):
            if workers == 1 or group is None or group in primed or (groups.count(group) == 1 and not priming):
                queue.remove(task)
                return task
            if group not in priming:
                priming.add(group)
                return Task("prime", task.job)
        return None

    def _handle(self, fin: Finished, queue: deque[Task], primed: set, priming: set) -> None:
        task = fin.task
        if task.kind == "prime":
            group = self._track_group(task.job)
            priming.discard(group)
            primed.add(group)
            if fin.outcome is not None and not fin.outcome.ok:
                log.info("face track for %s not prepared ahead: %s", task.job.face, fin.outcome.error)
            return
        self._running.pop(task.job.index, None)
        if fin.lost is not None:
            if task.tries < 2:
                log.warning("row %s: %s; retrying it on another worker", task.job.row, fin.lost)
                queue.appendleft(Task("run", task.job, tries=task.tries + 1))
                return
            self._finish(task.job.index, task.job, error=f"{fin.lost} twice while running this job", tries=task.tries,
                         worker=fin.worker)
            return
        self._finish(task.job.index, task.job, outcome=fin.outcome, tries=task.tries)

    def _reclaim_running(self) -> None:
        """After Ctrl-C: remove what the interrupted jobs left on this host, once their writers are gone (a
        killed Ray actor's partial output; other hosts' files are left to them)."""
        deadline = time.monotonic() + 10
        for pj in getattr(self, "_running", {}).values():
            out = Path(pj.outfile)
            while _written_here(out) and time.monotonic() < deadline:
                time.sleep(0.1)
            files.reclaim(out.parent, prefix=f".{out.stem}.")

    # -- recording ------------------------------------------------------------------------------------------
    def _skip(self, i: int, rec: Record) -> None:
        job = self.jobs[i]
        rec.status, rec.row = SKIPPED, job.row  # finished_at stays: when its output was made
        if self.state is not None:
            self.state.put(rec)
        res = JobResult(job.row, job.face, job.audio, rec.outfile, SKIPPED, size=rec.size, duration=rec.duration,
                        seconds=rec.seconds, attempts=0, worker=rec.worker, key=rec.key)
        self.results[i] = res
        self.on_event(BatchEvent("finished", i, len(self.jobs), worker=rec.worker, result=res))

    def _finish(self, i: int, pj: PreparedJob | None, *, outcome: Outcome | None = None, error: str | None = None,
                tries: int = 0, worker: str | None = None) -> None:
        job = self.jobs[i]
        out = pj.outfile if pj is not None else str(Path(job.outfile).expanduser().resolve())
        if outcome is not None and not outcome.ok:
            error = outcome.error
        status = DONE if error is None else FAILED
        res = JobResult(job.row, job.face, job.audio, out, status, error=error, attempts=tries,
                        worker=outcome.worker if outcome else worker, key=pj.key if pj else None)
        if outcome is not None:
            res.seconds, res.timings = outcome.seconds, outcome.timings
            if status == DONE:
                res.size, res.duration = outcome.size, outcome.duration
        if self.state is not None:
            self.state.put(Record(outfile=out, key=res.key or "", status=status, row=job.row, face=job.face,
                                  audio=job.audio, size=res.size, mtime=outcome.mtime if outcome else None,
                                  duration=res.duration, seconds=res.seconds, error=error, attempts=tries,
                                  worker=res.worker))
        self.results[i] = res
        self.on_event(BatchEvent("finished", i, len(self.jobs), worker=res.worker, result=res))


def _written_here(out: Path) -> bool:
    """Whether a live process of this host still has partial files of ``out``."""
    here = files.owner(files.run_tag())
    assert here is not None  # this process's own tag always parses
    names = [p.name for p in out.parent.glob(f".{out.stem}.run-*")] if out.parent.is_dir() else []
    # A name without a valid run tag was not written by a run of this host.
    return any((o := files.owner(n)) is not None and o[0] == here[0] and not files.owner_gone(n) for n in names)


# -- reporting ----------------------------------------------------------------------------------------------------
def summary_table(results: list[JobResult]) -> str:
    """A plain-text table: row, status, seconds, output or error; then the totals."""
    lines = [f"{'row':>4}  {'status':<11} {'time':>7}  output / error"]
    for r in results:
        what = r.error if r.status == FAILED else r.outfile
        secs = f"{r.seconds:6.1f}s" if r.seconds is not None and r.status == DONE else ""
        lines.append(f"{r.row if r.row is not None else '':>4}  {r.status:<11} {secs:>7}  {what}")
    counts = {s: sum(r.status == s for r in results) for s in (DONE, SKIPPED, FAILED, INTERRUPTED)}
    lines.append(f"{len(results)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(lines)


def exit_code(results: list[JobResult]) -> int:
    """0 all done (or skipped as done before), 3 some failed, 1 nothing could start, 130 interrupted."""
    if any(r.status == INTERRUPTED for r in results):
        return 130
    if all(r.status in (DONE, SKIPPED) for r in results):
        return 0
    if all(r.status == FAILED and r.attempts == 0 for r in results):
        return 1
    return 3

