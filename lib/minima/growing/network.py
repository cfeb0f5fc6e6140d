"""The growing network as an ``nn.Module``: weights in depth order, growth that keeps the optimizer.

:class:`GrowingNet` holds a :class:`~minima.growing.dag.Dag` (the graph and Algorithm 1) and
the weights. Storage: one dense Parameter ``weight`` of shape ``(n, n - n_inputs)`` in *depth
order*: row ``r`` belongs to neuron ``order[r]`` (inputs, then hidden neurons by increasing
depth, then outputs), column ``c`` to neuron ``order[n_inputs + c]``; entries without an edge
are zero (``mask`` says where there is one). In this order each depth level is a contiguous
block and every edge of a level points into the columns after it, so the forward pass (the
fused kernel of :mod:`minima.growing.kernel`) works on precomputed views instead of gathering
rows and columns. An insertion (rare: hundreds per run) re-sorts the matrix once; a moved
edge carries its weight *and its optimizer state*. Gradients are masked, so absent edges stay
exactly zero under SGD, momentum, weight decay or Adam. :meth:`GrowingNet.in_id_order`
converts any weight- or bias-shaped tensor back to id order.

*Biases* are off by default (the paper's recursion has none). With ``bias=True`` every
non-input neuron has one, initialised U(-init_range, init_range); an insertion then adds
``fan_in + 1`` parameters.
"""
from __future__ import annotations

import weakref

import numpy as np
import torch
from torch import nn

from ..core.device import resolve
from .dag import Dag, GrowthError, Insertion
from .kernel import FusedDag, Plan, double_backward_active

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "linear": lambda z: z}


def _uniform(n: int, init_range: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * init_range


def _from_dag(name: str, doc: str) -> property:
    """A read-only property of :class:`GrowingNet` that reads the same name on its Dag."""
    return property(lambda net: getattr(net.dag, name), doc=doc)


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
        self.dag = Dag(n_inputs, n_outputs)
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
        self._plan: Plan | None = None
        self._layout()

    # ------------------------------------------------------------ the graph (read-only views of the Dag)
    src = _from_dag("src", "Source id of every edge, ``(E,)``.")
    dst = _from_dag("dst", "Destination id of every edge, ``(E,)``.")
    pi0 = _from_dag("pi0", "Whether each edge is in pi0, ``(E,)`` bool.")
    depth = _from_dag("depth", "``(n,)`` depth of each neuron id (longest path from an input).")
    n = _from_dag("n", "Number of neurons.")
    input_ids = _from_dag("input_ids", "``(n_inputs,)`` ids of the inputs.")
    output_ids = _from_dag("output_ids", "``(n_outputs,)`` ids of the outputs.")
    hidden_ids = _from_dag("hidden_ids", "Ids of the inserted neurons, in insertion order.")

    # ------------------------------------------------------------ storage
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
        the outputs the last ``n_outputs``; ``levels`` holds ``(start, stop)`` per level.
        """
        hidden_depths = self.depth[self.order[self.n_inputs: self.n - self.n_outputs]]
        starts = np.flatnonzero(np.diff(hidden_depths, prepend=-1)).tolist()
        self.levels = list(zip(starts, starts[1:] + [len(hidden_depths)]))
        self._plan = None

    def __getstate__(self):  # copies and pickles rebuild views and workspaces on first use
        return {**self.__dict__, "_plan": None}

    def _fused_plan(self) -> Plan | None:
        """Views for the fused kernel, rebuilt when the weight's storage changed (growth,
        ``.to()``, ``load_state_dict(assign=True)``; a plain ``load_state_dict`` copies in
        place and keeps them valid); ``None`` when the weight is not this module's Parameter
        (``torch.func.functional_call``) or a transform is active, which take the plain path."""
        weight = self.weight
        if not self.fused or double_backward_active() or not isinstance(weight, nn.Parameter) \
                or torch._C._functorch.is_functorch_wrapped_tensor(weight):
            return None
        if self._plan is None or not self._plan.matches(weight, self.bias, self.mask):
            self._plan = Plan(self, weight)
        return self._plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs with {self.n_inputs} features, got {x.shape[1]}")
        plan = None if torch._C._functorch.is_functorch_wrapped_tensor(x) else self._fused_plan()
        if plan is not None and x.dtype == self.weight.dtype and x.device == self.weight.device:
            return FusedDag.apply(x, self.weight, self.bias, plan)
        return self._forward_autograd(x)

    def _forward_autograd(self, x: torch.Tensor) -> torch.Tensor:
        """The same computation from differentiable torch ops (double backward, torch.func)."""
        W = self.weight * self.mask.to(self.weight.dtype)
        z = x @ W[: self.n_inputs]  # (B, C): input contribution to every non-input neuron
        if self.bias is not None:
            z = z + self.bias
        act = ACTIVATIONS[self.activation]
        for a, b in self.levels:
            # push this level's activations to every column; only deeper ones have edges
            z = z + act(z[:, a:b]) @ W[self.n_inputs + a: self.n_inputs + b]
        return z[:, -self.n_outputs:]

    # ------------------------------------------------------------ growth
    def adopt(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Keep ``optimizer`` valid across growth (call once after creating it).

        On every insertion the grown ``weight`` (a new Parameter) replaces the old one in the
        optimizer, and every state tensor of its shape (momentum, Adam moments) is grown the same
        way: moved edges carry value and state, new weights start with zero state; ``bias`` too.
        """
        self._optimizers.append(weakref.ref(optimizer))
        return optimizer

    def insert(self, fan_in: int, generator: torch.Generator | None = None) -> int:
        """Insert one neuron by Algorithm 1 (:meth:`Dag.insert`) with ``fan_in`` parents and
        carry it into the weights: ``w(j,new)`` and the extra parents' weights ~ U, moved edges
        keep their weight and optimizer state. Adds ``fan_in`` weights; returns the new id.
        Raises :class:`GrowthError` (network unchanged) for a bad fan-in.
        """
        generator = generator or self.generator
        step = self.dag.insert(fan_in, generator)
        old_order, self.order = self.order, self.dag.storage_order()
        resort = Resort(step, old_order, self.order, self.n_inputs, self.weight.device)
        new_values = _uniform(len(step.parents), self.init_range, generator)
        optimizers = [o for o in (ref() for ref in self._optimizers) if o is not None]
        swap_parameter(self, "weight", lambda t: resort.grow(t, new_values), resort.grow, optimizers)
        self.mask = resort.grow(self.mask, torch.ones(len(step.parents), dtype=torch.bool))
        if self.bias is not None:
            new_bias = _uniform(1, self.init_range, generator)
            swap_parameter(self, "bias", lambda t: resort.grow_bias(t, new_bias),
                           lambda t: resort.grow_bias(t, torch.zeros(1)), optimizers)
        self.history.append({"id": step.new, "primary_parent": step.primary_parent,
                             "parents": step.parents.tolist(), "moved_children": step.moved_children.tolist(),
                             "depth": step.depth, "network_depth": self.dag.network_depth})
        self._layout()
        return step.new

    def grow(self, k: int, fan_in, generator: torch.Generator | None = None) -> list[int]:
        """Insert ``k`` neurons; ``fan_in`` is one int or a sequence of ``k`` ints."""
        fan_ins = [fan_in] * k if isinstance(fan_in, (int, np.integer)) else list(fan_in)
        if len(fan_ins) != k:
            raise GrowthError(f"got {len(fan_ins)} fan-ins for {k} insertions")
        return [self.insert(f, generator) for f in fan_ins]

    def extra_repr(self) -> str:
        return (f"inputs={self.n_inputs}, outputs={self.n_outputs}, hidden={len(self.hidden_ids)}, "
                f"depth={self.dag.network_depth}, parameters={self.num_parameters()}, "
                f"activation={self.activation}")


