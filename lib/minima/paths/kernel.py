"""The compiled NEB step: whole AutoNEB cycles of a one-hidden-layer MLP's path in one call.

Why a compiled loop: an eager NEB step (:func:`minima.paths.neb.relax` on
:class:`~minima.paths.energy.ModelEnergy`) is about 60 framework dispatches (forward and
backward of every pivot as batched products, the tangents, the optimiser, the re-spacing), and
its batched products have awkward shapes for narrow networks: 3.4 ms a step for 5 pivots of a
784-2-10 network on the build machine, for a few million multiply-adds. Here a cycle's steps
run back to back in one numba call. The two products that hold the arithmetic (the first
layer's pre-activations of every pivot, and its weight gradients) are one BLAS matrix product
each over all pivots at once; the rest (second layer, softmax cross-entropy, tangents,
momentum SGD, re-spacing) are plain loops.

The dense evaluation of a path (``n_sub`` points inside each segment) uses that a point
inside a segment is ``a + f (b - a)``, so its first-layer pre-activations are
``Z_a + f (Z_b - Z_a)``: one product per *pivot* instead of one per dense point (10x fewer for
``n_sub = 9``), the same values up to float rounding.

Layout: a pivot is the flat vector of :class:`~minima.core.parameters.FlatView` over
``nn.Sequential(Flatten, Linear(n_in, H), ReLU, Linear(H, n_out))`` (the ``mlp-H`` of
:func:`minima.models.architecture`): ``W1`` ``(H, n_in)`` row-major, ``b1`` ``(H,)``, ``W2``
``(n_out, H)``, ``b2`` ``(n_out,)``. The loss is the batch-mean softmax cross-entropy.

The kernel computes what the eager path computes up to float32 summation order (tests: energy
and gradient to 1e-5 relative, whole cycles, dense evaluation). Everything else (other
networks, CUDA, springs) relaxes eagerly: :func:`covers` says which models the kernel takes.
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from .alignment import shape_of

__all__ = ["MlpPathKernel", "covers"]

# as the training kernel: reassociation lets the compiler vectorise the sums, contraction fuses
# multiply-adds; no flags that assume finite values (a diverged path must be seen)
FASTMATH = {"reassoc", "contract"}


def covers(model: nn.Module) -> str | None:
    """``None`` when :class:`MlpPathKernel` relaxes paths of ``model``, else why not (one line):
    ``Flatten, Linear(bias), ReLU, Linear(bias)``, float32, on the CPU."""
    try:
        shape_of(model)  # the one definition of the networks both the kernel and alignment take
    except ValueError:
        return "the compiled NEB step takes one-hidden-layer ReLU MLPs with biases (Flatten, Linear, ReLU, Linear)"
    if any(p.dtype != torch.float32 or p.device.type != "cpu" for p in model.parameters()):
        return "the compiled NEB step runs float32 on the CPU"
    return None


# ----------------------------------------------------------------------------- compiled parts

@numba.njit(cache=True)
def _gather_first_layer(path, H, n_in, W1):
    """Copy every pivot's first-layer weights into ``W1`` ``(P*H, n_in)`` (pivot-major rows),
    so that one product computes every pivot's pre-activations."""
    for p in range(path.shape[0]):
        for j in range(H):
            base = j * n_in
            for i in range(n_in):
                W1[p * H + j, i] = path[p, base + i]


