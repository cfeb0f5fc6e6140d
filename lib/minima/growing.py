"""The growing network of Caillon & Cerisara (2021), Algorithm 1.

Neurons form a DAG. Neuron ``i`` computes ``z_i = sum_{j in pi(i)} sigma_j(z_j) w_{j,i}``;
inputs and outputs are linear, hidden neurons apply the activation. The depth ``d(i)``
is the longest path from an input. The network starts with every input wired to every
output and grows by :meth:`GrowingNet.insert`.

Storage. The bookkeeping (edge list ``src``/``dst``, the pi0 flag of each edge, depths) is
numpy on the host, by neuron id. The weights are one dense Parameter ``weight`` of shape
``(n, n - n_inputs)`` in *depth order*: row ``r`` belongs to neuron ``order[r]`` (inputs, then
hidden neurons by increasing depth, then outputs), column ``c`` to neuron ``order[n_inputs + c]``;
entries without an edge are zero (``mask`` says where there is one). In this order each depth
level is a contiguous block and every edge of a level points into the columns after it, so the
forward pass works on precomputed views instead of gathering rows and columns. An insertion
(rare: hundreds per run) re-sorts the matrix once; a moved edge carries its weight *and its
optimizer state*. Gradients are masked, so absent edges stay exactly zero under SGD, momentum,
weight decay or Adam. :meth:`GrowingNet.in_id_order` converts any weight- or bias-shaped
tensor back to id order.

Forward pass (vectorised, no loop over neurons). One GEMM gives the input contribution to
every non-input neuron; then, level by level in increasing depth, the level's activations
are pushed to the deeper columns with one in-place GEMM on a view. The loop runs over depth
levels, never over neurons, in a fused autograd Function (first-order backward: each level
pushes its derivative to the shallower levels, and the first, widest level pulls its own in
one GEMM) whose views of the weight and of per-batch-size workspaces are built once per
layout: with tens of levels and small batches, creating views and allocating buffers would
otherwise cost more than the arithmetic. Inside :func:`double_backward` the same computation
runs on plain differentiable ops, for Hessian-vector products and ``torch.func``.

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
        # every (input, output) pair is an edge in pi0
        self._edges = (np.repeat(ins, n_outputs), np.tile(outs, n_inputs), np.ones(n_inputs * n_outputs, bool))
        self._n_edges = n_inputs * n_outputs
        self.depth = np.concatenate([np.zeros(n_inputs, np.int64), np.ones(n_outputs, np.int64)])
        n = n_inputs + n_outputs
        self.order = np.arange(n)  # storage position -> neuron id (inputs, hidden by depth, outputs)
        weight = torch.zeros(n, n_outputs, dtype=dtype)
        weight[:n_inputs] = _uniform(n_inputs * n_outputs, init_range, self.generator).view(n_inputs, n_outputs)
        self.weight = nn.Parameter(weight.to(device))
        self.register_buffer("mask", _edge_mask(self.src, self.dst, n, n_inputs, device))
        self.bias = nn.Parameter(_uniform(n_outputs, init_range, self.generator).to(device, dtype)) \
            if bias else None
        self._optimizers: list[weakref.ref] = []
        self.history: list[dict] = []  # one record per insertion (for figures and tests)
        self._plan: _Plan | None = None
        self._layout()

    # ------------------------------------------------------------ ids and counts
    @property
    def src(self) -> np.ndarray:
        """Source id of every edge, ``(E,)`` (a view of the edge store)."""
        return self._edges[0][: self._n_edges]

    @property
    def dst(self) -> np.ndarray:
        """Destination id of every edge, ``(E,)``."""
        return self._edges[1][: self._n_edges]

    @property
    def pi0(self) -> np.ndarray:
        """Whether each edge is in pi0, ``(E,)`` bool."""
        return self._edges[2][: self._n_edges]

    def _append_edges(self, src: np.ndarray, dst: np.ndarray, pi0: np.ndarray) -> None:
        """Append edges in place. The store keeps spare capacity (doubling when full): a fresh
        multi-megabyte array per insertion costs page faults that doubled its time."""
        used, k = self._n_edges, len(src)
        if used + k > len(self._edges[0]):
            self._edges = tuple(np.concatenate([store[:used], np.empty(max(used, k), store.dtype)])
                                for store in self._edges)
        for store, values in zip(self._edges, (src, dst, pi0)):
            store[used: used + k] = values
        self._n_edges = used + k

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

    @property
    def position(self) -> np.ndarray:
        """``(n,)`` storage position of each neuron id (the inverse of ``order``)."""
        position = np.empty(self.n, np.int64)
        position[self.order] = np.arange(self.n)
        return position

    @property
    def column_ids(self) -> np.ndarray:
        """``(n - n_inputs,)`` neuron id of each column of ``weight`` (and entry of ``bias``)."""
        return self.order[self.n_inputs:]

    def edge_weights(self) -> torch.Tensor:
        """``(E,)`` weights in edge-list order (``src[e] -> dst[e]``)."""
        position = self.position
        rows, cols = position[self.src], position[self.dst] - self.n_inputs
        return self.weight.detach()[torch.as_tensor(rows), torch.as_tensor(cols)]

    def in_id_order(self, t: torch.Tensor) -> torch.Tensor:
        """A weight-shaped ``(n, n - n_inputs)`` or bias-shaped ``(n - n_inputs,)`` tensor in
        storage order (``weight``, its gradient or optimizer state) re-indexed by neuron id:
        ``[j, i - n_inputs]`` for the edge ``j -> i``, ``[i - n_inputs]`` for neuron ``i``."""
        position = torch.as_tensor(self.position, device=t.device)
        columns = position[self.n_inputs:] - self.n_inputs
        return t[columns] if t.dim() == 1 else t[position][:, columns]

    def to_dense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The paper's notation over all ``n`` neurons, by neuron id.

        Returns ``W`` ``(n, n)`` with ``W[j, i]`` the weight from ``j`` to ``i`` (0 where no edge),
        ``mask`` ``(n, n)`` bool (the edge set), ``depth`` ``(n,)`` int64.
        """
        W = torch.zeros(self.n, self.n, dtype=self.weight.dtype)
        W[:, self.n_inputs:] = self.in_id_order(self.weight.detach()).cpu()
        mask = torch.zeros(self.n, self.n, dtype=torch.bool)
        mask[:, self.n_inputs:] = self.in_id_order(self.mask).cpu()
        return W, mask, torch.as_tensor(self.depth.copy())

    def parameter_masks(self) -> dict[str, torch.Tensor | None]:
        """Which entries of each parameter are real (``None``: all of them); for Hessians."""
        return {"weight": self.mask, "bias": None}

    # ------------------------------------------------------------ forward
    def _layout(self) -> None:
        """Column ranges of the hidden depth levels (after every change of the structure).

        In storage order the hidden neurons of depth 1, 2, ... occupy consecutive columns, and
        the outputs the last ``n_outputs``; ``_levels`` holds ``(start, stop)`` per level.
        """
        hidden_depths = self.depth[self.order[self.n_inputs: self.n - self.n_outputs]]
        starts = np.flatnonzero(np.diff(hidden_depths, prepend=-1)).tolist()
        self._levels = list(zip(starts, starts[1:] + [len(hidden_depths)]))
        self._plan = None

    def __getstate__(self):  # copies and pickles rebuild views and workspaces on first use
        return {**self.__dict__, "_plan": None}

    def _fused_plan(self) -> "_Plan | None":
        """Views for the fused kernel, rebuilt when the weight's storage changed (growth,
        ``.to()``, ``load_state_dict(assign=True)``; a plain ``load_state_dict`` copies in
        place and keeps them valid); ``None`` when the weight is not this module's Parameter
        (``torch.func.functional_call``) or a transform is active, which take the plain path."""
        weight = self.weight
        if not self.fused or _double_backward.active or not isinstance(weight, nn.Parameter) \
                or torch._C._functorch.is_functorch_wrapped_tensor(weight):
            return None
        if self._plan is None or not self._plan.matches(weight, self.bias, self.mask):
            self._plan = _Plan(self, weight)
        return self._plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs with {self.n_inputs} features, got {x.shape[1]}")
        plan = None if torch._C._functorch.is_functorch_wrapped_tensor(x) else self._fused_plan()
        if plan is not None and x.dtype == self.weight.dtype and x.device == self.weight.device:
            return _FusedDag.apply(x, self.weight, self.bias, plan)
        return self._forward_autograd(x)

    def _forward_autograd(self, x: torch.Tensor) -> torch.Tensor:
        """The same computation from differentiable torch ops (double backward, torch.func)."""
        W = self.weight * self.mask.to(self.weight.dtype)
        z = x @ W[: self.n_inputs]  # (B, C): input contribution to every non-input neuron
        if self.bias is not None:
            z = z + self.bias
        act = ACTIVATIONS[self.activation]
        for a, b in self._levels:
            # push this level's activations to every column; only deeper ones have edges
            z = z + act(z[:, a:b]) @ W[self.n_inputs + a: self.n_inputs + b]
        return z[:, -self.n_outputs:]

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
        depth = self.depth.astype(np.int32)  # half-size temporaries over the whole edge list
        gap = depth[self.dst]
        gap -= depth[self.src]
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
        self._append_edges(parents, np.full(len(parents), new), np.arange(len(parents)) == 0)
        self.depth = np.append(self.depth, d_new)
        self._deepen(rule2, d_new + 1)

        self._store_insertion(j, new, children, parents, generator)
        self.history.append({"id": new, "primary_parent": j, "parents": parents.tolist(),
                             "moved_children": children.tolist(), "depth": d_new,
                             "network_depth": int(self.depth[n_in])})
        self._layout()
        return new

    def _store_insertion(self, j: int, new: int, children: np.ndarray, parents: np.ndarray,
                         generator: torch.Generator) -> None:
        """Carry the insertion into the stored tensors (weight, mask, bias, optimizer state).

        Each tensor gets one more row and column, for the new neuron, and is re-sorted into
        the new depth order by one row gather and one column gather into the result; then the
        moved edges' entries go from row ``j`` to the new row and the parents' entries of the
        new column are filled. Only the result and one gathered block are allocated: fresh
        multi-megabyte buffers cost page faults that made up most of an insertion's time.
        """
        n_in = self.n_inputs
        old_position = np.empty(new + 1, np.int64)
        old_position[self.order] = np.arange(new)
        old_position[new] = n_in  # the new neuron has no old row or column: read any, then set
        self.order = np.concatenate([np.arange(n_in), self._hidden_by_depth(), self.output_ids])
        position, device = self.position, self.weight.device
        as_index = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        rows = as_index(old_position[self.order[n_in:]])  # old row of each non-input row
        columns = rows - n_in  # old column of each column
        new_row = int(position[new])
        new_column = new_row - n_in
        moved_from = (int(old_position[j]), as_index(old_position[children] - n_in))
        moved_to = as_index(position[children] - n_in)
        row_j, parent_rows = int(position[j]), as_index(position[parents])
        new_values = _uniform(len(parents), self.init_range, generator)

        def grow(t: torch.Tensor, fill: torch.Tensor | None = None) -> torch.Tensor:
            result = t.new_empty(new + 1, t.shape[1] + 1)
            torch.index_select(t[:n_in], 1, columns, out=result[:n_in])  # input rows keep their place
            torch.index_select(t.index_select(0, rows), 1, columns, out=result[n_in:])
            result[new_row] = 0
            result[:, new_column] = 0
            result[new_row, moved_to] = t[moved_from]  # moved edges carry their value (or state)
            result[row_j, moved_to] = 0
            if fill is not None:
                result[parent_rows, new_column] = fill.to(t)
            return result

        self._swap_parameter("weight", lambda t: grow(t, new_values), grow)
        self.mask = grow(self.mask, torch.ones(len(parents), dtype=torch.bool))
        if self.bias is not None:
            new_bias = _uniform(1, self.init_range, generator)
            appended = columns.clone()
            appended[new_column] = new - n_in  # the new neuron's entry, appended at the end
            self._swap_parameter("bias", lambda t: torch.cat([t, new_bias.to(t)])[appended],
                                 lambda t: torch.cat([t, t.new_zeros(1)])[appended])

    def _hidden_by_depth(self) -> np.ndarray:
        hidden = self.hidden_ids
        return hidden[np.argsort(self.depth[hidden], kind="stable")]

    def _deepen(self, nodes: np.ndarray, depth: int) -> None:
        """Raise ``nodes`` to at least ``depth`` and propagate to descendants (longest paths)."""
        frontier = nodes[self.depth[nodes] < depth]
        if not len(frontier):
            return
        self.depth[frontier] = depth
        in_frontier = np.zeros(self.n, bool)
        # inputs never move, so only edges out of non-inputs can propagate (a tenth of them
        # in a grown MNIST network): select those once
        from_non_inputs = np.flatnonzero(self.src >= self.n_inputs)
        all_src, all_dst = self.src[from_non_inputs], self.dst[from_non_inputs]
        while len(frontier):
            in_frontier[:] = False
            in_frontier[frontier] = True
            edges = in_frontier[all_src]
            src, dst = all_src[edges], all_dst[edges]
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


