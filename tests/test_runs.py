"""The runs engine: records identical whichever executor ran them, failures that never lose the
others, a cache that resumes killed batches, and bad input refused before anything runs."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import pandas as pd
import pytest

from minima import runs
from minima.book.results import save_table
from minima.experiments import barriers, table1
from minima.runs import ExecutorConfig, ExecutorError, RunCache, SpecError, run_all

TIMING = ("train s", "hessian s", "samples/s")


def _nan_free(value):
    """NaN as a marker, so that two records with the same NaN fields compare equal."""
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def values(record):
    """A record without its timing fields (wall-clock seconds and rates are not results)."""
    if isinstance(record, table1.Table1Record):
        return [{k: ([{e: v for e, v in epoch.items() if e != "seconds"} for epoch in v] if k == "curve" else _nan_free(v))
                 for k, v in row.as_row().items() if k not in TIMING} for row in record.rows], \
            None if record.density is None else [list(map(float, part)) for part in record.density]
    if isinstance(record, barriers.MinimumRecord):
        return record.point.tolist(), record.curve, record.certificate, record.train_energy, record.test_loss, \
            record.test_error
    return record


@pytest.fixture(scope="module")
def digits():
    return table1.image_task("digits")


def table1_batch(digits, seeds=(0, 1), model="a"):
    return [table1.Table1Run(digits, 16, model, 50, seed, lr=0.05, max_epochs=2, schedule_scale=0.1, hessian_subset=100,
                             small=True, train_limit=100, protocols=(table1.Converged(0.1, 4, 2),)) for seed in seeds] + \
        [table1.Table1Run(digits, 16, "growing", 50, 0, lr=0.05, max_epochs=2, schedule_scale=0.1, hessian_subset=100,
                          small=True, train_limit=100, density=True)]


def barriers_batch(digits):
    data = table1.image_task("digits")
    settings = barriers.Settings("digits", "mlp-8", seeds=(0, 1), epochs=3, lr=0.1, batch_size=50, max_epochs=3,
                                 eval_subset=200, neb_batch_size=200)
    return barriers.minimum_runs(settings, data)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_serial_local_and_ray_give_identical_records(digits, tmp_path, ray_cluster):
    specs = table1_batch(digits) + barriers_batch(digits)
    outcomes = {}
    for name, executor in (("serial", ExecutorConfig("serial")), ("local 1", ExecutorConfig("local", workers=1)),
                           ("local 2", ExecutorConfig("local", workers=2)), ("ray", ExecutorConfig("ray"))):
        records = run_all(specs, executor, cache=RunCache(tmp_path / name))
        assert not runs.failures(records), (name, runs.failure_table(records))
        outcomes[name] = [values(r) for r in records]
    for name in ("local 1", "local 2", "ray"):
        assert outcomes[name] == outcomes["serial"], name
    assert outcomes["serial"][-3][1] is not None  # the growing run's spectral density came back


def test_a_run_that_raises_leaves_the_others_and_a_rerun_executes_only_it(digits, tmp_path):
    cache = RunCache(tmp_path)
    good = table1_batch(digits, seeds=(0,))[:1]
    bad = table1.Table1Run(digits, 8, "no-such-architecture", 50, 0, lr=0.05, max_epochs=2, schedule_scale=1.0,
                           hessian_subset=100, small=True, train_limit=100)
    records = run_all([bad] + good, "local", cache=cache)
    assert isinstance(records[0], runs.Failure) and "unknown arm" in records[0].error and records[0].traceback
    assert isinstance(records[1], table1.Table1Record)
    assert list(runs.failure_table(records).run) == [bad.label()]
    again = run_all([bad] + good, "serial", cache=cache)
    log = [json.loads(line) for line in (tmp_path / "batches.jsonl").read_text().splitlines()]
    assert log[-1]["executed"] == 1 and log[-1]["cached"] == 1, "only the failed run executes again"
    assert values(again[1]) == values(records[1])


def test_the_progress_bar_draws_once_per_run_and_a_cached_batch_in_one_line(digits, tmp_path, monkeypatch):
    import io

    from minima.core import progress

    log = io.StringIO()  # what the terminal (or a log file) receives
    monkeypatch.setattr(progress, "_terminal", log)
    specs = table1_batch(digits, seeds=(0, 1, 2))[:3]
    run_all(specs, "serial", cache=RunCache(tmp_path), desc="three runs")
    draws = [line for line in log.getvalue().replace("\r", "\n").splitlines() if line.startswith("three runs")]
    # the start, at most one per finished run, and the close: never a second draw per update
    assert 2 <= len(draws) <= len(specs) + 2, draws
    log.seek(0)
    log.truncate()
    run_all(specs, "serial", cache=RunCache(tmp_path), desc="three runs")
    assert log.getvalue() == "three runs: all 3 from the run cache\n", repr(log.getvalue())


def test_a_killed_batch_resumes_from_the_cache_with_the_same_csv(digits, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_runs import table1_batch
        from minima.experiments import table1
        from minima.runs import ExecutorConfig, RunCache, run_all
        run_all(table1_batch(table1.image_task("digits"), seeds=(0, 1, 2, 3)), ExecutorConfig("local", workers=1),
                cache=RunCache({str(tmp_path / "killed")!r}))
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "killed").rglob("*.pkl")):
        time.sleep(0.05)
    exited = process.poll()  # None: still running when killed, as it must be
    os.killpg(process.pid, signal.SIGKILL)  # the driver and its pool worker, mid-batch
    process.wait()
    done = len(list((tmp_path / "killed").rglob("*.pkl")))
    specs = table1_batch(digits, seeds=(0, 1, 2, 3))
    assert 1 <= done < len(specs), f"the batch was not killed midway: {done} of {len(specs)} records, exit {exited}"
    resumed = run_all(specs, "serial", cache=RunCache(tmp_path / "killed"))
    log = [json.loads(line) for line in (tmp_path / "killed" / "batches.jsonl").read_text().splitlines()]
    assert log[-1]["cached"] == done and log[-1]["executed"] == len(specs) - done
    whole = run_all(specs, "serial", cache=RunCache(tmp_path / "whole"))

    def csv(records, name):  # the results file, as the page writes it, without its timing columns
        path = save_table(table1.results_table(records), name, table1.RESULT_COLUMNS, tmp_path)
        return pd.read_csv(path).drop(columns=list(TIMING)).to_csv(index=False)
    assert csv(resumed, "resumed") == csv(whole, "whole")


def test_keys_follow_every_field_tensors_by_content_and_the_library_source(digits, monkeypatch):
    spec = table1_batch(digits, seeds=(0,))[0]
    key = runs.run_key(spec, 1)
    assert runs.run_key(table1.Table1Run(**{**spec.__dict__}), 1) == key
    for change in (dict(seed=1), dict(lr=0.0500001), dict(batch=25), dict(protocols=()), dict(train_limit=99)):
        assert runs.run_key(table1.Table1Run(**{**spec.__dict__, **change}), 1) != key, change
    assert runs.run_key(spec, 2) != key, "threads per run change rounding: part of the key"
    other = table1.image_task("digits")
    other.x_train[0, 0] += 1.0
    assert runs.run_key(table1.Table1Run(**{**spec.__dict__, "task": other}), 1) != key, "data by content"
    monkeypatch.setitem(runs.cache._SOURCES, table1.Table1Run.__module__, b"another version of the code")
    assert runs.run_key(spec, 1) != key


def test_a_run_depends_on_the_modules_its_spec_imports_and_no_others():
    from minima.core.source import PACKAGE, import_closure

    def files(module):
        return {str(p.relative_to(PACKAGE)) for p in import_closure(module)}
    # a run's key reads its spec's module and what that imports: the spec's protocols included
    table1_files = files(table1.Table1Run.__module__)
    barriers_files = files(barriers.MinimumRun.__module__) | files(barriers.PathRun.__module__)
    assert {"experiments/table1/run.py", "experiments/table1/protocols.py", "geometry/finish.py", "growing/dag.py",
            "geometry/flatness.py", "train/loop.py", "train/kernel.py", "runs/spec.py", "data/text.py"} <= table1_files, \
        "direct and transitive imports"
    assert {"experiments/barriers/minimum.py", "experiments/barriers/paths.py", "paths/neb.py", "paths/energy.py",
            "geometry/certificate.py"} <= barriers_files
    assert not any(name.startswith("experiments/barriers") for name in table1_files), \
        "editing the no-barriers code keeps Table 1 cached"
    assert not any(name.startswith("book/") for name in table1_files | barriers_files), "figures change no number"


@dataclass
class NotFrozen(runs.Spec):
    x: int = 0


@dataclass(frozen=True)
class Unpicklable(runs.Spec):
    f: object = None


def test_bad_input_is_one_line_before_any_run(digits, tmp_path):
    good = table1_batch(digits, seeds=(0,))[0]
    for kwargs, message in ((dict(kind="cluster"), "unknown executor 'cluster'"),
                            (dict(kind="local", workers=-1), "workers must be an integer >= 0"),
                            (dict(kind="local", threads=0), "threads must be an integer >= 1")):
        with pytest.raises(ExecutorError, match=message):
            ExecutorConfig(**kwargs)
    for bad, message in ((NotFrozen(), "not a frozen dataclass"), (Unpicklable(lambda: 0), "cannot be pickled")):
        with pytest.raises(SpecError, match=message) as error:
            run_all([good, bad], "serial", cache=RunCache(tmp_path))
        assert "\n" not in str(error.value)
    assert not list(tmp_path.rglob("*.pkl")), "nothing ran"


def test_an_unreachable_ray_cluster_is_one_line():
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    import ray

    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(ExecutorError, match="cannot reach the Ray cluster at 127.0.0.1:9") as error:
        ExecutorConfig("ray", address="127.0.0.1:9").make()
    assert "\n" not in str(error.value)


def test_rounds_of_pairs_follow_the_sequential_heuristic():
    from minima.paths.landscape import MinimaGraph

    graph, sequential = MinimaGraph(), MinimaGraph()
    for key, energy in (("0", 0.3), ("1", 0.1), ("2", 0.2), ("3", 0.4), ("4", 0.05)):
        graph.add_minimum(key, energy)
        sequential.add_minimum(key, energy)
    round_one = graph.suggest_pairs(10)
    order = []
    while len(order) < 4:
        pair = sequential.suggest_pair()
        order.append(pair)
        sequential.add_path(*pair, {"saddle_energy": 1.0})
    assert round_one == order, "while disconnected, a round is the sequential choice"
    for pair in round_one:
        graph.add_path(*pair, {"saddle_energy": 1.0 + 0.1 * int(pair[1])})
    second = graph.suggest_pairs(10)
    assert second[0] == graph.suggest_pair() and len(set(second)) == len(second)
