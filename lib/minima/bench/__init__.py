"""Benchmarks: ``python -m minima.bench NAME`` prints ratios measured in one process.

Each benchmark compares a kernel with the obvious alternative on the same machine in the
same run; absolute times are printed only beside their ratio.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

BENCHMARKS = {
    "growing": "minima.bench.growing",
    "flatness": "minima.bench.flatness",
    "neb": "minima.bench.neb",
    "training": "minima.bench.training",
    "runs": "minima.bench.runs",
}


def timeit(fn: Callable[[], object], repeat: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds (CUDA synchronised when used)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def paired(fn_a: Callable[[], object], fn_b: Callable[[], object], rounds: int = 9,
           repeat: int = 10) -> tuple[float, float, float]:
    """Median times of ``fn_a`` and ``fn_b`` and the median of their per-round ratio.

    The two are timed alternately, round after round, so that load from other processes on
    a shared machine hits both alike; the ratio of each round is taken before the median.
    """
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(timeit(fn_a, repeat=repeat, warmup=1))
        times_b.append(timeit(fn_b, repeat=repeat, warmup=1))
    ratios = sorted(a / b for a, b in zip(times_a, times_b))
    return sorted(times_a)[rounds // 2], sorted(times_b)[rounds // 2], ratios[rounds // 2]


def table(rows: list[dict]) -> str:
    """Plain-text table of dicts (same keys) for the terminal and issue notes."""
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False)


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
