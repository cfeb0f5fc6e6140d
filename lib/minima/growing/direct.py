"""A grown network's direct input-output map, and whether the network has collapsed onto it.

Algorithm 1 starts from the inputs fully connected to the outputs: a softmax regression. Its
input -> output edges stay part of the network for good (7,840 of the 7,940 weights of the
MNIST-10 grown network). At a minimum of a regularised objective every other edge can decay
to nothing; what is left is that softmax regression, and its flatness is a linear model's.
:func:`hidden_part` tells: the share of ``|theta|^2`` off the direct map and the largest change
of a logit when every edge off it is set to zero.
"""
from __future__ import annotations

import torch

COLLAPSE_TOLERANCE = 1e-6  # a hidden part that moves no logit by more than this computes nothing


def direct_mask(net) -> torch.Tensor:
    """``weight``-shaped bool mask of the edges from an input straight to an output of a
    :class:`~minima.growing.GrowingNet` (rows: inputs then hidden neurons; the outputs are the
    last ``n_outputs`` columns)."""
    mask = torch.zeros_like(net.mask, dtype=torch.bool)
    mask[:net.n_inputs, -net.n_outputs:] = net.mask[:net.n_inputs, -net.n_outputs:]
    return mask


def direct_share(net) -> float:
    """The share of the network's real weights (biases excluded) on its direct map."""
    return float(direct_mask(net).sum()) / float(net.mask.sum())


@torch.no_grad()
def hidden_part(net, inputs: torch.Tensor) -> tuple[float, float]:
    """``(share, effect)``: the share of the weights' ``|theta|^2`` off the direct map, and the
    largest absolute change of a logit over ``inputs`` ``(N, n_inputs)`` when every weight off
    it is set to zero (the network's own forward pass, with the weight restored after)."""
    weight = net.weight
    direct = direct_mask(net)
    real = net.mask.to(torch.bool)
    squares = weight.detach() ** 2
    total = float(squares[real].sum())
    share = float(squares[real & ~direct].sum()) / total if total > 0 else 0.0
    before = net(inputs)
    kept = weight.detach().clone()
    try:
        weight.mul_(direct.to(weight.dtype))
        after = net(inputs)
    finally:
        weight.copy_(kept)
    return share, float((before - after).abs().max())


def collapsed(effect: float) -> bool:
    """Whether a hidden part whose largest effect on a logit is ``effect`` computes nothing."""
    return effect <= COLLAPSE_TOLERANCE
