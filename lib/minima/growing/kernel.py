"""The fused level-by-level kernel of a grown network, and the switch to plain autograd.

Forward pass (vectorised, no loop over neurons). In storage order (inputs, hidden neurons by
increasing depth, outputs) each depth level is a contiguous block of columns, and every edge
of a level points into the columns after it. One GEMM gives the input contribution to every
non-input neuron; then, level by level in increasing depth, the level's activations are
pushed to the deeper columns with one in-place GEMM on a view. The loop runs over depth
levels, never over neurons, in the autograd Function :class:`FusedDag` (first-order
backward: each level pushes its derivative to the shallower levels, and the first, widest
level pulls its own in one GEMM), whose views of the weight and of per-batch-size workspaces
(:class:`Plan`) are built once per layout: with tens of levels and small batches, creating
views and allocating buffers would otherwise cost more than the arithmetic.

Inside :func:`double_backward` a :class:`~minima.growing.network.GrowingNet` runs the same
computation on plain differentiable ops, for Hessian-vector products and ``torch.func``.
"""
from __future__ import annotations

import contextlib
from typing import Protocol

import torch

from ..core.autograd import double_backward, double_backward_active  # noqa: F401 (re-exported)


class DagShape(Protocol):
    """What the kernel needs of a grown network: its shape, not its class (so this module does
    not import :mod:`.network`, which imports it). ``levels``: ``(start, stop)`` of each depth
    level's hidden columns in storage order; ``mask`` ``(n_inputs + hidden, hidden + outputs)``."""

    n_inputs: int
    levels: list
    bias: torch.Tensor | None
    mask: torch.Tensor
    activation: str


ACTIVATIONS_INPLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_,
                       "linear": None}


class Plan:
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

    def __init__(self, net: DagShape, weight: torch.Tensor):
        self.net, self.key = net, self._key(weight, net.bias, net.mask)
        n_in = net.n_inputs
        with torch.no_grad():
            w = weight.detach()
            self.w_in = w[:n_in]
            self.blocks = [w[n_in + a: n_in + b, b:] for a, b in net.levels]
            self.n_hidden = net.levels[-1][1] if net.levels else 0
            # backward: the first level (hundreds of neurons in a grown net) pulls its derivative
            # from every deeper column in one GEMM; each deeper level pushes its own to the
            # shallower levels except the first, so the many small GEMMs stay narrow
            first_deeper = net.levels[0][1] if net.levels else 0
            self.first_deeper = first_deeper
            self.blocks_up_t = [w[n_in + first_deeper: n_in + a, a:b].T for a, b in net.levels[1:]]
            self.first_block_t = self.blocks[0].T if net.levels else None
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
            levels, columns, first = self.net.levels, self.w_in.shape[1], self.first_deeper
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


class FusedDag(torch.autograd.Function):
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
