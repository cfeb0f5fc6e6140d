"""Fixed architectures: the fully connected twins of the growing networks."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ['architecture', 'mlp', 'plain_mlp_layers', 'stacked_mlp', 'CifarResNet', 'DenseNet', 'ResidualCNN']

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


# ----------------------------------------------------------------------------- many MLPs at once

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.Identity)


def plain_mlp_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers of ``model`` when it is a plain MLP (``nn.Sequential`` of ``Linear`` layers,
    elementwise activations and a leading ``Flatten``, as :func:`mlp` builds), else ``None``."""
    if not isinstance(model, nn.Sequential) or not any(isinstance(m, nn.Linear) for m in model):
        return None
    layers = list(model)
    body = layers[1:] if isinstance(layers[0], nn.Flatten) else layers
    return layers if all(isinstance(m, (nn.Linear, *ELEMENTWISE)) for m in body) else None


def stacked_mlp(layers: list[nn.Module], x: torch.Tensor, weights: list[torch.Tensor],
                biases: list[torch.Tensor | None]) -> torch.Tensor:
    """``S`` MLPs of one architecture at once, each layer one batched matrix product.

    ``layers``: :func:`plain_mlp_layers` of any one of them (the sequence of operations);
    ``weights[l]``: ``(S, in, out)``, ``biases[l]``: ``(S, 1, out)`` or ``None``, for its ``l``-th
    ``nn.Linear``; ``x``: flat inputs ``(B, in)`` shared by all, or ``(S, B, in)``. Returns the
    logits ``(S, B, out)``. Used to train seeds side by side (:func:`minima.train.fit_together`)
    and to evaluate every pivot of an NEB path (:class:`minima.paths.energy.ModelEnergy`)."""
    h = x if x.dim() == 3 else x.expand(len(weights[0]), *x.shape)
    linear = 0
    for module in layers:
        if isinstance(module, nn.Linear):
            weight, bias = weights[linear], biases[linear]
            h = torch.bmm(h, weight) if bias is None else torch.baddbmm(bias, h, weight)
            linear += 1
        elif not isinstance(module, nn.Flatten):
            h = module(h)  # elementwise activation
    return h


# ----------------------------------------------------------------------------- "no barriers" architectures

class ResidualCNN(nn.Module):
    """A small residual CNN for CPU profiles: a 3x3 stem and 2x2 max pooling, ``blocks`` residual
    blocks of two 3x3 convolutions (no batch norm, so every parameter is a path coordinate and
    the loss is the same function of it in training and evaluation), average pooling to 4x4,
    a linear head. Convolutions use He initialisation."""

    def __init__(self, in_channels: int = 1, channels: int = 8, blocks: int = 2, n_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(channels, channels, 3, padding=1))
                                    for _ in range(blocks))
        self.head = nn.Linear(channels * 16, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        h = nn.functional.max_pool2d(torch.relu(self.stem(x)), 2)
        for block in self.blocks:
            h = torch.relu(h + block(h))
        return self.head(nn.functional.adaptive_avg_pool2d(h, 4).flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pad = c_out - c_in
        self.stride = stride

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:  # option A of He et al.: identity with zero-padded channels
            shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, 0, self.pad))
        return torch.relu(out + shortcut)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for CIFAR (He et al. 2016, section 4.2): 16/32/64 channels, n blocks per stage."""

    def __init__(self, depth: int = 20, n_classes: int = 10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            for k in range(n):
                layers.append(_BasicBlock(c_in, c_out, stride if k == 0 else 1))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        h = self.layers(torch.relu(self.bn(self.conv(x))))
        return self.fc(h.mean(dim=(2, 3)))


class _DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bottleneck: bool):
        super().__init__()
        inner = 4 * growth if bottleneck else c_in
        self.pre = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, inner, 1, bias=False)) \
            if bottleneck else nn.Identity()
        self.conv = nn.Sequential(nn.BatchNorm2d(inner), nn.ReLU(), nn.Conv2d(inner, growth, 3, padding=1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.conv(self.pre(x))], 1)


class DenseNet(nn.Module):
    """DenseNet for CIFAR (Huang et al. 2017): three dense blocks; ``bc`` adds bottlenecks and
    compression 0.5. DenseNet-40-12: ``DenseNet(40, 12)``; DenseNet-100-12-BC: ``DenseNet(100, 12, bc=True)``."""

    def __init__(self, depth: int = 40, growth: int = 12, bc: bool = False, n_classes: int = 10):
        super().__init__()
        per_block = (depth - 4) // (6 if bc else 3)
        channels = 2 * growth if bc else 16
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(per_block):
                layers.append(_DenseLayer(channels, growth, bc))
                channels += growth
            if block < 2:
                out = channels // 2 if bc else channels
                layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, out, 1, bias=False), nn.AvgPool2d(2)]
                channels = out
        layers += [nn.BatchNorm2d(channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def architecture(name: str, n_classes: int = 10, in_channels: int = 1, n_inputs: int = 784) -> nn.Module:
    """Models of the "no barriers" chapter by name: ``mlp-H`` (one hidden layer of H, biases,
    default PyTorch init), ``rescnn-C`` (a :class:`ResidualCNN` with C channels),
    ``resnet-20/32/44/56``, ``densenet-40-12``, ``densenet-100-12-bc``."""
    if name.startswith("mlp-"):
        hidden = int(name.split("-")[1])
        return nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    if name.startswith("rescnn-"):
        return ResidualCNN(in_channels, int(name.split("-")[1]), 2, n_classes)
    if name.startswith("resnet-"):
        return CifarResNet(int(name.split("-")[1]), n_classes)
    if name == "densenet-40-12":
        return DenseNet(40, 12, False, n_classes)
    if name == "densenet-100-12-bc":
        return DenseNet(100, 12, True, n_classes)
    raise ValueError(f"unknown architecture {name!r}; use mlp-H, rescnn-C, resnet-20/32/44/56, "
                     "densenet-40-12 or densenet-100-12-bc")
