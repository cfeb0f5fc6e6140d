"""Permutation alignment of one-hidden-layer MLPs (minima.paths.alignment) against oracles a wrong
implementation fails: an exact permutation recovered by both methods, the function of a permuted
minimum unchanged on real data, and weight matching's objective against every permutation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minima.data import batches, train_test
from minima.models import architecture
from minima.paths.alignment import (activation_matching, hidden_activations, permute, shape_of, unit_features,
                                    weight_matching)
from minima.paths.energy import ModelEnergy
from minima.paths.neb import linear_path


def logits(model, point, x):
    torch.nn.utils.vector_to_parameters(point, model.parameters())
    with torch.no_grad():
        return model(x).double()


def trained(seed: int, hidden: int, data, epochs: int = 30):
    """A minimum of ``mlp-H`` on ``data`` (full-batch Adam on the training split): a real network."""
    torch.manual_seed(seed)
    model = architecture(f"mlp-{hidden}", data.n_classes, n_inputs=data.x_train[0].numel())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        optimizer.zero_grad()
        F.cross_entropy(model(data.x_train), data.y_train).backward()
        optimizer.step()
    return model, torch.nn.utils.parameters_to_vector(model.parameters()).detach()


@pytest.fixture(scope="module")
def digits():
    return train_test("digits")


def test_an_exact_permutation_is_recovered_by_both_methods_and_its_line_has_no_barrier(digits):
    model, a = trained(0, 24, digits)
    shape = shape_of(model)
    sigma = np.random.default_rng(0).permutation(shape.hidden)
    b = permute(shape, a, sigma)
    assert not torch.equal(a, b)
    x = digits.x_train
    pi = weight_matching(shape, a, b)
    assert np.array_equal(sigma[pi], np.arange(shape.hidden)), "pi undoes sigma"
    assert torch.equal(permute(shape, b, pi), a)
    # activations tell the units apart where they fire: the live units are recovered exactly, and
    # the units dead on every input (3 of 24 here) only among themselves, so the function is a's
    live = hidden_activations(shape, a, x).std(0) > 0
    assert 0 < (~live).sum() < 5
    pi = activation_matching(shape, a, b, x)
    assert np.array_equal(sigma[pi][live], np.arange(shape.hidden)[live]) and not live[sigma[pi][~live]].any()
    assert torch.allclose(logits(model, permute(shape, b, pi), x), logits(model, a, x), rtol=0, atol=1e-6)
    energy = ModelEnergy(model, F.cross_entropy, batches(digits.x_train, digits.y_train, 500))
    line = linear_path(energy, a, permute(shape, b, weight_matching(shape, a, b)), n=10)
    assert float(line.energies.max() - line.energies.min()) <= 1e-6, "the aligned straight line is flat"
    unaligned = linear_path(energy, a, b, n=10)
    assert float(unaligned.energies.max() - unaligned.energies[0]) > 0.1, "without alignment the line has a barrier"


def test_a_permuted_minimum_computes_the_same_function_on_real_data(digits):
    model, a = trained(1, 32, digits)
    _, b = trained(2, 32, digits)
    shape = shape_of(model)
    x = digits.x_test
    for pi in (weight_matching(shape, a, b), activation_matching(shape, a, b, digits.x_train[:500])):
        assert sorted(pi.tolist()) == list(range(32)) and not np.array_equal(pi, np.arange(32))
        assert torch.allclose(logits(model, permute(shape, b, pi), x), logits(model, b, x), rtol=0, atol=1e-6)
    # weight matching brings b closer to a than it was
    assert (a - permute(shape, b, weight_matching(shape, a, b))).norm() < (a - b).norm()


def test_the_assignment_is_the_best_over_every_permutation_at_a_small_width(digits):
    model, a = trained(3, 5, digits)
    _, b = trained(4, 5, digits)
    shape = shape_of(model)
    fa, fb = unit_features(shape, a), unit_features(shape, b)
    x = digits.x_train[:400]
    ha, hb = hidden_activations(shape, a, x), hidden_activations(shape, b, x)
    with np.errstate(invalid="ignore", divide="ignore"):  # a dead unit has no correlation: 0, as in the library
        correlation = np.nan_to_num(np.corrcoef(ha.T, hb.T)[:5, 5:])
    by_weights = {p: sum(fa[j] @ fb[p[j]] for j in range(5)) for p in itertools.permutations(range(5))}
    by_activations = {p: sum(correlation[j, p[j]] for j in range(5)) for p in itertools.permutations(range(5))}
    pi = tuple(weight_matching(shape, a, b).tolist())
    assert by_weights[pi] == pytest.approx(max(by_weights.values()), rel=1e-12)
    pi = tuple(activation_matching(shape, a, b, x).tolist())
    assert by_activations[pi] == pytest.approx(max(by_activations.values()), rel=1e-9)


def test_alignment_refuses_what_it_cannot_align():
    from minima.models import mlp

    with pytest.raises(ValueError, match="coordinate descent"):
        shape_of(mlp(10, [4, 4], 3, bias=True))
    shape = shape_of(architecture("mlp-3", 10, n_inputs=4))
    with pytest.raises(ValueError, match="permutation of the 3 hidden units"):
        permute(shape, torch.zeros(shape.dim), [0, 0, 1])
    with pytest.raises(ValueError, match=r"a point of this MLP is \(55,\)"):
        permute(shape, torch.zeros(54), [0, 1, 2])
