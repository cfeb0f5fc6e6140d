"""Reparameterisations: which keep the function, and which flatness measures they leave unchanged."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minima.growing import GrowingNet
from minima.models import mlp
from minima.geometry.rescaling import hidden_neurons, invariance_table, log_uniform, rescale_depths, rescale_neurons

from test_flatness import toy_data


def grown_net(bias=False):
    net = GrowingNet(6, 3, seed=2, device="cpu", dtype=torch.float64, bias=bias)
    net.grow(10, 3)
    assert net.depth.max() >= 3  # several depths, so edges skip levels
    return net


@pytest.mark.parametrize("bias", [False, True])
def test_per_neuron_rescaling_keeps_the_function_of_mlps_and_grown_nets(bias):
    x, _ = toy_data(n=40, d=6)
    g = torch.Generator().manual_seed(0)
    for model in (mlp(6, [7, 5], 3, bias=bias, seed=1).double(), grown_net(bias)):
        rescaled = rescale_neurons(model, log_uniform(hidden_neurons(model), g))
        assert torch.allclose(rescaled(x), model(x), atol=1e-12)
        changed = [(a - b).abs().max() for a, b in zip(rescaled.parameters(), model.parameters())]
        assert max(changed) > 0.1  # the parameters did move


def test_per_neuron_rescaling_of_a_grown_net_scales_each_edge_by_c_dst_over_c_src():
    """Oracle in the paper's notation (by neuron id): W'[j, i] = W[j, i] c_i / c_j, c = 1 off the hidden neurons."""
    net = grown_net(bias=True)
    factors = log_uniform(hidden_neurons(net), torch.Generator().manual_seed(3))
    rescaled = rescale_neurons(net, factors)
    c = torch.ones(net.n, dtype=torch.float64)
    c[torch.as_tensor(net.hidden_ids)] = factors
    W, mask, _ = net.to_dense()
    assert torch.allclose(rescaled.to_dense()[0], W * c[None, :] / c[:, None], rtol=1e-12, atol=0)
    assert torch.allclose(rescaled.in_id_order(rescaled.bias.detach()), net.in_id_order(net.bias.detach()) * c[net.n_inputs:])
    with pytest.raises(ValueError, match="one per neuron"):
        rescale_neurons(net, factors[1:])


def test_depth_rescaling_keeps_an_mlp_but_changes_a_grown_net():
    x, _ = toy_data(n=40, d=6)
    model = mlp(6, [7, 5], 3, seed=1).double()
    assert torch.allclose(rescale_depths(model, [2.0, 0.25, 2.0])(x), model(x), atol=1e-12)
    net = grown_net()
    factors = [2.0] + [1.0] * (int(net.depth.max()) - 2) + [0.5]
    assert (rescale_depths(net, factors)(x) - net(x)).abs().max() > 1e-2
    with pytest.raises(ValueError, match="one per nn.Linear"):
        rescale_depths(model, [2.0, 0.5])


def test_invariance_table_reports_what_the_measures_keep():
    x, y = toy_data(n=60, d=6)
    model, net = mlp(6, [7], 3, seed=1).double(), grown_net()
    rows = invariance_table({"mlp": model, "grown": net}, F.cross_entropy, [(x, y)], x,
                            {"mlp": [2.0, 0.5], "grown": [2.0] + [1.0] * (int(net.depth.max()) - 2) + [0.5]}, seed=0)
    by = {(r["network"], r["rescaling"].split()[0]): r for r in rows}
    assert by["mlp", "depth"]["largest logit change"] < 1e-12 and by["mlp", "depth"]["rsi change"] < 1e-8
    assert by["mlp", "depth"]["plain change"] > 0.1
    assert by["grown", "depth"]["largest logit change"] > 1e-2
    for name in ("mlp", "grown"):
        assert by[name, "per-neuron"]["largest logit change"] < 1e-12
        assert by[name, "per-neuron"]["elementwise change"] < 1e-8
        assert by[name, "per-neuron"]["rsi change"] > 1e-3