ACTIVATIONS_INPLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_,
                       "linear": None}


class _Plan:
    """Views for the fused kernel, valid while the weight keeps its storage and layout.

    Weight views per level (``block``: the level's rows, deeper columns; ``block_up_t``: the
    hidden rows between the first level and this one, the level's columns, transposed) and,
    per batch size, a workspace: ``Z`` ``(B, C)`` of pre-activations over the non-input neurons
    in storage order (after the forward pass its hidden columns hold activations), ``dZ``
    ``(B, C)`` for the backward pass, ``S`` ``(B, n_hidden)`` for the activation's slopes, and
    the per-level views of the three.
    Workspaces are reused between calls (the forward pass saves a copy of the activations), so
    one network must not run forward passes from two threads at once.
    """

    # a level's GEMM shares the CPU thread pool from this many multiply-adds on (measured
    # crossover at batch 100: 5 us on one thread vs 8 us on two at 80k, 16 vs 10 us at 520k)
    PARALLEL_FROM = 2 ** 19

    def __init__(self, net: GrowingNet, weight: torch.Tensor):
        self.net, self.key = net, self._key(weight, net.bias, net.mask)
        n_in = net.n_inputs
        with torch.no_grad():
            w = weight.detach()
            self.w_in = w[:n_in]
            self.blocks = [w[n_in + a: n_in + b, b:] for a, b in net._levels]
            self.n_hidden = net._levels[-1][1] if net._levels else 0
            # backward: the first level (hundreds of neurons in a grown net) pulls its derivative
            # from every deeper column in one GEMM; each deeper level pushes its own to the
            # shallower levels except the first, so the many small GEMMs stay narrow
            first_deeper = net._levels[0][1] if net._levels else 0
            self.first_deeper = first_deeper
            self.blocks_up_t = [w[n_in + first_deeper: n_in + a, a:b].T for a, b in net._levels[1:]]
            self.first_block_t = self.blocks[0].T if net._levels else None
            self.deeper_hidden_to_out_t = w[n_in + first_deeper: n_in + self.n_hidden, self.n_hidden:].T
            mask_values = net.mask.to(w.dtype)
        # weight-gradient blocks (rows, first column, their mask): input rows reach every
        # column, hidden rows only the columns after the first level, output rows none
        self.output_rows = n_in + self.n_hidden
        self.gradient_blocks = [(rows, column, mask_values[rows, column:]) for rows, column in
                                ((slice(0, n_in), 0), (slice(n_in, self.output_rows), first_deeper))]
        self.workspaces: dict[int, dict] = {}  # by batch size

    @staticmethod
    def _key(weight, bias, mask):
        return (weight.data_ptr(), weight.shape, weight.dtype, weight.device,
                None if bias is None else bias.data_ptr(), mask.data_ptr())

    def matches(self, weight, bias, mask) -> bool:
        return self.key == self._key(weight, bias, mask)

    def workspace(self, batch: int) -> dict:
        if batch not in self.workspaces:
            if len(self.workspaces) >= 4:  # training, last partial batch, evaluation: a few sizes
                self.workspaces.pop(next(iter(self.workspaces)))
            levels, columns, first = self.net._levels, self.w_in.shape[1], self.first_deeper
            Z, dZ = (self.w_in.new_empty(batch, columns) for _ in range(2))
            S = self.w_in.new_empty(batch, self.n_hidden)
            parallel = lambda k, m: batch * k * m >= self.PARALLEL_FROM  # noqa: E731
            self.workspaces[batch] = {
                "Z": Z, "out": Z[:, self.n_hidden:], "hidden": Z[:, :self.n_hidden],
                "forward": [(Z[:, a:b], Z[:, b:], block, parallel(b - a, columns - b))
                            for (a, b), block in zip(levels, self.blocks)],
                "dZ": dZ, "d_out": dZ[:, self.n_hidden:], "S": S,
                "d_deeper_hidden": dZ[:, first:self.n_hidden],
                "backward": [(dZ[:, a:b], dZ[:, first:a], block_t, S[:, a:b], parallel(b - a, a - first))
                             for (a, b), block_t in zip(levels[:0:-1], self.blocks_up_t[::-1])],
                "first": (dZ[:, :first], dZ[:, first:], S[:, :first])}
        return self.workspaces[batch]


