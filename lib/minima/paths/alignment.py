"""Permutation alignment of two one-hidden-layer MLPs (Entezari et al. 2022; Ainsworth et al.
2023, "Git Re-Basin").

Permuting the hidden units of a network, with their incoming weights and bias and their
outgoing weights, leaves its function unchanged, so every minimum has ``H!`` copies. Before
drawing a straight line from minimum ``A`` to minimum ``B``, the copy of ``B`` closest to ``A``
can be taken. For one hidden layer the best permutation is one linear assignment, solved
exactly (``scipy.optimize.linear_sum_assignment``):

- **weight matching** maximises the summed inner products of matched units' parameters
  (incoming weights, bias, outgoing weights), that is it minimises ``||theta_A - pi(theta_B)||``;
- **activation matching** maximises the summed correlations of matched units' activations
  over a fixed set of inputs.

Deeper MLPs need Git Re-Basin's coordinate descent over layers; nothing here takes them
(:func:`shape_of` refuses). Points are flat vectors in
:class:`~minima.core.parameters.FlatView` order over ``nn.Sequential(Flatten, Linear(n_in, H),
ReLU, Linear(H, n_out))``: ``W1`` ``(H, n_in)``, ``b1`` ``(H,)``, ``W2`` ``(n_out, H)``, ``b2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn


@dataclass(frozen=True)
class MlpShape:
    """The sizes of a one-hidden-layer MLP and where each tensor lies in its flat vector."""

    n_in: int
    hidden: int
    n_out: int

    @property
    def dim(self) -> int:
        return self.hidden * (self.n_in + 1) + self.n_out * (self.hidden + 1)

    def split(self, point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(W1 (H, n_in), b1 (H,), W2 (n_out, H), b2 (n_out,))``, views of ``point`` ``(D,)``."""
        if point.shape != (self.dim,):
            raise ValueError(f"a point of this MLP is ({self.dim},), got {tuple(point.shape)}")
        h, n_in, n_out = self.hidden, self.n_in, self.n_out
        w1, b1, w2, b2 = point.split([h * n_in, h, n_out * h, n_out])
        return w1.view(h, n_in), b1, w2.view(n_out, h), b2


def shape_of(model: nn.Module) -> MlpShape:
    """The :class:`MlpShape` of ``nn.Sequential(Flatten, Linear, ReLU, Linear)`` with biases;
    a one-line error for any other model."""
    parts = list(model) if isinstance(model, nn.Sequential) else []
    if [type(m) for m in parts] != [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear] or \
            parts[1].bias is None or parts[3].bias is None:
        raise ValueError("alignment takes one-hidden-layer ReLU MLPs with biases (Flatten, Linear, ReLU, Linear); "
                         "deeper networks need Git Re-Basin's coordinate descent over layers")
    return MlpShape(parts[1].in_features, parts[1].out_features, parts[3].out_features)


def permute(shape: MlpShape, point: torch.Tensor, permutation) -> torch.Tensor:
    """``point`` with its hidden units reordered: unit ``j`` of the result is unit
    ``permutation[j]`` of ``point`` (incoming weights, bias and outgoing weights move
    together, so the function is the same)."""
    order = torch.as_tensor(np.asarray(permutation), dtype=torch.long)
    if sorted(order.tolist()) != list(range(shape.hidden)):
        raise ValueError(f"a permutation of the {shape.hidden} hidden units is needed, got {order.tolist()}")
    w1, b1, w2, b2 = shape.split(point)
    return torch.cat([w1[order].reshape(-1), b1[order], w2[:, order].reshape(-1), b2])


def unit_features(shape: MlpShape, point: torch.Tensor) -> np.ndarray:
    """``(H, n_in + 1 + n_out)`` float64: each hidden unit's incoming weights, bias and outgoing weights."""
    w1, b1, w2, _ = shape.split(point.detach().cpu().to(torch.float64))
    return torch.cat([w1, b1[:, None], w2.T], 1).numpy()


def weight_matching(shape: MlpShape, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """The permutation ``pi`` ``(H,)`` of ``b``'s hidden units that maximises
    ``sum_j <unit j of a, unit pi[j] of b>`` (exact: one linear assignment)."""
    similarity = unit_features(shape, a) @ unit_features(shape, b).T
    rows, columns = linear_sum_assignment(similarity, maximize=True)
    return columns[np.argsort(rows)]


def hidden_activations(shape: MlpShape, point: torch.Tensor, inputs: torch.Tensor) -> np.ndarray:
    """``(N, H)`` float64: the hidden units' ReLU outputs on ``inputs`` ``(N, ...)``."""
    w1, b1, _, _ = shape.split(point.detach().cpu().to(torch.float64))
    x = inputs.detach().cpu().reshape(len(inputs), -1).to(torch.float64)
    return torch.relu(x @ w1.T + b1).numpy()


def activation_matching(shape: MlpShape, a: torch.Tensor, b: torch.Tensor, inputs: torch.Tensor) -> np.ndarray:
    """The permutation ``pi`` ``(H,)`` of ``b``'s hidden units that maximises the summed Pearson
    correlations of matched units' activations on ``inputs`` (a unit that is constant there,
    dead for instance, correlates 0 with every unit)."""
    def standardised(values):
        centred = values - values.mean(0)
        spread = np.sqrt((centred ** 2).sum(0))
        return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)

    correlation = standardised(hidden_activations(shape, a, inputs)).T @ \
        standardised(hidden_activations(shape, b, inputs))
    rows, columns = linear_sum_assignment(correlation, maximize=True)
    return columns[np.argsort(rows)]
