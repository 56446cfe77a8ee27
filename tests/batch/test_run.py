"""Batches on this machine: real pipeline, real ffmpeg, a procedural Wav2Lip; one worker in-process unless said."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipsync_core.batch import BatchEvent, exit_code, run_batch, summary_table
from lipsync_core.media.probe import probe
from lipsync_core.testing.checkpoints import procedural_module, steady_s3fd, write_checkpoint
from tests.batch.conftest import jobs_for

REPO = Path(__file__).resolve().parents[2]


def leftovers(folder: Path) -> list[Path]:
    """Temporary or partial files (hidden) left in an output folder."""
    return sorted(p for p in folder.glob(".*"))


def test_jobs_complete_and_each_is_recorded_in_the_state_file(tmp_path, clip, speeches, defaults):
    events: list[BatchEvent] = []
    state = tmp_path / "jobs.state.json"
    results = run_batch(jobs_for(clip, speeches[:2], tmp_path / "out"), state=state, defaults=defaults,
                        on_event=events.append)
    assert [r.status for r in results] == ["done", "done"] and exit_code(results) == 0
    records = json.loads(state.read_text())["jobs"]
    for r, audio in zip(results, speeches):
        assert probe(r.outfile).duration == pytest.approx(probe(audio).duration, abs=0.05)
        rec = records[r.outfile]
        assert rec["status"] == "done" and rec["size"] == os.path.getsize(r.outfile)
        assert rec["duration"] == pytest.approx(r.duration)
    assert [(e.kind, e.index) for e in events] == [("started", 0), ("finished", 0), ("started", 1), ("finished", 1)]
    assert not leftovers(tmp_path / "out") and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_failing_job_is_reported_and_the_others_finish(tmp_path, clip, speeches, defaults):
    jobs = jobs_for(clip, speeches[:2], tmp_path / "out")
    jobs[0]["box"] = [0, 500, 0, 500]  # outside the 64x64 frame: fails when the job runs
    results = run_batch(jobs, state=tmp_path / "state.json", defaults=defaults)
    assert [r.status for r in results] == ["failed", "done"] and exit_code(results) == 3
    assert "lies outside the 64x64 frame" in results[0].error and "\n" not in results[0].error
    assert not Path(jobs[0]["outfile"]).exists()
    table = summary_table(results)
    assert results[0].error in table and "1 done, 1 failed" in table
    assert json.loads((tmp_path / "state.json").read_text())["jobs"][results[0].outfile]["error"] == results[0].error


def test_a_rerun_skips_finished_jobs_and_reruns_changed_ones(tmp_path, clip, speeches, defaults):
    state = tmp_path / "state.json"
    jobs = jobs_for(clip, speeches[:2], tmp_path / "out")
    run_batch(jobs, state=state, defaults=defaults)
    stamps = [os.stat(j["outfile"]).st_mtime_ns for j in jobs]
    again = run_batch(jobs, state=state, defaults=defaults)
    assert [r.status for r in again] == ["skipped", "skipped"] and exit_code(again) == 0
    assert [os.stat(j["outfile"]).st_mtime_ns for j in jobs] == stamps
    jobs[1]["crf"] = 30  # a changed row is a new job
    changed = run_batch(jobs, state=state, defaults=defaults)
    assert [r.status for r in changed] == ["skipped", "done"]


def test_a_missing_output_is_made_again(tmp_path, clip, speeches, defaults):
    state = tmp_path / "state.json"
    jobs = jobs_for(clip, speeches[:1], tmp_path / "out")
    run_batch(jobs, state=state, defaults=defaults)
    os.unlink(jobs[0]["outfile"])
    assert [r.status for r in run_batch(jobs, state=state, defaults=defaults)] == ["done"]
    assert os.path.exists(jobs[0]["outfile"])


def test_failed_jobs_are_retried_only_when_asked(tmp_path, clip, speeches, defaults):
    state = tmp_path / "state.json"
    jobs = jobs_for(clip, speeches[:1], tmp_path / "out", box=[0, 500, 0, 500])
    run_batch(jobs, state=state, defaults=defaults)
    started: list[BatchEvent] = []

    def on_event(e):
        started.extend([e] if e.kind == "started" else [])

    kept = run_batch(jobs, state=state, defaults=defaults, on_event=on_event)
    assert kept[0].status == "failed" and "lies outside" in kept[0].error and not started
    retried = run_batch(jobs, state=state, defaults=defaults, retry_failed=True, on_event=on_event)
    assert retried[0].status == "failed" and len(started) == 1


def test_one_face_is_detected_once_for_all_its_audio(tmp_path, clip, speeches, defaults):
    s3fd = write_checkpoint("s3fd", tmp_path / "s3fd.pth", model=steady_s3fd(procedural_module("s3fd")))
    cache = tmp_path / "cache"  # this test's own: other tests' tracks share the session's cache
    options = {**defaults, "box": None, "detector": "s3fd", "s3fd_path": str(s3fd), "cache_dir": str(cache)}
    results = run_batch(jobs_for(clip, speeches[:2], tmp_path / "out"), defaults=options)
    assert [r.status for r in results] == ["done"] * 2
    detected = [r for r in results if r.timings.get("detect", 0) > 0]
    assert len(detected) == 1 and detected[0].audio == str(speeches[1])  # the longest audio went first
    assert len(list((cache / "tracks").glob("*.npz"))) == 1


def test_a_killed_worker_process_has_its_job_retried_on_another(tmp_path, clip, speeches, defaults):
    killed: list[str] = []

    def kill_first_start_of_row_1(e: BatchEvent) -> None:
        if e.kind == "started" and e.index == 0 and not killed:
            killed.append(e.worker)
            os.kill(int(e.worker.rsplit(":", 1)[1]), signal.SIGKILL)

    results = run_batch(jobs_for(clip, speeches[:2], tmp_path / "out"), workers=2, defaults=defaults,
                        state=tmp_path / "state.json", on_event=kill_first_start_of_row_1)
    assert [r.status for r in results] == ["done", "done"]
    assert results[0].attempts == 2 and results[0].worker != killed[0]
    assert not leftovers(tmp_path / "out")


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_keeps_finished_outputs_and_discards_the_running_one(tmp_path, clip, speeches, defaults, sig, status):
    out, state = tmp_path / "out", tmp_path / "state.json"
    jobs = jobs_for(clip, speeches[:3], out)
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cli_flags = ["--checkpoint_path", defaults["checkpoint_path"], "--box", *map(str, defaults["box"]),
                 "--device", "cpu", "--no_progress", "--preset", "ultrafast"]
    proc = subprocess.Popen([sys.executable, "-m", "lipsync_core", "batch", "jobs.jsonl", "--state", str(state),
                             *cli_flags], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)  # Ctrl-C (or SIGTERM) once the first job is recorded, while the next one runs
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == status and "interrupted" in err  # the summary table says which jobs did not end
    finally:
        proc.kill()
    records = json.loads(state.read_text())["jobs"]
    done = {k for k, r in records.items() if r["status"] == "done"}
    assert 1 <= len(done) < len(jobs)
    for path in done:
        assert os.path.getsize(path) == records[path]["size"]
    assert not leftovers(out)
    resumed = run_batch(jobs, state=state, defaults=defaults)
    assert sorted(r.outfile for r in resumed if r.status == "skipped") == sorted(done)
    assert all(r.status in ("done", "skipped") for r in resumed)
