"""The training kernel: whole epochs of plain SGD on Table 1's networks in one compiled loop.

Why a compiled loop: a minibatch step of these networks is a few thousand to a few million
multiply-adds, while an eager autograd step costs about 70 framework dispatches (8 us each on
the build machine). Compiled with numba, the epoch's steps run back to back with no
dispatch, and the arithmetic skips the exact zeros that dominate it: MNIST pixels (about
80 % are 0) and inactive ReLU units contribute nothing forward and get no gradient.

One representation covers every network of Table 1 (:class:`Rows`). Neurons are in *storage
order*: inputs, hidden neurons by increasing depth, outputs. ``W`` ``(R, C)`` holds the
outgoing weights of every source neuron (row ``r``: inputs ``r < n_in``, then hidden neuron
``r - n_in``, which is also column ``r - n_in``; outputs have no outgoing weights and no row)
into every non-input neuron (columns: hidden, then the ``n_out`` outputs). A fully connected
MLP is the block-diagonal case (layer ``l``'s rows point into layer ``l + 1``'s columns); a
grown network (:class:`~minima.growing.GrowingNet`) stores exactly this matrix. Each row
pushes its activation into the columns of its edges: a contiguous span ``[lo, hi)`` for a
dense row, or an index list for a sparse one (a grown network's hidden neurons have few
children). Absent edges inside a span hold exactly 0 and stay so: a span with holes is
updated through its mask. Since every edge goes from a shallower to a deeper neuron, one
pass over the rows in storage order is the forward pass (a hidden neuron's pre-activation is
complete when its row is reached) and one pass in reverse order the backward pass; a row's weights are updated right after its own gradient
is read, which is when nothing of the step reads them any more. An AG News embedding bag
(sum over the non-padding tokens) in front of the network is updated the same way, sparse.

The kernel computes the same function as autograd and ``torch.optim.SGD`` up to float32
summation order (tests: per-step gradients to 1e-5, weights after an epoch to 1e-4).
:class:`~minima.train.Trainer` stays the oracle and the fallback: :func:`covers` says which
models the kernel takes (plain SGD, ReLU, no biases, CPU); everything else trains there.
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from torch import nn

from ..growing import GrowingNet
from ..models import plain_mlp_layers

__all__ = ["SgdKernel", "covers"]

# reassociation lets the compiler vectorise the dot products of the backward pass (their
# summation order then differs from torch's, as any two BLAS libraries' do); contraction
# fuses multiply-adds. No "fast" flags that assume finite values: divergence must be seen.
FASTMATH = {"reassoc", "contract"}
# a row whose span is less dense than this is pushed through its index list instead (0.25 and
# 0.5 were equally fast on the grown MNIST-500 network, 0.8 and a dense span for every row
# 1.5x and 3.3x slower)
SPARSE_BELOW = 0.25


def covers(model: nn.Module) -> str | None:
    """``None`` when :class:`SgdKernel` trains ``model``, else why not (one line).

    Covered: an MLP of :func:`minima.models.mlp` (``Flatten``, bias-free ``Linear`` layers,
    ReLU between them), a bias-free ReLU :class:`~minima.growing.GrowingNet`, and either behind
    an ``nn.EmbeddingBag`` (``mode="sum"``, ``padding_idx=0``), all float32 on the CPU."""
    parts = list(model) if isinstance(model, nn.Sequential) else [model]
    if parts and isinstance(parts[0], nn.EmbeddingBag):
        bag = parts[0]
        if bag.mode != "sum" or bag.padding_idx != 0 or len(parts) != 2:
            return "the kernel takes an embedding bag with mode='sum' and padding_idx=0 followed by one network"
        if bag.weight.dtype != torch.float32 or bag.weight.device.type != "cpu":
            return "the kernel trains float32 models on the CPU"
        model = parts[1]
    if isinstance(model, GrowingNet):
        if model.activation != "relu" or model.has_bias:
            return "the kernel trains bias-free ReLU grown networks"
        weights = [model.weight]
    else:
        layers = plain_mlp_layers(model)
        if layers is None:
            return "the kernel trains MLPs, grown networks and an embedding bag in front of either"
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        body = [m for m in layers if not isinstance(m, nn.Flatten)]
        if any(m.bias is not None for m in linears) or \
                any(not isinstance(m, nn.ReLU) for m in body if not isinstance(m, nn.Linear)):
            return "the kernel trains bias-free ReLU MLPs"
        weights = [m.weight for m in linears]
    if any(w.dtype != torch.float32 or w.device.type != "cpu" for w in weights):
        return "the kernel trains float32 models on the CPU"
    return None


class Rows:
    """The row structure of one network layout (see the module docstring).

    ``W`` ``(R, C)`` float32, C-contiguous; ``mask`` ``(R, C)`` float32 (1 where an edge is);
    per row ``lo``, ``hi`` (uint64: its dense span, empty for an index-list row), ``masked``
    (uint8: the span has holes and is updated through ``mask``) and ``ptr``/``cols`` (CSR of the
    index-list rows' edges).
    """

    def __init__(self, W: np.ndarray, edges: np.ndarray, n_in: int, n_out: int):
        R, C = W.shape
        self.W, self.n_in, self.n_out = W, n_in, n_out
        nnz = edges.sum(1)
        any_edge = nnz > 0
        lo = np.where(any_edge, edges.argmax(1), 0)
        hi = np.where(any_edge, C - edges[:, ::-1].argmax(1), 0)
        span = hi - lo
        sparse = any_edge & (nnz < SPARSE_BELOW * span)
        self.lo = np.where(sparse, 0, lo).astype(np.uint64)
        self.hi = np.where(sparse, 0, hi).astype(np.uint64)
        self.masked = (~sparse & (nnz < span)).astype(np.uint8)
        self.ptr, self.cols = _csr(edges & sparse[:, None])
        self.mask = edges.astype(np.float32) if self.masked.any() else np.ones((1, 1), np.float32)


def _csr(selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers ``(R + 1,)`` and column indices of the ``True`` entries of ``selected``
    ``(R, C)``, row by row (uint64, see :func:`_epoch`)."""
    rows, cols = np.nonzero(selected)  # row-major: grouped by row
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(selected)))])
    return ptr.astype(np.uint64), cols.astype(np.uint64)


