"""Creating faults in tests: a fault that cannot be made here skips with the reason, and fails under CI=true."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import pytest

from lipsync_core.testing.faults import FaultUnavailable

T = TypeVar("T")


def unavailable(reason: str) -> None:
    """Skip (fail under CI=true) because the fault could not be created."""
    msg = f"cannot create the fault: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI must be able to)")
    pytest.skip(msg)


@contextmanager
def made(fault: AbstractContextManager[T]) -> Iterator[T]:
    """Enter ``fault`` (a :mod:`lipsync_core.testing.faults` mount), or skip/fail with why it is impossible."""
    try:
        value = fault.__enter__()
    except FaultUnavailable as exc:
        unavailable(str(exc))
    try:
        yield value
    except BaseException as exc:
        if not fault.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        fault.__exit__(None, None, None)
