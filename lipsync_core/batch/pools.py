"""Where workers live: in this process, one subprocess each, or Ray actors. Same interface for the driver.

A pool runs :class:`Task` s on idle workers and reports each as :class:`Finished`; a worker that dies
(killed, out of memory, a crash in native code) is reported as ``lost`` and replaced by a fresh one.
"""
from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from ..support.errors import LipsyncError
from .worker import Outcome, PreparedJob, Worker

log = logging.getLogger(__name__)

RAY_INSTALL = 'Ray is not installed; pip install "lipsync_core[ray]" (or pip install "ray>=2.9") to use --ray'


@dataclass
class Task:
    kind: str  # "run" or "prime"
    job: PreparedJob
    tries: int = 1  # 2 on the retry after a lost worker


@dataclass
class Finished:
    task: Task
    worker: str
    outcome: Outcome | None = None
    lost: str | None = None  # why the worker is gone (its outcome is then None)


class InlinePool:
    """One worker in this process: a task runs when :meth:`wait` is called."""

    size = 1

    def __init__(self) -> None:
        self._worker = Worker()
        self._task: Task | None = None

    def idle(self) -> int:
        return 0 if self._task else 1

    def busy(self) -> int:
        return 1 - self.idle()

    def submit(self, task: Task) -> str:
        self._task = task
        return self._worker.name

    def wait(self) -> list[Finished]:
        task, self._task = self._task, None
        assert task is not None
        return [Finished(task, self._worker.name, getattr(self._worker, task.kind)(task.job))]

    def close(self, abort: bool = False) -> None:
        self._task = None


def _stop(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup that follows must not be interrupted
    raise KeyboardInterrupt


def _serve(conn: Connection, device: str | None, threads: int | None) -> None:
    """A worker subprocess: tasks in, outcomes out, until the pipe closes, or SIGTERM from the driver.

    Ctrl-C at a terminal reaches every process of the group; the driver alone decides, and sends SIGTERM once,
    which stops the running job like Ctrl-C would (its partial output removed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    try:
        worker = Worker(device=device, threads=threads, own_process=True)
        conn.send(worker.name)
        while True:
            try:
                kind, job = conn.recv()
            except EOFError:
                return
            conn.send(getattr(worker, kind)(job))
    except KeyboardInterrupt:
        return


class _Slot:
    def __init__(self, ctx, device: str | None, threads: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, device, threads), daemon=True,
                                name="lipsync-batch-worker")
        self.proc.start()
        child.close()
        self.device = device
        self.task: Task | None = None
        self.name = f"pid {self.proc.pid}"
        self._ready = False

    def ensure_ready(self) -> None:
        if not self._ready:
            self.name = self.conn.recv()  # the worker's host:pid once it has started
            self._ready = True


class ProcessPool:
    """``size`` worker subprocesses (spawned, so CUDA works in each), one per GPU or CPU worker."""

    def __init__(self, size: int, devices: list[str | None], threads: int | None) -> None:
        self.size = size
        self._ctx = mp.get_context("spawn")
        self._threads = threads
        self._slots = [_Slot(self._ctx, devices[i], threads) for i in range(size)]

    def idle(self) -> int:
        return sum(s.task is None for s in self._slots)

    def busy(self) -> int:
        return self.size - self.idle()

    def submit(self, task: Task) -> str:
        slot = next(s for s in self._slots if s.task is None)
        try:
            slot.ensure_ready()
            slot.conn.send((task.kind, task.job))
        except (EOFError, OSError):
            pass  # died before taking it: wait() reports the task as lost
        slot.task = task
        return slot.name

    def wait(self) -> list[Finished]:
        busy = [s for s in self._slots if s.task is not None]
        ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy])
        done: list[Finished] = []
        for i, slot in enumerate(self._slots):
            if slot.task is None or (slot.conn not in ready and slot.proc.sentinel not in ready):
                continue
            task, slot.task = slot.task, None
            try:
                if slot.conn.poll():
                    done.append(Finished(task, slot.name, slot.conn.recv()))
                    continue
            except (EOFError, OSError):
                pass
            slot.proc.join(timeout=5)
            done.append(Finished(task, slot.name, lost=f"worker {slot.name} died (exit code {slot.proc.exitcode})"))
            self._slots[i] = _Slot(self._ctx, slot.device, self._threads)
        return done

    def close(self, abort: bool = False) -> None:
        for slot in self._slots:
            if abort and slot.proc.is_alive() and slot.proc.pid:
                os.kill(slot.proc.pid, signal.SIGTERM)  # the running job stops and removes its partial output
            slot.conn.close()
        for slot in self._slots:
            slot.proc.join(timeout=30 if abort else 10)
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()


class RayPool:
    """Long-lived Ray actors: one per GPU of the cluster (``num_gpus=1``), or ``workers`` CPU actors."""

    def __init__(self, address: str, workers: int | None) -> None:
        try:
            import ray
        except ImportError:
            raise LipsyncError(RAY_INSTALL) from None
        self._ray = ray
        self._own = not ray.is_initialized()
        if self._own:
            ray.init(address=address or None, logging_level=logging.WARNING)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        self.size = workers or gpus or 1
        if gpus:
            options: dict[str, Any] = {"num_gpus": 1}
        else:
            per_node = max((n["Resources"].get("CPU", 1) for n in ray.nodes() if n.get("Alive")), default=1)
            options = {"num_cpus": max(1, min(int(per_node), math.floor(resources.get("CPU", 1) / self.size)))}
        self._actor_cls = ray.remote(max_restarts=0, **options)(Worker)
        self._actors = [self._start() for _ in range(self.size)]
        self._names = dict(zip(self._actors, ray.get([a.info.remote() for a in self._actors])))
        self._inflight: dict[Any, tuple[Any, Task]] = {}  # object ref -> (actor, task)

    def _start(self):
        return self._actor_cls.remote(own_process=True)

    def _idle_actors(self) -> list:
        used = {a for a, _ in self._inflight.values()}
        return [a for a in self._actors if a not in used]

    def idle(self) -> int:
        return len(self._idle_actors())

    def busy(self) -> int:
        return len(self._inflight)

    def submit(self, task: Task) -> str:
        actor = self._idle_actors()[0]
        ref = getattr(actor, task.kind).remote(task.job)
        self._inflight[ref] = (actor, task)
        return self._names.get(actor, "starting actor")

    def wait(self) -> list[Finished]:
        ray = self._ray
        ready, _ = ray.wait(list(self._inflight), num_returns=1)
        done: list[Finished] = []
        for ref in ready:
            actor, task = self._inflight.pop(ref)
            name = self._names.get(actor, "actor")
            try:
                done.append(Finished(task, name, ray.get(ref)))
            except ray.exceptions.RayActorError as exc:
                cause = " ".join(str(exc).split())[:200]
                done.append(Finished(task, name, lost=f"actor {name} died ({cause})"))
                self._replace(actor)
        return done

    def _replace(self, dead) -> None:
        fresh = self._start()
        self._actors[self._actors.index(dead)] = fresh
        self._names.pop(dead, None)
        try:
            self._names[fresh] = self._ray.get(fresh.info.remote())
        except self._ray.exceptions.RayActorError:
            pass  # it will be reported lost with its first task

    def close(self, abort: bool = False) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._inflight.clear()
        if self._own:
            self._ray.shutdown()
