"""Public Hessian libraries as oracles (dev extras: curvlinops-for-pytorch, pyhessian).

Skipped, with the reason printed by ``-ra``, when the dev extras are not installed."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minima.data import batches, load
from minima.geometry.flatness import measure
from minima.core.hessian import HessianOperator
from minima.models import mlp
from minima.train import fit

curvlinops = pytest.importorskip("curvlinops", reason="curvlinops-for-pytorch not installed (pip install -e '.[dev]')")


def trained_digits_mlp():
    """A 64-32-10 ReLU MLP trained to 100 % on 600 scikit-learn digits, float64."""
    train = load("digits", "train")
    x, y = train.inputs[:600].flatten(1).double(), train.targets[:600]
    model = mlp(64, [32], 10, bias=True, seed=0, init_range=0.2).double()
    result = fit(model, x, y, lr=0.05, batch_size=20, max_epochs=200, generator=torch.Generator().manual_seed(0))
    assert result.final["accuracy"] == 1.0
    return model.eval(), x, y


def test_lambda_max_agrees_with_curvlinops_and_scipy_eigsh():
    from scipy.sparse.linalg import eigsh

    model, x, y = trained_digits_mlp()
    data = batches(x, y, 200)
    ours = measure(HessianOperator(model, F.cross_entropy, data), "plain", tol=1e-10, max_iter=300)["plain"]
    operator = curvlinops.HessianLinearOperator(model, torch.nn.CrossEntropyLoss(), list(model.parameters()),
                                                data).to_scipy()
    peer = float(eigsh(operator, k=1, which="LA", tol=1e-12, v0=np.ones(operator.shape[0]))[0][0])
    assert ours == pytest.approx(peer, rel=1e-8)


def test_hessian_vector_product_agrees_with_curvlinops():
    model, x, y = trained_digits_mlp()
    data = batches(x, y, 200)
    ours = HessianOperator(model, F.cross_entropy, data)
    peer = curvlinops.HessianLinearOperator(model, torch.nn.CrossEntropyLoss(), list(model.parameters()),
                                            data).to_scipy()
    v = torch.randn(ours.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = torch.as_tensor(peer @ v.numpy())
    assert float((ours.matvec(v) - expected).norm() / expected.norm()) < 1e-10

