"""When an AutoNEB path has converged: the path rule (the saddle stopped moving over the last
cycles) and the doubling certificate (running the schedule again with every cycle twice as
long no longer lowers the saddle). Both read a path's ``history`` and saddle energies only."""
from __future__ import annotations


def saddle_change(history: list[dict], cycles: int = 2) -> float:
    """How much the saddle energy moved over the last ``cycles`` AutoNEB cycles (absolute)."""
    energies = [h["saddle_energy"] for h in history]
    return abs(energies[-1] - energies[max(0, len(energies) - 1 - cycles)])


def is_converged(path: "EnergyPath", fraction: float = 0.05, cycles: int = 2) -> bool:
    """The path-convergence rule: the saddle energy moved by at most ``fraction`` of the gap
    between the saddle and the higher of the two ends over the last ``cycles`` cycles."""
    gap = path.saddle_energy - float(max(path.energies[0], path.energies[-1]))
    return saddle_change(path.history, cycles) <= fraction * max(gap, 0.0)


def doubled(cycles: list[dict], times: int) -> list[dict]:
    """The schedule ``cycles`` with every cycle's ``steps`` doubled ``times`` times."""
    return [{**c, "steps": c["steps"] * 2 ** times} for c in cycles]


def is_certified(saddles: list[float], higher_end: float, fraction: float = 0.05) -> bool:
    """The doubling certificate: the last run of the schedule, with cycles twice as long as the
    one before, lowered the saddle by at most ``fraction`` of that earlier saddle's gap to the
    higher end (a rise counts as no drop; a path with no barrier has gap 0 and is certified
    when doubling leaves it without one)."""
    if len(saddles) < 2:
        return False
    before, after = saddles[-2], saddles[-1]
    return before - after <= fraction * max(before - higher_end, 0.0)


def steps_run(history: list[dict]) -> int:
    """NEB steps run so far: each recorded cycle's ``steps`` (the initial evaluation has none)."""
    return sum(h.get("steps", 0) for h in history)
