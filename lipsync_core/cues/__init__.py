"""Mouth cues for 2D animation: speech -> timed Hanna-Barbera mouth shapes (A-F, extended G, H, X).

:func:`mouth_cues` recognises the speech with PocketSphinx (forced alignment when the transcript is known),
maps the phones to shapes by Rhubarb Lip Sync's rules and returns :class:`MouthCue` s; :mod:`.formats` writes
them as the TSV, JSON, XML and Moho ``.dat`` files animation programs import. This package never imports torch.
"""
from __future__ import annotations

import difflib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..support.errors import LipsyncError
from .animate import SUBSTITUTE
from .animate import animate as _animate
from .audio import Source, Utterance, utterances
from .phones import Phone, words_of
from .recognize import Recognizer

log = logging.getLogger(__name__)

RecognizerName = Literal["pocketsphinx", "phonetic"]
RECOGNIZERS = ("pocketsphinx", "phonetic")
PIECE_SECONDS = 10.0  # speech decoded without a transcript is cut into pieces this long, shared out to the cores
PARALLEL_FROM = 20.0  # seconds of audio from which pieces are decoded in worker processes

__all__ = ["MouthCue", "RECOGNIZERS", "idle_shape", "mouth_cues", "read_dialog"]


@dataclass(frozen=True)
class MouthCue:
    """One mouth shape shown from ``start`` to ``end`` (seconds)."""

    start: float
    end: float
    value: str


def idle_shape(extended_shapes: str = "GHX") -> str:
    """The shape of a closed, relaxed mouth: X, or its substitute when the rig has no X."""
    return "X" if "X" in extended_shapes.upper() else SUBSTITUTE["X"]


def check_shapes(extended_shapes: str) -> str:
    """The extended shapes as upper-case letters; raises :class:`LipsyncError` on anything but G, H, X."""
    shapes = (extended_shapes or "").upper()
    bad = sorted(set(shapes) - set("GHX"))
    if bad:
        raise LipsyncError(f"extended shapes are some of G, H, X; got {''.join(bad)!r}")
    return shapes


def mouth_cues(audio: str | os.PathLike, dialog: str | None = None, *, extended_shapes: str = "GHX",
               recognizer: RecognizerName = "pocketsphinx", start: float | str | None = None,
               end: float | str | None = None,
               progress: bool = False) -> list[MouthCue]:
    """Mouth cues for the speech in ``audio`` (any file ffmpeg reads; a video's sound), from ``start`` to ``end``.

    ``dialog``: the transcript, when known (its words are aligned, which is far more accurate; where alignment
    fails, recognition takes over with a warning). ``recognizer``: "pocketsphinx" (aligns the transcript's English
    words) or "phonetic" (ignores the transcript: for any language); without a transcript both decode phones.
    Times are relative to ``start``. Raises :class:`LipsyncError` (one line) for unreadable audio or bad options.
    """
    shapes = check_shapes(extended_shapes)
    if recognizer not in RECOGNIZERS:
        raise LipsyncError(f"recognizer must be one of {', '.join(RECOGNIZERS)}; got {recognizer!r}")
    source = Source.open(audio, start, end)
    words = words_of(dialog) if dialog else []
    rec = Recognizer()
    phones: list[Phone] = []
    total = 0
    spans: list[tuple[int, int]] = []
    with _progress(source.duration, progress) as tick:
        def steps(n: int) -> None:
            nonlocal total
            total += n
            tick(n)

        if words and recognizer == "pocketsphinx":
            phones = _aligned(rec, source, words, steps, spans)
        else:
            utts = _spanned(utterances(source.chunks(), steps, PIECE_SECONDS), spans)
            for found in _decoded(rec, utts, _workers(source.duration)):
                phones += found
    if not spans:
        log.info("no speech found in %s: one idle cue", source.path)
    runs = _animate(phones, total, shapes)
    idle = idle_shape(shapes)
    if not runs:
        return [MouthCue(0.0, total / 100, idle)]
    return [MouthCue(a / 100, b / 100, s) for a, b, s in runs]


def _recognised(rec: Recognizer, utt: Utterance) -> list[Phone]:
    """Phones of one utterance without a transcript (phone-loop decoding: see docs/cues.md for why not words)."""
    return rec.phone_loop(utt.pcm, utt.start)


def _spanned(utts: Iterable[Utterance], spans: list[tuple[int, int]]) -> Iterator[Utterance]:
    for utt in utts:
        spans.append((utt.start, utt.start + utt.steps))
        yield utt