class _FusedDag(torch.autograd.Function):
    """Forward and backward of the level-by-level DAG on precomputed views, in place.

    Autograd would record several nodes per depth level, allocate a zero gradient of full
    size for every indexing op and create every view anew; with tens of levels that overhead
    dominates small batches. Here forward and backward are written out once.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, plan):
        net, ws = plan.net, plan.workspace(x.shape[0])
        torch.mm(x, plan.w_in, out=ws["Z"])  # input contribution to every non-input neuron
        if bias is not None:
            ws["Z"].add_(bias)
        activate = ACTIVATIONS_INPLACE[net.activation]
        with _threads_per_level(x.device) as threads:
            for level, deeper, block, parallel in ws["forward"]:
                if activate is not None:
                    activate(level)  # pre-activations of this level are complete: apply sigma
                threads(parallel)
                deeper.addmm_(level, block)  # push to deeper columns (absent edges are zero)
        ctx.save_for_backward(x, ws["hidden"].clone(), weight)
        ctx.plan, ctx.has_bias = plan, bias is not None
        return ws["out"].clone()

    @staticmethod
    def backward(ctx, grad_out):
        x, hidden, weight = ctx.saved_tensors
        plan = ctx.plan
        net, ws = plan.net, plan.workspace(grad_out.shape[0])
        ws["d_out"].copy_(grad_out)
        # d loss / d h of the hidden neurons after the first level through their edges into
        # outputs; the edges into deeper hidden neurons add theirs below, level by level from
        # the deepest, each level pushing to the shallower ones once its own derivative is
        # complete; the first level then pulls its derivative from every deeper column
        torch.mm(grad_out, plan.deeper_hidden_to_out_t, out=ws["d_deeper_hidden"])
        has_slope = _activation_slope(net.activation, hidden, out=ws["S"])
        with _threads_per_level(grad_out.device) as threads:
            for d_level, d_above, block_up_t, slope, parallel in ws["backward"]:
                if has_slope:
                    d_level.mul_(slope)  # d loss / d z = sigma'(z) d loss / d h
                if d_above.shape[1]:
                    threads(parallel)
                    d_above.addmm_(d_level, block_up_t)
        if plan.first_block_t is not None:
            d_first, d_deeper, slope = ws["first"]
            torch.mm(d_deeper, plan.first_block_t, out=d_first)
            if has_slope:
                d_first.mul_(slope)
        dZ = ws["dZ"]
        grad_weight = torch.empty_like(weight)
        for (rows, column, mask), source in zip(plan.gradient_blocks, (x, hidden)):
            block = grad_weight[rows, column:]
            block.addmm_(source.T, dZ[:, column:], beta=0)  # beta=0: the empty values are not read
            block.mul_(mask)
            grad_weight[rows, :column] = 0
        grad_weight[plan.output_rows:] = 0
        grad_x = dZ @ plan.w_in.T if ctx.needs_input_grad[0] else None
        grad_bias = dZ.sum(0) if ctx.has_bias else None
        return grad_x, grad_weight, grad_bias, None


@contextlib.contextmanager
def _threads_per_level(device: torch.device):
    """Yields ``threads(parallel)``, which gives the next per-level GEMM the CPU thread pool
    or one thread. Most levels are too small to share: the fork and join of the pool around
    each would cost more than it saves (about 5 % of a step at batch 100, measured with
    ``python -m minima.bench growing``); the first level of a grown net, hundreds of neurons
    wide, is not (two threads: 97 instead of 154 us at batch 100)."""
    pool = torch.get_num_threads()
    if device.type != "cpu" or pool == 1:
        yield lambda parallel: None
        return
    try:
        yield lambda parallel: torch.set_num_threads(pool if parallel else 1)
    finally:
        torch.set_num_threads(pool)


def _activation_slope(name: str, h: torch.Tensor, out: torch.Tensor) -> bool:
    """Write sigma'(z), in terms of the activation's output ``h``, into ``out``; ``False``
    (nothing written) for the linear activation, whose slope is 1."""
    if name == "relu":
        torch.sign(h, out=out)  # h >= 0, so 1 where active and 0 elsewhere, in one op
    elif name == "tanh":
        torch.mul(h, h, out=out).neg_().add_(1)
    elif name == "sigmoid":
        torch.mul(h, h, out=out).neg_().add_(h)  # h - h^2 = h (1 - h)
    return name != "linear"
