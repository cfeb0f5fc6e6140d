"""Table 1's ``matched-loss`` end points: every run of a cell stopped at the same training
cross-entropy on the paper's own schedule, so that flatness is compared at equal loss.

A run's matched-loss point is the first epoch after growth has finished at which its training
CE (over its whole training set, as recorded each epoch) is at most its cell's target, under
the paper's schedule (learning rate, batch, growth) from the run's seed. The target of a cell
(task, size, batch; every arm of it) is :data:`FLOOR` when every run of the cell reaches it
within its paper-protocol run, else the highest of the runs' lowest training CEs there: the
lowest loss every run reaches. The target comes from the paper runs, so a matched-loss point
is a second run (:class:`MatchedLossRun`) that retrains from scratch, with the same seed and
batch order, and stops at the target: the same trajectory as the paper run (a test checks it),
stopped earlier or at the same epoch. These points are labelled as end points at equal loss,
with the certificate's verdict as it is (mostly not a minimum)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...runs import Resources, Spec
from .arms import paper_schedule
from .records import Table1Record, Table1Row
from .run import Table1Run, paper_schedule_row, prepare

MATCHED = "matched-loss"
FLOOR = 0.01  # Jiang et al. (2020) stop every network at this training cross-entropy


def growth_end(spec: Table1Run, task: str) -> int:
    """The epoch after which ``spec``'s network (of task ``task``, ``"MNIST"`` or ``"AG News"``)
    no longer grows (0: not a grown network)."""
    if spec.model != "growing":
        return 0
    return paper_schedule(task, spec.hidden, spec.small).scaled(spec.schedule_scale).last_epoch


def lowest_loss(spec: Table1Run, record: Table1Record) -> float:
    """The lowest training CE of ``record``'s paper-protocol run after its growth has finished."""
    paper = record.rows[0]
    end = growth_end(spec, paper.task)
    return min((e["loss"] for e in paper.curve if e["epoch"] > end), default=math.nan)


def cell(row: Table1Row) -> tuple:
    """The cell whose runs share a target: ``(task, hidden, batch)``."""
    return (row.task, row.hidden, row.batch)


def targets(specs: list[Table1Run], records: list, floor: float = FLOOR) -> dict[tuple, float]:
    """The matched-loss target of each cell ``(task, hidden, batch)`` among ``specs`` and their
    paper runs' ``records`` (a failed run is left out): ``floor`` when every run of the cell gets
    to it after growth, else the highest of the runs' lowest CEs."""
    lowest: dict[tuple, list[float]] = {}
    for spec, record in zip(specs, records):
        if isinstance(record, Table1Record):
            lowest.setdefault(cell(record.rows[0]), []).append(lowest_loss(spec, record))
    return {key: floor if max(values) <= floor else max(values) for key, values in lowest.items()}


@dataclass(frozen=True)
class MatchedLossRun(Spec):
    """The matched-loss point of the run ``paper`` (a paper run; its other protocols play no
    part): train from scratch by the paper's schedule from the same seed, stop at the first epoch
    after growth whose training CE is at most ``target`` (or at the paper's epoch cap), certify
    and measure there as the paper protocol's end point is (the Hessian on the same subset)."""

    paper: Table1Run
    target: float

    def __post_init__(self):
        if not self.target > 0:
            raise ValueError(f"the matched-loss target must be a positive cross-entropy, got {self.target}")
        object.__setattr__(self, "paper", replace(self.paper, protocols=(), density=False))

    def label(self) -> str:
        return f"{self.paper.label()} to CE {self.target:.3g}"

    def resources(self) -> Resources:
        return self.paper.resources()

    def run(self) -> Table1Record:
        return Table1Record((matched_point(self),))


def matched_point(spec: MatchedLossRun) -> Table1Row:
    """The ``matched-loss`` row of ``spec`` (what :meth:`MatchedLossRun.run` records)."""
    return paper_schedule_row(prepare(spec.paper), MATCHED, target_loss=spec.target)
