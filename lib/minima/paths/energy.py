"""A network's training loss as an energy for NEB: a function of its flat parameters, batched over pivots.

:class:`ModelEnergy` takes the points of :class:`~minima.core.parameters.FlatView`; all pivots are
evaluated together with ``torch.func.functional_call`` under ``torch.func.vmap``, or for a
plain MLP with one batched matrix product per layer (no Python loop over pivots), on the
*same* minibatch for every pivot in a step (so the path's relative energies are not blurred
by batch-to-batch noise).
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.batching import batch_shares
from ..models import plain_mlp_layers, stacked_mlp
from .neb import NEBError
from ..core.parameters import FlatView


class ModelEnergy:
    """The training loss of ``model`` as a function of its flat parameters, batched over pivots.

    Args:
        model: the network; its parameters define the coordinates (buffers such as BatchNorm
            running statistics are *not* coordinates). BatchNorm layers are evaluated with the
            statistics of the current batch (they are switched to not track running stats):
            interpolated networks have no running statistics of their own.
        loss_fn: ``loss_fn(outputs, targets)``, the batch mean.
        batches: list of ``(inputs, targets)``; :meth:`__call__` uses the current one and
            :meth:`advance` moves to the next (the order is shuffled each epoch with ``seed``).
        eval_batches: the data of :meth:`data_mean` (dense path evaluation), default ``batches``.
        chunk: pivots per vmapped call (``None``: all at once). ``"stacked"``: for a plain
            MLP (``nn.Sequential`` of ``Flatten``, ``Linear`` and elementwise activations)
            every layer of every pivot in one batched matrix product, without ``vmap``'s
            per-call overhead. ``0``: a plain loop over pivots. ``"rule"`` (default) picks by
            a fixed rule, never by timing (a choice made by timing would make a path's
            rounding depend on the machine's load): ``"stacked"`` for a plain MLP, else
            ``vmap`` over all pivots on CUDA and the plain loop on a CPU (convolutions under
            ``vmap`` become grouped convolutions, which on a CPU are slower than a loop).
            The modes agree to float rounding (tested), not bit for bit.

    ``energy(points)`` maps ``(P, D)`` to ``(P,)`` on the current batch, differentiable in points.
    """

    def __init__(self, model: nn.Module, loss_fn, batches, eval_batches=None, seed: int = 0,
                 chunk: int | str | None = "rule"):
        self.model = model
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.track_running_stats = False
                module.running_mean = module.running_var = None
        self.loss_fn = loss_fn
        self.batches = list(batches)
        if not self.batches:
            raise NEBError("empty data: pass at least one (inputs, targets) batch")
        self.eval_batches = list(eval_batches) if eval_batches is not None else self.batches
        # every parameter is a coordinate, frozen or not (buffers are not)
        self.view = FlatView(model, [n for n, _ in model.named_parameters()])
        self.dim, self.device, self.dtype = self.view.dim, self.view.device, self.view.dtype
        self.chunk = chunk
        self._mlp = plain_mlp_layers(model)
        if chunk == "stacked" and self._mlp is None:
            raise NEBError("chunk='stacked' needs a plain MLP (nn.Sequential of Flatten, Linear and activations)")
        self._generator = torch.Generator().manual_seed(seed)
        self._order, self._cursor = self._shuffle(), 0

    def _shuffle(self):
        return torch.randperm(len(self.batches), generator=self._generator).tolist()

    def advance(self) -> None:
        """Move to the next minibatch (called by :func:`minima.paths.neb.relax` once per step)."""
        self._cursor += 1
        if self._cursor == len(self._order):
            self._order, self._cursor = self._shuffle(), 0

    def point(self, model: nn.Module | None = None) -> torch.Tensor:
        """The flat parameter vector ``(D,)`` of ``model`` (default: the template model)."""
        return self.view.point(model)

    def _loss_at(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, metric=None) -> torch.Tensor:
        return (metric or self.loss_fn)(self.view.call(flat, x), y)

    def batched(self, points: torch.Tensor, x, y, metric=None) -> torch.Tensor:
        """``(P, D)`` -> ``(P,)`` of ``metric`` (default the loss) on one batch, over all pivots at once."""
        points = points.to(self.device, self.dtype)
        return self._batched_as(points, x, y, metric, self._chunk_for(points, x, y))

    def _batched_as(self, points: torch.Tensor, x, y, metric, chunk: int | None) -> torch.Tensor:
        if chunk is None and len(points) > 64:
            chunk = 64  # bound the memory of dense evaluations
        if chunk == 0:  # a plain loop over pivots
            return torch.stack([self._loss_at(p, x, y, metric) for p in points])
        if chunk == "stacked":
            return self._stacked_loss(points, x, y, metric)
        return torch.func.vmap(lambda flat: self._loss_at(flat, x, y, metric), chunk_size=chunk)(points)

    def _stacked_loss(self, points: torch.Tensor, x, y, metric=None) -> torch.Tensor:
        """``(P,)`` losses of a plain MLP at every pivot: each layer is one batched matrix
        product over all pivots (:func:`minima.models.stacked_mlp`)."""
        tensors = iter(points.split(self.view.sizes, dim=1))  # weight, then bias, of each Linear in order
        weights, biases = [], []
        for module in (m for m in self._mlp if isinstance(m, nn.Linear)):
            weights.append(next(tensors).view(len(points), module.out_features, module.in_features).transpose(1, 2))
            biases.append(next(tensors).view(len(points), 1, module.out_features) if module.bias is not None else None)
        h = stacked_mlp(self._mlp, x.flatten(1), weights, biases)
        fn = metric or self.loss_fn
        if fn is torch.nn.functional.cross_entropy:  # one call for all pivots
            per_example = fn(h.reshape(-1, h.shape[-1]), y.repeat(len(points)), reduction="none")
            return per_example.view(len(points), -1).mean(1)
        return torch.stack([fn(outputs, y) for outputs in h])

    def _chunk_for(self, points: torch.Tensor, x, y) -> int | str | None:
        """The batching mode: ``chunk`` as given, or the fixed rule of ``chunk="rule"``."""
        if self.chunk != "rule":
            return self.chunk
        if self._mlp is not None:
            return "stacked"
        return None if self.device.type == "cuda" else 0

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        x, y = self.batches[self._order[self._cursor]]
        return self.batched(points, x.to(self.device), y.to(self.device))

    @torch.no_grad()
    def data_mean(self, points: torch.Tensor, metric=None, batches=None) -> torch.Tensor:
        """Mean of ``metric`` (default the loss) over ``batches`` (default the evaluation data),
        weighted by batch size; ``(P, D)`` -> ``(P,)`` float64."""
        batches = self.eval_batches if batches is None else batches
        result = torch.zeros(len(points), dtype=torch.float64, device=self.device)
        for (x, y), share in zip(batches, batch_shares(batches)):
            values = self.batched(points, x.to(self.device), y.to(self.device), metric)
            result += values.to(torch.float64) * share
        return result

