"""Results are data: each experiment's per-run table, written atomically beside its page.

:func:`save_table` writes each experiment's per-run table with :func:`minima.core.io.atomic_write`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..core.io import atomic_write

RESULTS_DIR = Path("book") / "generated" / "results"  # relative to the project root (the runner's cwd)


def save_table(table, notebook: str, columns: Sequence[str], folder: str | os.PathLike | None = None) -> Path:
    """Write ``table`` (a pandas DataFrame, one row per run) to ``<folder>/<notebook>.csv``.

    ``columns`` are the ones its issue names; they come first, in that order, and a missing
    one is an error (the file is a contract with its readers). Other columns follow, except
    those holding lists or dicts (curves), which stay on the page.
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"results table for {notebook} lacks columns {missing}")
    nested = [c for c in table.columns if table[c].map(lambda v: isinstance(v, (list, dict))).any()]
    rest = [c for c in table.columns if c not in columns and c not in nested]
    text = table[list(columns) + rest].to_csv(index=False)
    return atomic_write(Path(folder if folder is not None else RESULTS_DIR) / f"{notebook}.csv", text)


def mean_sd(values, fmt: Callable[[float], str]) -> str:
    """``"mean ± sd"`` of ``values`` (sample standard deviation), each formatted by ``fmt``;
    the mean alone for a single value: how the book's tables report runs over seeds."""
    values = np.asarray(values, dtype=float)
    return f"{fmt(values.mean())} ± {fmt(values.std(ddof=1))}" if len(values) > 1 else fmt(values.mean())
