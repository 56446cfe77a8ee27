"""Pure rules of the cue pipeline (no audio files): r-coloured vowels, phones shared out within aligned words,
quiet trimmed from the utterance edges."""
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


def test_a_vowel_at_the_utterance_end_stops_where_the_sound_goes_quiet():
    import numpy as np

    from lipsync_core.cues.recognize import _trim_quiet

    rng = np.random.default_rng(0)
    pcm = np.concatenate([rng.integers(-8000, 8000, 40 * 160), rng.integers(-20, 20, 20 * 160)]).astype(np.int16)
    phones = [Phone("S", 100, 120), Phone("IY", 120, 160)]
    assert _trim_quiet(phones, pcm, 100)[-1] == Phone("IY", 120, 140)
    hiss = [Phone("IY", 100, 120), Phone("S", 120, 160)]  # unvoiced sounds can be faint: left alone
    assert _trim_quiet(hiss, pcm, 100) == hiss
