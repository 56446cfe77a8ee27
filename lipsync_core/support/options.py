"""Option fields: dataclass fields that carry what front ends and checks need (help, group, choices, check).

Every option of the package is a field made by :func:`opt` in the options group of the code that reads it (the
detection options beside the tracker, the render options beside the engine); the CLI flags, API keywords, batch
columns, notebook forms and the README's table are generated from these fields, and :func:`check_option` is the
one check of a value against its field.
"""
from __future__ import annotations

import math
from dataclasses import MISSING, Field, field
from typing import Any

from .errors import LipsyncError


def opt(default: Any, help: str, group: str = "this package's options", *, choices: Any = None,
        metavar: Any = None, check: Any = None, message: str = "", repeat: bool = False, keyed: bool = True) -> Any:
    """An option field. ``choices`` may be a callable of the catalog; ``check`` a predicate on the value with
    ``message`` (the one-line error). ``repeat``: a flag given any number of times, each with one or more words;
    the value is a tuple of strings, one per use (words joined by spaces). ``keyed``: for the detection options,
    whether the detected track depends on it (the face-track cache key is made of the keyed ones)."""
    return field(default=default, metadata={"help": help, "group": group, "choices": choices, "metavar": metavar,
                                            "check": check, "message": message, "repeat": repeat, "keyed": keyed})


def is_option(f: Field) -> bool:
    return "help" in f.metadata


def field_default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    assert f.default_factory is not MISSING, f.name
    return f.default_factory()


def choices_of(f: Field, catalog: Any) -> tuple | None:
    """The field's choices (resolved against ``catalog`` when they depend on it), or None."""
    c = f.metadata.get("choices")
    return c(catalog) if callable(c) else c


def check_option(f: Field, value: Any, choices: tuple | None = None) -> None:
    """One option field's value: finite if a float, among ``choices`` if given, then the field's own check;
    raises LipsyncError with the flag's one-line message. None (unset) passes."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise LipsyncError(f"--{f.name} must be a finite number, not {value}")
    if choices is not None and value not in choices:
        raise LipsyncError(f"--{f.name} must be one of {', '.join(str(c) for c in choices)}")
    check = f.metadata.get("check")
    if check is not None and not check(value):
        raise LipsyncError(f.metadata["message"])
