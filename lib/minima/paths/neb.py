"""Nudged elastic band and AutoNEB (Draxler et al. 2018, section 3).

An *energy* maps a batch of points ``(P, D)`` to energies ``(P,)`` and is differentiable:
an analytic surface (:mod:`minima.paths.surfaces`) or a network's training loss
(:class:`minima.paths.energy.ModelEnergy`).

:func:`relax` moves the interior pivots of a path along the energy gradient projected
perpendicular to the path (tangent of Henkelman & Jonsson 2000) and, with ``spring=None``
(the paper's choice), re-spaces them equally along the path after every step (string
method) instead of using springs. :func:`auto_neb` runs cycles of :func:`relax` and inserts
pivots where the energy between two pivots rises above their linear interpolation, then
certifies the saddle against its budget. The polyline's geometry (tangents, re-spacing) is
in :mod:`minima.paths.polyline`, the convergence rules in :mod:`minima.paths.convergence`, the
compiled cycle for one-hidden-layer MLPs in :mod:`minima.paths.kernel`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

# re-exported: the path's geometry and convergence are imported from here by the rest of the library
from .convergence import doubled, is_certified, is_converged, saddle_change, steps_run  # noqa: F401
from .polyline import improved_tangents, insert_pivots, interpolate, respace, respace_around  # noqa: F401


Energy = Callable[[torch.Tensor], torch.Tensor]
CYCLE_KEYS = {"steps", "lr", "momentum", "weight_decay", "insert", "climb"}


# Draxler et al., section 4: AutoNEB cycles as (count, steps, lr, insert pivots): 4 x 1000 steps
# at lr 0.1, 2 x 2000 at 0.1 without insertion ("it did not prove necessary"), 4 x 1000 at 0.01,
# 4 x 1000 at 0.001; SGD with momentum 0.9 and weight decay 1e-4 throughout.
AUTONEB_CYCLES = [dict(steps=steps, lr=lr, momentum=0.9, weight_decay=1e-4, insert=insert)
                  for count, steps, lr, insert in ((4, 1000, 0.1, True), (2, 2000, 0.1, False),
                                                   (4, 1000, 0.01, True), (4, 1000, 0.001, True))
                  for _ in range(count)]


def scaled_cycles(factor: float, cycles: list[dict] | None = None) -> list[dict]:
    """The paper's cycles with ``steps`` multiplied by ``factor`` (at least 1), for CPU profiles."""
    return [{**c, "steps": max(1, round(c["steps"] * factor))} for c in (cycles or AUTONEB_CYCLES)]


class NEBError(RuntimeError):
    """Bad input or a diverged optimisation; ``path`` holds the last good path when there is one."""

    def __init__(self, message: str, path: "EnergyPath | None" = None):
        super().__init__(message)
        self.path = path


def energies_at(energy, points: torch.Tensor) -> torch.Tensor:
    """Energies of ``points`` without gradients, on the evaluation data when the energy has one."""
    if hasattr(energy, "data_mean"):
        return energy.data_mean(points)
    with torch.no_grad():
        return energy(points).to(torch.float64)


# ----------------------------------------------------------------------------- NEB

