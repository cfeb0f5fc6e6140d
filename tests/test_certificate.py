"""The convergence certificate on analytic functions and on a network trained to 100 %."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minima import data
from minima.core.hessian import HessianOperator
from minima.geometry.certificate import Rule, certify, judge, plateau
from minima.core.spectrum import lanczos, spectral_density
from minima.models import mlp
from minima.train import fit


class Point(nn.Module):
    """A bare parameter vector theta; its 'outputs' are theta itself, for every input row."""

    def __init__(self, theta):
        super().__init__()
        self.theta = nn.Parameter(torch.as_tensor(theta, dtype=torch.float64))

    def forward(self, x):
        return self.theta.expand(len(x), -1)


def quadratic(eigenvalues, seed=0):
    """0.5 (theta - c)^T A (theta - c) with A = Q diag(eigenvalues) Q^T, and its minimiser-or-saddle c."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.as_tensor(eigenvalues, dtype=torch.float64)) @ q.T
    c = torch.randn(len(eigenvalues), generator=g, dtype=torch.float64)

    def loss(outputs, targets):
        d = outputs[0] - c
        return 0.5 * d @ a @ d
    return loss, c


def batches():
    return [(torch.zeros(4, 1), torch.zeros(4))]  # float targets: no accuracy to compute


def test_convex_quadratic_at_its_minimum_is_certified():
    loss, c = quadratic([5.0, 2.0, 1.0, 0.5, 0.1])
    cert = certify(HessianOperator(Point(c).eval(), loss, batches()), loss_history=[0.0] * 12)
    assert cert.verdict == "minimum" and cert.plateau is True and cert.train_accuracy is None
    assert cert.lambda_max == pytest.approx(5.0, rel=1e-8) and cert.lambda_min == pytest.approx(0.1, abs=1e-5)
    assert cert.grad_norm < 1e-12 and cert.train_loss < 1e-20


def test_a_saddle_is_not_a_minimum_even_with_zero_gradient_and_a_plateau():
    loss, c = quadratic([5.0, 2.0, 1.0, -1.0])
    cert = certify(HessianOperator(Point(c).eval(), loss, batches()), loss_history=[0.0] * 12)
    assert cert.grad_norm < 1e-12 and cert.plateau is True
    assert cert.lambda_min == pytest.approx(-1.0, abs=1e-5) and cert.verdict == "negative curvature"


def test_away_from_the_minimum_without_a_plateau_is_not_converged():
    loss, c = quadratic([5.0, 2.0, 1.0])
    cert = certify(HessianOperator(Point(c + 1.0).eval(), loss, batches()), loss_history=list(np.linspace(3, 1, 12)))
    assert cert.grad_norm > 0.1 and cert.plateau is False and cert.verdict == "not converged"


def test_rule_thresholds():
    rule = Rule(plateau_epochs=3, plateau_rtol=1e-3)
    assert plateau([5, 1.0, 1.0005, 1.0002, 1.0001], rule) is True
    assert plateau([5, 1.0, 1.01, 1.0002, 1.0001], rule) is False
    assert plateau([1.0, 1.0], rule) is None  # too short to tell
    assert judge(True, 10.0, -0.099) == "minimum" and judge(True, 10.0, -0.101) == "negative curvature"
    assert judge(False, 10.0, 0.0) == "not converged" and judge(True, -1.0, -2.0) == "negative curvature"
    assert judge(True, 10.0, -0.5, Rule(min_curvature_ratio=-0.1)) == "minimum"


