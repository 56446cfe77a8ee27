"""The 2D-animation options: keyframes in every accepted form, conflicts, mouth-only settings, the plan they give."""
from __future__ import annotations

import pytest

from lipsync_core.engine.catalog import BuildContext
from lipsync_core.engine.plan import Plan, make_config
from lipsync_core.face.detectors.anime import MOUTH
from lipsync_core.front.cli import build_parser
from lipsync_core.support.errors import LipsyncError


@pytest.mark.parametrize("given, expected", [
    ("10 90 20 80", ("10 90 20 80",)),
    ((10, 90, 20, 80), ("10 90 20 80",)),
    (["10 90 20 80", "12 92 30 90 @1.5"], ("10 90 20 80", "12 92 30 90 @1.5")),
    ([["10", "90", "20", "80"], ["12", "92", "30", "90", "@1.5"]], ("10 90 20 80", "12 92 30 90 @1.5")),
])
def test_track_box_accepts_one_or_several_keyframes(given, expected):
    cfg = make_config("original", track_box=given)
    assert cfg.track_box == expected and cfg.keyframed


def test_the_cli_repeats_track_box():
    args = build_parser().parse_args(["--face", "f", "--audio", "a", "--track_box", "1", "2", "3", "4",
                                      "--track_box", "5", "6", "7", "8", "@2"])
    assert make_config("original", track_box=args.track_box).track_box == ("1 2 3 4", "5 6 7 8 @2")


@pytest.mark.parametrize("options, what", [
    ({"track_box": "10 90 20"}, "TOP BOTTOM LEFT RIGHT"),
    ({"track_box": "10 90 20 80", "box": (1, 2, 3, 4)}, "one or the other"),
    ({"track_box": "10 90 20 80", "box_keyframes": "k.json"}, "not both"),
    ({"mouth_scale": 1.5}, "add --mask_region mouth"),
    ({"mask_region": "mouth", "mouth_scale": 0}, "--mouth_scale must be in"),
    ({"mask_region": "lips"}, "--mask_region must be one of lower, mouth"),
])
def test_bad_2d_options_are_one_line_errors(options, what):
    with pytest.raises(LipsyncError, match=what):
        make_config("original", **options)


def test_keyframes_replace_the_detector_and_mouth_only_adds_the_mouth_stage_in_every_variant():
    assert Plan.from_options(make_config("original", track_box="10 90 20 80")).detector is None
    for variant in ("original", "hq", "codeformer"):
        plain = [s.name for s in Plan.from_options(make_config(variant)).stages]
        mouth = [s.name for s in Plan.from_options(make_config(variant, mask_region="mouth")).stages]
        assert "mouth" not in plain and mouth.index("mouth") == mouth.index("blend") - 1


def test_the_anime_detector_needs_its_cascade_and_places_the_mouth_from_its_mapping():
    cfg = make_config("original", detector="anime", mask_region="mouth", blend="hard")
    plan = Plan.from_options(cfg)
    assert plan.roles == ["anime", "checkpoint"]
    mouth = plan.stages[1].build(BuildContext(cfg.render, cfg.detection, handle=None, detector=plan.detector))
    assert mouth.placement == MOUTH and mouth.hard and not mouth.use_landmarks
