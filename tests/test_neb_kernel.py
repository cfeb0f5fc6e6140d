"""The compiled NEB step (minima.paths.kernel) against the eager torch path, its oracle:
energy and gradient of every pivot, whole cycles (plain and climbing), the dense evaluation of
a path, a whole AutoNEB run, and what it refuses."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minima.models import architecture, mlp
from minima.paths.energy import DataMetric, ModelEnergy, error_rate
from minima.paths.kernel import MlpPathKernel, covers
from minima.paths.neb import NEBError, auto_neb, interpolate, linear_path, relax


def pixels(n: int, seed: int, n_in: int = 64, n_classes: int = 10):
    """Image-like inputs (about half the pixels exactly 0, as MNIST's border) and labels that
    depend on them, so that a trained direction exists."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, n_in // 8, generator=g)
    x = torch.where(x < 0.5, torch.zeros_like(x), x)
    y = (x.flatten(1)[:, : n_classes].argmax(1) + torch.randint(0, 2, (n,), generator=g)) % n_classes
    return x, y


def energies(hidden: int, n_batches: int = 3, **kwargs):
    """A compiled and an eager energy of one ``mlp-H`` on the same batches, same seed."""
    torch.manual_seed(hidden)
    model = architecture(f"mlp-{hidden}", 10, n_inputs=64)
    batches = [pixels(48, seed) for seed in range(n_batches)]
    fast = ModelEnergy(model, F.cross_entropy, batches, seed=3, **kwargs)
    slow = ModelEnergy(model, F.cross_entropy, batches, seed=3, compiled=False, **kwargs)
    assert fast.kernel is not None and slow.kernel is None
    return fast, slow


def path_near(energy, pivots: int, scale: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return energy.point()[None] + scale * torch.randn(pivots, energy.dim, generator=g)


@pytest.mark.parametrize("hidden", [1, 7, 40])
def test_energy_and_gradient_of_every_pivot_equal_autograd(hidden):
    fast, slow = energies(hidden)
    points = path_near(fast, 6, 0.3)
    x, y = fast.batches[1]
    leaf = points.clone().requires_grad_(True)
    expected = slow.batched(leaf, x, y)
    (expected_grad,) = torch.autograd.grad(expected.sum(), leaf)
    values, grad = fast.kernel.loss_and_gradient(points, *MlpPathKernel.arrays(x, y))
    assert torch.allclose(values, expected.detach(), rtol=1e-5, atol=0)
    # only the interior pivots move, so only their gradients are computed
    assert grad.shape == (4, fast.dim)
    relative = (grad - expected_grad[1:-1]).norm(dim=1) / expected_grad[1:-1].norm(dim=1)
    assert relative.max() < 1e-5
    assert (grad[:, : hidden * 64] != 0).any(), "the first layer's gradient is computed"


@pytest.mark.parametrize("climb", [False, True])
def test_a_cycle_equals_the_eager_cycle_on_the_same_batches(climb):
    fast, slow = energies(12)
    points = path_near(fast, 7, 0.2)
    compiled = relax(fast, points, 6, lr=0.05, momentum=0.9, weight_decay=1e-3, climb=climb)
    eager = relax(slow, points, 6, lr=0.05, momentum=0.9, weight_decay=1e-3, climb=climb)
    moved = (eager - points).norm()
    assert moved > 0.05, "the cycle moves the path"
    assert (compiled - eager).norm() / moved < 1e-4
    assert torch.equal(compiled[[0, -1]], points[[0, -1]]), "the ends stay"
    # the compiled cycle moved the energy's minibatch cursor as the eager one did
    assert (fast._cursor, fast._order) == (slow._cursor, slow._order)


def test_dense_evaluation_equals_the_loss_at_interpolated_points():
    fast, slow = energies(9)
    pivots = path_near(fast, 5, 0.4)
    dense = interpolate(pivots, 4)[0]
    assert torch.allclose(fast.data_mean_along(pivots, 4), slow.data_mean(dense), rtol=1e-5, atol=0)
    test = [pixels(100, 11)]
    error = DataMetric(fast, test, error_rate)
    expected = DataMetric(slow, test, error_rate)(dense)
    assert 0 < expected.max() and torch.allclose(error.along(pivots, 4), expected, rtol=0, atol=1e-6)  # float32 means
    assert torch.allclose(DataMetric(fast, test).along(pivots, 4), DataMetric(slow, test)(dense), rtol=1e-5, atol=0)


def test_auto_neb_compiled_finds_the_eager_path():
    fast, slow = energies(10, n_batches=4)
    a, b = path_near(fast, 2, 0.5, seed=4)
    cycles = [dict(steps=15, lr=0.05, momentum=0.9, weight_decay=1e-4)] * 3
    paths = [auto_neb(e, a, b, cycles=cycles, max_insert=2) for e in (fast, slow)]
    assert len(paths[0].pivots) == len(paths[1].pivots)
    assert paths[0].saddle_energy == pytest.approx(paths[1].saddle_energy, rel=1e-4)
    assert paths[0].saddle_energy < linear_path(fast, a, b).saddle_energy, "the relaxed path is below the straight line"


def test_a_diverging_cycle_names_its_step_and_keeps_the_last_good_path():
    fast, _ = energies(5)
    a, b = path_near(fast, 2, 0.5, seed=1)
    with pytest.raises(NEBError, match="non-finite energy at cycle 0, step") as error:
        auto_neb(fast, a, b, cycles=[dict(steps=50, lr=1e6, momentum=0.9)])
    assert error.value.path is not None and torch.isfinite(error.value.path.energies).all()


def test_the_kernel_takes_only_one_hidden_layer_relu_mlps_with_biases():
    assert covers(architecture("mlp-3", 10, n_inputs=20)) is None
    assert "one-hidden-layer" in covers(mlp(20, [4, 4], 3, bias=True))
    assert "with biases" in covers(mlp(20, [4], 3, bias=False))
    assert "one-hidden-layer" in covers(nn.Sequential(nn.Flatten(), nn.Linear(20, 4), nn.Tanh(), nn.Linear(4, 3)))
    assert "float32" in covers(architecture("mlp-3", 10, n_inputs=20).double())
    # energies the kernel does not take relax eagerly
    x, y = pixels(16, 0)
    assert ModelEnergy(mlp(64, [4, 4], 10, bias=True), F.cross_entropy, [(x, y)]).kernel is None
    assert ModelEnergy(architecture("mlp-3", 10, n_inputs=64), F.cross_entropy, [(x, y)], chunk=0).kernel is None
