"""Job lists: CSV or JSON Lines rows, the short form (one face x a folder of audio, or the reverse), validation.

A row has ``face``, ``audio``, ``outfile`` and any run option by its flag name (``variant``, ``pads``, ``box``,
``checkpoint_path``, ``no_track_cache``...: :func:`~lipsync_core.engine.options.option_names`). CSV cells are text:
several numbers separated by spaces (``pads`` = ``0 20 0 0``), booleans ``true``/``false``, an empty cell =
unset. JSON Lines use native types (lists for several numbers). Relative paths in a job list are relative to
the list's folder.

One option of one job comes from, first to last: the row, a flag given on the command line (``defaults``),
the row's variant's preset, :class:`~lipsync_core.engine.options.RunOptions`'s default.
"""
from __future__ import annotations

import csv
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.options import OPTIONS, RunOptions, option_hints
from ..engine.plan import make_config, option_names
from ..inputs import youtube
from ..inputs.resolve import AUDIO_SUFFIXES, MEDIA_SUFFIXES, SAME_AS_FACE, Trim
from ..media.probe import IMAGE_SUFFIXES
from ..support.errors import LipsyncError
from ..support.safety import output_format
from ..weights import download

#: Columns every row has; everything else is a run option.
IO_COLUMNS = ("face", "audio", "outfile")
_HINTS = option_hints()
#: Times (trims) are text like ``1:02.5``; a number of seconds is accepted too.
_TIMES = ("start", "end", "audio_start", "audio_end")


@dataclass
class Job:
    """One lip-sync job: sources (path, URL, Drive ID), the output mp4, and its own run options."""

    face: str
    audio: str
    outfile: str
    options: dict[str, Any] = field(default_factory=dict)  # by flag name; only what this job sets itself
    row: int | None = None  # 1-based row of the job list (None: given in code)
    line: int | None = None  # line of the job list file where the row starts
    problems: list[str] = field(default_factory=list, repr=False)  # cells that could not be read

    @property
    def where(self) -> str:
        if self.row is None:
            return "job"
        return f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")


