"""Benchmark of the runs executor: a slice of the default Table 1 batch under ``serial`` and under
``local`` with 2 workers, one after the other in one process, each with an empty cache.

The slice (stated in the output): the default profile's MNIST half (``mnist-10k``, first 1,000
training examples, SGD at 1e-3), the large size (500 hidden units) with the grown network and
architecture ``a`` at batch 10, seeds 0 to 7, the paper protocol capped at 20 epochs, and the
certificate and flatness measures at each end point: 16 runs of the real Table 1 kernel.
Each worker process pays once what the serial run pays once (spawn, imports, the data, the
first call of the grown network's scripted kernel: about 10 s measured); with 4 runs that was
most of the difference, with 16 it is a small part, as in the real batch of 144.
Both executors run every run with one torch thread, so their records are identical (checked).
Target: local at most 0.6 x the serial wall time on 2 cores; goal 0.5 x.
"""
from __future__ import annotations

import os
import tempfile
import time

from ..data import DataError
from ..experiments import table1
from ..runs import ExecutorConfig, RunCache, failures, run_all
from . import table

TIMING = ("train s", "hessian s", "samples/s")


def _slice():
    refs = table1.load_tasks(["MNIST"], "mnist-10k", "ag_news-7600", 100)
    return [table1.Table1Run(refs["MNIST"], 500, model, 10, seed, lr=1e-3, max_epochs=20, schedule_scale=0.2,
                             hessian_subset=1000, small=False, train_limit=1000)
            for model in ("growing", "a") for seed in range(8)]


def _values(records):
    return [[{k: v for k, v in row.as_row().items() if k not in TIMING and k != "curve"} for row in r.rows] for r in records]


def main() -> None:
    try:
        specs = _slice()
    except DataError as error:
        print(f"bench runs needs mnist-10k: {error}")
        return
    rows, outcomes = [], {}
    for name, config in (("serial", ExecutorConfig("serial", threads=1)),
                         ("local, 2 workers", ExecutorConfig("local", workers=2, threads=1))):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            records = run_all(specs, config, cache=RunCache(folder), force=True, desc=name)
            seconds = time.perf_counter() - start
        if failures(records):
            raise RuntimeError(f"{name}: {failures(records)[0].error}")
        outcomes[name] = _values(records)
        rows.append({"executor": name, "runs": len(specs), "wall s": round(seconds, 1)})
    ratio = rows[1]["wall s"] / rows[0]["wall s"]
    print(f"Table 1 slice ({len(specs)} runs: MNIST-500 grown and a, batch 10, seeds 0-7, 20 epochs, "
          f"1,000 mnist-10k images), {os.cpu_count()} cores:")
    print(table(rows))
    print(f"local / serial = {ratio:.2f} (target <= 0.6, goal 0.5); records identical: "
          f"{outcomes['serial'] == outcomes['local, 2 workers']}")