def relax(energy: Energy, pivots: torch.Tensor, steps: int, lr: float, momentum: float = 0.9,
          weight_decay: float = 0.0, spring: float | None = None, cycle: int = 0, climb: bool = False) -> torch.Tensor:
    """Optimise the interior pivots ``(P, D)`` of a path for ``steps`` SGD steps; returns new pivots.

    The force on an interior pivot is minus the energy gradient with its component along
    the tangent removed; with ``spring=None`` the pivots are then re-spaced equally along
    the path, otherwise a spring force ``k (|x_{i+1}-x_i| - |x_i-x_{i-1}|)`` acts along the
    tangent. Momentum and weight decay are those of ``torch.optim.SGD`` on the interior
    pivots. Raises :class:`NEBError` naming ``cycle`` and step on a non-finite energy.

    ``climb=True`` (climbing image, Henkelman, Uberuaga & Jonsson 2000): at every step the
    highest interior pivot feels the full gradient with its tangential component reversed,
    so it moves *up* along the path and down across it, to the saddle; it takes no part in
    the re-spacing (each side of it is re-spaced on its own) or in the springs.
    """
    if pivots.dim() != 2 or len(pivots) < 3:
        raise NEBError(f"pivots must be (P >= 3, D), got {tuple(pivots.shape)}")
    compiled = getattr(energy, "relax_compiled", None) if spring is None else None
    result = compiled(pivots, steps, lr, momentum, weight_decay, climb) if compiled is not None else None
    if result is not None:  # the same cycle, compiled (minima.paths.kernel)
        relaxed, failed = result
        if failed >= 0:
            raise NEBError(f"non-finite energy at cycle {cycle}, step {failed}; lower the learning rate")
        return relaxed
    ends = pivots[[0, -1]].detach()
    interior = nn.Parameter(pivots[1:-1].detach().clone())
    optimizer = torch.optim.SGD([interior], lr=lr, momentum=momentum, weight_decay=weight_decay)
    for step in range(steps):
        path = torch.cat([ends[:1], interior, ends[1:]])
        path_leaf = path.detach().requires_grad_(True)
        energies = energy(path_leaf)
        if not torch.isfinite(energies).all():
            raise NEBError(f"non-finite energy at cycle {cycle}, step {step}; lower the learning rate")
        (gradient,) = torch.autograd.grad(energies.sum(), path_leaf)
        with torch.no_grad():
            tangent = improved_tangents(path.detach(), energies.detach())
            g = gradient[1:-1]
            along = (g * tangent).sum(1, keepdim=True) * tangent
            g_perp = g - along
            if spring is not None:
                lengths = (path[1:] - path[:-1]).norm(dim=1)
                g_perp = g_perp - spring * (lengths[1:] - lengths[:-1])[:, None] * tangent
            top = int(energies.detach()[1:-1].argmax()) if climb else None
            if climb:
                g_perp[top] = g[top] - 2 * along[top]
            interior.grad = g_perp.to(interior.dtype)
        optimizer.step()
        if spring is None:
            with torch.no_grad():
                full = torch.cat([ends[:1], interior, ends[1:]])
                interior.copy_((respace(full) if top is None else respace_around(full, top + 1))[1:-1])
        if hasattr(energy, "advance"):
            energy.advance()
    return torch.cat([ends[:1], interior.detach(), ends[1:]])


# ----------------------------------------------------------------------------- paths

@dataclass
class EnergyPath:
    """A path between two minima with its dense evaluation.

    Attributes:
        pivots: ``(P, D)``; pivot_energies ``(P,)``.
        position, energies: dense evaluation (pivots and ``n_sub`` points per segment),
            position in [0, 1] by arc length.
        metrics: other dense metrics by name (e.g. test loss, test error), same length.
        history: one dict per AutoNEB cycle (pivots, saddle energy, inserted positions, and
            ``pass``: 0 for the schedule, ``k`` for its ``k``-th doubling).
        budget: the doubling certificate of :func:`auto_neb` (empty when none was asked):
            ``passes``, one ``{"factor", "steps", "saddle_energy"}`` per run of the schedule
            (``factor``: its cycles' length relative to the schedule's; ``steps``: every NEB
            step run up to its end), and ``verdict``: ``"converged"`` or ``"budget-limited"``.
    """

    pivots: torch.Tensor
    pivot_energies: torch.Tensor
    position: torch.Tensor
    energies: torch.Tensor
    is_pivot: torch.Tensor
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    budget: dict = field(default_factory=dict)

    @property
    def saddle_index(self) -> int:
        return int(torch.argmax(self.energies))

    @property
    def saddle_energy(self) -> float:
        """Highest dense energy along the path (the paper's saddle)."""
        return float(self.energies.max())

    @property
    def saddle_position(self) -> float:
        return float(self.position[self.saddle_index])

    @property
    def length(self) -> float:
        return float((self.pivots[1:] - self.pivots[:-1]).norm(dim=1).sum())

    @property
    def straight_distance(self) -> float:
        return float((self.pivots[-1] - self.pivots[0]).norm())

    def dense_point(self, index: int) -> torch.Tensor:
        """The coordinates ``(D,)`` of dense point ``index`` (one entry of ``position`` and
        ``energies``), the same point :func:`interpolate` gives, without building all of them."""
        n_sub = int(self.is_pivot.nonzero()[1]) - 1 if len(self.pivots) > 1 else 0
        segment, offset = divmod(index, n_sub + 1)
        if segment == len(self.pivots) - 1:
            return self.pivots[-1]
        a, b = self.pivots[segment], self.pivots[segment + 1]
        return a + offset / (n_sub + 1) * (b - a)

    def at_saddle(self, name: str) -> float:
        """Dense metric ``name`` at the saddle of the energy (the same point)."""
        return float(self.metrics[name][self.saddle_index])

    def summary(self) -> dict:
        """Compact, JSON-ready record (no pivots): what the book's tables and figures need."""
        return {"saddle_energy": self.saddle_energy, "saddle_position": self.saddle_position,
                "length": self.length, "straight_distance": self.straight_distance,
                "n_pivots": len(self.pivots), "position": self.position.tolist(),
                "energies": self.energies.tolist(), "is_pivot": self.is_pivot.tolist(),
                "metrics": {k: v.tolist() for k, v in self.metrics.items()}, "history": self.history,
                "budget": self.budget}


