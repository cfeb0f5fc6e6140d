"""How Table 2's ``lambda`` is chosen, before any flatness is computed, by the rule of Table 1's
regularised protocol: one value for both heads and both protocols, by the Matthews correlation of the reference head on a held-out 20 % of CoLA's training sentences (stratified,
seeded), the encoder frozen, trained by the paper's schedule on the other 80 % and finished to
the regularised minimum at each ``lambda`` of a grid (one run per value, side by side). A best
``lambda`` at an edge of the grid widens it by a decade on that side (at most
:data:`MAX_WIDENINGS` times)."""
from __future__ import annotations

from dataclasses import replace

from ...runs import Failure, RunCache
from .plan import HeadRun, Settings, Table2Setup, run_heads
from .records import REGULARISED

MAX_WIDENINGS = 2


def selection_run(setup: Table2Setup, settings: Settings, decay: float, cache: RunCache | None = None) -> HeadRun:
    """The validation run at ``decay``: the reference head, seed 0, on the frozen ``setup``."""
    return HeadRun(setup, "reference", 0, replace(settings.training, finish_weight_decay=float(decay)),
                   str((cache or RunCache()).root), validation=True)


def best(points: list[dict]) -> float:
    """The ``lambda`` of the highest held-out MCC (ties: the larger ``lambda``, the smoother point)."""
    top = max(p["held_out_mcc"] for p in points)
    return max(p["weight_decay"] for p in points if p["held_out_mcc"] == top)


def choose(setup: Table2Setup, settings: Settings, grid, executor=None,
           cache: RunCache | None = None) -> tuple[float, list[dict]]:
    """``(lambda, curve rows)``: ``lambda`` chosen on ``grid`` (widened at an edge) with the
    frozen ``setup`` and ``settings`` (:func:`~.plan.frozen_settings`); one row per value tried
    (``weight_decay``, ``held_out_mcc``, ``held_out_accuracy``, the finish's ``verdict`` and
    training ``train_loss``, ``chosen``), for the page."""
    if setup.mode != "frozen":
        raise ValueError("lambda is chosen on the frozen encoder's features: pass the frozen protocol's setup")
    if not settings.training.finish_rounds:
        raise ValueError("choosing lambda needs the finish: set finish_rounds > 0")
    grid = tuple(sorted(float(v) for v in grid))
    points, todo = [], grid
    for _ in range(MAX_WIDENINGS + 1):
        specs = [selection_run(setup, settings, decay, cache) for decay in todo]
        records = run_heads(specs, executor, cache)
        for decay, record in zip(todo, records):
            if isinstance(record, Failure):
                raise RuntimeError(f"choosing lambda at {decay:g} failed: {record.error}")
            row = next(r for r in record if r.point == REGULARISED)
            points.append({"weight_decay": decay, "held_out_mcc": row.mcc, "held_out_accuracy": row.accuracy,
                           "verdict": row.certificate.verdict, "train_loss": row.certificate.train_loss})
        values = sorted(p["weight_decay"] for p in points)
        top = best(points)
        if top not in (values[0], values[-1]) or len(values) == 1 or len(points) >= len(grid) + MAX_WIDENINGS:
            break
        todo = (values[0] / 10 if top == values[0] else values[-1] * 10,)
    chosen = best(points)
    return chosen, [{**p, "chosen": p["weight_decay"] == chosen} for p in sorted(points, key=lambda p: p["weight_decay"])]
