"""A model's parameters as one flat vector: the coordinates every kernel works in.

The Hessian operator (:mod:`minima.core.hessian`), the NEB energy (:mod:`minima.paths.energy`) and the
no-barriers code (:mod:`minima.experiments.barriers`) all see a network as a point ``theta`` of shape
``(dim,)``. :class:`FlatView` is the one definition of that point: the chosen parameters in
``named_parameters`` order, and of a parameter with a mask (a
:class:`~minima.growing.GrowingNet`'s ``weight``, whose absent edges are structural zeros) only
the real entries. So a grown network has the same coordinates in every kernel.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class FlatView:
    """The chosen parameters of ``model`` as one flat vector of their real coordinates.

    Args:
        model: the network. A model with ``parameter_masks()`` (``{name: bool mask or None}``)
            has coordinates only where its masks are true.
        names: the parameters to include, in this order (default: all that require grad).

    Raises ``KeyError`` naming the unknown parameters.
    """

    def __init__(self, model: nn.Module, names: Sequence[str] | None = None):
        named = dict(model.named_parameters())
        names = [n for n, p in named.items() if p.requires_grad] if names is None else list(names)
        unknown = [n for n in names if n not in named]
        if unknown:
            raise KeyError(f"unknown parameter(s) {unknown}; the model has {list(named)}")
        masks = model.parameter_masks() if hasattr(model, "parameter_masks") else {}
        self.model, self.names = model, names
        self.masks = [masks.get(n) for n in names]
        self.shapes = [named[n].shape for n in names]
        self.dtypes = [named[n].dtype for n in names]
        self.sizes = [int(m.sum()) if m is not None else named[n].numel() for n, m in zip(names, self.masks)]
        self.dim = sum(self.sizes)
        ends = torch.tensor(self.sizes).cumsum(0).tolist()
        self._slices = [slice(end - size, end) for end, size in zip(ends, self.sizes)]
        self._scratch: tuple = (None, None)  # (buffer, its per-parameter views), see unflatten_reused
        # where each masked parameter's coordinates sit in its flattened tensor
        self._indices = [None if m is None else m.reshape(-1).nonzero().squeeze(1) for m in self.masks]
        first = named[names[0]]
        self.device, self.dtype = first.device, first.dtype

    def parameters(self, model: nn.Module | None = None) -> list[torch.Tensor]:
        """The chosen parameter tensors of ``model`` (default: the view's own), in order."""
        named = dict((model or self.model).named_parameters())
        return [named[n] for n in self.names]

    def flatten(self, tensors: Sequence[torch.Tensor], dtype: torch.dtype | None = None) -> torch.Tensor:
        """Tensors shaped like the parameters -> ``(dim,)`` (real coordinates only), in ``dtype``
        (default: the tensors' own when they share one). Each part is copied, converted on the
        way, into one new vector: no intermediate concatenation."""
        dtype = dtype or (tensors[0].dtype if len({t.dtype for t in tensors}) == 1 else torch.float64)
        flat = torch.empty(self.dim, dtype=dtype, device=tensors[0].device)
        for part, t, index in zip(self._slices, tensors, self._indices):
            if index is None:  # copy_ reads any strides (a Linear's weight gradient is transposed)
                flat[part].view(t.shape).copy_(t)
            else:
                flat[part].copy_(t.reshape(-1)[index])
        return flat

    def concat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """:meth:`flatten` out of place (one concatenation, in the tensors' dtype), so that it works
        under ``torch.func.vmap``, where writing into a new vector is not allowed."""
        return torch.cat([t.reshape(-1) if index is None else t.reshape(-1)[index]
                          for t, index in zip(tensors, self._indices)])

    def unflatten_reused(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`unflatten` into one buffer that this view keeps and overwrites at every call
        (when there are no masks and one dtype; else a plain :meth:`unflatten`). For a product
        that runs many times on throw-away tangents (the Hessian-vector product): no allocation
        and no split into views per call. The returned tensors are valid until the next call."""
        if any(i is not None for i in self._indices) or len(set(self.dtypes)) != 1:
            return self.unflatten(flat)
        buffer, views = self._scratch
        if buffer is None or buffer.device != flat.device:
            buffer = torch.empty(self.dim, dtype=self.dtypes[0], device=flat.device)
            views = [buffer[part].view(shape) for part, shape in zip(self._slices, self.shapes)]
            self._scratch = (buffer, views)
        buffer.copy_(flat)
        return views

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """``(dim,)`` -> tensors shaped like the parameters, zero off their masks, in the
        parameters' dtype (as it was when the view was made). Out of place, so it works under ``torch.func.vmap``."""
        if len(set(self.dtypes)) == 1:
            flat = flat.to(self.dtypes[0])  # one conversion
        out = []
        for chunk, dtype, shape, index in zip(flat.split(self.sizes), self.dtypes, self.shapes, self._indices):
            chunk = chunk.to(dtype)
            if index is not None:
                chunk = chunk.new_zeros(shape.numel()).index_copy(0, index, chunk)
            out.append(chunk.view(shape))
        return out

    def point(self, model: nn.Module | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``theta``: the current values of ``model`` (default: the view's own, which must have
        the same parameter shapes and masks) as a detached flat vector ``(dim,)`` on the view's device."""
        return self.flatten([p.detach() for p in self.parameters(model)], dtype).to(self.device)

    def call(self, flat: torch.Tensor, *inputs) -> torch.Tensor:
        """The model's output with its parameters set to ``flat`` (``torch.func.functional_call``;
        differentiable in ``flat``, vmappable over it)."""
        return torch.func.functional_call(self.model, dict(zip(self.names, self.unflatten(flat))), inputs)

    @torch.no_grad()
    def load(self, flat: torch.Tensor, model: nn.Module | None = None) -> nn.Module:
        """Copy ``flat`` into the parameters of ``model`` (default: the view's own); returns it."""
        model = model or self.model
        for p, value in zip(self.parameters(model), self.unflatten(flat)):
            p.copy_(value)
        return model
