"""``run_all(specs, executor)``: the one way experiments execute runs.

Every spec is checked before any run starts; cached records are taken as they are; the rest
go to the executor, and each record is cached as it arrives, so a batch that is killed keeps
what finished. Records come back in spec order; a run that raised comes back as a
:class:`~minima.runs.spec.Failure` in its place and never discards the others. A terminal bar
counts runs done, cached and failed, with the time left.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..core.progress import progress, terminal
from .cache import RunCache, run_key
from .executors import ExecutorConfig
from .spec import Failure, Spec, check

ENV_FORCE = "MINIMA_RUNS_FORCE"


def run_all(specs: list[Spec], executor=None, *, cache: RunCache | None = None, force: bool | None = None,
            desc: str = "runs") -> list:
    """Execute ``specs`` and return their records (or :class:`Failure`) in spec order.

    Args:
        specs: frozen dataclass :class:`Spec` instances (checked first: one bad spec stops the
            batch before anything runs, with a one-line :class:`SpecError`).
        executor: an :class:`ExecutorConfig`, a kind name, or ``None`` for the batch runner's
            choice (``$MINIMA_EXECUTOR``, else a local pool).
        cache: where records are kept (default :class:`RunCache` under ``.cache/runs``).
        force: ignore cached records (they are overwritten); ``None`` reads ``$MINIMA_RUNS_FORCE``.
        desc: the progress bar's label.
    """
    start = time.perf_counter()
    specs = list(specs)
    for spec in specs:
        check(spec)
    config = _config(executor)
    cache = cache or RunCache()
    force = bool(os.environ.get(ENV_FORCE)) if force is None else force
    keys = [run_key(spec, config.threads) for spec in specs]
    results: list = [None] * len(specs)
    first: dict[str, int] = {}  # equal specs in one batch run once
    todo = []
    for index, key in enumerate(keys):
        record = None if force else cache.get(key)
        if record is not None:
            results[index] = record
        elif key in first:
            continue
        else:
            first[key] = index
            todo.append(index)
    cached = sum(r is not None for r in results)
    failed = 0
    if not todo and terminal() is not None:  # one line, where a bar would draw at its start and its close
        print(f"{desc}: all {len(specs)} from the run cache", file=terminal())
    if todo:
        # the postfix is set without a redraw, so each update draws one line in a log, not two
        bar = progress(total=len(specs), desc=desc, initial=cached, mininterval=1,
                       postfix=f"cached {cached}, failed 0")
        # the longest runs first, so that the pool's last minutes are not one long run alone
        # (the order changes no record)
        todo.sort(key=lambda i: -specs[i].resources().estimate_s)
        runner = config.make()
        log = str(_log_file(cache))
        for position, (status, value, seconds) in runner.map([specs[i] for i in todo], log=log):
            index = todo[position]
            if status == "ok":
                cache.put(keys[index], value)
            else:
                failed += 1
            results[index] = value
            bar.set_postfix_str(f"cached {cached}, failed {failed}", refresh=False)
            bar.update(1 + sum(1 for i, k in enumerate(keys) if k == keys[index] and i != index and results[i] is None))
        bar.close()
    for index, key in enumerate(keys):  # duplicates of a run take its record
        if results[index] is None:
            results[index] = results[first[key]]
    _log_batch(cache, {"batch": desc, "runs": len(specs), "cached": cached, "executed": len(todo), "failed": failed,
                       "executor": config.describe(), "seconds": round(time.perf_counter() - start, 3)})
    return results


def _config(executor) -> ExecutorConfig:
    """An :class:`ExecutorConfig` from a config, a kind name or ``None`` (the runner's choice)."""
    if isinstance(executor, ExecutorConfig):
        return executor
    return ExecutorConfig(executor) if isinstance(executor, str) else ExecutorConfig.from_env()


def _log_batch(cache: RunCache, entry: dict) -> None:
    """One line per batch in ``<cache>/batches.jsonl``: what ran, what came from the cache."""
    cache.root.mkdir(parents=True, exist_ok=True)
    with open(cache.root / "batches.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def missing(specs: list[Spec], executor=None, cache: RunCache | None = None) -> list[Spec]:
    """The specs whose records are not cached (what :func:`run_all` would execute), unless
    forced: then all of them."""
    config = _config(executor)
    cache = cache or RunCache()
    if os.environ.get(ENV_FORCE):
        return list(specs)
    return [spec for spec in specs if not cache.path(run_key(spec, config.threads)).exists()]


def _log_file(cache: RunCache) -> Path:
    cache.root.mkdir(parents=True, exist_ok=True)
    return cache.root / "workers.log"


def failures(records: list) -> list[Failure]:
    """The failures among ``records`` (a page lists them)."""
    return [r for r in records if isinstance(r, Failure)]


def successes(records: list) -> list:
    return [r for r in records if not isinstance(r, Failure)]


def failure_table(records: list):
    """A table of the failed runs (run, error), empty when none failed: what a page lists."""
    import pandas as pd

    return pd.DataFrame([{"run": f.spec.label(), "error": f.error} for f in failures(records)],
                        columns=["run", "error"])
