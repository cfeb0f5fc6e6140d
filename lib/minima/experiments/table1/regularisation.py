"""How Table 1's ``lambda`` is chosen, before any flatness is computed: one value per task, by
the held-out accuracy of the fully connected twin ``a`` at the task's small size and first
batch size, seed 0, trained by the paper's protocol on 80 % of the training examples and
finished to the regularised minimum at each ``lambda`` of a grid (one run per value, side by side); the other 20 % are the
held-out set. A best ``lambda`` at an edge of the grid widens it by a decade on that side
(at most :data:`MAX_WIDENINGS` times). The same ``lambda`` then serves every arm."""
from __future__ import annotations

from ...runs import Failure, run_all
from .plan import Settings
from .protocols import Regularised
from .records import Table1Record
from .run import Table1Run
from .tasks import TaskRef

MAX_WIDENINGS = 2


def selection_run(name: str, ref: TaskRef, settings: Settings, decay: float) -> Table1Run:
    """The validation run of task ``name`` at ``decay``: SGD by the paper's protocol, then the
    regularised finish. One run per value, so the executor finishes them side by side (each
    repeats the same SGD run, which is deterministic and cheap beside the finish)."""
    return Table1Run(ref, settings.sizes[name][0], "a", settings.batch_sizes[name][0], 0,
                     lr=settings.learning_rates[name], max_epochs=settings.max_epochs[name],
                     schedule_scale=settings.schedule_scale[name], hessian_subset=settings.hessian_subset, small=True,
                     train_limit=settings.train_examples[name], validation=True, measures=("elementwise",),
                     protocols=(Regularised(decay, rounds=settings.finish_rounds),))


def curve(record: Table1Record) -> list[dict]:
    """The held-out accuracy per ``lambda`` of a selection run's record."""
    return [{"weight_decay": row.weight_decay, "held_out_accuracy": row.test_accuracy, "verdict": row.certificate.verdict,
             "train_loss": row.certificate.train_loss} for row in record.rows if row.protocol == "regularised"]


def best(points: list[dict]) -> float:
    """The ``lambda`` of the highest held-out accuracy (ties: the larger ``lambda``, the
    smoother point)."""
    top = max(p["held_out_accuracy"] for p in points)
    return max(p["weight_decay"] for p in points if p["held_out_accuracy"] == top)


def choose(tasks: dict[str, TaskRef], settings: Settings, executor=None) -> tuple[dict[str, float], list[dict]]:
    """``({task: lambda}, curve rows)``: a task whose ``settings.weight_decay`` is a number keeps
    it (no selection run); the others are chosen on their grid, widened at an edge. The curve
    rows (``task``, ``weight_decay``, ``held_out_accuracy``, ...) are for the page."""
    chosen, rows = {}, []
    grids = {name: tuple(settings.weight_decay_grid) for name in tasks
             if not isinstance(settings.weight_decay.get(name), (int, float))}
    chosen.update({name: float(settings.weight_decay[name]) for name in tasks if name not in grids})
    points: dict[str, list[dict]] = {name: [] for name in grids}
    todo = dict(grids)
    for _ in range(MAX_WIDENINGS + 1):
        if not todo:
            break
        jobs = [(name, decay) for name, grid in todo.items() for decay in grid]
        records = run_all([selection_run(name, tasks[name], settings, decay) for name, decay in jobs], executor,
                          desc="Table 1: choosing lambda")
        for (name, decay), record in zip(jobs, records):
            if isinstance(record, Failure):
                raise RuntimeError(f"choosing lambda for {name} at {decay:g} failed: {record.error}")
            points[name] += curve(record)
        todo = {}
        for name in list(points):
            values = sorted(p["weight_decay"] for p in points[name])
            top = best(points[name])
            if len(values) > 1 and top in (values[0], values[-1]) and len(points[name]) < len(grids[name]) + MAX_WIDENINGS:
                todo[name] = (values[0] / 10 if top == values[0] else values[-1] * 10,)
    for name in grids:
        chosen[name] = best(points[name])
        rows += [{"task": name, **p, "chosen": p["weight_decay"] == chosen[name]}
                 for p in sorted(points[name], key=lambda p: p["weight_decay"])]
    return chosen, rows


def planned(tasks: dict[str, TaskRef], settings: Settings) -> tuple[list[Table1Run], dict[str, float]]:
    """For ``--plan``, before anything runs: the selection runs of the first grid and a stand-in
    lambda per task (its own, or the grid's first; a run's cost does not depend on it)."""
    runs, decays = [], {}
    for name, ref in tasks.items():
        given = settings.weight_decay.get(name)
        if isinstance(given, (int, float)) or "regularised" not in settings.protocols:
            decays[name] = float(given) if isinstance(given, (int, float)) else 0.0
            continue
        runs += [selection_run(name, ref, settings, decay) for decay in settings.weight_decay_grid]
        decays[name] = settings.weight_decay_grid[0]
    return runs, decays
