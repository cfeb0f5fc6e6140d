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
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.hessian import HessianOperator
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


def trivial_basis(model: nn.Module, rtol: float = 1e-10) -> torch.Tensor:
    """An orthonormal basis ``(D, r)`` of the span of :func:`trivial_directions` (float64),
    dropping directions that are linear combinations of others (singular values below ``rtol``
    times the largest): a dead unit with zero weights has no rescaling direction."""
    directions = trivial_directions(model)
    u, s, _ = torch.linalg.svd(directions, full_matrices=False)
    return u[:, s > rtol * s.max()]


class ComplementOperator:
    """The Hessian on the orthogonal complement of ``basis``: ``v -> P H P v`` with
    ``P = I - Q Q^T``, ``Q = basis`` ``(D, r)`` orthonormal. Same interface as
    :class:`~minima.core.hessian.HessianOperator` (``dim``, ``matvec``), so the spectrum
    routines of :mod:`minima.core.spectrum` take it. Its spectrum is the Hessian's restricted
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
    complement, formed from ``D`` Hessian-vector products and symmetrised. Refuses ``D >
    max_dim`` (the matrix would not fit or take too long; use Lanczos on
    :class:`ComplementOperator` there)."""
    if operator.dim > max_dim:
        raise SymmetryError(f"the exact Hessian has dimension {operator.dim} > max_dim={max_dim}; use Lanczos on "
                            "ComplementOperator for the extreme eigenvalues instead")
    eye = torch.eye(operator.dim, dtype=torch.float64, device=operator.device)
    hessian = torch.stack([operator.matvec(eye[i]) for i in range(operator.dim)], dim=1)
    hessian = (hessian + hessian.T) / 2
    q = basis.to(device=operator.device, dtype=torch.float64)
    complement, _ = torch.linalg.qr(torch.cat([q, eye], dim=1))
    complement = complement[:, q.shape[1]:]
    return torch.linalg.eigvalsh(complement.T @ hessian @ complement)
