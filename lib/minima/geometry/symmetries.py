"""The trivial flat directions of a ReLU MLP with a softmax cross-entropy loss, and the Hessian
seen off them.

Two families of parameter changes leave the loss of such a network unchanged to first order at
any point, whatever the data (Draxler et al.'s "trivial invariance"):

- **rescaling a hidden unit**: its incoming weights and bias times ``c``, its outgoing weights
  divided by ``c`` (ReLU is positively homogeneous). The tangent at ``c = 1`` is
  ``(+w_in, +b, -w_out)``: one direction per hidden unit;
- **shifting the logits**: softmax is unchanged when the same number is added to every logit,
  so adding one vector ``u`` to every output unit's incoming weights and one constant to every
  output bias changes nothing: ``fan-in + 1`` directions (fewer without output biases).

At a critical point of the data loss these are exact zero-eigenvalue directions of its Hessian
(a rescaling's second-order term vanishes when the gradient does). :func:`trivial_basis` gives
an orthonormal basis ``Q`` of them in :class:`~minima.core.parameters.FlatView` coordinates;
:class:`ComplementOperator` is the Hessian on their orthogonal complement,
``(I - Q Q^T) H (I - Q Q^T)``, and :func:`complement_eigenvalues` its spectrum (exactly, by
forming the restricted matrix, for networks small enough).

A trained network on real data has further flat directions that are not symmetries:
:func:`data_null_directions` finds the changes of weights that leave the outputs on that data
unchanged (inputs that are zero wherever a unit fires, units that never fire, and more).
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.hessian import HessianOperator
from ..core.operators import LinearOperator
from ..core.parameters import FlatView


class SymmetryError(ValueError):
    """The model is not a network whose trivial directions are known here; one line."""


def _linears(model: nn.Module) -> list[nn.Linear]:
    layers = list(model) if isinstance(model, nn.Sequential) else []
    body = [m for m in layers if not isinstance(m, nn.Flatten)]
    if not body or not all(isinstance(m, (nn.Linear, nn.ReLU)) for m in body) or not isinstance(body[-1], nn.Linear):
        raise SymmetryError("trivial directions are known here for nn.Sequential ReLU MLPs (Flatten, Linear, ReLU) "
                            f"ending in a Linear layer; got {type(model).__name__}")
    return [m for m in body if isinstance(m, nn.Linear)]


def trivial_directions(model: nn.Module) -> torch.Tensor:
    """The tangents of the trivial invariances at the model's current point, as columns of a
    float64 matrix ``(D, r)`` in :class:`FlatView` coordinates (all parameters): one rescaling
    per hidden unit, then the logit shifts (one per input of the output layer, and one for the
    output biases when there are any). Not orthonormal: see :func:`trivial_basis`."""
    linears = _linears(model)
    view = FlatView(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if view.names != trainable or any(m is not None for m in view.masks):
        raise SymmetryError("every parameter must require grad and be dense (the directions span all of them)")
    name_of = {id(p): n for n, p in model.named_parameters()}
    families = []  # per family: {parameter name: (r, numel) block}
    with torch.no_grad():
        for into, out in zip(linears[:-1], linears[1:]):
            units = torch.eye(into.out_features, dtype=torch.float64)  # (r, H): direction j touches unit j
            blocks = {name_of[id(into.weight)]: units[:, :, None] * into.weight.double()[None],
                      name_of[id(out.weight)]: -units[:, None, :] * out.weight.double()[None]}
            if into.bias is not None:
                blocks[name_of[id(into.bias)]] = units * into.bias.double()[None]
            families.append((into.out_features, blocks))
        last = linears[-1]
        sources = torch.eye(last.in_features, dtype=torch.float64)  # (F, F): direction s shifts column s
        families.append((last.in_features, {name_of[id(last.weight)]:
                                            sources[:, None, :].expand(-1, last.out_features, -1)}))
        if last.bias is not None:
            families.append((1, {name_of[id(last.bias)]: torch.ones(1, last.out_features, dtype=torch.float64)}))
    columns = []
    for count, blocks in families:
        parts = [blocks[name].reshape(count, -1) if name in blocks else torch.zeros(count, size, dtype=torch.float64)
                 for name, size in zip(view.names, view.sizes)]
        columns.append(torch.cat(parts, dim=1))
    return torch.cat(columns, dim=0).T


def orthonormal_span(columns: torch.Tensor, rtol: float = 1e-10) -> torch.Tensor:
    """An orthonormal basis ``(D, r)`` of the span of ``columns`` ``(D, k)`` (float64), dropping
    directions that are linear combinations of others (singular values below ``rtol`` times the
    largest). Unlike a QR factorisation, a rank-deficient set does not add spurious columns."""
    if columns.shape[1] == 0:
        return columns.to(torch.float64)
    u, s, _ = torch.linalg.svd(columns.to(torch.float64), full_matrices=False)
    return u[:, s > rtol * s.max()]


def trivial_basis(model: nn.Module, rtol: float = 1e-10) -> torch.Tensor:
    """An orthonormal basis ``(D, r)`` of the span of :func:`trivial_directions` (float64): a
    dead unit with zero weights has no rescaling direction."""
    return orthonormal_span(trivial_directions(model), rtol)


def _layers_on(model: nn.Module, x: torch.Tensor) -> list[tuple[nn.Linear, torch.Tensor, torch.Tensor]]:
    """Each Linear layer of a ReLU MLP with its input ``(N, in)`` and pre-activation ``(N, out)``
    on the examples ``x``, in order (no gradients)."""
    layers, linears = [], _linears(model)
    with torch.no_grad():
        hidden = x.reshape(len(x), -1).to(linears[0].weight.dtype)
        for layer in linears:
            pre = torch.nn.functional.linear(hidden, layer.weight, layer.bias)
            layers.append((layer, hidden, pre))
            hidden = pre.clamp_min(0)
    return layers


def dead_units(model: nn.Module, x: torch.Tensor) -> list[tuple[int, int]]:
    """The hidden units of a ReLU MLP that never fire on ``x``: ``(layer, unit)`` pairs, where
    ``layer`` counts the network's Linear layers from 0 and the unit is one of its outputs."""
    return [(index, unit) for index, (_, _, pre) in enumerate(_layers_on(model, x)[:-1])
            for unit in torch.nonzero((pre <= 0).all(dim=0)).flatten().tolist()]


