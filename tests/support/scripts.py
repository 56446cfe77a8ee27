"""Load one of the repository's scripts (``docs/*.py``, ``notebooks/*.py``) as a module for a test."""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType


@contextmanager
def script_module(path: Path) -> Iterator[ModuleType]:
    """The script at ``path`` imported as a module named after its file, removed from ``sys.modules`` after."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]
