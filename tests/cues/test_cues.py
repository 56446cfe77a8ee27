"""mouth_cues on real speech (espeak-ng), real PocketSphinx and real ffmpeg."""
from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys

import pytest

from lipsync_core.cues import MouthCue, mouth_cues
from lipsync_core.cues.phones import letter_to_sound
from lipsync_core.support.errors import LipsyncError
from tests.conftest import REPO, SHARED


def _accuracy(truth: dict, cues: list[MouthCue]) -> float:
    """shared/tools/shapes.py's score: the share of centiseconds whose shape the spoken phone allows."""
    spec = importlib.util.spec_from_file_location("shapes", SHARED / "tools" / "shapes.py")
    shapes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shapes)
    return shapes.accuracy(truth, [(c.start, c.value) for c in cues])


@pytest.fixture(scope="module")
def with_dialog(speech) -> list[MouthCue]:
    return mouth_cues(speech.wav, speech.text)


@pytest.fixture(scope="module")
def without_dialog(speech) -> list[MouthCue]:
    return mouth_cues(speech.wav)


def test_cues_cover_the_audio_without_gaps(speech, with_dialog):
    assert with_dialog[0].start == 0
    assert all(a.end == b.start and a.value != b.value for a, b in zip(with_dialog, with_dialog[1:]))
    if speech.truth:
        assert abs(with_dialog[-1].end - speech.truth["duration"]) < 0.015


def test_no_shape_is_shorter_than_a_24fps_frame_except_closures(with_dialog, without_dialog):
    for cues in (with_dialog, without_dialog):
        assert all(c.end - c.start >= 1 / 24 - 1e-9 for c in cues[:-1] if c.value != "A")


def test_transcript_aligned_cues_are_accurate(speech, with_dialog):
    if not speech.truth:
        pytest.skip("no phone timing without ../shared/tools/espeak_truth.py")
    assert _accuracy(speech.truth, with_dialog) >= 0.85


def test_recognised_cues_follow_the_speech(speech, without_dialog):
    if not speech.truth:
        pytest.skip("no phone timing without ../shared/tools/espeak_truth.py")
    assert _accuracy(speech.truth, without_dialog) > max(0.6, _accuracy(speech.truth, [MouthCue(0, 9, "X")]) + 0.2)


def test_phonetic_recognizer_gives_closures_for_lip_sounds(speech):
    cues = mouth_cues(speech.wav, recognizer="phonetic")
    assert {"A", "B"} <= {c.value for c in cues}


def test_rig_without_extended_shapes_gets_substitutes(speech):
    cues = mouth_cues(speech.wav, speech.text, extended_shapes="")
    values = {c.value for c in cues}
    assert not values & set("GHX") and "A" in values


def test_trim_makes_times_relative_to_start(speech):
    cues = mouth_cues(speech.wav, start=0.5, end=1.5)
    assert cues[0].start == 0 and abs(cues[-1].end - 1.0) < 0.015


def test_silence_is_one_idle_cue(silence, caplog):
    with caplog.at_level(logging.INFO, logger="lipsync_core.cues"):
        cues = mouth_cues(silence, "hello there")
    assert cues == [MouthCue(0.0, 2.0, "X")]
    assert "no speech" in caplog.text


def test_words_missing_from_the_dictionary_are_aligned_by_letter_to_sound(speech):
    cues = mouth_cues(speech.wav, speech.text.replace("Peter", "Zorblax"))
    assert len(cues) > 5
    assert letter_to_sound("zorblax") == "Z AO R B L AE K S"


def test_unreadable_audio_is_a_one_line_error(tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(LipsyncError):
        mouth_cues(bad)


def test_importing_cues_does_not_import_torch():
    code = ("import sys, lipsync_core.cues, lipsync_core.cues.formats, lipsync_core.cues.recognize; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_forked_workers_decode_every_utterance_in_order(speech):
    from lipsync_core.cues import _decoded
    from lipsync_core.cues.audio import Source, utterances
    from lipsync_core.cues.recognize import PAD_STEPS, Recognizer

    rec = Recognizer()
    utts = list(utterances(Source.open(speech.wav).chunks(), longest_s=0.8))
    assert len(utts) > 2
    found = list(_decoded(rec, iter(utts), 2))
    assert len(found) == len(utts) and sum(map(bool, found)) > 2
    # PocketSphinx's decoding depends a little on the utterances it decoded before, so not equality with one process
    assert all(u.start - PAD_STEPS <= p.start < p.end <= u.start + u.steps + PAD_STEPS
               for u, ps in zip(utts, found) for p in ps)