class SgdKernel:
    """Plain SGD epochs of ``model`` (covered by :func:`covers`) on ``(x, y)``, in place.

    ``x``: ``(N, n_in)`` float32 inputs, or ``(N, L)`` int64 token ids (0 = padding) for a
    model that starts with an embedding bag; ``y``: ``(N,)`` int64 classes. The model's own
    parameter tensors are the kernel's state: a grown network's ``weight`` and an embedding's
    table are updated where they lie; an MLP's layers are gathered into ``W`` at the start of
    an epoch and written back at its end. Growth between epochs (a new ``weight``) is picked
    up by the next :meth:`epoch`.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        reason = covers(model)
        if reason is not None:
            raise ValueError(f"{reason}; train this model with Trainer (kernel='autograd')")
        parts = list(model) if isinstance(model, nn.Sequential) else [model]
        self.bag = parts[0] if isinstance(parts[0], nn.EmbeddingBag) else None
        self.net = parts[1] if self.bag is not None else model
        self.tokens = np.ascontiguousarray(x.numpy()) if self.bag is not None else np.zeros((0, 0), np.int64)
        self.x = np.ascontiguousarray(x.flatten(1).numpy()) if self.bag is None else np.zeros((0, 0), np.float32)
        if self.bag is not None and x.dtype != torch.int64:
            raise ValueError(f"an embedding bag needs int64 token ids, got {x.dtype}")
        if self.bag is None and self.x.dtype != np.float32:
            raise ValueError(f"the kernel trains on float32 inputs, got {self.x.dtype}")
        self.y = np.ascontiguousarray(y.numpy().astype(np.int64))
        self._rows: Rows | None = None
        self._key = None

    # ------------------------------------------------------------ the model <-> the kernel's rows
    def _linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def _prepare(self) -> Rows:
        """The rows of the current layout (rebuilt after growth); an MLP's weights gathered in."""
        if isinstance(self.net, GrowingNet):
            weight, net = self.net.weight, self.net
            key = (weight.data_ptr(), tuple(weight.shape))
            if key != self._key:
                R = net.n - net.n_outputs  # inputs and hidden neurons: the rows with outgoing edges
                W = weight.detach().numpy()[:R]  # a view: updated in place
                self._rows, self._key = Rows(W, net.mask[:R].numpy(), net.n_inputs, net.n_outputs), key
            return self._rows
        linears = self._linears()
        if self._rows is None:
            widths = [m.out_features for m in linears]
            n_in, n_out = linears[0].in_features, widths[-1]
            R, C = n_in + sum(widths[:-1]), sum(widths)
            edges = np.zeros((R, C), bool)
            self._blocks, row, col = [], 0, 0
            for m in linears:
                block = (slice(row, row + m.in_features), slice(col, col + m.out_features))
                edges[block] = True
                self._blocks.append(block)
                row, col = n_in + col, col + m.out_features  # the next layer's rows: this layer's units
            self._rows = Rows(np.zeros((R, C), np.float32), edges, n_in, n_out)
        for m, block in zip(linears, self._blocks):
            self._rows.W[block] = m.weight.detach().numpy().T
        return self._rows

    def _finish(self) -> None:
        if not isinstance(self.net, GrowingNet):
            with torch.no_grad():
                for m, block in zip(self._linears(), self._blocks):
                    m.weight.copy_(torch.from_numpy(self._rows.W[block].T))

    def _embedding(self) -> np.ndarray:
        """The embedding table as an array the kernel updates in place (empty without a bag)."""
        return self.bag.weight.detach().numpy() if self.bag is not None else np.zeros((0, 0), np.float32)

    def evaluate(self, chunk: int = 256) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the whole training set, as
        :func:`~minima.train.loss_and_accuracy` computes them (one forward pass, no update)."""
        rows = self._prepare()
        total, correct = _evaluate(self.x, self.tokens, self._embedding(), self.y, rows.W, rows.lo, rows.hi, rows.ptr,
                                   rows.cols, rows.n_in, rows.n_out, int(min(chunk, max(len(self.y), 1))))
        return float(total) / len(self.y), int(correct) / len(self.y)

    # ------------------------------------------------------------ one epoch
    def epoch(self, order: torch.Tensor, batch_size: int, lr: float) -> tuple[float, int]:
        """SGD steps on the minibatches ``order.split(batch_size)`` (``order``: ``(N,)`` int64, as
        :class:`~minima.train.Trainer` draws it) at learning rate ``lr`` on each minibatch's mean
        cross-entropy. Returns ``(sum of the minibatch losses x their sizes, -1)``, or, when a
        minibatch loss was not finite, ``(that loss, its step)``, the model left as it was then."""
        rows = self._prepare()
        order = np.ascontiguousarray(order.numpy().astype(np.int64))
        total, bad_step = _epoch(self.x, self.tokens, self._embedding(), self.y, order, int(batch_size), np.float32(lr),
                                 rows.W, rows.mask, rows.lo, rows.hi, rows.masked, rows.ptr, rows.cols,
                                 rows.n_in, rows.n_out)
        self._finish()
        return float(total), int(bad_step)


# ----------------------------------------------------------------------------- the compiled epoch

@numba.njit(cache=True, fastmath=FASTMATH)
def _forward(x, tokens, embedding, order, first, B, A, Z, W, lo, hi, ptr, cols, n_in):
    """The forward pass of examples ``order[first: first + B]`` into ``A`` (source activations)
    and ``Z`` (pre-activations, logits last): rows in storage order, a hidden neuron activated
    when its row is reached, zero activations skipped.

    Column indices are unsigned (``lo``, ``hi``, ``cols`` are uint64): with a signed index whose
    sign the compiler cannot prove, every access keeps its negative-index check and the loop
    is not vectorised (6x slower, measured); slicing a row instead costs more than the
    arithmetic of a small row."""
    R, C = W.shape
    embedded = tokens.shape[0] > 0
    for b in range(B):
        example = order[first + b]
        if embedded:
            for i in range(n_in):
                A[b, i] = 0
            for t in tokens[example]:
                if t != 0:
                    for i in range(n_in):
                        A[b, i] += embedding[t, i]
        else:
            for i in range(n_in):
                A[b, i] = x[example, i]
        for c in range(C):
            Z[b, c] = 0
    for r in range(R):
        for b in range(B):
            if r >= n_in:
                pre = Z[b, r - n_in]
                A[b, r] = pre if pre > 0 else 0
            h = A[b, r]
            if h != 0:
                for c in range(lo[r], hi[r]):
                    Z[b, c] += h * W[r, c]
                for k in range(ptr[r], ptr[r + 1]):
                    Z[b, cols[k]] += h * W[r, cols[k]]


@numba.njit(cache=True, fastmath=FASTMATH)
def _cross_entropy(Z, b, target, n_hidden, p):
    """Cross-entropy of the logits ``Z[b, n_hidden:]`` for class ``target``; leaves the softmax
    numerators in ``p`` and returns ``(loss, their sum)`` (float64)."""
    n_out = Z.shape[1] - n_hidden
    m = Z[b, n_hidden]
    for k in range(n_out):
        m = max(m, Z[b, n_hidden + k])
    s = 0.0
    for k in range(n_out):
        p[k] = np.exp(np.float64(Z[b, n_hidden + k] - m))
        s += p[k]
    return np.log(s) + m - Z[b, n_hidden + target], s


@numba.njit(cache=True, fastmath=FASTMATH)
def _evaluate(x, tokens, embedding, y, W, lo, hi, ptr, cols, n_in, n_out, chunk):
    """Summed cross-entropy and correct predictions (argmax, first of ties, as torch) over
    every example, ``chunk`` examples at a time."""
    R, C = W.shape
    n_hidden = C - n_out
    A = np.zeros((chunk, R), W.dtype)
    Z = np.zeros((chunk, C), W.dtype)
    p = np.zeros(n_out, np.float64)
    n = len(y)
    order = np.arange(n)
    total, correct = 0.0, 0
    for first in range(0, n, chunk):
        B = min(n, first + chunk) - first
        _forward(x, tokens, embedding, order, first, B, A, Z, W, lo, hi, ptr, cols, n_in)
        for b in range(B):
            loss, _ = _cross_entropy(Z, b, y[first + b], n_hidden, p)
            total += loss
            best = 0
            for k in range(1, n_out):
                if Z[b, n_hidden + k] > Z[b, n_hidden + best]:
                    best = k
            correct += best == y[first + b]
    return total, correct


@numba.njit(cache=True, fastmath=FASTMATH)
def _epoch(x, tokens, embedding, y, order, batch_size, lr, W, mask, lo, hi, masked, ptr, cols, n_in, n_out):
    """One epoch of SGD (see :meth:`SgdKernel.epoch`); ``x`` ``(N, n_in)`` or, when ``tokens`` has
    rows, the embedding bag ``embedding[tokens].sum`` (token 0 left out) is the input. Indices
    are unsigned, as in :func:`_forward`."""
    R, C = W.shape
    n_hidden = C - n_out
    embedded = tokens.shape[0] > 0
    dtype = W.dtype
    A = np.zeros((batch_size, R), dtype)  # source activations: inputs, then hidden ReLU outputs
    Z = np.zeros((batch_size, C), dtype)  # pre-activations (logits in the last n_out columns)
    dZ = np.zeros((batch_size, C), dtype)  # d (minibatch mean loss) / d Z
    dA = np.zeros((batch_size, n_in), dtype)  # d loss / d input (embedding bag only)
    p = np.zeros(n_out, np.float64)
    total = 0.0
    n = len(order)
    for step in range((n + batch_size - 1) // batch_size):
        first = step * batch_size
        B = min(n, first + batch_size) - first
        _forward(x, tokens, embedding, order, first, B, A, Z, W, lo, hi, ptr, cols, n_in)
        # loss and d loss / d logits (softmax minus one-hot, over the minibatch mean)
        batch_loss = 0.0
        for b in range(B):
            target = y[order[first + b]]
            loss, s = _cross_entropy(Z, b, target, n_hidden, p)
            batch_loss += loss
            for k in range(n_out):
                dZ[b, n_hidden + k] = (p[k] / s - (1.0 if k == target else 0.0)) / B
        if not np.isfinite(batch_loss):
            return batch_loss / B, step
        total += batch_loss
        # backward: rows in reverse order; a row's gradient is read, then its weights updated
        for r in range(R - 1, -1, -1):
            if r >= n_in or embedded:
                for b in range(B):
                    g = np.float32(0)
                    if r < n_in or A[b, r] > 0:  # ReLU' = 1 where the unit is active
                        for c in range(lo[r], hi[r]):
                            g += W[r, c] * dZ[b, c]
                        for k in range(ptr[r], ptr[r + 1]):
                            g += W[r, cols[k]] * dZ[b, cols[k]]
                    if r >= n_in:
                        dZ[b, r - n_in] = g
                    else:
                        dA[b, r] = g
            for b in range(B):
                h = A[b, r]
                if h != 0:
                    step_size = lr * h
                    if masked[r]:
                        for c in range(lo[r], hi[r]):
                            W[r, c] -= step_size * dZ[b, c] * mask[r, c]
                    else:
                        for c in range(lo[r], hi[r]):
                            W[r, c] -= step_size * dZ[b, c]
                    for k in range(ptr[r], ptr[r + 1]):
                        W[r, cols[k]] -= step_size * dZ[b, cols[k]]
        if embedded:
            for b in range(B):
                for t in tokens[order[first + b]]:
                    if t != 0:
                        for i in range(n_in):
                            embedding[t, i] -= lr * dA[b, i]
    return total, -1
