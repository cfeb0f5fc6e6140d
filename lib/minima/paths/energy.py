"""A network's training loss as an energy for NEB: a function of its flat parameters, batched over pivots.

:class:`ModelEnergy` takes the points of :class:`~minima.core.parameters.FlatView`; all pivots are
evaluated together with ``torch.func.functional_call`` under ``torch.func.vmap``, or for a
plain MLP with one batched matrix product per layer (no Python loop over pivots), on the
*same* minibatch for every pivot in a step (so the path's relative energies are not blurred
by batch-to-batch noise). For a one-hidden-layer ReLU MLP on the CPU, whole NEB cycles and the
dense evaluation of a path run compiled (:mod:`minima.paths.kernel`) instead.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.batching import batch_shares
from ..core.parameters import FlatView
from ..models import plain_mlp_layers, stacked_mlp
from .kernel import MlpPathKernel, covers
from .neb import NEBError
from .polyline import interpolate


def error_rate(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The fraction of examples whose largest output is not their class (a metric along a path)."""
    return (outputs.argmax(-1) != targets).to(outputs.dtype).mean()


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
        compiled: with ``chunk="rule"``, relax a one-hidden-layer ReLU MLP on the CPU with the
            compiled NEB step (:meth:`relax_compiled`) and evaluate its paths densely with the
            compiled evaluation (:meth:`data_mean_along`); ``False``: always the eager torch
            path (the kernel's oracle). The two agree to float32 rounding (tested).

    ``energy(points)`` maps ``(P, D)`` to ``(P,)`` on the current batch, differentiable in points.
    """

    def __init__(self, model: nn.Module, loss_fn, batches, eval_batches=None, seed: int = 0,
                 chunk: int | str | None = "rule", compiled: bool = True):
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
        self.kernel = None
        if compiled and chunk == "rule" and loss_fn is torch.nn.functional.cross_entropy and covers(model) is None:
            self.kernel = MlpPathKernel(model)
            self._train = self._arrays(self.batches)
            sizes = torch.tensor([len(y) for _, y in self.batches])
            stops = sizes.cumsum(0)
            self._ranges = torch.stack([stops - sizes, stops], 1).numpy()  # (batches, 2): rows of each batch
        self._data_arrays: dict[int, tuple] = {}
        self._last_along = None

    def _shuffle(self):
        return torch.randperm(len(self.batches), generator=self._generator).tolist()

    def advance(self) -> None:
        """Move to the next minibatch (called by :func:`minima.paths.neb.relax` once per step)."""
        self._cursor += 1
        if self._cursor == len(self._order):
            self._order, self._cursor = self._shuffle(), 0

    def relax_compiled(self, pivots: torch.Tensor, steps: int, lr: float, momentum: float, weight_decay: float,
                       climb: bool) -> "tuple[torch.Tensor, int] | None":
        """``steps`` NEB steps by the compiled kernel, on the minibatches :meth:`advance` would
        give (the cursor moves as in the eager loop): ``(new pivots, -1)``, or ``(last good
        pivots, step)`` at a non-finite energy; ``None`` when this energy has no kernel."""
        if self.kernel is None:
            return None
        order = []
        for _ in range(steps):
            order.append(self._order[self._cursor])
            self.advance()
        pivots_out, failed = self.kernel.relax(pivots.to(self.dtype), *self._train, self._ranges[order], lr, momentum,
                                               weight_decay, climb)
        return pivots_out, failed

    def _arrays(self, batches) -> tuple:
        """A list of batches as one ``(N, n_in)`` float32 and ``(N,)`` int64 array pair."""
        return MlpPathKernel.arrays(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))

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

    @torch.no_grad()
    def data_mean_along(self, pivots: torch.Tensor, n_sub: int, metric=None, batches=None) -> torch.Tensor:
        """:meth:`data_mean` at every point of :func:`minima.paths.neb.interpolate` ``(pivots,
        n_sub)``: ``(M,)`` float64. Compiled for the loss and :func:`error_rate` when this
        energy has a kernel (both come from one pass, kept for the next call on the same path)."""
        batches = self.eval_batches if batches is None else batches
        if self.kernel is None or metric not in (None, self.loss_fn, error_rate):
            return self.data_mean(interpolate(pivots, n_sub)[0], metric, batches)
        key = (id(batches), n_sub)
        last = self._last_along
        if last is None or last[0] != key or not torch.equal(last[1], pivots):
            if id(batches) not in self._data_arrays:  # the batches are kept, so their id stays theirs
                self._data_arrays[id(batches)] = (batches, self._arrays(batches))
            values = self.kernel.along(pivots, n_sub, *self._data_arrays[id(batches)][1])
            last = self._last_along = (key, pivots.detach().clone(), values)
        return last[2][1 if metric is error_rate else 0].to(self.device)


class DataMetric:
    """A mean over data along a path (the test loss, the test error): ``metric(points)`` at
    points ``(M, D)``, and ``metric.along(pivots, n_sub)`` at the dense points of a path
    (compiled where the energy has a kernel). ``metric=None`` is the energy's loss."""

    def __init__(self, energy: ModelEnergy, batches: list, metric=None):
        # the list itself, not a copy: metrics on the same batches share one compiled pass
        self.energy, self.batches, self.metric = energy, batches, metric

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        return self.energy.data_mean(points, self.metric, self.batches)

    def along(self, pivots: torch.Tensor, n_sub: int) -> torch.Tensor:
        return self.energy.data_mean_along(pivots, n_sub, self.metric, self.batches)