def data_null_directions(model: nn.Module, x: torch.Tensor, rtol: float = 1e-12) -> torch.Tensor:
    """Directions along which the network's outputs on ``x`` stay constant, whatever the labels,
    as orthonormal columns ``(D, k)`` in :class:`FlatView` coordinates (float64).

    For each hidden unit ``j``, a change ``(dw, db)`` of its incoming weights and bias leaves its
    pre-activation unchanged on every example where it fires when ``dw . h_n + db = 0`` for those
    ``n`` (``h_n``: the layer's input on example ``n``); on the other examples the unit stays
    silent. Those changes form the null space of ``[h_n, 1]`` over the examples where ``j``
    fires: MNIST's border pixels, pixels lit only where the unit is silent, combinations of the
    few examples that light a rare pixel, and everything of a unit that never fires. For the
    output layer, the same null space over all examples, for each output's weights. Null spaces
    are taken from the Gram matrix ``sum_n [h_n, 1]^T [h_n, 1]`` (per unit): eigenvalues at most
    ``rtol`` times the largest (singular values below ``sqrt(rtol)`` relative) count as zero.

    The outputs on ``x`` are then constant in a neighbourhood along each direction, so the data
    loss has zero curvature along it. These are not symmetries of the network (other data would
    move them) but degeneracies of this data at this point; they may overlap the trivial
    directions (a dead unit's rescaling), so take :func:`orthonormal_span` of the union."""
    linears = _linears(model)
    view = FlatView(model)
    offsets = dict(zip(view.names, (sum(view.sizes[:i]) for i in range(len(view.sizes)))))
    name_of = {id(p): n for n, p in model.named_parameters()}
    columns = []
    for layer, hidden, pre in _layers_on(model, x):
        inputs = hidden.double()
        if layer.bias is not None:
            inputs = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=torch.float64)], dim=1)  # (N, in+1)
        if layer is linears[-1]:  # every example counts for every output: one Gram, shared
            gram = (inputs.T @ inputs)[None].expand(layer.out_features, -1, -1)
        else:
            fires = (pre > 0).double()  # (N, out)
            gram = torch.einsum("nj,na,nb->jab", fires, inputs, inputs)  # (out, in+1, in+1)
        values, vectors = torch.linalg.eigh(gram)
        null = values <= rtol * values[:, -1:].clamp_min(0)  # (out, in+1); a unit that never fires: all
        unit, which = torch.nonzero(null, as_tuple=True)
        found = vectors[unit, :, which]  # (k, in+1): one null vector of unit `unit` per row
        flat = torch.zeros(len(unit), view.dim, dtype=torch.float64)
        weight = offsets[name_of[id(layer.weight)]] + unit[:, None] * layer.in_features + torch.arange(layer.in_features)
        flat.scatter_(1, weight, found[:, :layer.in_features])
        if layer.bias is not None:
            flat[torch.arange(len(unit)), offsets[name_of[id(layer.bias)]] + unit] = found[:, -1]
        columns.append(flat)
    return torch.cat(columns).T