class JobListError(LipsyncError):
    """Rows that cannot run; the message has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = f"{len(problems)} problem(s) in the job list, nothing was run:"
        super().__init__("\n".join([head, *problems]))


# -- reading -----------------------------------------------------------------------------------------------------
def load_jobs(path: str | os.PathLike) -> list[Job]:
    """The jobs of a ``.csv`` or ``.jsonl`` file (the suffix decides; ``.json``/``.ndjson`` are JSON Lines).

    A malformed header raises :class:`JobListError`; a row's unreadable cells are kept with the job and
    reported by :func:`resolve_jobs`, together with every other problem of every row.
    """
    path = Path(path)
    if not path.is_file():
        raise LipsyncError(f"job list not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        jobs = _read_csv(path)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        jobs = _read_jsonl(path)
    else:
        raise LipsyncError(f"{path}: a job list is a .csv or .jsonl file")
    if not jobs:
        raise LipsyncError(f"{path} holds no jobs")
    base = path.resolve().parent
    for job in jobs:
        job.face, job.audio, job.outfile = (_relative_to(base, v) for v in (job.face, job.audio, job.outfile))
    return jobs


def _relative_to(base: Path, value: str) -> str:
    """A relative local path taken from ``base``; URLs, Drive IDs and ``same`` stay as they are."""
    if not value or value.strip().lower() == SAME_AS_FACE or _is_remote(value):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def _read_csv(path: Path) -> list[Job]:
    jobs: list[Job] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return []
        header = [h.strip() for h in header]
        missing = [c for c in IO_COLUMNS if c not in header]
        unknown = [c for c in header if c not in IO_COLUMNS and c not in option_names()]
        if missing or unknown:
            said = [f"missing column(s) {', '.join(missing)}"] if missing else []
            said += [f"unknown column(s) {', '.join(unknown)} (run options go by their flag name)"] if unknown else []
            raise JobListError([f"{path.name} header: " + "; ".join(said)])
        row = 0
        line = reader.line_num + 1
        for cells in reader:
            if not any(c.strip() for c in cells):
                line = reader.line_num + 1
                continue
            row += 1
            job = Job("", "", "", row=row, line=line)
            if len(cells) != len(header):
                job.problems.append(f"{len(cells)} cells where the header has {len(header)}")
            else:
                values = dict(zip(header, cells))
                job.face, job.audio, job.outfile = (values[c].strip() for c in IO_COLUMNS)
                for name, text in values.items():
                    if name in IO_COLUMNS or not text.strip():
                        continue
                    try:
                        job.options[name] = parse_text(name, text)
                    except LipsyncError as e:
                        job.problems.append(str(e))
            jobs.append(job)
            line = reader.line_num + 1
    return jobs


def _read_jsonl(path: Path) -> list[Job]:
    jobs: list[Job] = []
    row = 0
    for line_no, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not text.strip():
            continue
        row += 1
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise LipsyncError("each line must be a JSON object")
            jobs.append(job_from_mapping(obj, row=row, line=line_no))
        except ValueError as e:
            jobs.append(Job("", "", "", row=row, line=line_no,
                            problems=[f"not valid JSON ({getattr(e, 'msg', e)} at column {getattr(e, 'colno', '?')})"]))
        except LipsyncError as e:
            jobs.append(Job("", "", "", row=row, line=line_no, problems=[str(e)]))
    return jobs


def job_from_mapping(obj: dict[str, Any], *, row: int | None = None, line: int | None = None) -> Job:
    """A :class:`Job` from a dict with native values (JSON Lines, the Python API); None means unset."""
    unknown = sorted(k for k in obj if k not in IO_COLUMNS and k not in option_names())
    if unknown:
        raise LipsyncError(f"unknown option(s) {', '.join(unknown)} (run options go by their flag name)")
    io = {}
    for name in IO_COLUMNS:
        value = obj.get(name)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise LipsyncError(f"{name} must be a path or URL string, got {value!r}")
        io[name] = os.fspath(value) if value is not None else ""
    job = Job(io["face"], io["audio"], io["outfile"], row=row, line=line)
    for k, v in obj.items():
        if k not in IO_COLUMNS and v is not None:
            try:
                job.options[k] = check_native(k, v)
            except LipsyncError as e:
                job.problems.append(str(e))
    return job


# -- option values -------------------------------------------------------------------------------------------------
def _field_type(name: str) -> Any:
    """The annotation of option ``name`` (a weight role's ``<role>_path`` is a path, URL or id: text)."""
    return _HINTS[name] if name in OPTIONS else str


def _parts(tp: Any) -> tuple[set[type], tuple | None]:
    """(scalar types allowed, the tuple's element types or None) of a field annotation, without None."""
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    scalars: set[type] = set()
    tup = None
    for a in args:
        if a is type(None):
            continue
        if typing.get_origin(a) is tuple:
            tup = typing.get_args(a)
        else:
            scalars.add(a)
    return scalars, tup


def _repeated(name: str) -> bool:
    """Whether option ``name`` may be given several times (``--track_box``, ``--mouth_box``: keyframes)."""
    return name in OPTIONS and bool(OPTIONS[name].metadata.get("repeat"))


def _describe(name: str) -> str:
    if _repeated(name):
        return "text, or several (a list; in a CSV cell separated by ;)"
    scalars, tup = _parts(_field_type(name))
    if tup is not None:
        return f"{len(tup)} whole numbers"
    if bool in scalars:
        return "true or false"
    if name in _TIMES:
        return "seconds or [hh:]mm:ss"
    return " or ".join(sorted({int: "a whole number", float: "a number", str: "text"}[s] for s in scalars))


def parse_text(name: str, text: str) -> Any:
    """A CSV cell's value for option ``name`` (see the module doc); raises LipsyncError naming the flag."""
    if name not in option_names():
        raise LipsyncError(f"unknown option {name}")
    scalars, tup = _parts(_field_type(name))
    text = text.strip()
    bad = LipsyncError(f"--{name} {text!r}: expected {_describe(name)}")
    if _repeated(name):
        return tuple(k.strip() for k in text.split(";") if k.strip())
    if tup is not None:
        try:
            values = tuple(int(v) for v in text.replace(",", " ").split())
        except ValueError:
            raise bad from None
        if len(values) != len(tup):
            raise bad
        return values
    if bool in scalars:
        low = text.lower()
        if low not in ("true", "false"):
            raise bad
        return low == "true"
    for tp in (int, float):
        if tp in scalars:
            try:
                return tp(text)
            except ValueError:
                raise bad from None
    return text


def check_native(name: str, value: Any) -> Any:
    """A JSON/Python value for option ``name``, checked against its type (lists become tuples)."""
    if name not in option_names():
        raise LipsyncError(f"unknown option {name}")
    scalars, tup = _parts(_field_type(name))
    bad = LipsyncError(f"--{name} {value!r}: expected {_describe(name)}")
    if _repeated(name):
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
            raise bad
        return tuple(values)
    if tup is not None and isinstance(value, (list, tuple)):
        if len(value) != len(tup) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad
        return tuple(value)
    if name in _TIMES and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, bool):
        if bool not in scalars:
            raise bad
        return value
    if isinstance(value, int) and (int in scalars or float in scalars):
        return value if int in scalars else float(value)
    if isinstance(value, float) and float in scalars:
        return value
    if isinstance(value, str) and str in scalars:
        return value
    raise bad


