"""How many neurons a growing network gets, when, and with which fan-ins; parameter counts."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from .dag import GrowthError

if TYPE_CHECKING:
    from .network import GrowingNet


def fully_connected_parameters(n_in: int, hidden: list[int], n_out: int, bias: bool = False) -> int:
    """Parameter count of the MLP ``n_in -> hidden... -> n_out``."""
    sizes = [n_in, *hidden, n_out]
    return sum(a * b + (b if bias else 0) for a, b in zip(sizes[:-1], sizes[1:]))


def fan_in_for_budget(n_in: int, n_out: int, n_hidden: int, budget: int, bias: bool = False) -> list[int]:
    """Fan-ins for ``n_hidden`` insertions so the grown net ends with exactly ``budget`` parameters.

    The grown net starts with ``n_in * n_out`` weights (+ ``n_out`` biases); insertion ``k`` adds
    ``fan_ins[k]`` weights (+1 bias). The remainder is spread over the *last* insertions (one
    extra parent each), when more neurons are available as parents.
    """
    start = n_in * n_out + (n_out if bias else 0)
    available = budget - start - (n_hidden if bias else 0)
    if n_hidden < 1 or available < n_hidden:
        raise GrowthError(f"a budget of {budget} parameters leaves {available} weights for {n_hidden} "
                          f"insertions starting from {start}; each needs at least one")
    base, remainder = divmod(available, n_hidden)
    return [base] * (n_hidden - remainder) + [base + 1] * remainder


@dataclass
class GrowthSchedule:
    """When to insert how many neurons: ``events[e]`` units once ``e`` epochs are complete.

    Use as a training-loop callback: ``schedule.on_epoch_start(epoch, net, fan_ins, generator)``
    inserts ``events.get(epoch, 0)`` neurons, taking fan-in ``fan_ins[k]`` for the ``k``-th
    insertion overall.
    """

    events: dict[int, int] = field(default_factory=dict)

    @classmethod
    def regular(cls, units: int, every: int, start: int, total: int) -> "GrowthSchedule":
        """``units`` at epochs ``start, start+every, ...`` until ``total`` units are inserted."""
        events, epoch, left = {}, start, total
        while left > 0:
            events[epoch] = min(units, left)
            left -= events[epoch]
            epoch += every
        return cls(events)

    @classmethod
    def phases(cls, total: int, after_epochs: tuple[int, ...]) -> "GrowthSchedule":
        """``total`` units split as evenly as possible (earlier phases get the remainder)."""
        base, remainder = divmod(total, len(after_epochs))
        return cls({e: base + (i < remainder) for i, e in enumerate(after_epochs)})

    def scaled(self, factor: float) -> "GrowthSchedule":
        """The same insertions at epochs ``max(1, floor(e * factor))`` (collisions merged), for
        profiles that train fewer epochs than the paper: a schedule that ends before epoch
        ``E`` ends before ``factor * E`` once scaled."""
        events: dict[int, int] = {}
        for epoch, units in self.events.items():
            key = max(1, int(epoch * factor))
            events[key] = events.get(key, 0) + units
        return GrowthSchedule(dict(sorted(events.items())))

    @property
    def total(self) -> int:
        return sum(self.events.values())

    @property
    def last_epoch(self) -> int:
        return max(self.events, default=0)

    def on_epoch_start(self, epoch: int, net: GrowingNet, fan_ins: list[int],
                       generator: torch.Generator | None = None) -> list[int]:
        units = self.events.get(epoch, 0)
        done = len(net.hidden_ids)
        return net.grow(units, fan_ins[done: done + units], generator) if units else []


@dataclass(frozen=True)
class GrowthPlan:
    """How a network grows during training: the :class:`~minima.growing.GrowingNet` ``net`` (the
    model being trained, or a part of it), the ``schedule`` of insertions and the ``fan_ins``
    they take in order (``len(fan_ins) >= schedule.total``)."""

    net: GrowingNet
    schedule: GrowthSchedule
    fan_ins: tuple[int, ...]

    def __post_init__(self):
        if len(self.fan_ins) < self.schedule.total:
            raise GrowthError(f"{len(self.fan_ins)} fan-ins for a schedule of {self.schedule.total} insertions; "
                              "give one per inserted neuron")
        object.__setattr__(self, "fan_ins", tuple(self.fan_ins))

    def scaled(self, factor: float) -> "GrowthPlan":
        """The same plan with the schedule's epochs scaled (:meth:`GrowthSchedule.scaled`)."""
        return replace(self, schedule=self.schedule.scaled(factor))

    def on_epoch_start(self, epoch: int) -> list[int]:
        """Grow ``net`` as the schedule says at the start of ``epoch`` (0-based epochs completed),
        with the net's own generator; returns the inserted neurons."""
        return self.schedule.on_epoch_start(epoch, self.net, list(self.fan_ins), self.net.generator)
