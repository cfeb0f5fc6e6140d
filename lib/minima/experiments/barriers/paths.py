"""One AutoNEB path between two minima (:class:`PathRun`), with the straight line between
them and the straight lines to the second minimum's permutation-aligned copies
(:func:`aligned_lines`), the path-convergence rule, the doubling certificate of its saddle
against the AutoNEB budget, and the Hessian certificate at the saddle. With ``aligned`` the
path runs from the first minimum to the weight-aligned copy of the second."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...core.parameters import FlatView
from ...data import TrainTest
from ...paths.alignment import activation_matching, permute, shape_of, weight_matching
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
    aligned: bool = False  # from `start` to the copy of `end` whose hidden units weight matching aligns to it

    def label(self) -> str:
        return f"{name_of(self.data)} {self.architecture} path {self.a}-{self.b}" + (" (aligned ends)" if self.aligned else "")

    def resources(self) -> Resources:
        return self.resources_of(self)

    @staticmethod
    def resources_of(settings) -> Resources:
        """The resources of a path of ``settings`` (anything with ``architecture``,
        ``cycle_scale`` and ``max_doublings``): known before its pair is. The estimate assumes
        every doubling runs (the schedule's steps times ``2 ** (max_doublings + 1) - 1``), at
        a compiled step's cost on MNIST for ``mlp-H`` (about 2 ms plus 0.2 ms per hidden unit,
        ``python -m minima.bench neb``), so that a batch starts its widest paths first."""
        runs = 2 ** (getattr(settings, "max_doublings", 0) + 1) - 1
        mlp = settings.architecture.startswith("mlp-")
        per_step = 0.002 + 0.0002 * int(settings.architecture.split("-")[1]) if mlp else 0.05
        return Resources(cpus=1, gpus=0.0 if mlp else 0.5,
                         estimate_s=sum(c["steps"] for c in scaled_cycles(settings.cycle_scale)) * per_step * runs)

    def run(self) -> dict:
        data = loaded(self.data)
        energy, metrics = energy_of(self.architecture, data, self.neb_batch_size, self.eval_subset)
        end = self.end
        if self.aligned:
            shape = shape_of(energy.model)
            end = permute(shape, self.end, weight_matching(shape, self.start, self.end))
        path = auto_neb(energy, self.start, end, cycles=scaled_cycles(self.cycle_scale), n_initial=self.n_initial,
                        max_insert=self.max_insert, metrics=metrics, max_extra_cycles=self.max_extra_cycles,
                        max_doublings=self.max_doublings)
        straight = linear_path(energy, self.start, end, n=len(path.pivots), metrics=metrics)
        saddle = FlatView(energy.model).load(path.dense_point(path.saddle_index))
        record = {**path.summary(), "straight": straight.summary(), "converged": is_converged(path),
                  "certificate_saddle": certify_minimum(saddle, self.weight_decay, data, 0).as_row()}
        if not self.aligned and self.architecture.startswith("mlp-"):
            record["aligned_lines"] = aligned_lines(energy, self.start, self.end, len(path.pivots),
                                                    data.x_train[: self.eval_subset])
        return record


def aligned_lines(energy, start, end, n: int, inputs) -> dict:
    """The straight lines from ``start`` to the copies of ``end`` aligned to it by weight matching
    and by activation matching on ``inputs`` (:mod:`minima.paths.alignment`), evaluated as the
    unaligned straight line is (``n`` pivots, 9 points between them, the energy's evaluation
    data): ``{"weight": ..., "activation": ...}``, each with the ``permutation`` of ``end``'s
    hidden units, the dense ``energies`` and their maximum, the ``barrier``."""
    shape = shape_of(energy.model)
    lines = {}
    for method, permutation in (("weight", weight_matching(shape, start, end)),
                                ("activation", activation_matching(shape, start, end, inputs))):
        line = linear_path(energy, start, permute(shape, end, permutation), n=n)
        lines[method] = {"permutation": permutation.tolist(), "energies": line.energies.tolist(),
                         "barrier": line.saddle_energy}
    return lines
