"""Words -> ARPAbet phones: the recogniser's dictionary first, then a small letter-to-sound fallback of our own.

Also the transcript clean-up that turns a dialog text into dictionary words.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: Phones of the PocketSphinx en-us acoustic model that are not speech sounds.
SILENCES = frozenset({"SIL", "+NSN+", "+SPN+", "+UM+", "+UH+", "+BREATH+", "+COUGH+", "+SMACK+", "+NOISE+"})

_DIGITS = "zero one two three four five six seven eight nine".split()
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
# Letter groups -> phones, longest first; a deliberately small rule set for names and made-up words.
_GROUPS = [
    ("tion", "SH AH N"), ("sion", "ZH AH N"), ("igh", "AY"), ("tch", "CH"), ("dge", "JH"), ("ough", "AO"),
    ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("wh", "W"), ("ck", "K"), ("ng", "NG"), ("qu", "K W"),
    ("kn", "N"), ("wr", "R"), ("gh", "G"), ("ee", "IY"), ("ea", "IY"), ("ie", "IY"), ("oo", "UW"), ("ou", "AW"),
    ("ow", "OW"), ("oa", "OW"), ("oi", "OY"), ("oy", "OY"), ("ai", "EY"), ("ay", "EY"), ("ey", "EY"), ("au", "AO"),
    ("aw", "AO"), ("ew", "UW"), ("ue", "UW"), ("er", "ER"), ("ir", "ER"), ("ur", "ER"), ("ar", "AA R"),
    ("or", "AO R"),
    ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"), ("g", "G"), ("h", "HH"), ("i", "IH"),
    ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"), ("o", "AA"), ("p", "P"), ("q", "K"), ("r", "R"),
    ("s", "S"), ("t", "T"), ("u", "AH"), ("v", "V"), ("w", "W"), ("x", "K S"), ("y", "Y"), ("z", "Z"),
]


@dataclass(frozen=True)
class Phone:
    """One phone with its span in 10 ms steps (``end`` exclusive) from the start of the audio."""

    name: str
    start: int
    end: int

    @property
    def steps(self) -> int:
        return self.end - self.start


def words_of(text: str) -> list[str]:
    """Lower-case words of a transcript (punctuation dropped, digits spelled out one by one)."""
    out: list[str] = []
    for w in _WORD.findall(text.lower().replace("\u2019", "'")):
        if w.isdigit():
            out += [_DIGITS[int(c)] for c in w]
        else:
            out.append(w)
    return out


def letter_to_sound(word: str) -> str:
    """A rough ARPAbet pronunciation for a word the dictionary lacks (never empty for a non-empty word)."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if len(w) > 2 and w.endswith("e") and w[-2] not in "aeiouy":
        w = w[:-1]  # silent final e
    phones: list[str] = []
    i = 0
    while i < len(w):
        if w[i] == "c" and i + 1 < len(w) and w[i + 1] in "eiy":
            phones.append("S")
            i += 1
            continue
        if w[i] == "y":
            phones.append("Y" if i == 0 else "IY")
            i += 1
            continue
        for letters, ph in _GROUPS:
            if w.startswith(letters, i):
                if not phones or phones[-1] != ph:  # double letters: one sound
                    phones.append(ph)
                i += len(letters)
                break
    return " ".join(phones) or "AH"


def ensure_words(words: list[str], lookup: Callable[[str], str | None], add: Callable[[str, str], None]) -> None:
    """Add a letter-to-sound pronunciation for each word the dictionary (``lookup``) does not know."""
    for w in dict.fromkeys(words):
        if lookup(w) is None:
            add(w, letter_to_sound(w))
