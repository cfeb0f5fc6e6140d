"""Results are data: each experiment's per-run table, written atomically beside its page.

:func:`atomic_write` is the one way the library writes a file that a reader or a later run
trusts (pages, provenance, caches, results): into a temporary file in the same folder, then
``os.replace``, so an interrupted run leaves the old file or none, never half a file.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

RESULTS_DIR = Path("book") / "generated" / "results"  # relative to the project root (the runner's cwd)


def atomic_write(path: str | os.PathLike, write: Callable[[io.IOBase], None] | str | bytes) -> Path:
    """Write ``path`` atomically; ``write`` is the text or bytes, or a function given the open
    binary handle (``torch.save(obj, handle)``). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as handle:
        try:
            if callable(write):
                write(handle)
            else:
                handle.write(write.encode("utf-8") if isinstance(write, str) else write)
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
    os.replace(handle.name, path)
    return path


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
