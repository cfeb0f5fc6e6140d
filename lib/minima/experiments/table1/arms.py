"""Table 1's arms: the networks a run can train, one builder each in :data:`ARMS`.

Architectures are given as fractions of the hidden budget ``H``, as in the paper:
``a`` one layer of ``H``, ``b`` ``0.8H`` then ``0.2H``, ``c`` ``0.6H, 0.3H, 0.1H``
(500 -> 400+100 and 300+150+50 for MNIST; 100 -> 80+20 and 60+30+10 for AG News).
The grown network (``growing``) ends with exactly the parameter count of architecture ``a``.
Two controls separate what growing adds: ``linear`` (the grown network's start, its direct
input-output map alone) and ``static`` (the grown network's final graph, trained from the first
epoch with no insertion). Adding an arm is one builder and one line of :data:`ARMS`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...data import TrainTest
from ...growing import GrowingNet, GrowthPlan, GrowthSchedule, fan_in_for_budget, fully_connected_parameters
from ...models import mlp
from ..papers import GROWING_INSERTIONS


ARCHITECTURES = {"a": (1.0,), "b": (0.8, 0.2), "c": (0.6, 0.3, 0.1)}


def paper_schedule(task: str, hidden: int, small: bool) -> GrowthSchedule:
    """The paper's insertion scheme for ``hidden`` final units: 10 steps of ``hidden / 10`` units
    (1 unit every 10 epochs from 5 for the 10-unit nets; every 5 from 10 for MNIST-500,
    see the Reproduction notes; every 10 from 5 for AG News-100)."""
    # two schemes in the paper: the large MNIST network's, and every other network's
    every, start = GROWING_INSERTIONS.loc[("MNIST", 500) if task == "MNIST" and not small else ("MNIST", 10)]
    return GrowthSchedule.regular(units=max(1, hidden // 10), every=int(every), start=int(start), total=hidden)


def _embedding(task: TrainTest, seed: int) -> nn.EmbeddingBag:
    # Sum, not mean: with U(-0.5, 0.5) vectors the mean of ~40 words is ~0.05 in size and SGD at
    # the paper's learning rate barely moves (training accuracy 26 -> 28 % in 8 epochs on
    # ag_news-7600, against 36 -> 45 % in 3 epochs with the sum).
    bag = nn.EmbeddingBag(task.vocabulary, task.n_features, mode="sum", padding_idx=0, sparse=True)
    with torch.no_grad():
        g = torch.Generator().manual_seed(10_000 + seed)
        bag.weight.copy_(torch.rand(bag.weight.shape, generator=g) - 0.5)
        bag.weight[0] = 0
    return bag


@dataclass
class Network:
    """A model of Table 1 as :func:`build` makes it: ``full`` is what trains (for text, the
    embedding followed by ``net``), ``net`` the network part whose Hessian is measured, and
    ``growth`` the :class:`~minima.growing.GrowthPlan` of a grown ``net`` (``None`` for a fully
    connected one)."""

    full: nn.Module
    net: nn.Module
    growth: GrowthPlan | None

    @property
    def parameters(self) -> int:
        """The network part's real parameters (a DAG's absent edges are not counted)."""
        return self.net.num_parameters() if isinstance(self.net, GrowingNet) else \
            sum(p.numel() for p in self.net.parameters())

    @property
    def depth(self) -> int:
        """Layers of weights on the longest input-output path."""
        return int(self.net.depth.max()) if isinstance(self.net, GrowingNet) else \
            sum(isinstance(m, nn.Linear) for m in self.net.modules())


def grown(task: TrainTest, hidden: int, seed: int, small: bool) -> tuple[nn.Module, GrowthPlan | None]:
    """The grown network (Algorithm 1): the direct input-output map, grown to ``hidden`` units by
    the paper's schedule (:func:`paper_schedule`) with fan-ins that end at the parameter count of
    architecture ``a``."""
    net = GrowingNet(task.n_features, task.n_classes, seed=seed, device="cpu")
    budget = fully_connected_parameters(task.n_features, [hidden], task.n_classes)
    return net, GrowthPlan(net, paper_schedule(task.name, hidden, small),
                           fan_in_for_budget(task.n_features, task.n_classes, hidden, budget))


def linear(task: TrainTest, hidden: int, seed: int, small: bool) -> tuple[nn.Module, None]:
    """Control: the grown network's starting network and nothing else, its direct input-output
    map (a softmax regression on the task's inputs; for text, on the embedding), never grown."""
    return GrowingNet(task.n_features, task.n_classes, seed=seed, device="cpu"), None


def static(task: TrainTest, hidden: int, seed: int, small: bool) -> tuple[nn.Module, None]:
    """Control: the grown run's final DAG with every edge present from the first epoch. The
    insertions of the grown run of this seed draw their graph from the network's own generator,
    never from training, so making them all at once gives that run's graph edge for edge; then
    every weight is drawn again U(-0.5, 0.5) from the seed (the grown run's moved edges keep
    their old values there, its new ones are drawn when inserted). Trained with no insertion."""
    net, growth = grown(task, hidden, seed, small)
    net.grow(growth.schedule.total, growth.fan_ins[:growth.schedule.total])
    generator = torch.Generator().manual_seed(20_000 + seed)
    with torch.no_grad():
        fresh = (torch.rand(net.weight.shape, generator=generator, dtype=torch.float64) * 2 - 1) * net.init_range
        net.weight.copy_(fresh.to(net.weight.dtype) * net.mask.to(net.weight.dtype))
    return net, None


def fully_connected(fractions: tuple):
    """The builder of a fully connected twin whose hidden layers hold ``fractions`` of ``hidden``."""
    def builder(task: TrainTest, hidden: int, seed: int, small: bool) -> tuple[nn.Module, None]:
        widths = [max(1, round(f * hidden)) for f in fractions]
        return mlp(task.n_features, widths, task.n_classes, seed=seed), None
    return builder


# every arm of the table: name -> builder(task, hidden, seed, small) -> (network part, growth or None);
# the paper's (the grown network, the fully connected twins) and two controls (linear, static)
ARMS = {"growing": grown, **{name: fully_connected(fractions) for name, fractions in ARCHITECTURES.items()},
        "linear": linear, "static": static}


def build(task: TrainTest, model: str, hidden: int, seed: int, small: bool) -> Network:
    """Arm ``model`` of :data:`ARMS` with ``hidden`` units for ``task``, initialised from
    ``seed``; for text, behind a sum-pooled embedding bag initialised from the seed too."""
    if model not in ARMS:
        raise ValueError(f"unknown arm {model!r}; choose one of {', '.join(ARMS)}")
    net, growth = ARMS[model](task, hidden, seed, small)
    full = nn.Sequential(_embedding(task, seed), net) if task.vocabulary else net
    return Network(full, net, growth)
