"""The offset fix: a measured offset is corrected by exactly that many frames, and only when confident."""
from __future__ import annotations

import pytest

from lipsync_core.face.track import DetectionOptions
from lipsync_core.media.audio import load_audio
from lipsync_core.score.fix import fix_offset
from lipsync_core.score.video import ScoreReport, score_video
from lipsync_core.support.errors import LipsyncError
from tests.score.constructed import ConstructedEmbedder, clip_file

WHOLE = DetectionOptions(box=(0, 64, 0, 64))


def score(path) -> ScoreReport:
    return score_video(path, embedder=ConstructedEmbedder(), settings=WHOLE)


@pytest.mark.parametrize("delay", [2, -3])
def test_a_measured_offset_is_corrected_and_the_duration_kept(tmp_path, delay):
    src = clip_file(tmp_path / "off.mp4", 100, delay)
    before = score(src)
    assert before.overall["offset_frames"] == -delay
    result = fix_offset(src, before, tmp_path / "fixed.mp4", min_confidence=0.5)
    assert result.applied and result.delay_ms == -delay * 40.0
    assert len(load_audio(result.path)) == len(load_audio(src))
    after = score(result.path)
    assert after.overall["offset_frames"] == 0
    assert "audio" in result.summary() and "ms" in result.summary()


def test_an_unconfident_offset_is_left_alone_and_the_output_is_an_unchanged_copy(tmp_path):
    src = clip_file(tmp_path / "off.mp4", 60, 2)
    report = score(src)
    result = fix_offset(src, report, tmp_path / "out.mp4", min_confidence=1e9)
    assert not result.applied and "below" in result.reason
    assert (tmp_path / "out.mp4").read_bytes() == src.read_bytes()


def test_a_synced_video_is_not_rewritten(tmp_path):
    src = clip_file(tmp_path / "ok.mp4", 60, 0)
    mtime = src.stat().st_mtime_ns
    result = fix_offset(src, score(src), min_confidence=0.0)
    assert not result.applied and "already in sync" in result.reason
    assert src.stat().st_mtime_ns == mtime


def test_the_expert_scorer_cannot_drive_the_fix(tmp_path):
    src = clip_file(tmp_path / "ok.mp4", 30, 0)
    report = score(src)
    report.scorer = "expert"
    with pytest.raises(LipsyncError, match="--scorer syncnet"):
        fix_offset(src, report)
