"""Reparameterisations of ReLU networks (Dinh et al. 2017) and what they do to the flatness measures.

Two rescalings, each returning a rescaled copy:

- :func:`rescale_depths`: the weights (and biases) into every neuron at depth ``d`` times
  ``factors[d - 1]`` (depth ``d`` is the ``d``-th ``nn.Linear`` of an MLP). For an MLP without
  biases whose factors multiply to 1 this computes the same function: ReLU is positively
  homogeneous and every input-to-output path crosses each layer once. A grown network's paths
  skip depths (an input may feed an output directly), so the same rescaling changes its
  function; ``rsi`` with one block per depth is then not a measure of the function's flatness.
- :func:`rescale_neurons`: each hidden neuron's incoming weights and bias times ``c``, its
  outgoing weights divided by ``c``: the same function for any ReLU network, MLP or grown.
  ``elementwise`` is invariant under both; ``rsi`` is not invariant under this one.

:func:`invariance_table` applies both to trained networks and reports the largest change of any
logit and the relative change of each measure.
"""
from __future__ import annotations

import copy
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..data import load
from ..core.hessian import HessianOperator
from .flatness import measure
from ..growing import GrowingNet, fan_in_for_budget, fully_connected_parameters
from ..models import mlp
from ..train import fit


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def rescale_depths(model: nn.Module, factors: list[float]) -> nn.Module:
    """A copy whose weights into depth ``d`` are multiplied by ``factors[d - 1]`` (one factor
    per depth: per ``nn.Linear`` of an MLP, per depth level of a :class:`GrowingNet`, outputs last)."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        if isinstance(model, GrowingNet):
            scale = torch.as_tensor(np.asarray(factors, dtype=float)[model.depth[model.column_ids] - 1],
                                    dtype=model.weight.dtype, device=model.weight.device)
            model.weight.mul_(scale[None, :])  # columns: the neuron each weight feeds
            if model.bias is not None:
                model.bias.mul_(scale)
            return model
        linears = _linears(model)
        if len(factors) != len(linears):
            raise ValueError(f"{len(factors)} factors for {len(linears)} layers; give one per nn.Linear")
        for layer, factor in zip(linears, factors):
            layer.weight.mul_(factor)
            if layer.bias is not None:
                layer.bias.mul_(factor)
    return model


def hidden_neurons(model: nn.Module) -> int:
    """Number of hidden neurons: of a :class:`GrowingNet`, or summed over an MLP's hidden layers."""
    if isinstance(model, GrowingNet):
        return len(model.hidden_ids)
    return sum(layer.out_features for layer in _linears(model)[:-1])


def log_uniform(n: int, generator: torch.Generator, low: float = 0.25, high: float = 4.0) -> torch.Tensor:
    """``(n,)`` float64 factors drawn log-uniformly in ``[low, high]``."""
    return torch.empty(n, dtype=torch.float64).uniform_(np.log(low), np.log(high), generator=generator).exp()


def rescale_neurons(model: nn.Module, factors: torch.Tensor) -> nn.Module:
    """A copy in which hidden neuron ``k``'s incoming weights (and bias) are multiplied by
    ``factors[k]`` and its outgoing weights divided by it. ``factors``: ``(hidden_neurons(model),)``,
    by neuron id for a :class:`GrowingNet` (``hidden_ids`` order), layer by layer for an MLP."""
    model = copy.deepcopy(model)
    if len(factors) != hidden_neurons(model):
        raise ValueError(f"{len(factors)} factors for {hidden_neurons(model)} hidden neurons; give one per neuron")
    with torch.no_grad():
        if isinstance(model, GrowingNet):
            c = factors.to(model.weight.dtype).to(model.weight.device)
            hidden = model.position[model.hidden_ids]  # storage rows of the hidden neurons
            rows = torch.ones(model.weight.shape[0], dtype=c.dtype, device=c.device)
            columns = torch.ones(model.weight.shape[1], dtype=c.dtype, device=c.device)
            rows[torch.as_tensor(hidden)] = 1 / c  # outgoing edges leave from these rows
            columns[torch.as_tensor(hidden - model.n_inputs)] = c  # incoming edges arrive in these columns
            model.weight.mul_(rows[:, None] * columns[None, :])
            if model.bias is not None:
                model.bias.mul_(columns)
            return model
        linears = _linears(model)
        for into, out_of, c in zip(linears[:-1], linears[1:], factors.split([m.out_features for m in linears[:-1]])):
            c = c.to(into.weight.dtype).to(into.weight.device)
            into.weight.mul_(c[:, None])
            if into.bias is not None:
                into.bias.mul_(c)
            out_of.weight.div_(c[None, :])
    return model


def invariance_table(models: dict[str, nn.Module], loss_fn, data: Iterable, inputs: torch.Tensor,
                     depth_factors: dict[str, list[float]], seed: int) -> list[dict]:
    """For each named model, both rescalings: the largest absolute change of any logit on
    ``inputs`` and the relative change of ``plain``, ``rsi`` (one block per depth) and
    ``elementwise``. ``depth_factors[name]``: the factors of :func:`rescale_depths` for that model."""
    data = list(data)
    rows = []
    for name, model in models.items():
        model.eval()
        before = measure(HessianOperator(model, loss_fn, data), seed=seed, blocks="depth", tol=1e-10)
        rescaled = {"depth rescaling " + " / ".join(f"x{f:g}" for f in depth_factors[name]):
                    rescale_depths(model, depth_factors[name]),
                    "per-neuron rescaling (c in [1/4, 4])":
                    rescale_neurons(model, log_uniform(hidden_neurons(model), torch.Generator().manual_seed(seed)))}
        for label, other in rescaled.items():
            after = measure(HessianOperator(other.eval(), loss_fn, data), seed=seed, blocks="depth", tol=1e-10)
            with torch.no_grad():
                change = float((other(inputs) - model(inputs)).abs().max())
            rows.append({"network": name, "rescaling": label, "largest logit change": change,
                         **{f"{m} change": abs(after[m] - before[m]) / abs(before[m]) for m in before}})
    return rows


def demonstration(hidden: int = 10, seed: int = 0, train_examples: int = 500) -> list[dict]:
    """:func:`invariance_table` for a grown network of ``hidden`` neurons and its fully connected
    twin ``64 -> hidden -> 10`` (same parameter count, no biases, float64), both trained with SGD
    for 30 epochs on the first ``train_examples`` scikit-learn digits. Depth factors: the first
    hidden level x2, the outputs x1/2 (levels between x1)."""
    digits = load("digits", "train")
    x, y = digits.inputs[:train_examples].flatten(1).double(), digits.targets[:train_examples]
    twin = mlp(64, [hidden], 10, seed=seed, init_range=0.1).double()
    grown = GrowingNet(64, 10, seed=seed, device="cpu", dtype=torch.float64, init_range=0.1)
    grown.grow(hidden, fan_in_for_budget(64, 10, hidden, fully_connected_parameters(64, [hidden], 10)))
    for model in (twin, grown):
        fit(model, x, y, lr=0.05, batch_size=10, max_epochs=30, generator=torch.Generator().manual_seed(seed))
    depths = int(grown.depth.max())
    levels = f"{depths - 1} hidden level" + ("s" if depths > 2 else "")
    models = {f"grown ({hidden} neurons, {levels}, skip edges)": grown, f"fully connected 64-{hidden}-10": twin}
    factors = dict(zip(models, ([2.0] + [1.0] * (depths - 2) + [0.5], [2.0, 0.5])))
    return invariance_table(models, torch.nn.functional.cross_entropy, [(x, y)], x, factors, seed)
