"""`lipsync train prepare` and `lipsync train run` from the command line, with procedural weights."""
from __future__ import annotations

import json

import pytest
import torch

from lipsync_core.front.cli import main
from lipsync_core.front.train_cli import parse_source
from lipsync_core.models import load
from lipsync_core.testing.checkpoints import write_checkpoint
from lipsync_core.testing.media import talking_head_video
from lipsync_core.training.prepare import Source


def test_a_clip_may_name_the_part_to_use():
    assert parse_source("talk.mp4") == Source("talk.mp4")
    assert parse_source("talk.mp4#t=1:00,12:30") == Source("talk.mp4", "1:00", "12:30")
    assert parse_source("https://youtu.be/x?si=1#t=,90") == Source("https://youtu.be/x?si=1", None, "90")


@pytest.mark.slow
def test_prepare_then_train_from_released_format_weights(tmp_path, capsys):
    video = talking_head_video(tmp_path / "me.mp4", size=(128, 128), seconds=4.0)
    dataset = tmp_path / "dataset"
    assert main(["train", "prepare", f"{video}#t=0,3.6", "--out", str(dataset), "--box", "10", "120", "14", "114",
                 "--no_sync_check", "--clip_seconds", "1.2", "--no_progress"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(dataset) and "kept" in err and "an hour or more" in err
    # wav2lip.pth's format (legacy pickle, module. keys, Adam state) and the expert's
    init = write_checkpoint("wav2lip", tmp_path / "wav2lip.pth", wrapper="state_dict", legacy=True,
                            module_prefix=True, optimizer=True)
    expert = write_checkpoint("syncnet_color", tmp_path / "lipsync_expert.pth", wrapper="state_dict", legacy=True)
    run = tmp_path / "run"
    assert main(["train", "run", str(dataset), "--init", str(init), "--expert_path", str(expert), "--out", str(run),
                 "--steps", "1", "--batch_size", "1", "--val_windows", "1", "--no_render_check", "--device", "cpu",
                 "--no_progress", "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    best = run / "best_checkpoint.pth"
    assert out.strip() == str(best) and "step 1" in err
    assert isinstance(load("wav2lip", best), torch.nn.Module)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["val", "train", "val", "stop"] and records[1]["sync"] > 0


def test_expected_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "run", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lipsync train prepare" in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "run", str(tmp_path), "--stpes", "3"])
    assert exc.value.code == 2 and "--steps" in capsys.readouterr().err
