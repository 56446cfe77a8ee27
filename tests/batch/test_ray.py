"""The same batches on Ray actors: a real local Ray instance (2 CPUs), no mocks."""
from __future__ import annotations

import json
import os
import signal

import pytest

from lipsync_core.batch import BatchEvent, BatchInterrupted, exit_code, run_batch
from tests.batch.conftest import jobs_for

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def pid_of(worker: str) -> int:
    return int(worker.rsplit(":", 1)[1])


def test_jobs_complete_on_actors(tmp_path, clip, speeches, defaults):
    results = run_batch(jobs_for(clip, speeches[:2], tmp_path / "out"), ray_address="", workers=2,
                        state=tmp_path / "state.json", defaults=defaults)
    assert [r.status for r in results] == ["done", "done"] and exit_code(results) == 0
    assert len({r.worker for r in results}) == 2 and all(pid_of(r.worker) != os.getpid() for r in results)
    assert all(os.path.getsize(r.outfile) == r.size for r in results)


def test_a_failing_job_is_reported_and_the_others_finish(tmp_path, clip, speeches, defaults):
    jobs = jobs_for(clip, speeches[:2], tmp_path / "out")
    jobs[0]["box"] = [0, 500, 0, 500]
    results = run_batch(jobs, ray_address="", workers=1, state=tmp_path / "state.json", defaults=defaults)
    assert [r.status for r in results] == ["failed", "done"] and exit_code(results) == 3
    assert "lies outside" in results[0].error


def kill_when(index: int, times: int):
    """An event hook that kills the actor a job starts on (SIGKILL), the first ``times`` times it starts."""
    killed: list[str] = []

    def hook(e: BatchEvent) -> None:
        if e.kind == "started" and e.index == index and len(killed) < times:
            killed.append(e.worker)
            os.kill(pid_of(e.worker), signal.SIGKILL)
    return hook, killed


def test_a_killed_actors_job_is_retried_on_another_actor(tmp_path, clip, speeches, defaults):
    hook, killed = kill_when(0, times=1)
    results = run_batch(jobs_for(clip, speeches[:2], tmp_path / "out"), ray_address="", workers=2,
                        state=tmp_path / "state.json", defaults=defaults, on_event=hook)
    assert [r.status for r in results] == ["done", "done"]
    assert results[0].attempts == 2 and results[0].worker not in killed
    assert not list((tmp_path / "out").glob(".*"))  # the killed actor's partial output was reclaimed


def test_a_job_that_kills_its_worker_twice_fails_and_the_pool_goes_on(tmp_path, clip, speeches, defaults):
    hook, killed = kill_when(0, times=2)
    results = run_batch(jobs_for(clip, speeches[:2], tmp_path / "out"), ray_address="", workers=1,
                        state=tmp_path / "state.json", defaults=defaults, on_event=hook)
    assert [r.status for r in results] == ["failed", "done"] and len(killed) == 2
    assert "died" in results[0].error and results[0].attempts == 2


def test_resume_after_an_interrupted_batch_does_not_redo_finished_jobs(tmp_path, clip, speeches, defaults):
    jobs, state = jobs_for(clip, speeches[:3], tmp_path / "out"), tmp_path / "state.json"

    def ctrl_c_after_first(e: BatchEvent) -> None:
        if e.kind == "finished":
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(BatchInterrupted) as stopped:
        run_batch(jobs, ray_address="", workers=1, state=state, defaults=defaults, on_event=ctrl_c_after_first)
    first = [r for r in stopped.value.results if r.status == "done"]
    assert len(first) == 1 and {r.status for r in stopped.value.results} == {"done", "interrupted"}
    assert set(json.loads(state.read_text())["jobs"]) == {first[0].outfile}
    stamp = os.stat(first[0].outfile).st_mtime_ns
    resumed = run_batch(jobs, ray_address="", workers=1, state=state, defaults=defaults)
    assert sorted(r.status for r in resumed) == ["done", "done", "skipped"]
    assert next(r for r in resumed if r.status == "skipped").outfile == first[0].outfile
    assert os.stat(first[0].outfile).st_mtime_ns == stamp
