"""Times as users write them: seconds (``12.5``) or a clock (``1:02.5``, ``1:00:02``), for every trim option."""
from __future__ import annotations

import math
import re

from .errors import LipsyncError

TimeLike = float | int | str | None
_CLOCK = re.compile(r"^(?:(?:(?P<h>\d+):)?(?P<m>\d+):)?(?P<s>\d+(?:\.\d*)?|\.\d+)$")


def parse_time(value: TimeLike, *, name: str = "time") -> float | None:
    """Seconds from a number or a ``"12.5"``, ``"mm:ss(.ms)"`` or ``"hh:mm:ss(.ms)"`` string; None/"" -> None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise LipsyncError(f"bad {name} {value!r}: use seconds (12.5) or [hh:]mm:ss(.ms) (1:02.5)")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _CLOCK.match(str(value).strip())
        if m is None or (m["m"] is not None and float(m["s"]) >= 60) or (m["h"] is not None and int(m["m"]) >= 60):
            raise LipsyncError(f"bad {name} {value!r}: use seconds (12.5) or [hh:]mm:ss(.ms) (1:02.5)")
        seconds = int(m["h"] or 0) * 3600 + int(m["m"] or 0) * 60 + float(m["s"])
    if not math.isfinite(seconds) or seconds < 0:
        raise LipsyncError(f"bad {name} {value!r}: a time must be a number of seconds >= 0")
    return seconds
