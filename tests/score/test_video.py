"""Scoring a video file end to end: tracks split at cuts and face gaps, the report and its JSON."""
from __future__ import annotations

import json

import pytest

from lipsync_core.face.detectors.haar import HaarDetector
from lipsync_core.face.track import DetectionOptions
from lipsync_core.score.embed import SyncNetEmbedder
from lipsync_core.score.video import SCHEMA, score_video, write_report
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing import media as gen
from lipsync_core.testing.checkpoints import procedural_module
from tests.conftest import shared_path


def test_real_clip_with_procedural_syncnet_gives_a_complete_report(short_real_clip, tmp_path):
    emb = SyncNetEmbedder(procedural_module("syncnet_v2"))
    report = score_video(short_real_clip, embedder=emb, settings=DetectionOptions(box=(40, 230, 50, 210)))
    assert report.frames == 50 and len(report.tracks) == 1 and report.unscored == []
    track = report.tracks[0]
    assert (track.start_frame, track.end_frame, track.windows) == (0, 50, 45)  # under 100 frames: still scored
    assert [s.windows for s in track.segments] == [25, 20]
    assert track.lse_d > 0 and track.lse_c >= 0 and -15 <= track.offset_frames <= 15
    data = json.loads(write_report(report, tmp_path / "r.json").read_text())
    assert data["schema"] == SCHEMA and data["scorer"] == "syncnet" and data["fps"] == 25.0
    assert data["overall"]["windows"] == 45
    assert data["overall"]["lse_d"] == pytest.approx(track.lse_d)
    assert data["overall"]["offset_ms"] == 40.0 * data["overall"]["offset_frames"]
    assert set(data["tracks"][0]) >= {"start_s", "end_s", "windows", "lse_d", "lse_c", "offset_frames", "segments"}
    assert "confidence" in data["tracks"][0]["segments"][0]


def test_frames_without_a_face_split_the_video_into_tracks(fake_embedder):
    clip = shared_path("media", "face_noface_cutaway_7s.mp4")  # no face in frames 60-109
    report = score_video(clip, embedder=fake_embedder, scorer="expert", detector=HaarDetector(),
                         settings=DetectionOptions(detector="haar", det_stride=4))
    spans = [(t.start_frame, t.end_frame) for t in report.tracks]
    assert len(spans) == 2 and abs(spans[0][1] - 60) <= 2 and abs(spans[1][0] - 110) <= 2
    assert [u["reason"] for u in report.unscored] == ["no face"]
    assert all(t.similarity is not None and t.lse_d is None for t in report.tracks)


def test_scene_cuts_split_a_fixed_box_track(fake_embedder):
    clip = shared_path("media", "face_noface_cutaway_7s.mp4")  # hard cuts before frames 60 and 110
    report = score_video(clip, embedder=fake_embedder, settings=DetectionOptions(box=(100, 500, 100, 500)))
    assert [(t.start_frame, t.end_frame) for t in report.tracks] == [(0, 60), (60, 110), (110, 175)]
    assert sum(t.windows for t in report.tracks) == report.overall["windows"] == 55 + 45 + 60


def test_a_track_shorter_than_one_window_is_reported_unscored(fake_embedder, tmp_path):
    clip = gen.talking_head_video(tmp_path / "short.mp4", seconds=0.2)  # 5 frames
    report = score_video(clip, embedder=fake_embedder, settings=DetectionOptions(box=(10, 120, 10, 120)))
    assert report.tracks == [] and report.overall is None
    assert "shorter than 6 frames" in report.unscored[0]["reason"]
    assert "nothing scored" in report.summary()


def test_a_still_image_is_refused(fake_embedder, tmp_path):
    with pytest.raises(LipsyncError, match="still image"):
        score_video(gen.still_image(tmp_path / "face.png"), embedder=fake_embedder,
                    settings=DetectionOptions(box=(0, 10, 0, 10)))
