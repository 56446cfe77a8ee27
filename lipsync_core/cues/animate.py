"""Timed phones -> mouth cues: the sound -> allowed-shape rules of Rhubarb Lip Sync 1.14 (restated in
``shared/reference/cues/README.md``), plosive closures, a smooth choice within each allowed set (dynamic
programming), in-between shapes, X for pauses and no shape shorter than one 24 fps frame except closures (A).

Everything is in 10 ms steps.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .phones import Phone

SHAPES = "ABCDEFGHX"
BASIC = frozenset("ABCDEF")
ANY = frozenset(SHAPES) - {"X"}
OPEN = ANY - {"A", "G"}
SUBSTITUTE = {"G": "A", "H": "C", "X": "A"}
MIN_STEPS = 5  # one frame at 24 fps is 4.17 steps: nothing but a closure may be shorter than 5
TWEEN_STEPS = 5
SHORT_PAUSE = 12  # a pause shorter than this (steps) inside speech keeps the mouth moving instead of X
CLOSURE_WITHIN = 0.5  # share of a plosive's phone that shows its closure shape
CLOSURE_BEFORE = 0  # steps of closure shape taken from the sound before it
PLOSIVES = {"P": "A", "B": "A", "T": "BF", "D": "BF", "K": "BCEFH", "G": "BCEFH"}
_FIXED = {
    "AO": "E", "AA": "D", "IY": "B", "UW": "F", "EH": "C", "IH": "B", "UH": "F", "AE": "C",
    "CH": "BF", "JH": "BF", "TH": "BF", "DH": "BF", "S": "BF", "Z": "BF", "SH": "BF", "ZH": "BF",
    "F": "G", "V": "G", "M": "A", "N": "BCFH", "NG": "BCEF", "R": "BEF", "Y": "BCF", "W": "F",
    "+BREATH+": "C", "+COUGH+": "C", "+SMACK+": "C", "+NSN+": "B", "+SPN+": "B", "+NOISE+": "B",
    "+UM+": "C", "+UH+": "C",
}
# (from, to) -> (tween, where): "early" takes the tween from the end of `from`, "late" from the start of `to`
_TWEENS = {("D", "A"): ("C", "early"), ("D", "G"): ("C", "early"), ("D", "B"): ("C", "centre"),
           ("D", "X"): ("C", "late"), ("C", "F"): ("E", "centre"), ("F", "C"): ("E", "centre"),
           ("D", "F"): ("E", "centre"), ("H", "F"): ("E", "centre"), ("F", "H"): ("E", "centre")}
# Mouth geometry for smoothness: (opening, rounding, lip-to-teeth).
_POSE = {"A": (0, 0, 0), "B": (1, 0, 0), "C": (2, 0, 0), "D": (3, 0, 0), "E": (2, 1, 0), "F": (1, 2, 0),
         "G": (0.5, 0, 1), "H": (2, 0, 0.5), "X": (0, 0, 0)}
# Tie-breaks within a set: the shapes that suit the most neighbouring sounds are preferred.
_PREFER = {"B": 0.0, "C": 0.1, "F": 0.2, "E": 0.25, "H": 0.3, "D": 0.3, "A": 0.3, "G": 0.3, "X": 0.0}


@dataclass(frozen=True)
class Part:
    """A span of steps and the shapes its sound allows."""

    start: int
    end: int
    allowed: frozenset[str]


def shape_sets(phone: str, steps: int) -> list[tuple[float, frozenset[str]]]:
    """(fraction of the phone, allowed shapes) for one phone of ``steps`` 10 ms steps (Rhubarb's rules)."""
    one = lambda s: [(1.0, frozenset(s))]  # noqa: E731
    two = lambda a, b: [(0.6, frozenset(a)), (1.0, frozenset(b))]  # noqa: E731
    if phone in _FIXED:
        return one(_FIXED[phone])
    if phone in ("P", "B", "HH"):
        return one(ANY)
    if phone in PLOSIVES:
        return one(OPEN)
    table = {
        "AH": lambda: one("C" if steps < 20 else "D"), "ER": lambda: one("BC" if steps < 7 else "E"),
        "L": lambda: one("BEFH" if steps < 20 else "H"), "EY": lambda: two("C", "B"),
        "AY": lambda: two("C" if steps < 20 else "D", "B"), "OW": lambda: two("E", "F"),
        "AW": lambda: two("C" if steps < 30 else "D", "E"), "OY": lambda: two("E", "B"),
    }
    return table[phone]() if phone in table else one("B")  # unknown sound: slightly open


def parts_of(phones: Sequence[Phone], total: int, shapes: str = "GHX") -> list[Part]:
    """Cover [0, total) with parts: the phones' shape sets, plosive closures, pauses (X) between them.

    ``shapes`` names the extended shapes the rig has; the others are replaced by their substitutes.
    """
    raw: list[Part] = []
    t = 0
    for ph in sorted(phones, key=lambda p: p.start):
        start, end = max(ph.start, t), min(ph.end, total)
        if end <= start:
            continue
        if start > t:
            raw.append(Part(t, start, frozenset("X")))
        a = start
        for frac, allowed in shape_sets(ph.name, end - start):
            b = start + int(round(frac * (end - start)))
            if b > a:
                raw.append(Part(a, b, allowed))
            a = b
        if ph.name in PLOSIVES:
            _closure(raw, len(raw) - 1, frozenset(PLOSIVES[ph.name]))
        t = end
    if t < total:
        raw.append(Part(t, total, frozenset("X")))
    out = []
    for i, p in enumerate(raw):  # short pauses inside speech: any open shape, chosen for smoothness
        if p.allowed == {"X"} and 0 < i < len(raw) - 1 and p.end - p.start < SHORT_PAUSE:
            p = Part(p.start, p.end, ANY)
        out.append(Part(p.start, p.end, _available(p.allowed, shapes)))
    return out


def _closure(raw: list[Part], release: int, shapes: frozenset[str]) -> None:
    """Show a plosive's closure shape over the first part of the phone ``raw[release]``, and for a few steps before
    it: the recogniser's plosive starts where the lips (or tongue) close, the release comes later."""
    rel = raw[release]
    steps = rel.end - rel.start
    within = min(steps - 1, int(round(CLOSURE_WITHIN * steps)))
    before = 0
    if release > 0 and raw[release - 1].allowed != {"X"}:
        prev = raw[release - 1]
        before = min(CLOSURE_BEFORE, max(0, prev.end - prev.start - MIN_STEPS))
    pieces: list[Part] = []
    if before:
        prev = raw[release - 1]
        pieces.append(Part(prev.start, prev.end - before, prev.allowed))
    start = rel.start - before
    if within + before > 0:
        pieces.append(Part(start, rel.start + within, shapes))
    pieces.append(Part(rel.start + within, rel.end, rel.allowed))
    raw[release - (1 if before else 0):release + 1] = pieces


def _available(allowed: frozenset[str], shapes: str) -> frozenset[str]:
    """``allowed`` with the extended shapes the rig lacks replaced by their substitutes."""
    return frozenset(s if s in BASIC or s in shapes else SUBSTITUTE[s] for s in allowed)


def choose(parts: Sequence[Part]) -> list[str]:
    """One shape per part, from its set, minimising mouth movement (Viterbi over the parts)."""
    n = len(parts)
    if not n:
        return []
    pose = np.array([_POSE[s] for s in SHAPES], float)
    move = np.abs(pose[:, None, :] - pose[None, :, :]).sum(-1)  # (from, to)
    big = 1e9
    cost = np.full(len(SHAPES), big)
    back = np.zeros((n, len(SHAPES)), int)
    for i, p in enumerate(parts):
        local = np.array([_PREFER[s] * (p.end - p.start) if s in p.allowed else big for s in SHAPES])
        if i == 0:
            cost = local
            continue
        total = cost[:, None] + move
        back[i] = np.argmin(total, axis=0)
        cost = total[back[i], np.arange(len(SHAPES))] + local
    picks = [int(np.argmin(cost))]
    for i in range(n - 1, 0, -1):
        picks.append(int(back[i, picks[-1]]))
    return [SHAPES[k] for k in reversed(picks)]


def timeline(parts: Sequence[Part], picks: Sequence[str], shapes: str = "GHX") -> list[tuple[int, int, str]]:
    """(start, end, shape) runs: equal neighbours joined, in-betweens added, too-short shapes absorbed."""
    runs: list[list] = []
    for p, s in zip(parts, picks):
        if runs and runs[-1][2] == s:
            runs[-1][1] = p.end
        else:
            runs.append([p.start, p.end, s])
    runs = _tweens(runs, shapes)
    return _min_length(runs)


def _tweens(runs: list[list], shapes: str) -> list[list]:
    out: list[list] = []
    for run in runs:
        if out:
            prev = out[-1]
            rule = _TWEENS.get((prev[2], run[2]))
            if rule and rule[0] in shapes + "ABCDEF":
                tween, where = rule
                take_prev = {"early": TWEEN_STEPS, "centre": TWEEN_STEPS // 2, "late": 0}[where]
                take_next = TWEEN_STEPS - take_prev
                if prev[1] - prev[0] - take_prev >= MIN_STEPS and run[1] - run[0] - take_next >= MIN_STEPS:
                    at = run[0] - take_prev
                    prev[1] = at
                    out.append([at, at + TWEEN_STEPS, tween])
                    run = [at + TWEEN_STEPS, run[1], run[2]]
        out.append(list(run))
    return out


def _min_length(runs: list[list]) -> list[tuple[int, int, str]]:
    """Make every run at least a 24 fps frame long (closures excepted): lengthen it with time from a neighbour
    that can spare it, else absorb it into a neighbour."""
    runs = [list(r) for r in runs]
    i = 0
    while i < len(runs):
        s, e, shape = runs[i]
        need = MIN_STEPS - (e - s)
        if need <= 0 or shape == "A" or len(runs) == 1:
            i += 1
            continue
        edge: list[Any] = [0, 0, "A"]  # no neighbour: nothing to spare
        spare = [max(0, r[1] - r[0] - MIN_STEPS) if r[2] != "A" else 0 for r in (
            runs[i - 1] if i else edge, runs[i + 1] if i + 1 < len(runs) else edge)]
        if sum(spare) >= need:
            before = min(spare[0], (need + 1) // 2 if spare[1] >= need // 2 else need)
            after = need - before
            if after > spare[1]:
                before, after = need - spare[1], spare[1]
            if before:
                runs[i - 1][1] -= before
                runs[i][0] -= before
            if after:
                runs[i + 1][0] += after
                runs[i][1] += after
            i += 1
            continue
        if i > 0 and (runs[i - 1][2] not in "AX" or i == len(runs) - 1):
            runs[i - 1][1] = e
            del runs[i]
            i -= 1
        else:
            runs[i + 1][0] = s
            del runs[i]
        if 0 <= i < len(runs) - 1 and runs[i][2] == runs[i + 1][2]:  # equal neighbours now meet
            runs[i][1] = runs[i + 1][1]
            del runs[i + 1]
        i = max(i, 0)
    return [tuple(r) for r in runs]  # type: ignore[misc]


def animate(phones: Sequence[Phone], total: int, shapes: str = "GHX") -> list[tuple[int, int, str]]:
    """(start, end, shape) runs in steps covering [0, total) for timed phones."""
    if total <= 0:
        return []
    parts = parts_of(phones, total, shapes)
    return timeline(parts, choose(parts), shapes)
