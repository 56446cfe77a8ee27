"""Mouth-cue files that animation programs import: Rhubarb's TSV, JSON and XML, and Moho / OpenToonz switch data
(``.dat``). The rules are in ``shared/reference/cues/README.md``: two-decimal seconds, the idle shape closing every
track, never an empty cue list, ``.dat`` frames = 1 + floor(fps x start) with same-frame cues dropped.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from ..support.errors import LipsyncError

FORMATS = ("tsv", "json", "xml", "dat")
DAT_FPS = (24, 100)
#: Preston Blair (Moho / Papagayo) names of the shapes.
PRESTON_BLAIR = {"A": "MBP", "B": "etc", "C": "E", "D": "AI", "E": "O", "F": "U", "G": "FV", "H": "L", "X": "rest"}


@dataclass(frozen=True)
class CueFile:
    """What a cue file says besides the cues: the sound file (absolute path), its duration and how the cues were
    made (written where the format has metadata)."""

    sound_file: str
    duration: float
    idle: str = "X"
    recognizer: str = "pocketsphinx"
    dialog: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def format_for(path: str | None, default: str = "tsv") -> str:
    """The format an output path's extension names (tsv, json, xml, dat), else ``default``."""
    ext = (path or "").rsplit(".", 1)[-1].lower() if path and "." in path.rsplit("/", 1)[-1] else ""
    return ext if ext in FORMATS else default


def check_dat_options(fmt: str, fps: int, preston_blair: bool) -> None:
    """Raise :class:`LipsyncError` naming the option when the ``.dat`` options cannot be honoured."""
    if not DAT_FPS[0] <= fps <= DAT_FPS[1]:
        raise LipsyncError(f"--dat_fps must be between {DAT_FPS[0]} and {DAT_FPS[1]}; got {fps}")
    if preston_blair and fmt != "dat":
        raise LipsyncError(f"--preston_blair names the shapes of the dat format only; the format is {fmt}")


def _t(seconds: float) -> str:
    return f"{seconds:.2f}"


def _cues(cues: Sequence, info: CueFile) -> list[tuple[float, float, str]]:
    """The cues as (start, end, shape); a single zero-length idle cue when there are none."""
    rows = [(c.start, c.end, c.value) for c in cues]
    return rows or [(0.0, 0.0, info.idle)]


def to_tsv(cues: Sequence, info: CueFile) -> str:
    """``start<TAB>shape`` lines, then the end time with the idle shape."""
    rows = _cues(cues, info)
    lines = [f"{_t(s)}\t{v}" for s, _, v in rows]
    lines.append(f"{_t(rows[-1][1])}\t{info.idle}")
    return "\n".join(lines) + "\n"


def _metadata(info: CueFile) -> dict[str, object]:
    meta: dict[str, object] = {"soundFile": info.sound_file, "duration": round(info.duration, 2),
                               "recognizer": info.recognizer, "dialog": info.dialog}
    meta.update(info.extra)
    return meta


def to_json(cues: Sequence, info: CueFile) -> str:
    """``{"metadata": {...}, "mouthCues": [{"start", "end", "value"}, ...]}`` (Rhubarb's layout)."""
    doc = {"metadata": _metadata(info),
           "mouthCues": [{"start": round(s, 2), "end": round(e, 2), "value": v} for s, e, v in _cues(cues, info)]}
    return json.dumps(doc, indent=2) + "\n"


def to_xml(cues: Sequence, info: CueFile) -> str:
    """``<rhubarbResult>`` with ``<metadata>`` and ``<mouthCues>`` (Rhubarb's layout)."""
    meta = "".join(f"    <{k}>{escape(str(v).lower() if isinstance(v, bool) else str(v))}</{k}>\n"
                   for k, v in _metadata(info).items())
    body = "".join(f'    <mouthCue start="{_t(s)}" end="{_t(e)}">{v}</mouthCue>\n' for s, e, v in _cues(cues, info))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rhubarbResult>\n  <metadata>\n{meta}  </metadata>\n'
            f"  <mouthCues>\n{body}  </mouthCues>\n</rhubarbResult>\n")


def to_dat(cues: Sequence, info: CueFile, fps: int = 24, preston_blair: bool = False) -> str:
    """Moho switch data: ``MohoSwitch1``, then ``frame shape`` lines (frames from 1), the idle shape last."""
    name = (lambda v: PRESTON_BLAIR[v]) if preston_blair else (lambda v: v)
    rows = _cues(cues, info)
    lines = ["MohoSwitch1"]
    last = None
    for s, _, v in rows:
        frame = 1 + math.floor(fps * s + 1e-9)
        if frame == last:
            continue  # a cue that lands on the previous cue's frame is dropped
        lines.append(f"{frame} {name(v)}")
        last = frame
    end = 1 + math.floor(fps * rows[-1][1] + 1e-9)
    if end != last:
        lines.append(f"{end} {name(info.idle)}")
    else:
        lines[-1] = f"{end} {name(info.idle)}"
    return "\n".join(lines) + "\n"


def render(cues: Sequence, info: CueFile, fmt: str, *, fps: int = 24, preston_blair: bool = False) -> str:
    """The text of a cue file in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "dat":
        check_dat_options(fmt, fps, preston_blair)
        return to_dat(cues, info, fps, preston_blair)
    check_dat_options(fmt, fps, preston_blair)
    writers = {"tsv": to_tsv, "json": to_json, "xml": to_xml}
    if fmt not in writers:
        raise LipsyncError(f"unknown cue format {fmt!r}; use one of {', '.join(FORMATS)}")
    return writers[fmt](cues, info)