def _workers(duration: float) -> int:
    """Processes for decoding: one per usable core (at most 4) for long audio, else none beside this one."""
    if duration < PARALLEL_FROM or not hasattr(os, "fork"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cores))


_FORKED: Recognizer | None = None  # the decoder worker processes inherit


def _decode_forked(utt: Utterance) -> list[Phone]:
    assert _FORKED is not None
    return _recognised(_FORKED, utt)


def _decoded(rec: Recognizer, utts: Iterator[Utterance], workers: int) -> Iterator[list[Phone]]:
    """Phones of each utterance, in order; with ``workers`` > 1, decoded by forked processes that share the loaded
    model, at most two utterances per worker in flight (memory stays bounded however long the audio is)."""
    if workers < 2:
        yield from (_recognised(rec, utt) for utt in utts)
        return
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    global _FORKED
    rec.load("allphone")  # before the fork: the workers share the model pages instead of loading their own
    _FORKED = rec
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            pending: deque[Future[list[Phone]]] = deque()
            for utt in utts:
                pending.append(pool.submit(_decode_forked, utt))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        _FORKED = None


def _aligned(rec: Recognizer, source: Source, words: list[str], steps: Callable[[int], None],
             spans: list[tuple[int, int]]) -> list[Phone]:
    """Phones of the transcript's words aligned utterance by utterance (recognition where alignment fails).

    One utterance (the usual short clip) takes all the words. With several, a first pass recognises each one's
    words, and the transcript is shared out by matching it against those hypotheses; a second pass aligns.
    """
    utts: Iterator[Utterance] = utterances(source.chunks(), steps)
    first = next(utts, None)
    second = next(utts, None) if first is not None else None
    if first is None:
        return []
    if second is None:
        spans.append((first.start, first.start + first.steps))
        return _align_or_recognise(rec, first, words)
    hyps: list[list[str]] = []
    for utt in (first, second, *utts):
        spans.append((utt.start, utt.start + utt.steps))
        hyps.append(rec.words(utt.pcm))
    shares = _share_out(words, hyps)
    phones: list[Phone] = []
    for utt, share in zip(utterances(source.chunks()), shares):
        phones += _align_or_recognise(rec, utt, share)
    return phones


def _align_or_recognise(rec: Recognizer, utt: Utterance, words: list[str]) -> list[Phone]:
    aligned = rec.align(utt.pcm, words, utt.start) if words else []
    if aligned is not None and (aligned or not words):
        return aligned
    log.warning("the transcript did not align with the speech from %.2f s to %.2f s; recognising it instead",
                utt.start / 100, (utt.start + utt.steps) / 100)
    return _recognised(rec, utt)


def _share_out(words: list[str], hyps: list[list[str]]) -> list[list[str]]:
    """Split the transcript's ``words`` among utterances whose recognised words are ``hyps``."""
    flat = [(w.split("(")[0], k) for k, hyp in enumerate(hyps) for w in hyp]
    owner: list[int | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(None, words, [w for w, _ in flat], autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for j in range(size):
            owner[a + j] = flat[b + j][1]
    last = 0
    for i, k in enumerate(owner):  # unmatched words go with the utterance before them
        owner[i] = last = k if k is not None else last
    shares: list[list[str]] = [[] for _ in hyps]
    for w, k in zip(words, owner):
        shares[k or 0].append(w)
    return shares


class _progress:
    """A tqdm bar over seconds of audio when asked for and the audio is long enough to be worth one."""

    def __init__(self, duration: float, enabled: bool) -> None:
        self.bar = None
        if enabled and duration > 30:
            from tqdm import tqdm

            self.bar = tqdm(total=round(duration, 2), unit="s", desc="mouth cues", leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                                       "[{elapsed}<{remaining}]")

    def __enter__(self) -> Callable[[int], None]:
        return self.tick

    def tick(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps / 100)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def read_dialog(path: str | None) -> str | None:
    """The transcript's text (``--dialog_file``), or None: without one, and, with a warning, when it cannot be
    read or has no words (the speech is then recognised without it)."""
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        log.warning("cannot read the transcript %s (%s); recognising the speech without it", path,
                    exc.strerror or exc)
        return None
    if not any(c.isalnum() for c in text):
        log.warning("the transcript %s has no words; recognising the speech without it", path)
        return None
    return text
