"""The cue file writers against the rules in shared/reference/cues/README.md."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from lipsync_core.cues import MouthCue
from lipsync_core.cues.formats import CueFile, format_for, render, to_dat, to_json, to_tsv, to_xml
from lipsync_core.support.errors import LipsyncError

CUES = [MouthCue(0.0, 0.05, "X"), MouthCue(0.05, 0.31, "B"), MouthCue(0.31, 0.33, "A"), MouthCue(0.33, 0.9, "D"),
        MouthCue(0.9, 1.25, "X")]
INFO = CueFile(sound_file="/abs/clip.wav", duration=1.25, recognizer="phonetic", dialog=True)


def test_tsv_lines_are_two_decimal_starts_then_the_end_with_the_idle_shape():
    lines = to_tsv(CUES, INFO).splitlines()
    assert lines[:2] == ["0.00\tX", "0.05\tB"]
    assert lines[-1] == "1.25\tX" and len(lines) == len(CUES) + 1


def test_tsv_idle_line_uses_the_substitute_when_the_rig_has_no_x():
    assert to_tsv([MouthCue(0.0, 0.5, "B")], CueFile("/a.wav", 0.5, idle="A")).splitlines()[-1] == "0.50\tA"


def test_json_has_rhubarbs_layout_with_absolute_sound_file_and_how_it_was_made():
    doc = json.loads(to_json(CUES, INFO))
    assert doc["metadata"]["soundFile"] == "/abs/clip.wav" and doc["metadata"]["duration"] == 1.25
    assert doc["metadata"]["recognizer"] == "phonetic" and doc["metadata"]["dialog"] is True
    assert doc["mouthCues"][1] == {"start": 0.05, "end": 0.31, "value": "B"}


def test_json_never_has_an_empty_cue_list():
    assert json.loads(to_json([], INFO))["mouthCues"] == [{"start": 0.0, "end": 0.0, "value": "X"}]


def test_xml_has_rhubarbs_layout():
    root = ET.fromstring(to_xml(CUES, INFO))
    assert root.tag == "rhubarbResult"
    assert root.findtext("metadata/soundFile") == "/abs/clip.wav" and root.findtext("metadata/duration") == "1.25"
    assert root.findtext("metadata/recognizer") == "phonetic"
    cues = root.findall("mouthCues/mouthCue")
    assert [(c.get("start"), c.get("end"), c.text) for c in cues][1] == ("0.05", "0.31", "B")


def test_dat_frames_are_one_plus_floor_fps_times_start_same_frame_dropped_idle_last():
    lines = to_dat(CUES, INFO, fps=24).splitlines()
    # X 0 -> 1, B 0.05 -> 2, A 0.31 -> 8, D 0.33 -> 8 (A's frame: dropped), X 0.9 -> 22, end 1.25 -> 31
    assert lines == ["MohoSwitch1", "1 X", "2 B", "8 A", "22 X", "31 X"]


def test_dat_preston_blair_names():
    lines = to_dat(CUES, INFO, fps=100, preston_blair=True).splitlines()
    assert lines[1:5] == ["1 rest", "6 etc", "32 MBP", "34 AI"]


@pytest.mark.parametrize("fps", [23, 101])
def test_dat_frame_rate_outside_24_to_100_is_refused(fps):
    with pytest.raises(LipsyncError, match="--dat_fps"):
        render(CUES, INFO, "dat", fps=fps)


def test_preston_blair_names_need_the_dat_format():
    with pytest.raises(LipsyncError, match="--preston_blair"):
        render(CUES, INFO, "json", preston_blair=True)


def test_format_comes_from_the_extension_else_tsv():
    assert [format_for(p) for p in ("a/b.JSON", "x.dat", "x.txt", None, "dir.xml/out")] == [
        "json", "dat", "tsv", "tsv", "tsv"]
