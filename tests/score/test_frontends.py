"""``lipsync score`` and a run's ``--score`` / ``--fix_offset`` / ``--silence_gate_db``, end to end with procedural
weights (the numbers are meaningless with them; the shape of what is printed and written is the point)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lipsync_core.testing.checkpoints import write_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    return {"syncnet": write_checkpoint("syncnet_v2", d / "syncnet_v2.model"),
            "expert": write_checkpoint("syncnet_color", d / "lipsync_expert.pth", wrapper="state_dict"),
            "checkpoint": write_checkpoint("wav2lip", d / "wav2lip.pth", wrapper="state_dict")}


def lipsync(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lipsync_core", *map(str, args), "--no_progress"],
                          capture_output=True, text=True, cwd=cwd)


def test_score_prints_each_track_and_writes_the_report_and_the_fixed_copy(tiny_real_clip, weights, tmp_path):
    proc = lipsync("score", tiny_real_clip, "--detector", "haar", "--syncnet_path", weights["syncnet"],
                   "--json", "r.json", "--fix", "fixed.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary, track = proc.stdout.splitlines()[:2]
    assert "LSE-D" in summary and "LSE-C" in summary and "offset" in summary and "20 windows" in summary
    assert "track" in track and "weakest second" in track
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scorer"] == "syncnet" and len(report["tracks"]) == 1 and report["tracks"][0]["windows"] == 20
    assert (tmp_path / "fixed.mp4").is_file() and "offset" in proc.stderr


def test_score_follows_a_keyframed_box_like_a_run(tiny_real_clip, weights, tmp_path):
    """``--track_box``: the face set once and followed (no detector), as in a run."""
    from lipsync_core.face.detectors.haar import HaarDetector
    from lipsync_core.media.video import read_frames

    (det, *_), = HaarDetector().detect([read_frames(tiny_real_clip, max_frames=1)[0]])
    x1, y1, x2, y2 = (int(v) for v in det.box)
    proc = lipsync("score", tiny_real_clip, "--track_box", str(y1), str(y2), str(x1), str(x2), "--syncnet_path",
                   weights["syncnet"], "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["tracks"]) == 1 and report["tracks"][0]["windows"] == 20


def test_score_with_the_expert_reports_its_own_metric(tiny_real_clip, weights, tmp_path):
    proc = lipsync("score", tiny_real_clip, "--scorer", "expert", "--detector", "haar", "--expert_path",
                   weights["expert"], "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "expert similarity" in proc.stdout and "LSE" not in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["metric"] == "expert cosine similarity" and "similarity" in report["overall"]


def test_score_errors_are_one_line(tmp_path):
    proc = lipsync("score", tmp_path / "missing.mp4", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "missing.mp4" in proc.stderr


def test_a_run_with_score_and_fix_offset_writes_the_json_beside_the_output(tiny_real_clip, weights, tmp_path):
    proc = lipsync("--face", tiny_real_clip, "--audio", "same", "--detector", "haar", "--checkpoint_path",
                   weights["checkpoint"], "--syncnet_path", weights["syncnet"], "--score", "--fix_offset",
                   "--silence_gate_db", "-50", "--outfile", "out.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("out.mp4")
    data = json.loads((tmp_path / "out.score.json").read_text())
    assert data["overall"]["windows"] == 20 and data["reference"]["overall"]["windows"] == 20
    assert data["fix"] is not None and "sync: out.mp4: LSE-D" in proc.stderr
    assert "face video's own" in proc.stderr  # --audio same: the source's own offset was measured first