def test_small_mlp_trained_past_full_accuracy_on_digits_is_a_minimum():
    train = data.load("digits", "train")
    x, y = train.inputs.flatten(1)[:300].double(), train.targets[:300]
    model = mlp(64, [16], 10, seed=0, init_range=0.3).double()
    # 80 epochs, past the first epoch at 100 % (measured: at 30 epochs, 99.3 %, lambda_min / lambda_max
    # = -0.0068; at the first epoch at 100 % it can still be -0.012, below the rule's -0.01)
    result = fit(model, x, y, lr=0.1, batch_size=10, max_epochs=80, generator=torch.Generator().manual_seed(0),
                 target_accuracy=1.01)
    assert result.final["accuracy"] == 1.0
    model.eval()
    cert = certify(HessianOperator(model, F.cross_entropy, data.batches(x, y, 100)), loss_history=[e["loss"] for e in result.epochs])
    assert cert.train_accuracy == 1.0 and cert.train_loss == pytest.approx(result.final["loss"], rel=1e-6)
    assert cert.lambda_max > 0 and cert.lambda_min / cert.lambda_max >= -0.01
    assert cert.verdict == "minimum"
    # the same network at its initialisation is no minimum
    fresh = mlp(64, [16], 10, seed=0, init_range=0.3).double().eval()
    assert certify(HessianOperator(fresh, F.cross_entropy, data.batches(x, y, 100))).verdict != "minimum"


def test_gradient_norm_matches_autograd_on_the_whole_set():
    train = data.load("digits", "train")
    x, y = train.inputs.flatten(1)[:200].double(), train.targets[:200]
    model = mlp(64, [8], 10, seed=1).double().eval()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    cert = certify(HessianOperator(model, F.cross_entropy, data.batches(x, y, 64)))  # uneven last batch: size-weighted
    assert cert.grad_norm == pytest.approx(float(expected), rel=1e-10)


def test_slq_runs_exactly_the_requested_steps():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(200, 200, generator=g, dtype=torch.float64)
    a = m @ m.T / 200
    calls = []

    def matvec(v):
        calls.append(1)
        return a @ v

    nodes, weights = spectral_density(matvec, 200, n_vectors=2, n_steps=100, generator=g)
    assert len(calls) == 200 and len(nodes) == 200 and weights.sum() == pytest.approx(1.0)
    _, _, info = lanczos(lambda v: a @ v, 200, tol=0.0, max_iter=100, generator=g)
    assert info["matvecs"] == 100


def test_weight_decay_shifts_the_certified_objective_exactly():
    loss, c = quadratic([5.0, 2.0, -0.05])  # a saddle of the loss alone ...
    plain = certify(HessianOperator(Point(c).eval(), loss, batches()), loss_history=[0.0] * 12)
    decayed = certify(HessianOperator(Point(c).eval(), loss, batches()), loss_history=[0.0] * 12, weight_decay=0.1)
    assert plain.verdict == "negative curvature"
    assert decayed.lambda_min == pytest.approx(plain.lambda_min + 0.1, abs=1e-6)  # ... H + 0.1 I is positive
    assert decayed.lambda_max == pytest.approx(5.1, rel=1e-8) and decayed.verdict == "minimum"
    assert decayed.grad_norm == pytest.approx(0.1 * float(c.norm()), rel=1e-10)  # g + wd theta, g = 0 here
    assert decayed.train_loss == plain.train_loss  # the data loss is reported unchanged


def test_certified_measures_equal_separate_certificate_and_measures():
    """One operator for the certificate and the measures, plain read off the certificate: the
    same numbers as certifying and measuring separately (a wrong shared state or a plain from
    another Lanczos run would differ)."""
    from minima.geometry.flatness import measure

    train = data.load("digits", "train")
    x, y = train.inputs.flatten(1)[:200].double(), train.targets[:200]
    model = mlp(64, [12, 8], 10, seed=1, init_range=0.3).double()
    fit(model, x, y, lr=0.1, batch_size=10, max_epochs=5, generator=torch.Generator().manual_seed(1))
    model.eval()
    batches = data.batches(x, y, 100)
    history = [3.0, 2.0, 1.0]
    shared = HessianOperator(model, F.cross_entropy, batches)
    certificate = certify(shared, loss_history=history, seed=4)
    values = measure(shared, seed=4, blocks="depth", certificate=certificate)
    assert certificate == certify(HessianOperator(model, F.cross_entropy, batches), loss_history=history, seed=4)
    assert values == measure(HessianOperator(model, F.cross_entropy, batches), seed=4, blocks="depth")
    reused, again = certificate, measure(shared, seed=4, blocks="depth", certificate=certificate)
    assert reused is certificate and again == values