# -- the short form ------------------------------------------------------------------------------------------------
def media_files(folder: str | os.PathLike, kind: str) -> list[Path]:
    """The ``kind`` ("face" or "audio") files of ``folder`` in name order, hidden and non-media files left out
    (audio: audio and video files, whose sound is used; face: videos and images)."""
    wanted = MEDIA_SUFFIXES - (IMAGE_SUFFIXES if kind == "audio" else AUDIO_SUFFIXES)
    found = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in wanted)
    if not found:
        raise LipsyncError(f"{folder} holds no {kind} files")
    return found


def jobs_from_folder(face: str | os.PathLike, audio: str | os.PathLike, outdir: str | os.PathLike) -> list[Job]:
    """One job per pair for one face and a folder of audio files (outputs named after each audio file),
    or a folder of faces and one audio (named after each face); see :func:`media_files`."""
    face, audio, outdir = Path(face).expanduser(), Path(audio).expanduser(), Path(outdir).expanduser()
    if face.is_dir() == audio.is_dir():
        raise LipsyncError("the short form takes one face and a folder of audio files, or a folder of faces "
                           "and one audio file")
    folder = audio if audio.is_dir() else face
    found = media_files(folder, "audio" if folder == audio else "face")
    stems = [p.stem for p in found]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise LipsyncError(f"{folder} has several files named {dup[0]}.*; their outputs would collide")
    return [Job(str(face if folder == audio else p), str(p if folder == audio else audio),
                str(outdir / f"{p.stem}.mp4"), row=i) for i, p in enumerate(found, 1)]


# -- validation ----------------------------------------------------------------------------------------------------
def as_job(item: Job | dict[str, Any], index: int) -> Job:
    """A :class:`Job` from a Job or a dict (the Python API); rows without a number get their position."""
    job = item if isinstance(item, Job) else job_from_mapping(item)
    if job.row is None:
        job.row = index
    return job


def _is_remote(text: str) -> bool:
    return "://" in text or download.drive_id(text) is not None or youtube.canonical_youtube_url(text) is not None


def _source_problem(name: str, text: str) -> str | None:
    if not text.strip():
        return f"{name} is empty"
    if name == "audio" and text.strip().lower() == SAME_AS_FACE:
        return None
    p = Path(text).expanduser()
    if p.is_dir():
        return f"{name} {text} is a folder; give a media file (or use the short form for a folder)"
    if p.is_file() or _is_remote(text):
        return None
    return f"{name} file not found: {text}"


def resolve_jobs(jobs: list[Job], defaults: dict[str, Any] | None = None) -> list[RunOptions]:
    """The validated RunOptions of every job (precedence: row > ``defaults`` > the variant's preset >
    RunOptions's default), or :class:`JobListError` with every problem, one line each, before anything runs.

    ``defaults`` are the options given explicitly on the command line (flag names, native values).
    """
    base = {k: check_native(k, v) for k, v in (defaults or {}).items() if v is not None}
    problems: list[str] = []
    configs: list[RunOptions] = []
    outfiles: dict[Path, Job] = {}
    for job in jobs:
        if job.problems:
            problems += [f"{job.where}: {p}" for p in job.problems]
            continue
        for name in IO_COLUMNS:
            problem = _source_problem(name, getattr(job, name)) if name != "outfile" else \
                (None if job.outfile.strip() else "outfile is empty")
            if problem:
                problems.append(f"{job.where}: {problem}")
        if job.outfile.strip():
            try:
                output_format(job.outfile, flag="outfile")
            except LipsyncError as e:
                problems.append(f"{job.where}: {e}")
            out = Path(job.outfile).expanduser().resolve()
            if out in outfiles:
                problems.append(f"{job.where}: outfile {job.outfile} is also the output of {outfiles[out].where}")
            outfiles.setdefault(out, job)
        options = {**base, **job.options}
        try:
            cfg = make_config(options.pop("variant", "original"), **options)
            Trim.parse(cfg.start, cfg.end, role="face video")
            Trim.parse(cfg.audio_start, cfg.audio_end, role="audio")
            configs.append(cfg)
        except LipsyncError as e:
            problems.append(f"{job.where}: {e}")
    if problems:
        raise JobListError(problems)
    return configs
