"""One AutoNEB path between two minima (:class:`PathRun`), with the straight line between
them, the path-convergence rule, the doubling certificate of its saddle against the AutoNEB
budget, and the Hessian certificate at the saddle."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...core.parameters import FlatView
from ...data import TrainTest
from ...paths.neb import auto_neb, is_converged, linear_path, scaled_cycles
from ...runs import Resources, Spec
from .data import DataRef, energy_of, loaded, name_of
from .minimum import certify_minimum


@dataclass(frozen=True)
class PathRun(Spec):
    """One AutoNEB path between the minima ``a`` and ``b`` (flat points ``start``, ``end``), with
    the straight line between them, the path-convergence rule, the doubling certificate
    (``max_doublings``: :func:`minima.paths.neb.auto_neb`) and the Hessian certificate at the
    saddle. Returns the path's summary (:meth:`minima.paths.neb.EnergyPath.summary`, whose
    ``budget`` holds the doubling certificate, with ``straight``, ``converged`` (the path rule)
    and ``certificate_saddle``)."""

    data: "DataRef | TrainTest"
    architecture: str
    a: str
    b: str
    start: torch.Tensor
    end: torch.Tensor
    neb_batch_size: int
    cycle_scale: float
    n_initial: int
    max_insert: int
    eval_subset: int
    max_extra_cycles: int
    weight_decay: float
    max_doublings: int = 0

    def label(self) -> str:
        return f"{name_of(self.data)} {self.architecture} path {self.a}-{self.b}"

    def resources(self) -> Resources:
        return self.resources_of(self)

    @staticmethod
    def resources_of(settings) -> Resources:
        """The resources of a path of ``settings`` (anything with ``architecture``,
        ``cycle_scale`` and ``max_doublings``): known before its pair is. The estimate assumes
        every doubling runs (the schedule's steps times ``2 ** (max_doublings + 1) - 1``)."""
        runs = 2 ** (getattr(settings, "max_doublings", 0) + 1) - 1
        return Resources(cpus=1, gpus=0.0 if settings.architecture.startswith("mlp") else 0.5,
                         estimate_s=sum(c["steps"] for c in scaled_cycles(settings.cycle_scale)) * 0.01 * runs)

    def run(self) -> dict:
        data = loaded(self.data)
        energy, metrics = energy_of(self.architecture, data, self.neb_batch_size, self.eval_subset)
        path = auto_neb(energy, self.start, self.end, cycles=scaled_cycles(self.cycle_scale), n_initial=self.n_initial,
                        max_insert=self.max_insert, metrics=metrics, max_extra_cycles=self.max_extra_cycles,
                        max_doublings=self.max_doublings)
        straight = linear_path(energy, self.start, self.end, n=len(path.pivots), metrics=metrics)
        saddle = FlatView(energy.model).load(path.dense_point(path.saddle_index))
        return {**path.summary(), "straight": straight.summary(), "converged": is_converged(path),
                "certificate_saddle": certify_minimum(saddle, self.weight_decay, data, 0).as_row()}