@numba.njit(cache=True, fastmath=FASTMATH)
def _loss_and_gradient(path, H, n_in, n_out, X, y, energies, grad, W1, dZ):
    """Batch-mean cross-entropy of every pivot of ``path`` ``(P, D)`` on ``X`` ``(B, n_in)``,
    ``y`` ``(B,)`` into ``energies`` ``(P,)``, and the gradient of the interior pivots into
    ``grad`` ``(P-2, D)``. ``W1`` ``(P*H, n_in)`` and ``dZ`` ``(>= B, (P-2)*H)`` are scratch."""
    P = path.shape[0]
    B = X.shape[0]
    o_b1 = H * n_in
    o_W2 = o_b1 + H
    o_b2 = o_W2 + n_out * H
    _gather_first_layer(path, H, n_in, W1)
    Z = np.dot(X, W1.T)  # (B, P*H): every pivot's pre-activations, one product
    grad[:, o_b1:] = 0.0
    a = np.empty(H, np.float32)
    logits = np.empty(n_out, np.float64)
    scale = 1.0 / B
    for p in range(P):
        total = 0.0
        interior = 0 < p < P - 1
        for b in range(B):
            for j in range(H):
                z = Z[b, p * H + j] + path[p, o_b1 + j]
                a[j] = z if z > 0.0 else 0.0
            peak = -np.inf
            for k in range(n_out):
                s = path[p, o_b2 + k]
                row = o_W2 + k * H
                for j in range(H):
                    s += path[p, row + j] * a[j]
                logits[k] = s
                if s > peak:
                    peak = s
            norm = 0.0
            for k in range(n_out):
                norm += np.exp(logits[k] - peak)
            total += peak + np.log(norm) - logits[y[b]]
            if interior:
                r = p - 1
                for j in range(H):
                    dZ[b, r * H + j] = 0.0
                for k in range(n_out):
                    d = np.exp(logits[k] - peak) / norm
                    if k == y[b]:
                        d -= 1.0
                    d *= scale
                    grad[r, o_b2 + k] += d
                    row = o_W2 + k * H
                    for j in range(H):
                        grad[r, row + j] += d * a[j]
                        if a[j] > 0.0:  # ReLU passes the gradient where it fired (as torch: output > 0)
                            dZ[b, r * H + j] += d * path[p, row + j]
                for j in range(H):
                    grad[r, o_b1 + j] += dZ[b, r * H + j]
        energies[p] = total * scale
    if P > 2:
        G = np.dot(dZ[:B].T, X)  # ((P-2)*H, n_in): every interior pivot's first-layer gradient, one product
        for r in range(P - 2):
            for j in range(H):
                base = j * n_in
                for i in range(n_in):
                    grad[r, base + i] = G[r * H + j, i]


@numba.njit(cache=True, fastmath=FASTMATH)
def _tangents(path, energies, tangent):
    """Unit tangents ``(P-2, D)`` at the interior pivots, as :func:`minima.paths.neb.improved_tangents`."""
    P, D = path.shape
    for r in range(P - 2):
        e_prev, e, e_next = energies[r], energies[r + 1], energies[r + 2]
        d_next, d_prev = abs(e_next - e), abs(e_prev - e)
        hi, lo = max(d_next, d_prev), min(d_next, d_prev)
        if e_next == e_prev:
            wf, wb = 1.0, 1.0
        elif e_next > e > e_prev:
            wf, wb = 1.0, 0.0
        elif e_next < e < e_prev:
            wf, wb = 0.0, 1.0
        elif e_next > e_prev:
            wf, wb = hi, lo
        else:
            wf, wb = lo, hi
        norm = 0.0
        for d in range(D):
            t = wf * (path[r + 2, d] - path[r + 1, d]) + wb * (path[r + 1, d] - path[r, d])
            tangent[r, d] = t
            norm += t * t
        norm = max(np.sqrt(norm), 1e-30)
        for d in range(D):
            tangent[r, d] /= norm


@numba.njit(cache=True, fastmath=FASTMATH)
def _respace(path, lo, hi, out):
    """Rows ``lo..hi`` (inclusive) of ``path`` placed at equal arc length into the same rows of
    ``out``, ends fixed: :func:`minima.paths.neb.respace` of that stretch."""
    n = hi - lo + 1
    D = path.shape[1]
    cumulative = np.zeros(n, np.float64)
    segments = np.zeros(n - 1, np.float64)
    for s in range(n - 1):
        total = 0.0
        for d in range(D):
            step = path[lo + s + 1, d] - path[lo + s, d]
            total += step * step
        segments[s] = np.sqrt(total)
        cumulative[s + 1] = cumulative[s] + segments[s]
    length = cumulative[n - 1]
    for m in range(n):
        if length <= 0.0 or m == 0 or m == n - 1:
            out[lo + m] = path[lo + m]
            continue
        target = length * m / (n - 1)
        index = np.searchsorted(cumulative, target, side="right")
        index = min(max(index, 1), n - 1) - 1
        fraction = (target - cumulative[index]) / max(segments[index], 1e-30)
        fraction = min(max(fraction, 0.0), 1.0)
        for d in range(D):
            a = path[lo + index, d]
            out[lo + m, d] = a + fraction * (path[lo + index + 1, d] - a)


