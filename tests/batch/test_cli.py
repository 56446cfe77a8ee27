"""``lipsync batch`` as a user runs it: a real process, real files; exit codes 0 / 1 / 3."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.batch.conftest import BOX

REPO = Path(__file__).resolve().parents[2]


def lipsync(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "lipsync_core", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def flags(ckpt: Path) -> list[str]:
    return ["--checkpoint_path", str(ckpt), "--box", *map(str, BOX), "--device", "cpu", "--no_progress",
            "--preset", "ultrafast"]


def test_a_job_list_runs_with_command_line_defaults_and_reports_each_job(tmp_path, clip, speeches, w2l_checkpoint):
    (tmp_path / "jobs.csv").write_text("face,audio,outfile,box\n"
                                       f"{clip},{speeches[0]},out/a.mp4,\n"
                                       f"{clip},{speeches[1]},out/b.mp4,0 500 0 500\n")  # outside the frame
    proc = lipsync("batch", "jobs.csv", *flags(w2l_checkpoint), cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == [str(tmp_path / "out" / "a.mp4")]  # stdout: the outputs only
    assert "lies outside the 64x64 frame" in proc.stderr and "1 done, 1 failed" in proc.stderr
    state = json.loads((tmp_path / "jobs.state.json").read_text())["jobs"]
    assert sorted(r["status"] for r in state.values()) == ["done", "failed"]


def test_an_invalid_job_list_exits_1_naming_every_bad_row(tmp_path, clip, speeches):
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"face": str(clip), "audio": str(speeches[0]), "outfile": "a.mp4", "pads": [0, 1]},
        {"face": str(clip), "audio": "nowhere.wav", "outfile": "b.mp4"},
        {"face": str(clip), "audio": str(speeches[0]), "outfile": "c.mp4", "crf": 99}]) + "\n")
    proc = lipsync("batch", "jobs.jsonl", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == ["row 1 (line 1)", "row 2 (line 2)", "row 3 (line 3)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.jsonl"]


def test_the_short_form_makes_one_output_per_audio_file(tmp_path, clip, speeches, w2l_checkpoint):
    (tmp_path / "takes").mkdir()
    shutil.copy(speeches[0], tmp_path / "takes" / "intro.wav")
    proc = lipsync("batch", "--face", str(clip), "--audio", "takes", "--outdir", "dubbed", *flags(w2l_checkpoint),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(tmp_path / "dubbed" / "intro.mp4")]
    assert (tmp_path / "dubbed" / "lipsync-batch.state.json").is_file()


def test_a_job_list_and_the_short_form_together_are_a_usage_error(tmp_path, clip):
    proc = lipsync("batch", "jobs.csv", "--face", str(clip), cwd=tmp_path)
    assert proc.returncode == 2 and "give a job list" in proc.stderr
