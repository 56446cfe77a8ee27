"""PocketSphinx: utterance audio -> timed phones, by forced alignment of known words, by word recognition
(language model) followed by alignment of the hypothesis, or by phone-loop decoding (any language).

The models are the ones the ``pocketsphinx`` wheel ships (en-us acoustic model, CMU dictionary, word and phone
language models); they are loaded when a :class:`Recognizer` is first used, never at import.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .phones import SILENCES, Phone, ensure_words

log = logging.getLogger(__name__)

#: Decoder settings: 10 ms frames; the whole utterance is known, so cepstral mean normalisation uses all of it.
#: Steps (10 ms) of quiet added around every utterance.
PAD_STEPS = 30
_CONFIG: dict[str, Any] = {"loglevel": "FATAL", "cmn": "batch", "frate": 100, "bestpath": True}
#: Language-model weight of the phone loop: low, so that the sounds decide more than English phone statistics.
PHONE_LM_WEIGHT = 0.5


def _model(*parts: str) -> str:
    from pocketsphinx import get_model_path

    return os.path.join(get_model_path(), *parts)


@dataclass
class Recognizer:
    """A lazily built PocketSphinx decoder with the searches it needs (align, lm, allphone)."""

    _decoder: Any = field(default=None, init=False, repr=False)
    _searches: set[str] = field(default_factory=set, init=False, repr=False)
    _pad: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def decoder(self) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(hmm=_model("en-us", "en-us"), dict=_model("en-us", "cmudict-en-us.dict"),
                                    lm=None, **_CONFIG)
        return self._decoder

    def load(self, name: str) -> None:
        """Load the models of search ``name`` ("lm", "allphone") now rather than when first used."""
        self._use(name)

    def _use(self, name: str) -> Any:
        d = self.decoder
        if name not in self._searches:
            if name == "lm":
                d.add_lm_file("lm", _model("en-us", "en-us.lm.bin"))
            elif name == "allphone":
                lw = d.config["lw"]
                d.config["lw"] = PHONE_LM_WEIGHT  # read when the search is made; the other searches keep theirs
                try:
                    d.add_allphone_file("allphone", _model("en-us", "en-us-phone.lm.bin"))
                finally:
                    d.config["lw"] = lw
            self._searches.add(name)
        d.activate_search(name)
        return d

    def _run(self, d: Any, pcm: np.ndarray) -> None:
        """Decode ``pcm`` as one utterance, with :data:`PAD_STEPS` of faint noise before and after it: speech
        that starts or ends right at the edge otherwise often defeats the alignment's end states."""
        if self._pad is None:
            self._pad = np.random.default_rng(0).integers(-16, 17, PAD_STEPS * 160).astype(np.int16)
        d.start_utt()
        d.process_raw(np.concatenate([self._pad, pcm, self._pad]).tobytes(), no_search=False, full_utt=True)
        d.end_utt()

    def align(self, pcm: np.ndarray, words: list[str], offset: int) -> list[Phone] | None:
        """Phones of ``words`` aligned to ``pcm`` (steps from ``offset``), or None when alignment fails."""
        if not words:
            return []
        d = self.decoder
        ensure_words(words, d.lookup_word, lambda w, p: d.add_word(w, p, True))
        # Optional pauses (filler words) between the words place them best, but often leave the grammar's end
        # unreached; then the words are aligned back to back. Where the words are placed but their phones cannot
        # be (fast speech), each word's span is shared out among its phones.
        placed: list[tuple[str, int, int]] = []
        for fillers in (True, False):
            d.config["fsgusefiller"] = fillers
            try:
                d.set_align_text(" ".join(words))
                self._run(d, pcm)
                found = [] if d.hyp() is None else [(s.word, s.start_frame, s.end_frame + 1) for s in d.seg()
                                                     if s.word not in _NON_WORDS]
                if [w.split("(")[0] for w, _, _ in found] != words:
                    raise RuntimeError("the grammar's end was not reached")  # a partial path: words left out
                placed = placed or found
                d.set_alignment()
                self._run(d, pcm)
                alignment = d.get_alignment()
            except RuntimeError:
                alignment = None
            finally:
                d.config["fsgusefiller"] = True
            if alignment is not None:
                break
        else:
            if not placed:
                return None
            log.info("phones shared out within the aligned words")
            return _trim_quiet(_shared_out(placed, d.lookup_word, len(pcm) // 160, offset), pcm, offset)
        return _trim_quiet([_phone(p.name, offset + p.start, offset + p.start + p.duration)
                            for w in alignment for p in w if p.duration > 0 and p.name not in SILENCES], pcm, offset)

    def words(self, pcm: np.ndarray) -> list[str]:
        """The words recognised in ``pcm`` with the en-us language model (fillers and silences dropped)."""
        d = self._use("lm")
        self._run(d, pcm)
        hyp = d.hyp()
        if hyp is None:
            return []
        return [w for w in hyp.hypstr.split() if not w.startswith(("<", "[", "+"))]

    def phone_loop(self, pcm: np.ndarray, offset: int) -> list[Phone]:
        """Phones decoded without words (phone n-gram only): works for any language, English-flavoured."""
        d = self._use("allphone")
        self._run(d, pcm)
        return _trim_quiet([_phone(s.word, offset + s.start_frame, offset + s.end_frame + 1) for s in d.seg()
                            if s.word not in SILENCES], pcm, offset)


#: A sound this many dB below the utterance's loud steps (90th percentile) is quiet.
QUIET_DB = 25.0
MIN_PHONE = 3  # steps a trimmed phone keeps
_VOICED = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()) | {
    "M", "N", "NG", "L", "R", "W", "Y"}
_NON_WORDS = frozenset({"<s>", "</s>", "<sil>"}) | SILENCES
#: Relative length of a sound when a word's span is shared out among its phones.
_WEIGHT = {"AA": 2.0, "AE": 2.0, "AH": 1.2, "AO": 2.0, "AW": 2.5, "AY": 2.5, "EH": 1.6, "ER": 1.8, "EY": 2.2,
           "IH": 1.2, "IY": 1.8, "OW": 2.2, "OY": 2.5, "UH": 1.4, "UW": 1.8}


def _shared_out(placed: list[tuple[str, int, int]], lookup: Any, steps: int, offset: int) -> list[Phone]:
    """Phones of words placed at [start, end) frames (padded time), each word's span split by typical lengths."""
    phones: list[Phone] = []
    for word, start, end in placed:
        start, end = max(start, PAD_STEPS), min(end, PAD_STEPS + steps)
        names = (lookup(word) or "").split()
        if not names or end <= start:
            continue
        weights = np.array([_WEIGHT.get(n, 1.0) for n in names])
        cuts = start + np.round(np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * (end - start))
        phones += [_phone(n, offset + int(a), offset + int(b)) for n, a, b in zip(names, cuts, cuts[1:]) if b > a]
    return phones


def _trim_quiet(phones: list[Phone], pcm: np.ndarray, offset: int) -> list[Phone]:
    """Aligned phones without the quiet the alignment stretches the first and last voiced sound over: a vowel or
    sonorant at the utterance's edge ends (begins) where the sound falls :data:`QUIET_DB` below the speech."""
    if not phones:
        return phones
    steps = len(pcm) // 160
    frames = pcm[:steps * 160].astype(np.float32).reshape(steps, 160)
    level = 10 * np.log10(np.mean(frames * frames, axis=1) + 1.0)
    loud = level >= np.percentile(level, 90) - QUIET_DB
    out = list(phones)
    first, last = out[0], out[-1]
    if last.name in _VOICED:
        end = min(last.end, offset + steps)
        while end - last.start > MIN_PHONE and end > offset and not loud[end - offset - 1]:
            end -= 1
        out[-1] = Phone(last.name, last.start, end)
    if first.name in _VOICED and len(out) > 1:
        start = max(first.start, offset)
        while first.end - start > MIN_PHONE and start - offset < steps and not loud[start - offset]:
            start += 1
        out[0] = Phone(first.name, start, first.end)
    return out


def _phone(name: str, start: int, end: int) -> Phone:
    """A decoded phone, its times shifted back by the padding :meth:`Recognizer._run` added."""
    return Phone(name, max(0, start - PAD_STEPS), max(0, end - PAD_STEPS))
