"""Interleaved timing for the benchmarks: variants take turns, so load from other processes hits them alike.

The machine these benchmarks were written on is shared (2 cores, several users): a variant timed alone can be
2x off. Each round runs every variant once; per variant the best and median wall time and the least process
CPU time (both threads) are kept.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    best: float  # seconds, best wall time of the rounds
    median: float  # seconds, median wall time
    cpu: float  # seconds of process CPU time (all threads), least of the rounds

    def per(self, n: float) -> Timing:
        return Timing(self.best / n, self.median / n, self.cpu / n)


def interleaved(cases: dict[str, Callable[[], object]], rounds: int = 3, warmup: int = 1) -> dict[str, Timing]:
    """Run each case ``warmup`` times, then ``rounds`` rounds of every case in turn, under ``inference_mode``."""
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    with torch.inference_mode():
        for fn in cases.values():
            for _ in range(warmup):
                fn()
        for _ in range(rounds):
            for name, fn in cases.items():
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                walls[name].append(time.perf_counter() - wall)
                cpus[name].append(time.process_time() - cpu)
    return {name: Timing(min(walls[name]), statistics.median(walls[name]), min(cpus[name])) for name in cases}


def load_note() -> str:
    """The 1-minute load average against the CPU count, to print next to the figures."""
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    return f"load average {load:.1f} on {os.cpu_count()} CPUs"