@numba.njit(cache=True, fastmath=FASTMATH)
def _relax(path, H, n_in, n_out, X, y, starts, stops, lr, momentum, weight_decay, climb):
    """``len(starts)`` NEB steps on ``path`` ``(P, D)`` (a copy is returned), each on the batch
    ``X[starts[s]:stops[s]]``: :func:`minima.paths.neb.relax` with ``spring=None``. Returns
    ``(path, -1)``, or ``(last good path, step)`` when an energy was not finite at that step."""
    P, D = path.shape
    path = path.copy()
    moved = path.copy()
    energies = np.empty(P, np.float32)
    grad = np.zeros((P - 2, D), np.float32)
    tangent = np.empty((P - 2, D), np.float32)
    velocity = np.zeros((P - 2, D), np.float32)
    W1 = np.empty((P * H, n_in), np.float32)
    widest = 0
    for s in range(len(starts)):
        widest = max(widest, stops[s] - starts[s])
    dZ = np.zeros((widest, (P - 2) * H), np.float32)
    for step in range(len(starts)):
        _loss_and_gradient(path, H, n_in, n_out, X[starts[step]:stops[step]], y[starts[step]:stops[step]],
                           energies, grad, W1, dZ)
        for p in range(P):
            if not np.isfinite(energies[p]):
                return path, step
        _tangents(path, energies, tangent)
        top = -1
        if climb:
            top = 0
            for r in range(1, P - 2):
                if energies[r + 1] > energies[top + 1]:
                    top = r
        for r in range(P - 2):
            along = 0.0
            for d in range(D):
                along += grad[r, d] * tangent[r, d]
            if r == top:  # the climbing image: its tangential force reversed
                along *= 2.0
            for d in range(D):
                # torch.optim.SGD: weight decay into the gradient, then the momentum buffer
                g = grad[r, d] - along * tangent[r, d] + weight_decay * path[r + 1, d]
                v = g if step == 0 else momentum * velocity[r, d] + g
                velocity[r, d] = v
                path[r + 1, d] -= lr * v
        if top < 0:
            _respace(path, 0, P - 1, moved)
        else:  # each side of the climbing image on its own
            _respace(path, 0, top + 1, moved)
            _respace(path, top + 1, P - 1, moved)
        path[:] = moved
    return path, -1


@numba.njit(cache=True, fastmath=FASTMATH)
def _along(pivots, H, n_in, n_out, n_sub, X, y):
    """Mean cross-entropy and error rate ``(M,)`` float64 on ``X``, ``y`` at every point of
    :func:`minima.paths.neb.interpolate` (every pivot and ``n_sub`` points per segment)."""
    P, D = pivots.shape
    N = X.shape[0]
    o_b1 = H * n_in
    o_W2 = o_b1 + H
    o_b2 = o_W2 + n_out * H
    W1 = np.empty((P * H, n_in), np.float32)
    _gather_first_layer(pivots, H, n_in, W1)
    Z = np.dot(X, W1.T)  # (N, P*H): the pre-activations at the pivots; inside a segment they are linear
    M = (P - 1) * (n_sub + 1) + 1
    loss = np.zeros(M, np.float64)
    error = np.zeros(M, np.float64)
    rest = D - o_b1
    head = np.empty(rest, np.float32)  # b1, W2, b2 of the point
    a = np.empty(H, np.float32)
    logits = np.empty(n_out, np.float64)
    for q in range(M):
        k, m = q // (n_sub + 1), q % (n_sub + 1)
        f = np.float32(m / (n_sub + 1))  # 0 at a pivot (the last point is the last pivot)
        for d in range(rest):
            head[d] = pivots[k, o_b1 + d]
            if m:
                head[d] += f * (pivots[k + 1, o_b1 + d] - head[d])
        total, wrong = 0.0, 0
        for b in range(N):
            for j in range(H):
                z = Z[b, k * H + j]
                if m:
                    z += f * (Z[b, (k + 1) * H + j] - z)
                z += head[j]
                a[j] = z if z > 0.0 else 0.0
            peak, best = -np.inf, 0
            for c in range(n_out):
                s = head[o_b2 - o_b1 + c]
                row = o_W2 - o_b1 + c * H
                for j in range(H):
                    s += head[row + j] * a[j]
                logits[c] = s
                if s > peak:
                    peak, best = s, c
            norm = 0.0
            for c in range(n_out):
                norm += np.exp(logits[c] - peak)
            total += peak + np.log(norm) - logits[y[b]]
            wrong += best != y[b]
        loss[q] = total / N
        error[q] = wrong / N
    return loss, error