def metric_at_saddle(summary: dict, name: str) -> float:
    """:meth:`EnergyPath.at_saddle` of a path's :meth:`EnergyPath.summary` record."""
    return float(summary["metrics"][name][int(np.argmax(summary["energies"]))])


def evaluate_path(energy, pivots: torch.Tensor, n_sub: int = 9, metrics: dict | None = None,
                  history: list | None = None) -> EnergyPath:
    """Dense evaluation of a path: energy (and ``metrics[name](points) -> (M,)``) at every
    pivot and ``n_sub`` points per segment. An energy with ``data_mean_along(pivots, n_sub)``
    and a metric with ``along(pivots, n_sub)`` evaluate the path from its pivots (compiled
    where they can, :mod:`minima.paths.kernel`)."""
    dense, position, is_pivot = interpolate(pivots, n_sub)
    if hasattr(energy, "data_mean_along"):
        energies = energy.data_mean_along(pivots, n_sub).cpu()
    else:
        energies = energies_at(energy, dense).cpu()
    extra = {name: torch.as_tensor(fn.along(pivots, n_sub) if hasattr(fn, "along") else fn(dense))
             .detach().cpu().to(torch.float64) for name, fn in (metrics or {}).items()}
    return EnergyPath(pivots.detach(), energies[is_pivot], position, energies, is_pivot, extra, list(history or []))


def linear_path(energy, start: torch.Tensor, end: torch.Tensor, n: int = 20, n_sub: int = 9,
                metrics: dict | None = None) -> EnergyPath:
    """The straight line between two minima with ``n`` equally spaced pivots, densely evaluated."""
    _check_ends(start, end)
    t = torch.linspace(0, 1, n, dtype=start.dtype, device=start.device)[:, None]
    return evaluate_path(energy, (1 - t) * start + t * end, n_sub, metrics)


def _check_ends(start: torch.Tensor, end: torch.Tensor) -> None:
    if start.shape != end.shape or start.dim() != 1:
        raise NEBError(f"start and end must be flat vectors of the same shape, got {tuple(start.shape)} "
                       f"and {tuple(end.shape)}")


def insertion_points(path: EnergyPath, n_sub: int, threshold: float, max_insert: int) -> list[tuple[int, float]]:
    """Where AutoNEB inserts pivots: ``[(segment index, fraction within it)]``.

    In each segment, the sub-point whose energy exceeds the straight interpolation of
    the two pivot energies by the most; a segment qualifies when that excess is above
    ``threshold`` times the energy range along the path. The largest excesses first, at
    most ``max_insert``.
    """
    e = path.energies.view(-1)
    P = len(path.pivots)
    span = float(e.max() - e.min())
    inner = torch.stack([e[k * (n_sub + 1) + 1: (k + 1) * (n_sub + 1)] for k in range(P - 1)])  # (P-1, n_sub)
    fractions = torch.arange(1, n_sub + 1, dtype=torch.float64) / (n_sub + 1)
    left, right = path.pivot_energies[:-1, None], path.pivot_energies[1:, None]
    excess = inner - (left + fractions[None] * (right - left))
    best, where = excess.max(dim=1)
    candidates = [(float(best[k]), k, float(fractions[where[k]])) for k in range(P - 1)
                  if span > 0 and float(best[k]) > threshold * span]
    candidates.sort(reverse=True)
    return [(k, f) for _, k, f in candidates[:max_insert]]