class ComplementOperator(LinearOperator):
    """The Hessian on the orthogonal complement of ``basis``: ``v -> P H P v`` with
    ``P = I - Q Q^T``, ``Q = basis`` ``(D, r)`` orthonormal: a
    :class:`~minima.core.operators.LinearOperator`, so the spectrum routines of
    :mod:`minima.core.spectrum` take it. Its spectrum is the Hessian's restricted
    to the complement, plus ``r`` zeros (the directions of ``Q``)."""

    def __init__(self, operator: HessianOperator, basis: torch.Tensor):
        if basis.shape[0] != operator.dim:
            raise SymmetryError(f"basis of dimension {basis.shape[0]} for a Hessian of dimension {operator.dim}")
        self.operator, self.basis = operator, basis.to(device=operator.device, dtype=torch.float64)
        self.dim, self.device = operator.dim, operator.device

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """``(I - Q Q^T) v`` for ``v`` ``(D,)``."""
        return v - self.basis @ (self.basis.T @ v)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.project(self.operator.matvec(self.project(v.to(torch.float64))))


def complement_eigenvalues(operator: HessianOperator, basis: torch.Tensor, max_dim: int = 6000) -> torch.Tensor:
    """Every eigenvalue of the Hessian restricted to the orthogonal complement of ``basis``,
    ascending, float64 ``(D - r,)``: the matrix ``U^T H U`` for an orthonormal basis ``U`` of the
    complement, with ``H`` formed by :meth:`~minima.core.hessian.HessianOperator.to_dense`. Refuses ``D >
    max_dim`` (the matrix would not fit or take too long; use Lanczos on
    :class:`ComplementOperator` there). ``basis`` must be orthonormal (:func:`orthonormal_span`)."""
    if operator.dim > max_dim:
        raise SymmetryError(f"the exact Hessian has dimension {operator.dim} > max_dim={max_dim}; use Lanczos on "
                            "ComplementOperator for the extreme eigenvalues instead")
    hessian = operator.to_dense()
    q = basis.to(device=operator.device, dtype=torch.float64)
    full, _ = torch.linalg.qr(q, mode="complete")  # (D, D): the first r columns span Q, the rest its complement
    complement = full[:, q.shape[1]:]
    return torch.linalg.eigvalsh(complement.T @ hessian @ complement)
