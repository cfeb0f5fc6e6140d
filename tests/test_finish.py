"""The one finish (minima.geometry.finish) against an independent oracle: scipy's L-BFGS-B on a
numpy implementation of the same strongly convex objective (softmax regression + L2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp
from torch import nn

from minima.geometry.finish import Objective, finish


def problem(n=300, d=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    model = nn.Linear(d, classes).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(classes, d, generator=g, dtype=torch.float64))
        model.bias.zero_()
    return model, x, y


def numpy_objective(theta, x, y, classes, decay):
    """Mean cross-entropy of softmax regression plus decay / 2 |theta|^2, and its gradient."""
    d = x.shape[1]
    w, b = theta[:classes * d].reshape(classes, d), theta[classes * d:]
    logits = x @ w.T + b
    log_p = logits - logsumexp(logits, axis=1, keepdims=True)
    value = -log_p[np.arange(len(y)), y].mean() + decay / 2 * theta @ theta
    p = np.exp(log_p)
    p[np.arange(len(y)), y] -= 1
    p /= len(y)
    grad = np.concatenate([(p.T @ x).ravel(), p.sum(0)]) + decay * theta
    return value, grad


@pytest.mark.parametrize("chunk", [0, 64])
def test_finish_reaches_the_oracles_minimum_and_certifies_it(chunk):
    model, x, y = problem()
    decay = 1e-2
    oracle = minimize(numpy_objective, np.zeros(3 * 6 + 3), args=(x.numpy(), y.numpy(), 3, decay), jac=True,
                      method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    objective = Objective(model, x, y, weight_decay=decay, chunk=chunk)
    done = finish(objective, rounds=20, iterations=50)
    theta = torch.cat([model.weight.detach().ravel(), model.bias.detach()]).numpy()
    assert np.abs(theta - oracle.x).max() < 1e-6
    assert done.objectives[-1] == pytest.approx(oracle.fun, rel=1e-10)
    assert done.certificate.verdict == "minimum"
    # the certificate is of the regularised objective: its Hessian is the CE's shifted by decay
    assert done.certificate.lambda_min >= decay * (1 - 1e-6)
    assert done.certificate.grad_norm < 1e-6
    assert done.rounds == len(done.losses) and done.describe().startswith(f"L-BFGS, {done.rounds} rounds")


def test_the_objective_in_chunks_equals_the_objective_at_once():
    model, x, y = problem(n=257)
    whole, chunked = Objective(model, x, y, weight_decay=0.1), Objective(model, x, y, weight_decay=0.1, chunk=50)
    values, grads = [], []
    for objective in (whole, chunked):
        model.zero_grad()
        values.append(float(objective.value_and_grad()))
        grads.append(torch.cat([p.grad.ravel() for p in model.parameters()]))
    theta = torch.cat([model.weight.detach().ravel(), model.bias.detach()]).numpy()
    expected, expected_grad = numpy_objective(theta, x.numpy(), y.numpy(), 3, 0.1)
    assert values == pytest.approx([expected, expected], rel=1e-12)
    for grad in grads:
        assert np.allclose(grad.numpy(), expected_grad, rtol=1e-10, atol=1e-14)
    assert whole.evaluate() == pytest.approx(chunked.evaluate(), rel=1e-12)
    assert whole.evaluate()[2] == pytest.approx(expected, rel=1e-12)
    # the chunks are the Hessian data unless the caller gives its own
    assert [len(t) for _, t in chunked.hessian_data] == [50, 50, 50, 50, 50, 7]


def test_a_finish_without_rounds_still_certifies_the_point_it_was_given():
    model, x, y = problem()
    done = finish(Objective(model, x, y), rounds=0)
    assert done.rounds == 0 and done.certificate.verdict != "minimum"  # random weights: no plateau, no fit


def test_an_objective_refuses_mismatched_data():
    model, x, y = problem()
    with pytest.raises(ValueError, match="as many targets as inputs"):
        Objective(model, x, y[:-1])
