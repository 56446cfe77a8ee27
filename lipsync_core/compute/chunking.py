"""Run a model over a batch in chunks, halving the chunk on device out-of-memory and continuing."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..support.errors import LipsyncError

log = logging.getLogger(__name__)


def is_oom(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA's dedicated type or the generic message)."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass
class AdaptiveChunker:
    """Chunked inference whose chunk size shrinks on OOM and stays shrunk for later batches."""

    chunk: int
    what: str = "the model"
    hint: str = "use --device cpu or a smaller --resize_factor"

    def limit(self, most: int) -> None:
        """Never more than ``most`` items per chunk from now on (at least one)."""
        self.chunk = max(1, min(self.chunk, most))

    def __call__(self, fn: Callable[..., Any], *inputs: Sequence | torch.Tensor,
                 combine: Callable[[list], Any] | None = None) -> Any:
        """``fn(*chunk_of_each_input)`` over the first axis of tensors (or lists); the chunks' results are
        concatenated on the first axis (``combine`` joins other kinds of results, e.g. lists)."""
        n = len(inputs[0])
        outs: list = []
        start = 0
        while start < n:
            stop = min(n, start + self.chunk)
            try:
                outs.append(fn(*(x[start:stop] for x in inputs)))
            except Exception as exc:  # noqa: BLE001 - only OOM is handled, everything else re-raised
                if not is_oom(exc):
                    raise
                if stop - start == 1:
                    raise LipsyncError(f"out of device memory running {self.what} on a single item; {self.hint}"
                                       ) from None
                self.chunk = max(1, (stop - start) // 2)
                log.warning("out of memory in %s: batch size reduced to %d", self.what, self.chunk)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue  # retry the same start with the smaller chunk
            start = stop
        return combine(outs) if combine is not None else torch.cat(outs, 0)