# ----------------------------------------------------------------------------- the kernel

class MlpPathKernel:
    """Compiled NEB cycles and dense path evaluation for one ``mlp-H`` (see the module docstring).

    Args:
        model: the network (:func:`covers` must accept it); only its shape is read.

    Points are ``(P, D)`` float32 tensors in :class:`~minima.core.parameters.FlatView` order;
    data are ``(N, ...)`` inputs (flattened here) and ``(N,)`` integer targets. BLAS runs with
    torch's thread count of the calling process (a run's ``threads``), so a run's rounding does
    not depend on the machine's core count.
    """

    def __init__(self, model: nn.Module):
        reason = covers(model)
        if reason:
            raise ValueError(reason)
        shape = shape_of(model)
        self.n_in, self.hidden, self.n_out, self.dim = shape.n_in, shape.hidden, shape.n_out, shape.dim

    @staticmethod
    def arrays(inputs: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(N, n_in)`` float32 and ``(N,)`` int64 contiguous arrays of a data set."""
        x = np.ascontiguousarray(inputs.detach().reshape(len(inputs), -1).cpu().numpy(), dtype=np.float32)
        return x, np.ascontiguousarray(targets.detach().cpu().numpy(), dtype=np.int64)

    def _points(self, points: torch.Tensor) -> np.ndarray:
        if points.dim() != 2 or points.shape[1] != self.dim:
            raise ValueError(f"points must be (P, {self.dim}), got {tuple(points.shape)}")
        return np.ascontiguousarray(points.detach().cpu().numpy(), dtype=np.float32)

    def loss_and_gradient(self, points: torch.Tensor, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Energies ``(P,)`` of every pivot and gradients ``(P-2, D)`` of the interior ones on one batch."""
        path = self._points(points)
        energies = np.empty(len(path), np.float32)
        grad = np.zeros((max(len(path) - 2, 0), self.dim), np.float32)
        W1 = np.empty((len(path) * self.hidden, self.n_in), np.float32)
        dZ = np.zeros((len(x), max(len(path) - 2, 0) * self.hidden), np.float32)
        with threadpool_limits(torch.get_num_threads(), user_api="blas"):
            _loss_and_gradient(path, self.hidden, self.n_in, self.n_out, x, y, energies, grad, W1, dZ)
        return torch.from_numpy(energies), torch.from_numpy(grad)

    def relax(self, pivots: torch.Tensor, x: np.ndarray, y: np.ndarray, batches: np.ndarray, lr: float,
              momentum: float, weight_decay: float, climb: bool) -> tuple[torch.Tensor, int]:
        """One :func:`~minima.paths.neb.relax` cycle with ``spring=None``: a step per row of
        ``batches`` ``(steps, 2)`` (start and stop rows of ``x``, ``y``). Returns the new pivots
        ``(P, D)`` and ``-1``, or the last good pivots and the step whose energy was not finite."""
        if len(pivots) < 3:
            raise ValueError(f"pivots must be (P >= 3, D), got {tuple(pivots.shape)}")
        starts = np.ascontiguousarray(batches[:, 0], dtype=np.int64)
        stops = np.ascontiguousarray(batches[:, 1], dtype=np.int64)
        with threadpool_limits(torch.get_num_threads(), user_api="blas"):
            path, failed = _relax(self._points(pivots), self.hidden, self.n_in, self.n_out, x, y, starts, stops,
                                  np.float32(lr), np.float32(momentum), np.float32(weight_decay), bool(climb))
        return torch.from_numpy(path).to(pivots.device), int(failed)

    def along(self, pivots: torch.Tensor, n_sub: int, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and error rate ``(M,)`` float64 at every point of
        :func:`~minima.paths.neb.interpolate` ``(pivots, n_sub)`` on ``x``, ``y``."""
        with threadpool_limits(torch.get_num_threads(), user_api="blas"):
            loss, error = _along(self._points(pivots), self.hidden, self.n_in, self.n_out, int(n_sub), x, y)
        return torch.from_numpy(loss), torch.from_numpy(error)
