"""FlatView: the one flat coordinate system of the Hessian operator, the NEB energy and barriers."""
from __future__ import annotations

import pytest
import torch

from minima.core.hessian import HessianOperator
from minima.growing import GrowingNet
from minima.models import mlp
from minima.paths.energy import ModelEnergy
from minima.core.parameters import FlatView


def grown_net() -> GrowingNet:
    net = GrowingNet(6, 3, seed=0, device="cpu", dtype=torch.float64, bias=True)
    net.grow(5, 2)
    return net


def test_grown_net_coordinates_are_the_real_edges_and_round_trip():
    net = grown_net()
    view = FlatView(net)
    assert view.dim == net.num_parameters() == len(net.src) + net.bias.numel()
    theta = view.point()
    weight, bias = view.unflatten(theta)
    assert torch.equal(weight, net.weight.detach()) and torch.equal(bias, net.bias.detach())
    assert torch.equal(weight[~net.mask], torch.zeros(int((~net.mask).sum()), dtype=weight.dtype))
    other = FlatView(grown_net()).load(theta + 1.0, grown_net())  # load into a second copy
    assert torch.allclose(FlatView(other).point(), theta + 1.0)


def test_call_matches_forward_and_vmaps_over_points():
    net = grown_net()
    view = FlatView(net)
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    theta = view.point()
    assert torch.allclose(view.call(theta, x), net(x), atol=1e-12)
    points = torch.stack([theta, 0.5 * theta])
    batched = torch.func.vmap(lambda p: view.call(p, x))(points)
    assert torch.allclose(batched[1], view.call(0.5 * theta, x), atol=1e-12)


def test_hessian_operator_and_neb_energy_share_coordinates():
    net = grown_net()
    x = torch.randn(8, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (8,))
    data = [(x, y)]
    operator = HessianOperator(net, torch.nn.functional.cross_entropy, data)
    energy = ModelEnergy(net, torch.nn.functional.cross_entropy, data, chunk=None)
    assert operator.dim == energy.dim
    assert torch.equal(operator.parameters_vector(), energy.point().double())
    assert float(energy(energy.point()[None])[0]) == pytest.approx(operator.loss(), rel=1e-12)


def test_unknown_names_are_named():
    with pytest.raises(KeyError, match="unknown parameter"):
        FlatView(mlp(4, [3], 2), ["0.weight", "nope"])
