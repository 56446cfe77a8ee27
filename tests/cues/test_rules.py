"""Pure rules of the cue pipeline (no audio): r-coloured vowels, phones shared out within aligned words."""
from __future__ import annotations

from lipsync_core.cues.animate import parts_of
from lipsync_core.cues.phones import Phone
from lipsync_core.cues.recognize import PAD_STEPS, _shared_out


def test_r_after_a_vowel_keeps_the_vowel_shape_unless_a_vowel_follows():
    car = [Phone("K", 0, 5), Phone("AA", 5, 20), Phone("R", 20, 30)]
    assert {p.allowed for p in parts_of(car, 30) if p.start >= 5} == {frozenset("D")}
    carry = [*car, Phone("IY", 30, 40)]
    assert frozenset("BEF") in {p.allowed for p in parts_of(carry, 40)}


def test_a_word_span_is_shared_out_among_its_phones_inside_the_utterance():
    lookup = {"boat": "B OW T", "old": "OW L D"}.get
    # "old" starts in the padding before the speech: its phones begin at the speech's first step
    phones = _shared_out([("old", 0, PAD_STEPS + 16), ("boat", PAD_STEPS + 16, PAD_STEPS + 36)], lookup, 36, 100)
    assert [p.name for p in phones] == ["OW", "L", "D", "B", "OW", "T"]
    assert phones[0].start == 100 and phones[-1].end == 136
    assert all(a.end == b.start for a, b in zip(phones, phones[1:]))
    assert phones[4].steps > phones[3].steps  # vowels longer than consonants