def _edge_mask(src, dst, n, n_inputs, device) -> torch.Tensor:
    mask = torch.zeros(n, n - n_inputs, dtype=torch.bool)
    mask[torch.as_tensor(src), torch.as_tensor(dst - n_inputs)] = True
    return mask.to(device)


class Resort:
    """The re-sorting of weight-shaped tensors after one insertion.

    Each tensor gets one more row and column, for the new neuron, and is re-sorted into
    the new depth order by one row gather and one column gather into the result; then the
    moved edges' entries go from row ``j`` to the new row and the parents' entries of the
    new column are filled. Only the result and one gathered block are allocated: fresh
    multi-megabyte buffers cost page faults that made up most of an insertion's time.
    """

    def __init__(self, step: Insertion, old_order: np.ndarray, order: np.ndarray, n_inputs: int, device):
        new, n_in = step.new, n_inputs
        old_position = np.empty(new + 1, np.int64)
        old_position[old_order] = np.arange(new)
        old_position[new] = n_in  # the new neuron has no old row or column: read any, then set
        position = np.empty(new + 1, np.int64)
        position[order] = np.arange(new + 1)
        as_index = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.n, self.n_inputs = new + 1, n_in
        self.rows = as_index(old_position[order[n_in:]])  # old row of each non-input row
        self.columns = self.rows - n_in  # old column of each column
        self.new_row = int(position[new])
        self.new_column = self.new_row - n_in
        self.moved_from = (int(old_position[step.primary_parent]), as_index(old_position[step.moved_children] - n_in))
        self.moved_to = as_index(position[step.moved_children] - n_in)
        self.row_j, self.parent_rows = int(position[step.primary_parent]), as_index(position[step.parents])
        self.appended = self.columns.clone()  # bias-shaped: the new entry is appended, then gathered
        self.appended[self.new_column] = new - n_in

    def grow(self, t: torch.Tensor, fill: torch.Tensor | None = None) -> torch.Tensor:
        """``(n-1, C-1)`` in the old order -> ``(n, C)`` in the new; the new column's parent
        entries are ``fill`` (zero when ``None``, as for optimizer state)."""
        n_in = self.n_inputs
        result = t.new_empty(self.n, t.shape[1] + 1)
        torch.index_select(t[:n_in], 1, self.columns, out=result[:n_in])  # input rows keep their place
        torch.index_select(t.index_select(0, self.rows), 1, self.columns, out=result[n_in:])
        result[self.new_row] = 0
        result[:, self.new_column] = 0
        result[self.new_row, self.moved_to] = t[self.moved_from]  # moved edges carry their value (or state)
        result[self.row_j, self.moved_to] = 0
        if fill is not None:
            result[self.parent_rows, self.new_column] = fill.to(t)
        return result

    def grow_bias(self, t: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``(C-1,)`` in the old order -> ``(C,)`` in the new, the new neuron's entry ``value``."""
        return torch.cat([t, value.to(t)])[self.appended]


def swap_parameter(module: nn.Module, name: str, grow_value, grow_state, optimizers) -> None:
    """Replace parameter ``name`` of ``module`` by ``grow_value(old)``, here and in every
    optimizer of ``optimizers``, whose state tensors of the old shape become ``grow_state(state)``."""
    old = getattr(module, name)
    with torch.no_grad():
        new = nn.Parameter(grow_value(old.detach()))
    setattr(module, name, new)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["params"] = [new if p is old else p for p in group["params"]]
        if old in optimizer.state:
            state = optimizer.state.pop(old)
            optimizer.state[new] = {key: grow_state(value) if torch.is_tensor(value) and value.shape == old.shape
                                    else value for key, value in state.items()}
