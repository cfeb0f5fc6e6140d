"""The Hessian of a data-set mean loss as a matrix-free operator on flat parameter vectors.

:class:`HessianOperator` gives ``H v`` (reverse-over-reverse by default, reusing each batch's
gradient graph across products while the parameters do not change), the loss and the
full-batch gradient, in the coordinates of :class:`~minima.core.parameters.FlatView` (only real
coordinates: the absent edges of a :class:`~minima.growing.GrowingNet` are left out).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import nn

from .autograd import double_backward
from .batching import batch_shares
from .operators import LinearOperator
from .parameters import FlatView

EVAL_SENSITIVE = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                  nn.modules.batchnorm._BatchNorm)


class FlatnessError(ValueError):
    """Bad input to a Hessian computation; the message is one line."""


class HessianOperator(LinearOperator):
    """Hessian of the data-set mean loss ``L = sum_b (n_b / N) loss_fn(model(x_b), y_b)``.

    Args:
        model: an ``nn.Module`` in eval mode (dropout or batch norm in train mode is refused).
        loss_fn: ``loss_fn(outputs, targets)`` returning the *mean* loss over the batch (scalar).
        data: iterable of ``(inputs, targets)`` batches, kept as a list; batches are weighted
            by size, so an uneven last batch is exact.
        params: names of the parameters to differentiate (default: all that require grad).
        method: ``"double_backward"`` (reverse-over-reverse with ``torch.autograd.grad``, no
            ``.backward(create_graph=True)`` and hence no reference-cycle leak) or
            ``"forward_over_reverse"`` (``torch.func.jvp`` of ``torch.func.grad``).
        graph_budget: bytes of saved tensors that ``"double_backward"`` may keep to reuse each
            batch's gradient graph across products (default 1 GiB; 0 rebuilds it every time).
            A product then costs one backward pass through that graph instead of a forward,
            a backward and a second backward. Batches whose graphs no longer fit are rebuilt
            at every product. The graphs are dropped as soon as a parameter changes (a new
            tensor, or an in-place update that bumps its version counter).

    Flat vectors hold the real coordinates of the chosen parameters in ``named_parameters``
    order (for a GrowingNet, the masked entries of ``weight`` are left out); ``dim`` is
    their number. :meth:`matvec` takes and returns float64 vectors ``(dim,)``.
    """

    def __init__(self, model: nn.Module, loss_fn, data: Iterable, params: Sequence[str] | None = None,
                 method: str = "double_backward", graph_budget: int = 2 ** 30):
        if method not in ("double_backward", "forward_over_reverse"):
            raise FlatnessError(f"unknown method {method!r}; choose double_backward or forward_over_reverse")
        check_eval_mode(model)
        self.model, self.loss_fn, self.method = model, loss_fn, method
        self.batches = list(data)
        if not self.batches or sum(len(y) for _, y in self.batches) == 0:
            raise FlatnessError("empty data set: pass at least one (inputs, targets) batch")
        self.shares = batch_shares(self.batches)
        try:
            self.view = FlatView(model, params)
        except KeyError as error:
            raise FlatnessError(error.args[0]) from None
        self.dim, self.device, self.dtype = self.view.dim, self.view.device, self.view.dtype
        self.matvecs = 0
        self.graph_budget = graph_budget
        self._graphs: dict[int, tuple] = {}  # batch index -> gradients with their graph
        self._graphs_for, self.graph_bytes = None, 0
        # the modules whose mode changes the loss, found once (the check runs at every product)
        self._sensitive = [(n, m) for n, m in model.named_modules() if isinstance(m, EVAL_SENSITIVE)]

    # -- flat <-> per-parameter (the coordinates of :class:`~minima.core.parameters.FlatView`)
    @property
    def params(self) -> list[torch.Tensor]:
        return self.view.parameters()

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Flat ``(dim,)`` -> tensors shaped like the parameters (zero off their masks)."""
        return self.view.unflatten(flat)

    def flatten(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Tensors shaped like the parameters -> flat float64 ``(dim,)`` (real coordinates only)."""
        return self.view.flatten(tensors, torch.float64)

    def parameters_vector(self) -> torch.Tensor:
        """theta as a flat float64 vector ``(dim,)``."""
        return self.view.point(dtype=torch.float64)

    # -- the loss
    def _batch_loss(self, params: Sequence[torch.Tensor] | None, x, y) -> torch.Tensor:
        x, y = x.to(self.device), y.to(self.device)
        if params is None:
            outputs = self.model(x)
        else:
            overrides = dict(zip(self.view.names, params))
            outputs = torch.func.functional_call(self.model, overrides, (x,))
        loss = self.loss_fn(outputs, y)
        if not torch.is_tensor(loss) or loss.dim() != 0:
            shape = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
            raise FlatnessError(f"loss_fn must return a scalar (the batch mean), got shape {shape}; "
                                "use reduction='mean'")
        return loss

    def loss(self) -> float:
        """The data-set mean loss at the current parameters."""
        total = 0.0
        with torch.no_grad(), double_backward():
            for (x, y), share in zip(self.batches, self.shares):
                total += float(self._batch_loss(None, x, y)) * share
        return total

    def gradient(self) -> torch.Tensor:
        """The full-batch gradient of the data-set mean loss as a flat float64 vector ``(dim,)``."""
        result = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        with double_backward():
            for (x, y), share in zip(self.batches, self.shares):
                loss = self._batch_loss(None, x, y)
                _check_finite(loss)
                result += share * self.flatten(torch.autograd.grad(loss, self.params))
        return result

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for a flat vector ``v`` ``(dim,)``; returns float64 ``(dim,)`` on ``self.device``."""
        if v.shape != (self.dim,):
            raise FlatnessError(f"vector of shape {tuple(v.shape)} given to a Hessian of dimension {self.dim}")
        check_eval_mode(self.model, self._sensitive)
        tangents = self.view.unflatten_reused(v.to(self.device))
        with double_backward():
            result = None
            for index, ((x, y), share) in enumerate(zip(self.batches, self.shares)):
                part = self.flatten(self._batch_hvp(index, x, y, tangents))
                if share != 1.0:
                    part.mul_(share)
                result = part if result is None else result.add_(part)
        self.matvecs += 1
        if not math.isfinite(float(result.sum())):  # one reduction: a sum with inf or NaN in it is not finite
            raise FlatnessError("NaN or inf in a Hessian-vector product; the model or loss is not finite here")
        return result

    def _gradient_graph(self, index: int, x, y) -> tuple[tuple[torch.Tensor, ...], bool]:
        """``(gradients of batch ``index`` with their graph, kept)``; kept graphs are reused while
        the parameters are unchanged and the saved tensors fit in ``graph_budget``."""
        state = tuple((id(p), p._version) for p in self.params)
        if state != self._graphs_for:
            self._graphs.clear()
            self._graphs_for, self.graph_bytes = state, 0
        if index in self._graphs:
            return self._graphs[index], True
        saved = [0]

        def count(tensor):  # what the graph keeps alive (parameters and inputs counted too: an upper bound)
            saved[0] += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
            loss = self._batch_loss(None, x, y)
            _check_finite(loss)
            grads = torch.autograd.grad(loss, self.params, create_graph=True)
        keep = self.graph_bytes + saved[0] <= self.graph_budget
        if keep:
            self._graphs[index] = grads
            self.graph_bytes += saved[0]
        return grads, keep

    def _batch_hvp(self, index: int, x, y, tangents) -> list[torch.Tensor]:
        params = self.params
        if self.method == "double_backward":
            grads, kept = self._gradient_graph(index, x, y)
            # d/d theta of <g(theta), v>: one vector-Jacobian product of the gradient graph
            return list(torch.autograd.grad(grads, params, grad_outputs=tangents, retain_graph=kept))

        def loss_of(*p):
            loss = self._batch_loss(p, x, y)
            return loss

        detached = tuple(p.detach() for p in params)
        grad_fn = torch.func.grad(loss_of, argnums=tuple(range(len(params))))
        _, hvp = torch.func.jvp(grad_fn, detached, tuple(tangents))
        return list(hvp)

    def matmat(self, vectors: torch.Tensor, chunk_size: int = 256) -> torch.Tensor:
        """``H V`` for ``V`` ``(dim, k)``; returns float64 ``(dim, k)`` on ``self.device``.

        Reverse-over-reverse products (the pull-back of each batch's gradient, built once per
        batch) vectorised with ``torch.func.vmap`` over ``chunk_size`` columns at a time: one
        batched pass per data batch and chunk instead of ``k`` passes,
        so the work is matrix-matrix products rather than ``k`` rounds of small operations
        (``python -m minima.bench flatness`` measures it against ``k`` :meth:`matvec` calls).
        Not forward-over-reverse, though that is 1.7x faster here: torch's forward-mode AD
        registers its decompositions with the deprecated ``torch.jit.script`` on first use,
        and every page that measured a spectrum printed its warning.
        Memory grows with ``chunk_size`` times the activations of one data batch."""
        if vectors.dim() != 2 or vectors.shape[0] != self.dim:
            raise FlatnessError(f"matrix of shape {tuple(vectors.shape)} given to a Hessian of dimension {self.dim}; "
                                "pass (dim, k)")
        if chunk_size < 1:
            raise FlatnessError(f"chunk_size must be at least 1, got {chunk_size}")
        check_eval_mode(self.model, self._sensitive)
        params = tuple(p.detach() for p in self.params)
        columns = vectors.to(self.device).T  # (k, dim): vmap maps over the leading axis
        result = torch.zeros(vectors.shape[1], self.dim, dtype=torch.float64, device=self.device)
        for (x, y), share in zip(self.batches, self.shares):
            grad_fn = torch.func.grad(lambda *p, x=x, y=y: self._batch_loss(p, x, y), argnums=tuple(range(len(params))))
            _, pullback = torch.func.vjp(grad_fn, *params)  # the batch's gradient graph, built once

            def product(v, pullback=pullback):  # v^T (dg/dtheta) = (H v)^T: H is symmetric
                return self.view.concat(pullback(tuple(self.view.unflatten(v))))

            for start in range(0, len(columns), chunk_size):
                chunk = slice(start, start + chunk_size)
                result[chunk] += share * torch.func.vmap(product)(columns[chunk]).to(torch.float64)
        self.matvecs += vectors.shape[1]
        if not math.isfinite(float(result.sum())):
            raise FlatnessError("NaN or inf in a Hessian-vector product; the model or loss is not finite here")
        return result.T

    def to_dense(self, chunk_size: int = 256) -> torch.Tensor:
        """The full Hessian ``(dim, dim)`` in float64, symmetrised, from :meth:`matmat` on the
        identity (small models only: ``dim`` products and ``dim^2`` entries)."""
        hessian = self.matmat(torch.eye(self.dim, dtype=torch.float64, device=self.device), chunk_size)
        return (hessian + hessian.T) / 2


def check_eval_mode(model: nn.Module, modules: list[tuple[str, nn.Module]] | None = None) -> None:
    """Refuse dropout or batch norm in train mode (the Hessian would be random or batch-coupled).
    ``modules``: the ``(name, module)`` pairs to check (default: all of ``model``'s)."""
    for name, module in model.named_modules() if modules is None else modules:
        if isinstance(module, EVAL_SENSITIVE) and module.training:
            raise FlatnessError(f"{type(module).__name__} module {name or 'model'!r} is in train mode; "
                                "call model.eval() before computing Hessians")


def _check_finite(loss: torch.Tensor) -> None:
    if not torch.isfinite(loss):
        raise FlatnessError(f"the loss is {float(loss.detach())} on a batch; the parameters have diverged")
