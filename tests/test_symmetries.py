"""The trivial directions of a ReLU MLP and the Hessian off them, against the exact Hessian."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from minima.core.hessian import HessianOperator
from minima.core.parameters import FlatView
from minima.geometry.symmetries import (ComplementOperator, SymmetryError, complement_eigenvalues, data_null_directions,
                                        dead_units, orthonormal_span, trivial_basis, trivial_directions)


@pytest.fixture(scope="module")
def minimum():
    """A 4-5-3 ReLU MLP with biases, float64, trained by L-BFGS on 1,000 points with random
    labels (the minimum of such a loss is finite but flat and slow to reach: the gradient ends
    near 1e-3, and the tests bound what they check by it)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 4, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (1000,), generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=2000, tolerance_grad=1e-13,
                                  tolerance_change=1e-16, history_size=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    for _ in range(10):
        optimizer.step(closure)
    model.eval()
    return model, x, y


def exact_hessian(model, x, y) -> torch.Tensor:
    """The oracle: torch.func.hessian of the loss as a function of the flat parameters."""
    view = FlatView(model)
    names, shapes, sizes = view.names, view.shapes, view.sizes

    def loss(flat):
        params = {n: t.reshape(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return F.cross_entropy(torch.func.functional_call(model, params, (x,)), y)
    return torch.func.hessian(loss)(view.point(dtype=torch.float64))


def rescaling_signs(model, unit: int) -> torch.Tensor:
    """A of the rescaling of hidden ``unit``: +1 on its incoming weights and bias, -1 on its
    outgoing weights, 0 elsewhere, flat in FlatView order."""
    parts = []
    for name, parameter in model.named_parameters():
        mask = torch.zeros_like(parameter)
        if name in ("1.weight", "1.bias"):
            mask[unit] = 1.0
        elif name == "3.weight":
            mask[:, unit] = -1.0
        parts.append(mask.reshape(-1))
    return torch.cat(parts)


def test_trivial_directions_are_orthonormal_of_the_stated_dimension_and_flat(minimum):
    model, x, y = minimum
    operator = HessianOperator(model, F.cross_entropy, [(x, y)])
    gradient = operator.gradient()
    basis = trivial_basis(model)
    assert basis.shape == (operator.dim, 5 + 5 + 1), "one rescaling per hidden unit, fan-in + 1 logit shifts"
    assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1], dtype=torch.float64), atol=1e-12)
    hessian = exact_hessian(model, x, y)
    lambda_max = torch.linalg.eigvalsh(hessian).max()
    assert gradient.norm() < 1e-2 * lambda_max, "trained close to a critical point"
    # differentiating the invariance: H v = -A g for a rescaling (A = +1 on the unit's incoming weights
    # and bias, -1 on its outgoing ones), H v = 0 for a logit shift; at a critical point both vanish
    directions = trivial_directions(model)
    for j, v in enumerate(directions.T):
        signs = rescaling_signs(model, j) if j < 5 else torch.zeros_like(v)
        torch.testing.assert_close(hessian @ v, -signs * gradient, atol=1e-10, rtol=0)
    for q in basis.T:
        assert (hessian @ q).norm() <= 2 * gradient.norm() + 1e-10, "a trivial direction is as flat as the gradient is small"
        assert (hessian @ q).norm() < 1e-2 * lambda_max
    # the loss does not change along a finite rescaling of one unit, nor a finite logit shift
    directions = trivial_directions(model)
    view, point = FlatView(model), FlatView(model).point(dtype=torch.float64)
    base = F.cross_entropy(model(x), y).item()
    with torch.no_grad():
        unit = point.clone()
        w_in, b_in, w_out = model[1].weight, model[1].bias, model[3].weight
        w_in[2] *= 3.0; b_in[2] *= 3.0; w_out[:, 2] /= 3.0
        assert F.cross_entropy(model(x), y).item() == pytest.approx(base, rel=1e-12)
        view.load(unit + 0.7 * directions[:, -1])  # every output bias + 0.7
        assert F.cross_entropy(model(x), y).item() == pytest.approx(base, rel=1e-12)
        view.load(unit)