def auto_neb(energy, start: torch.Tensor, end: torch.Tensor, cycles: list[dict] | None = None,
             n_initial: int = 3, n_sub: int = 9, insert_threshold: float = 0.2, max_insert: int = 2,
             spring: float | None = None, metrics: dict | None = None, progress=None,
             max_extra_cycles: int = 0, converged_fraction: float = 0.05, max_doublings: int = 0) -> EnergyPath:
    """AutoNEB: cycles of :func:`relax` with pivot insertion where the path's energy bulges.

    Args:
        cycles: per-cycle settings ``{steps, lr, momentum, weight_decay, insert, climb}``
            (missing keys take momentum 0.9, weight decay 0, insert True, climb False);
            default :data:`AUTONEB_CYCLES`. ``climb=True`` makes the highest pivot a climbing
            image in that cycle (see :func:`relax`): an option for the last cycles, not the
            paper's method.
        n_initial: pivots of the initial straight path, ends included (at least 3).
        n_sub, insert_threshold, max_insert: see :func:`insertion_points`.
        metrics: extra dense metrics evaluated on the final path.
        progress: optional callable ``progress(cycle, path)`` after each cycle.
        max_extra_cycles, converged_fraction: after the scheduled cycles, repeat the last one
            (at most ``max_extra_cycles`` times) until :func:`is_converged` holds with
            ``converged_fraction``; the history marks these cycles ``"extra": True``.
        max_doublings: the doubling certificate (0: none). After the schedule (and its extra
            cycles), run the whole schedule again from the path reached with every cycle twice
            as long, then four times, ... (:func:`doubled`), at most ``max_doublings`` times,
            until :func:`is_certified` with ``converged_fraction`` holds: more budget no
            longer lowers the saddle. The path's ``budget`` records every run's saddle and
            the verdict, ``"converged"`` or ``"budget-limited"`` (its saddle is then only an
            upper bound on the barrier).

    Raises :class:`NEBError` for bad input, or on divergence with ``error.path`` the last good path.
    """
    _check_ends(start, end)
    cycles = AUTONEB_CYCLES if cycles is None else cycles
    for number, settings in enumerate(cycles):
        unknown = set(settings) - CYCLE_KEYS
        if unknown or "steps" not in settings or "lr" not in settings:
            raise NEBError(f"cycle {number}: unknown keys {sorted(unknown)} or missing steps/lr; "
                           f"allowed keys: {', '.join(sorted(CYCLE_KEYS))}")
    if n_initial < 3:
        raise NEBError(f"n_initial must be at least 3 (ends included), got {n_initial}")
    t = torch.linspace(0, 1, n_initial, dtype=start.dtype, device=start.device)[:, None]
    pivots = (1 - t) * start + t * end
    history = []
    path = evaluate_path(energy, pivots, n_sub)
    history.append({"cycle": -1, "n_pivots": len(pivots), "saddle_energy": path.saddle_energy, "inserted": []})
    run = dict(energy=energy, n_sub=n_sub, insert_threshold=insert_threshold, max_insert=max_insert, spring=spring,
               progress=progress, history=history)
    pivots, path = _run_schedule(pivots, path, cycles, max_extra_cycles, converged_fraction, 0, **run)
    budget = {}
    if max_doublings:
        higher_end = float(max(path.energies[0], path.energies[-1]))
        passes = [{"factor": 1, "steps": steps_run(history), "saddle_energy": path.saddle_energy}]
        for times in range(1, max_doublings + 1):
            pivots, path = _run_schedule(pivots, path, doubled(cycles, times), 0, converged_fraction, times, **run)
            passes.append({"factor": 2 ** times, "steps": steps_run(history),
                           "saddle_energy": path.saddle_energy})
            if is_certified([p["saddle_energy"] for p in passes], higher_end, converged_fraction):
                break
        certified = is_certified([p["saddle_energy"] for p in passes], higher_end, converged_fraction)
        budget = {"passes": passes, "verdict": "converged" if certified else "budget-limited"}
    final = evaluate_path(energy, pivots, n_sub, metrics, history)
    final.budget = budget
    return final


def _run_schedule(pivots, path, cycles, max_extra_cycles, converged_fraction, doubling, *, energy, n_sub,
                  insert_threshold, max_insert, spring, progress, history):
    """Run ``cycles`` (then up to ``max_extra_cycles`` repeats of the last one until
    :func:`is_converged`) from ``pivots``, appending to ``history``; returns the pivots (with any
    inserted by the last cycle) and the path evaluated before that insertion."""
    number, extra = 0, 0
    offset = sum(1 for h in history if h["cycle"] >= 0)
    while number < len(cycles) + extra:
        settings = cycles[min(number, len(cycles) - 1)]
        try:
            pivots = relax(energy, pivots, settings["steps"], settings["lr"], settings.get("momentum", 0.9),
                           settings.get("weight_decay", 0.0), spring, cycle=offset + number,
                           climb=settings.get("climb", False))
        except NEBError as error:
            raise NEBError(str(error), path) from None
        path = evaluate_path(energy, pivots, n_sub, history=history)
        inserted = []
        if settings.get("insert", True):
            where = insertion_points(path, n_sub, insert_threshold, max_insert)
            inserted = [float(path.position[k * (n_sub + 1)] + f * (path.position[(k + 1) * (n_sub + 1)]
                                                                   - path.position[k * (n_sub + 1)])) for k, f in where]
            pivots = insert_pivots(pivots, where)
        history.append({"cycle": offset + number, "n_pivots": len(path.pivots), "saddle_energy": path.saddle_energy,
                        "inserted": inserted, "extra": number >= len(cycles), "pass": doubling,
                        "steps": settings["steps"]})
        path.history = list(history)
        if progress is not None:
            progress(offset + number, path)
        number += 1
        if number == len(cycles) + extra and extra < max_extra_cycles and not is_converged(path, converged_fraction):
            extra += 1
    return pivots, path
