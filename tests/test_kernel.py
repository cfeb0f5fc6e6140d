"""The compiled SGD kernel against its oracle, autograd (one step's gradients, one epoch's
weights through fit, growth included), and the choice of kernel."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minima.growing import GrowingNet, GrowthPlan, GrowthSchedule
from minima.models import mlp
from minima.train import SgdKernel, TrainingError, choose_kernel, covers, fit

N_IN, N_OUT = 30, 5


def sparse_images(n=64, seed=0):
    """Inputs with most entries exactly 0, as MNIST pixels are (the kernel skips them)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, N_IN, generator=g) * (torch.rand(n, N_IN, generator=g) < 0.3)
    return x, torch.randint(0, N_OUT, (n,), generator=g)


def sentences(n=64, vocabulary=40, length=9, seed=0):
    """Token ids padded with 0, with repeated tokens in a sentence (their gradients add up)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, vocabulary, (n, length), generator=g)
    tokens[:, 6:] = 0
    tokens[::3, 1] = tokens[::3, 0]
    return tokens, torch.randint(0, N_OUT, (n,), generator=g)


def grown(n_in=N_IN, insertions=14, seed=0) -> GrowingNet:
    net = GrowingNet(n_in, N_OUT, seed=seed, device="cpu")
    net.grow(insertions, [3, 5, 8, 2, 6, 9, 4, 7, 3, 10, 5, 6, 2, 8][:insertions])
    return net


def bag(network: nn.Module, vocabulary=40, dim=N_IN) -> nn.Sequential:
    embedding = nn.EmbeddingBag(vocabulary, dim, mode="sum", padding_idx=0, sparse=True)
    with torch.no_grad():
        embedding.weight.copy_(torch.rand(vocabulary, dim, generator=torch.Generator().manual_seed(5)) - 0.5)
        embedding.weight[0] = 0
    return nn.Sequential(embedding, network)


MODELS = {
    "mlp a": lambda: mlp(N_IN, [12], N_OUT, seed=0),
    "mlp b": lambda: mlp(N_IN, [10, 3], N_OUT, seed=1),
    "mlp c": lambda: mlp(N_IN, [8, 5, 3], N_OUT, seed=4),
    "grown": grown,
    "bag + mlp": lambda: bag(mlp(N_IN, [12], N_OUT, seed=0)),
    "bag + grown": lambda: bag(grown()),
}


def data_for(name):
    return sentences() if name.startswith("bag") else sparse_images()


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("name", list(MODELS))
def test_one_step_is_an_sgd_step_on_autograds_gradient(name, batch):
    """With lr = 1 the kernel's weight change is minus the minibatch gradient: it must equal
    autograd's to 1e-5 relative, absent edges of a grown network included (they stay 0)."""
    x, y = data_for(name)
    model = MODELS[name]()
    loss = F.cross_entropy(model(x[:batch]), y[:batch])
    grads = torch.autograd.grad(loss, list(model.parameters()))
    before = [p.detach().clone() for p in model.parameters()]
    total, bad_step = SgdKernel(model, x, y).epoch(torch.arange(batch), batch, 1.0)
    assert bad_step == -1 and total == pytest.approx(float(loss.detach()) * batch, rel=1e-5)
    for p, p0, g in zip(model.parameters(), before, grads):
        g = g.to_dense() if g.is_sparse else g
        change = p0 - p.detach()
        assert float((change - g).norm()) <= 1e-5 * float(g.norm()), "a zero gradient must change nothing"
    assert any(float(g.norm()) > 0 for g in grads)
    for m in model.modules():
        if isinstance(m, GrowingNet):
            assert bool((m.weight.detach()[~m.mask] == 0).all()), "an absent edge was trained"


@pytest.mark.parametrize("batch", [1, 5, 16])
@pytest.mark.parametrize("name", list(MODELS))
def test_epochs_with_growth_equal_the_autograd_trainer(name, batch):
    """fit with the kernel and with autograd: same minibatches, same growth at the start of
    epoch 2, same losses; weights equal to 1e-4 relative after three epochs."""
    x, y = data_for(name)
    results, weights = {}, {}
    for kernel in ("numba", "autograd"):
        model = MODELS[name]()
        nets = [m for m in model.modules() if isinstance(m, GrowingNet)]
        growth = GrowthPlan(nets[0], GrowthSchedule({1: 3}), (1,) * 14 + (4, 6, 2)) if nets else None
        results[kernel] = fit(model, x, y, lr=0.02, batch_size=batch, max_epochs=3, target_accuracy=None,
                              generator=torch.Generator().manual_seed(3), growth=growth, kernel=kernel)
        weights[kernel] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert results["numba"].kernel == "numba" and results["autograd"].kernel == "autograd"
    a, b = weights["autograd"], weights["numba"]
    assert a.shape == b.shape and float((a - b).norm() / a.norm()) < 1e-4
    for ours, theirs in zip(results["numba"].epochs, results["autograd"].epochs):
        assert ours["inserted"] == theirs["inserted"]
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)  # the kernel's own evaluation
        assert ours["accuracy"] == theirs["accuracy"]


def test_divergence_is_the_same_one_line_error():
    x, y = sparse_images()
    model = mlp(N_IN, [4], N_OUT, seed=0)
    with torch.no_grad():
        model[1].weight.fill_(float("inf"))
    with pytest.raises(TrainingError, match="diverged .* at epoch 1, step 0; lower the learning rate"):
        fit(model, x, y, lr=0.1, batch_size=8, max_epochs=1, generator=torch.Generator().manual_seed(0),
            kernel="numba")


def test_the_kernel_is_chosen_from_the_model_never_from_timing():
    assert choose_kernel("auto", mlp(N_IN, [4], N_OUT)) == "numba"
    assert choose_kernel("auto", bag(grown())) == "numba"
    assert choose_kernel("auto", mlp(N_IN, [4], N_OUT, bias=True)) == "autograd"
    assert choose_kernel("auto", mlp(N_IN, [4], N_OUT, activation="tanh")) == "autograd"
    assert choose_kernel("auto", mlp(N_IN, [4], N_OUT), momentum=0.9) == "autograd"
    assert choose_kernel("autograd", mlp(N_IN, [4], N_OUT)) == "autograd"
    assert "bias-free" in covers(GrowingNet(3, 2, bias=True, device="cpu"))
    with pytest.raises(TrainingError, match="bias-free ReLU MLPs; use kernel='autograd'"):
        choose_kernel("numba", mlp(N_IN, [4], N_OUT, bias=True))
    with pytest.raises(TrainingError, match="unknown kernel 'fast'; choose one of auto, numba, autograd"):
        choose_kernel("fast", mlp(N_IN, [4], N_OUT))