def test_complement_spectrum_is_the_exact_hessian_restricted_to_the_complement(minimum):
    model, x, y = minimum
    operator = HessianOperator(model, F.cross_entropy, [(x, y)])
    basis = trivial_basis(model)
    hessian = exact_hessian(model, x, y).numpy()
    complement = scipy.linalg.null_space(basis.T.numpy())  # independent basis of the complement
    expected = np.linalg.eigvalsh(complement.T @ hessian @ complement)
    ours = complement_eigenvalues(operator, basis).numpy()
    assert ours.shape == (operator.dim - basis.shape[1],)
    np.testing.assert_allclose(ours, expected, atol=1e-9 * np.abs(expected).max())
    projector = np.eye(operator.dim) - basis.numpy() @ basis.numpy().T
    v = torch.randn(operator.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(ComplementOperator(operator, basis).matvec(v).numpy(),
                               projector @ hessian @ projector @ v.numpy(), atol=1e-10)


def test_networks_without_known_symmetries_are_refused(minimum):
    with pytest.raises(SymmetryError, match="ReLU MLPs"):
        trivial_directions(nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)))
    with pytest.raises(SymmetryError, match="max_dim"):
        model, x, y = minimum
        complement_eigenvalues(HessianOperator(model, F.cross_entropy, [(x, y)]), trivial_basis(model), max_dim=10)


def test_data_null_directions_leave_the_outputs_unchanged_and_are_counted_exactly():
    """A 6-5-3 ReLU MLP whose unit 4 never fires, on data where input 0 is never lit and inputs
    2 and 3 are equal: per live unit, e_0 and e_2 - e_3 (8); the dead unit's 6 weights and bias
    (7); each output's weight from the dead unit (3)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=generator, dtype=torch.float64)
    x[:, 0], x[:, 3] = 0.0, x[:, 2]
    y = torch.randint(0, 3, (40,), generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double().eval()
    with torch.no_grad():
        model[1].bias[4] = -100.0
    null = data_null_directions(model, x)
    assert dead_units(model, x) == [(0, 4)]
    assert null.shape == (FlatView(model).dim, 8 + 7 + 3)
    torch.testing.assert_close(null.T @ null, torch.eye(null.shape[1], dtype=torch.float64), atol=1e-12, rtol=0)
    view = FlatView(model)
    names, shapes, sizes = view.names, view.shapes, view.sizes

    def outputs(flat):
        params = {n: t.reshape(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return torch.func.functional_call(model, params, (x,)).reshape(-1)
    jacobian = torch.func.jacrev(outputs)(view.point(dtype=torch.float64))  # (N * C, D), the oracle
    assert (jacobian @ null).abs().max() < 1e-12 * jacobian.abs().max()
    hessian = exact_hessian(model, x, y)
    assert (hessian @ null).abs().max() < 1e-12 * hessian.abs().max()
    basis = orthonormal_span(torch.cat([trivial_basis(model), null], dim=1))
    assert basis.shape[1] == torch.linalg.matrix_rank(torch.cat([trivial_directions(model), null], dim=1))


def test_negative_control_a_problem_without_degenerate_directions_counts_no_vanishing_eigenvalue():
    """The vanishing-eigenvalue claim's counter on a softmax regression over dense inputs: its
    only flat directions are the logit shifts (trivial), so the count off them must be 0; the
    same counter on a ReLU network with a dead unit finds the dead unit's directions as data-null,
    counted apart from the claim's."""
    from minima.data import TrainTest
    from minima.experiments.barriers import symmetry_spectrum

    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = torch.randint(0, 3, (400,), generator=g)
    data = TrainTest(x, y, x[:10], y[:10], 3, "dense", n_features=6)
    regression = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    control = symmetry_spectrum(regression, data, weight_decay=1e-4, max_params=1000)
    assert control["n_trivial"] == 7 and control["n_null"] == 0, "logit shifts: fan-in 6 + 1 bias"
    assert control["nontrivial_vanishing"] == 0 and control["n_complement"] == 21 - 7
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        net[1].weight[0].zero_()
        net[1].bias[0] = -1.0  # unit 0 never fires
    degenerate = symmetry_spectrum(net, data, weight_decay=1e-4, max_params=1000)
    assert degenerate["dead_units"] == 1 and degenerate["n_null"] >= 6 + 1 + 3
