"""Fixed architectures: the fully connected twins of the growing networks."""
from __future__ import annotations

import torch
from torch import nn

ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def mlp(n_in: int, hidden: list[int] | int, n_out: int, *, bias: bool = False, init_range: float = 0.5,
        activation: str = "relu", seed: int | None = None) -> nn.Sequential:
    """``nn.Sequential`` MLP ``n_in -> hidden... -> n_out`` (input flattened), weights U(-r, r).

    The paper's fully connected twins use U(-0.5, 0.5) and, like the growing net, no biases
    by default. ``hidden`` is a list of layer widths (or one int).
    """
    widths = [hidden] if isinstance(hidden, int) else list(hidden)
    if any(w < 1 for w in [n_in, n_out, *widths]):
        raise ValueError(f"layer sizes must be positive, got {[n_in, *widths, n_out]}")
    if activation not in ACTIVATION_MODULES:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATION_MODULES)}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    layers: list[nn.Module] = [nn.Flatten()]
    sizes = [n_in, *widths, n_out]
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(a, b, bias=bias)
        with torch.no_grad():
            for p in linear.parameters():
                p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * init_range)
        layers.append(linear)
        if k < len(sizes) - 2:
            layers.append(ACTIVATION_MODULES[activation]())
    return nn.Sequential(*layers)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
