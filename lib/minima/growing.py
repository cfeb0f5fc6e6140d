"""The growing network of Caillon & Cerisara (2021), Algorithm 1.

Neurons form a DAG. Neuron ``i`` computes ``z_i = sum_{j in pi(i)} sigma_j(z_j) w_{j,i}``;
inputs and outputs are linear, hidden neurons apply the activation. The depth ``d(i)``
is the longest path from an input. The network starts with every input wired to every
output and grows by :meth:`GrowingNet.insert`.

Storage. The bookkeeping (edge list ``src``/``dst``, the pi0 flag of each edge, depths) is
numpy on the host. The weights are one dense Parameter ``weight`` of shape ``(n, n - n_inputs)``
indexed by neuron id: ``weight[j, i - n_inputs]`` is ``w_{j,i}``, zero where there is no
edge (``mask`` says where there is one). Ids never change, so an insertion only appends a
row and a column; a moved edge carries its weight *and its optimizer state* to its new
row. Gradients are masked, so absent edges stay exactly zero under SGD, momentum, weight
decay or Adam.

Forward pass (vectorised, no loop over neurons). One GEMM gives the input contribution to
every non-input neuron; then, level by level in increasing depth, the level's activations
are pushed to every column with one GEMM. The loop runs over depth levels, never over
neurons, in a fused autograd Function with preallocated buffers (first-order backward).
Inside :func:`double_backward` the same computation runs on plain differentiable ops, for
Hessian-vector products and ``torch.func``.

Decisions where the paper is silent (listed on the book's Reproduction notes page):

- *pi0 travels with its edge.* A pi0 edge moved by the depth rule (``d(i) > d(new)``) stays in
  pi0 as ``(new, i)``. Read literally, Algorithm 1 would keep a stale ``(j, i)`` and drop the
  edge from pi0; then a later insertion under ``new`` could leave a hidden neuron at the
  outputs' depth, contradicting the paper's Remark 1. With the flag travelling, every
  edge into an output is in pi0 and Remark 1 holds (tested). No stale entries exist.
- *Productive primary parents.* The primary parent is drawn uniformly among neurons with
  ``d(j) < D`` whose insertion hands the new neuron at least one child (equivalently:
  redraw until the new neuron inherits a child). A childless neuron would never affect
  the output, its weights would never train, and it could end at the outputs' depth.
- *Feasible fan-in.* It is also drawn among neurons with at least ``fan_in - 1`` other
  neurons at depth ``<= d(j)``, so the ``fan_in - 1`` extra parents exist; when no neuron
  qualifies, :class:`GrowthError` is raised and the network is unchanged.
- *Biases* are off by default (the paper's recursion has none). With ``bias=True`` every
  non-input neuron has one, initialised U(-init_range, init_range); an insertion then adds
  ``fan_in + 1`` parameters.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .device import resolve

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "linear": lambda z: z}


class GrowthError(ValueError):
    """An insertion request that cannot be satisfied; the network is left unchanged."""


def _uniform(n: int, init_range: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * init_range


class GrowingNet(nn.Module):
    """A DAG network grown neuron by neuron (Algorithm 1 of Caillon & Cerisara 2021).

    Args:
        n_inputs, n_outputs: sizes; neuron ids ``0..n_inputs-1`` are inputs, the next
            ``n_outputs`` are outputs, inserted neurons follow in insertion order.
        activation: ``relu``, ``tanh``, ``sigmoid`` or ``linear`` for hidden neurons.
        bias: one bias per non-input neuron (Parameter ``bias`` of shape ``(n - n_inputs,)``).
        init_range: weights (and biases) are drawn from U(-init_range, init_range).
        seed: seeds the initial weights and the default generator of :meth:`insert`.
        device: ``"auto"`` picks CUDA when present.
        fused: train with the fused level-by-level kernel (first-order backward only); inside
            :func:`double_backward` the network switches to plain autograd ops.

    ``net(x)`` maps ``(B, n_inputs)`` to ``(B, n_outputs)`` logits (``x`` is flattened
    from the second dimension on, so ``(B, 1, 28, 28)`` images work too).
    """

    def __init__(self, n_inputs: int, n_outputs: int, *, activation: str = "relu", bias: bool = False,
                 init_range: float = 0.5, seed: int | None = None, device="auto",
                 dtype: torch.dtype = torch.float32, fused: bool = True):
        super().__init__()
        if not (isinstance(n_inputs, int) and isinstance(n_outputs, int)) or n_inputs < 1 or n_outputs < 1:
            raise GrowthError(f"n_inputs and n_outputs must be positive integers, got {n_inputs}, {n_outputs}")
        if activation not in ACTIVATIONS:
            raise GrowthError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if not init_range > 0:
            raise GrowthError(f"init_range must be positive, got {init_range}")
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.activation, self.init_range, self.has_bias = activation, float(init_range), bias
        self.fused = fused
        self.generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
        device = resolve(device)
        ins, outs = np.arange(n_inputs), n_inputs + np.arange(n_outputs)
        self.src = np.repeat(ins, n_outputs)
        self.dst = np.tile(outs, n_inputs)
        self.pi0 = np.ones(len(self.src), dtype=bool)  # every (input, output) pair is in pi0
        self.depth = np.concatenate([np.zeros(n_inputs, np.int64), np.ones(n_outputs, np.int64)])
        n = n_inputs + n_outputs
        weight = torch.zeros(n, n_outputs, dtype=dtype)
        weight[:n_inputs] = _uniform(n_inputs * n_outputs, init_range, self.generator).view(n_inputs, n_outputs)
        self.weight = nn.Parameter(weight.to(device))
        self.register_buffer("mask", _edge_mask(self.src, self.dst, n, n_inputs, device))
        self.bias = nn.Parameter(_uniform(n_outputs, init_range, self.generator).to(device, dtype)) \
            if bias else None
        self._optimizers: list[weakref.ref] = []
        self.history: list[dict] = []  # one record per insertion (for figures and tests)
        self._layout()

    # ------------------------------------------------------------ ids and counts
    @property
    def n(self) -> int:
        return len(self.depth)

    @property
    def input_ids(self) -> np.ndarray:
        return np.arange(self.n_inputs)

    @property
    def output_ids(self) -> np.ndarray:
        return self.n_inputs + np.arange(self.n_outputs)

    @property
    def hidden_ids(self) -> np.ndarray:
        return np.arange(self.n_inputs + self.n_outputs, self.n)

    def num_parameters(self) -> int:
        """Active weights, plus biases when enabled."""
        return len(self.src) + (self.bias.numel() if self.bias is not None else 0)

    def edge_weights(self) -> torch.Tensor:
        """``(E,)`` weights in edge-list order (``src[e] -> dst[e]``)."""
        return self.weight.detach()[torch.as_tensor(self.src), torch.as_tensor(self.dst - self.n_inputs)]

    def to_dense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The paper's notation over all ``n`` neurons, by neuron id.

        Returns ``W`` ``(n, n)`` with ``W[j, i]`` the weight from ``j`` to ``i`` (0 where no edge),
        ``mask`` ``(n, n)`` bool (the edge set), ``depth`` ``(n,)`` int64.
        """
        W = torch.zeros(self.n, self.n, dtype=self.weight.dtype)
        W[:, self.n_inputs:] = self.weight.detach().cpu()
        mask = torch.zeros(self.n, self.n, dtype=torch.bool)
        mask[:, self.n_inputs:] = self.mask.cpu()
        return W, mask, torch.as_tensor(self.depth.copy())

    def parameter_masks(self) -> dict[str, torch.Tensor | None]:
        """Which entries of each parameter are real (``None``: all of them); for Hessians."""
        return {"weight": self.mask, "bias": None}

    # ------------------------------------------------------------ forward
    def _layout(self) -> None:
        """Index tensors of each hidden depth level, in increasing depth (after every change)."""
        device = self.weight.device
        hidden = self.hidden_ids
        order = np.argsort(self.depth[hidden], kind="stable")
        starts = np.flatnonzero(np.diff(self.depth[hidden][order], prepend=-1))
        all_ids = torch.as_tensor(hidden[order], device=device)
        self._levels = list(all_ids.tensor_split(torch.as_tensor(starts[1:])))
        self._level_columns = [ids - self.n_inputs for ids in self._levels]
        self._mask_cache = None
        self._output_columns = slice(0, self.n_outputs)  # outputs are the first non-input ids

    @property
    def _mask_values(self) -> torch.Tensor:
        """The mask as 0/1 of the weight's dtype (multiplying by a bool mask converts it each time)."""
        if self._mask_cache is None or self._mask_cache.dtype != self.weight.dtype:
            self._mask_cache = self.mask.to(self.weight.dtype)
        return self._mask_cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs with {self.n_inputs} features, got {x.shape[1]}")
        if self.fused and not _double_backward.active:
            return _FusedDag.apply(x, self.weight, self.bias, self)
        return self._forward_autograd(x)

    def _forward_autograd(self, x: torch.Tensor) -> torch.Tensor:
        """The same computation from differentiable torch ops (double backward, torch.func)."""
        W = self.weight * self._mask_values
        z = x @ W[: self.n_inputs]  # (B, C): input contribution to every non-input neuron
        if self.bias is not None:
            z = z + self.bias
        act = ACTIVATIONS[self.activation]
        for ids, columns in zip(self._levels, self._level_columns):
            h = act(z[:, columns])
            z = z + h @ W[ids]  # push this level's activations to every (deeper) column
        return z[:, self._output_columns]

    # ------------------------------------------------------------ growth
    def adopt(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Keep ``optimizer`` valid across growth (call once after creating it).

        On every insertion the grown ``weight`` (a new Parameter, one row and one column
        larger) replaces the old one in the optimizer's parameter groups, and every state
        tensor of the old weight's shape (momentum, Adam moments) is grown the same way:
        existing weights keep their values and their state, moved edges carry both to their
        new row, and new weights start with zero state. ``bias`` likewise.
        """
        self._optimizers.append(weakref.ref(optimizer))
        return optimizer

    def _swap_parameter(self, name: str, grow_value, grow_state) -> None:
        """Replace parameter ``name`` by ``grow_value(old)`` here and in every adopted optimizer,
        whose state tensors of the same shape become ``grow_state(state)``."""
        old = getattr(self, name)
        with torch.no_grad():
            new = nn.Parameter(grow_value(old.detach()))
        setattr(self, name, new)
        for ref in self._optimizers:
            optimizer = ref()
            if optimizer is None:
                continue
            for group in optimizer.param_groups:
                group["params"] = [new if p is old else p for p in group["params"]]
            if old in optimizer.state:
                state = optimizer.state.pop(old)
                optimizer.state[new] = {key: grow_state(value) if torch.is_tensor(value) and value.shape == old.shape
                                        else value for key, value in state.items()}

    def _handable(self) -> np.ndarray:
        """Per edge (j, i): would it move to a neuron inserted under primary parent j?"""
        gap = self.depth[self.dst] - self.depth[self.src]
        return (gap > 1) | ((gap == 1) & self.pi0)

    def eligible_primary_parents(self, fan_in: int, handable: np.ndarray | None = None) -> np.ndarray:
        """Ids that may be drawn as primary parent for an insertion with this fan-in."""
        D = self.depth[self.n_inputs]
        handable = self._handable() if handable is None else handable
        productive = np.bincount(self.src[handable], minlength=self.n) > 0
        at_or_above = np.searchsorted(np.sort(self.depth), self.depth, side="right")  # #{k: d(k) <= d(j)}
        return np.flatnonzero((self.depth < D) & productive & (at_or_above - 1 >= fan_in - 1))

    def insert(self, fan_in: int, generator: torch.Generator | None = None) -> int:
        """Insert one neuron by Algorithm 1 with ``fan_in`` parents; returns its id.

        Primary parent ``j`` uniform over :meth:`eligible_primary_parents`; the new neuron
        sits at depth ``d(j)+1`` with ``w(j,new) ~ U``; each child ``i`` of ``j`` moves to the new
        neuron (keeping its weight) when ``d(i) > d(new)``, or ``d(i) = d(new)`` and ``(j,i)`` is
        in pi0; then ``fan_in - 1`` extra parents are drawn without replacement among
        neurons at depth ``<= d(j)`` that are not yet parents. Adds ``fan_in`` weights.
        Raises :class:`GrowthError` (network unchanged) for a bad fan-in.
        """
        if not isinstance(fan_in, (int, np.integer)) or isinstance(fan_in, bool) or fan_in < 1:
            raise GrowthError(f"fan_in must be a positive integer, got {fan_in!r}")
        generator = generator or self.generator
        handable = self._handable()
        candidates = self.eligible_primary_parents(int(fan_in), handable)
        if len(candidates) == 0:
            raise GrowthError(f"fan_in {fan_in} exceeds the eligible parents of every possible primary "
                              f"parent ({int(np.sum(self.depth < self.depth[self.n_inputs]))} neurons "
                              "lie above the outputs); lower it")
        j = int(candidates[torch.randint(len(candidates), (1,), generator=generator).item()])
        new, n_in = self.n, self.n_inputs
        d_new = int(self.depth[j]) + 1

        moving = np.flatnonzero((self.src == j) & handable)
        children = self.dst[moving]
        rule2 = children[self.depth[children] == d_new]
        self.src[moving] = new  # the pi0 flag travels with the edge

        pool = np.flatnonzero(self.depth <= self.depth[j])
        pool = pool[pool != j]
        pick = torch.randperm(len(pool), generator=generator)[: fan_in - 1].numpy()
        parents = np.concatenate([[j], np.sort(pool[pick])])
        self.src = np.concatenate([self.src, parents])
        self.dst = np.concatenate([self.dst, np.full(len(parents), new)])
        self.pi0 = np.concatenate([self.pi0, [True], np.zeros(len(parents) - 1, bool)])
        self.depth = np.append(self.depth, d_new)
        self._deepen(rule2, d_new + 1)

        device = self.weight.device
        cols = torch.as_tensor(children - n_in, device=device)
        parent_rows = torch.as_tensor(parents, device=device)
        new_values = _uniform(len(parents), self.init_range, generator)

        def grow(t: torch.Tensor, fill: torch.Tensor | None = None) -> torch.Tensor:
            """One more row (the new neuron as source) and column (as target); moved edges
            carry their entries from row j to the new row."""
            out = torch.nn.functional.pad(t, (0, 1, 0, 1))
            out[new, cols] = t[j, cols]
            out[j, cols] = 0
            if fill is not None:
                out[parent_rows, new - n_in] = fill.to(t)
            return out

        self._swap_parameter("weight", lambda t: grow(t, new_values), grow)
        self.mask = grow(self.mask, torch.ones(len(parents), dtype=torch.bool))
        if self.bias is not None:
            new_bias = _uniform(1, self.init_range, generator)
            self._swap_parameter("bias", lambda t: torch.cat([t, new_bias.to(t)]),
                                 lambda t: torch.cat([t, t.new_zeros(1)]))
        self.history.append({"id": new, "primary_parent": j, "parents": parents.tolist(),
                             "moved_children": children.tolist(), "depth": d_new,
                             "network_depth": int(self.depth[n_in])})
        self._layout()
        return new

    def _deepen(self, nodes: np.ndarray, depth: int) -> None:
        """Raise ``nodes`` to at least ``depth`` and propagate to descendants (longest paths)."""
        frontier = nodes[self.depth[nodes] < depth]
        self.depth[frontier] = depth
        in_frontier = np.zeros(self.n, bool)
        while len(frontier):
            in_frontier[:] = False
            in_frontier[frontier] = True
            edges = in_frontier[self.src]
            src, dst = self.src[edges], self.dst[edges]
            needed = self.depth[src] + 1
            raise_ = needed > self.depth[dst]
            np.maximum.at(self.depth, dst[raise_], needed[raise_])
            frontier = np.unique(dst[raise_])

    def grow(self, k: int, fan_in, generator: torch.Generator | None = None) -> list[int]:
        """Insert ``k`` neurons; ``fan_in`` is one int or a sequence of ``k`` ints."""
        fan_ins = [fan_in] * k if isinstance(fan_in, (int, np.integer)) else list(fan_in)
        if len(fan_ins) != k:
            raise GrowthError(f"got {len(fan_ins)} fan-ins for {k} insertions")
        return [self.insert(f, generator) for f in fan_ins]

    def extra_repr(self) -> str:
        return (f"inputs={self.n_inputs}, outputs={self.n_outputs}, hidden={len(self.hidden_ids)}, "
                f"depth={self.depth[self.n_inputs]}, parameters={self.num_parameters()}, "
                f"activation={self.activation}")


def _edge_mask(src, dst, n, n_inputs, device) -> torch.Tensor:
    mask = torch.zeros(n, n - n_inputs, dtype=torch.bool)
    mask[torch.as_tensor(src), torch.as_tensor(dst - n_inputs)] = True
    return mask.to(device)


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


# The paper's schemes (section 4.1, 4.2); keys are "epochs completed before inserting".
# MNIST-500 as printed ("50 units every 10 epochs from epoch 10 to 60") yields 300 units, not
# 500; we keep 50-unit steps in the window [10, 60) and 500 units: every 5 epochs, 10..55.
PAPER_SCHEDULES = {
    "mnist-10": GrowthSchedule.regular(units=1, every=10, start=5, total=10),
    "ag_news-10": GrowthSchedule.regular(units=1, every=10, start=5, total=10),
    "mnist-500": GrowthSchedule.regular(units=50, every=5, start=10, total=500),
    "ag_news-100": GrowthSchedule.regular(units=10, every=10, start=5, total=100),
    "roberta-head": GrowthSchedule.phases(total=1024, after_epochs=(2, 5, 7)),
}


class _DoubleBackward(threading.local):
    active = False


_double_backward = _DoubleBackward()


@contextlib.contextmanager
def double_backward():
    """Within this context every GrowingNet runs on plain autograd ops, so that second
    derivatives (Hessian-vector products) and ``torch.func`` transforms work."""
    previous, _double_backward.active = _double_backward.active, True
    try:
        yield
    finally:
        _double_backward.active = previous


class _FusedDag(torch.autograd.Function):
    """Forward and backward of the level-by-level DAG in preallocated buffers.

    Autograd would record several nodes per depth level and allocate a zero gradient of
    full size for every indexing op; with tens of levels that overhead dominates small
    batches. Here forward and backward are written out once, with in-place updates.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, net):
        n_in = net.n_inputs
        z = x @ weight[:n_in]  # (B, C) pre-activations of every non-input neuron
        if bias is not None:
            z += bias
        act = ACTIVATIONS[net.activation]
        hidden = []
        for ids, columns in zip(net._levels, net._level_columns):
            h = act(z[:, columns])
            rows = weight[ids]
            z.addmm_(h, rows)  # masked entries are zero, so only deeper columns change
            hidden += [h, rows]
        ctx.save_for_backward(x, weight, *hidden)
        ctx.net, ctx.has_bias = net, bias is not None
        return z[:, net._output_columns].clone()

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, *saved = ctx.saved_tensors
        hidden, rows = saved[0::2], saved[1::2]
        net = ctx.net
        n_in = net.n_inputs
        dz = grad_out.new_zeros(grad_out.shape[0], weight.shape[1])
        dz[:, net._output_columns] = grad_out
        activations = x.new_zeros(x.shape[0], weight.shape[0])  # by neuron id; outputs stay 0
        activations[:, :n_in] = x
        for ids, columns, h, w in zip(reversed(net._levels), reversed(net._level_columns),
                                      reversed(hidden), reversed(rows)):
            dh = dz @ w.T
            dz[:, columns] = _activation_grad(net.activation, h, dh)
            activations[:, ids] = h
        grad_weight = torch.mm(activations.T, dz).mul_(net._mask_values)
        grad_x = dz @ weight[:n_in].T if ctx.needs_input_grad[0] else None
        grad_bias = dz.sum(0) if ctx.has_bias else None
        return grad_x, grad_weight, grad_bias, None


def _activation_grad(name: str, h: torch.Tensor, dh: torch.Tensor) -> torch.Tensor:
    """d loss / d z from d loss / d h, written in terms of the activation's output h."""
    if name == "relu":
        return dh.masked_fill_(h <= 0, 0)
    if name == "tanh":
        return dh * (1 - h * h)
    if name == "sigmoid":
        return dh * h * (1 - h)
    return dh
