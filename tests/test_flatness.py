"""Hessian-vector products and eigenvalues against exact Hessians and closed forms; invariances."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minima.geometry.flatness import measure
from minima.core.hessian import FlatnessError, HessianOperator
from minima.core.spectrum import density_on_grid, hutchinson_trace, lanczos, power_iteration, spectral_density
from minima.growing import GrowingNet, double_backward
from minima.models import mlp

CE = F.cross_entropy


def toy_data(n=60, d=6, classes=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g)


def exact_hessian(model, x, y):
    """torch.func.hessian of the mean loss over the flat parameters (the oracle)."""
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]

    def loss(flat):
        chunks = flat.split([p.numel() for p in params])
        tensors = {n: c.view_as(p) for n, c, p in zip(names, chunks, params)}
        with double_backward():
            return CE(torch.func.functional_call(model, tensors, (x,)), y)

    return torch.func.hessian(loss)(torch.cat([p.flatten() for p in params]))


def relative(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("method", ["double_backward", "forward_over_reverse"])
def test_hvp_and_eigenvalues_match_exact_hessian_float64(method):
    x, y = toy_data()
    model = mlp(6, [5, 4], 3, bias=True, activation="tanh", seed=1).double()
    H = exact_hessian(model, x, y)
    op = HessianOperator(model, CE, [(x[:25], y[:25]), (x[25:], y[25:])], method=method)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        v = torch.randn(op.dim, generator=g, dtype=torch.float64)
        assert relative(op.matvec(v), H @ v) < 1e-8
    exact = torch.linalg.eigvalsh(H)
    top, _, info = lanczos(op.matvec, op.dim, k=2, which="LA", tol=1e-10, generator=g)
    bottom, _, _ = lanczos(op.matvec, op.dim, k=2, which="SA", tol=1e-10, generator=g)
    assert np.allclose(top.numpy(), exact[-2:].flip(0).numpy(), rtol=1e-8)
    assert np.allclose(bottom.numpy(), exact[:2].numpy(), rtol=1e-8, atol=1e-12)
    assert info["converged"] and info["matvecs"] <= op.dim


def test_float32_model_agrees_to_1e_4():
    x, y = toy_data()
    model64 = mlp(6, [8], 3, seed=2).double()
    model32 = mlp(6, [8], 3, seed=2)
    exact = torch.linalg.eigvalsh(exact_hessian(model64, x, y))[-1]
    value = measure(HessianOperator(model32, CE, [(x.float(), y)]), "plain", tol=1e-8)["plain"]
    assert abs(value - float(exact)) / float(exact) < 1e-4


def test_growing_net_hessian_excludes_absent_edges_and_matches_exact():
    x, y = toy_data(d=5, classes=2)
    net = GrowingNet(5, 2, seed=0, device="cpu", dtype=torch.float64, activation="tanh")
    net.grow(8, 3)
    op = HessianOperator(net, CE, [(x, y)])
    assert op.dim == net.num_parameters() == int(net.mask.sum())
    full = exact_hessian(net, x, y)
    keep = net.mask.flatten()
    assert relative(op.to_dense(), full[keep][:, keep]) < 1e-10


def test_softmax_regression_closed_form():
    x, y = toy_data(n=50, d=4, classes=3)
    model = torch.nn.Linear(4, 3, bias=False).double()
    op = HessianOperator(model, CE, [(x, y)])
    p = torch.softmax(model(x), 1).detach()
    # H = mean_n (diag p_n - p_n p_n^T) kron x_n x_n^T, for W of shape (classes, features) row-major
    H = sum(torch.kron(torch.diag(pn) - torch.outer(pn, pn), torch.outer(xn, xn)) for pn, xn in zip(p, x)) / len(x)
    assert relative(op.to_dense(), H) < 1e-12


def quadratic(eigenvalues, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=g, dtype=torch.float64))
    A = Q @ torch.diag(torch.as_tensor(eigenvalues, dtype=torch.float64)) @ Q.T
    return (lambda v: A @ v), A


def test_quadratic_with_clustered_top_and_negative_dominant_eigenvalue():
    spectrum = np.concatenate([[10.0, 10.0 - 1e-5, 10.0 - 2e-5], np.linspace(-3, 5, 197)])
    matvec, _ = quadratic(spectrum)
    top, _, _ = lanczos(matvec, 200, k=3, which="LA", tol=1e-12, generator=torch.Generator().manual_seed(1))
    assert np.allclose(top.numpy(), [10.0, 10.0 - 1e-5, 10.0 - 2e-5], rtol=1e-11)

    spectrum = np.concatenate([[-20.0], np.linspace(-2, 5, 149)])
    matvec, _ = quadratic(spectrum, seed=3)
    g = torch.Generator().manual_seed(2)
    assert lanczos(matvec, 150, which="LA", tol=1e-12, generator=g)[0][0] == pytest.approx(5.0, rel=1e-10)
    assert lanczos(matvec, 150, which="SA", tol=1e-12, generator=g)[0][0] == pytest.approx(-20.0, rel=1e-10)
    assert lanczos(matvec, 150, which="LM", tol=1e-12, generator=g)[0][0] == pytest.approx(-20.0, rel=1e-10)


def test_eigenvectors_satisfy_the_eigen_equation():
    matvec, A = quadratic(np.linspace(-1, 4, 80), seed=5)
    values, vectors, _ = lanczos(matvec, 80, k=3, which="LA", tol=1e-12, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(A @ vectors, vectors * values, atol=1e-9)


def test_power_iteration_stops_early_and_misses():
    spectrum = np.concatenate([[10.0, 9.8, 9.7], np.linspace(0, 9, 297)])
    matvec, _ = quadratic(spectrum, seed=7)
    g = torch.Generator().manual_seed(0)
    value, _, info = power_iteration(matvec, 300, tol=1e-3, generator=g)
    lan, _, lan_info = lanczos(matvec, 300, tol=1e-6, generator=torch.Generator().manual_seed(0))
    assert abs(float(lan[0]) - 10.0) < 1e-9
    assert abs(value - 10.0) > 1e-4, "power iteration's relative-change rule stopped short of the top eigenvalue"
    assert lan_info["matvecs"] < info["matvecs"] or abs(value - 10.0) > 1e-3


def rescale_layers(model, alphas):
    with torch.no_grad():
        for linear, a in zip([m for m in model if isinstance(m, torch.nn.Linear)], alphas):
            linear.weight.mul_(a)


def test_rsi_is_invariant_to_layerwise_rescaling_plain_is_not():
    x, y = toy_data(n=80, d=6, classes=3)
    model = mlp(6, [7, 5], 3, seed=4).double()
    data = [(x, y)]
    before = {m: measure(HessianOperator(model, CE, data), m, tol=1e-12, max_iter=200)[m] for m in ("plain", "rsi")}
    rescale_layers(model, [2.0, 0.25, 2.0])  # product 1: same function
    after = {m: measure(HessianOperator(model, CE, data), m, tol=1e-12, max_iter=200)[m] for m in ("plain", "rsi")}
    assert after["rsi"] == pytest.approx(before["rsi"], rel=1e-10)
    assert abs(after["plain"] - before["plain"]) / before["plain"] > 0.1


def test_elementwise_is_invariant_to_per_neuron_rescaling_rsi_is_not():
    x, y = toy_data(n=80, d=6, classes=3)
    model = mlp(6, [7], 3, seed=5).double()
    data = [(x, y)]
    before = {m: measure(HessianOperator(model, CE, data), m, tol=1e-12, max_iter=200)[m] for m in ("elementwise", "rsi")}
    c = torch.tensor([3.0, 0.5, 1.0, 2.0, 0.2, 1.0, 5.0], dtype=torch.float64)
    with torch.no_grad():  # ReLU is positively homogeneous: scale a neuron's inputs by c, its outputs by 1/c
        model[1].weight.mul_(c[:, None])
        model[3].weight.div_(c[None, :])
    after = {m: measure(HessianOperator(model, CE, data), m, tol=1e-12, max_iter=200)[m] for m in ("elementwise", "rsi")}
    assert after["elementwise"] == pytest.approx(before["elementwise"], rel=1e-9)
    # documented limitation: Rangamani's block measure is not per-neuron invariant
    assert abs(after["rsi"] - before["rsi"]) / before["rsi"] > 1e-3


def test_batches_accumulate_to_the_one_batch_result_symmetry_and_repeatability():
    x, y = toy_data(n=61)
    model = mlp(6, [5], 3, seed=6).double()
    whole = HessianOperator(model, CE, [(x, y)])
    split = HessianOperator(model, CE, [(x[:20], y[:20]), (x[20:50], y[20:50]), (x[50:], y[50:])])
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(whole.dim, generator=g, dtype=torch.float64), torch.randn(whole.dim, generator=g, dtype=torch.float64)
    assert relative(split.matvec(v), whole.matvec(v)) < 1e-12
    assert float(u @ whole.matvec(v)) == pytest.approx(float(v @ whole.matvec(u)), rel=1e-12)
    assert torch.equal(whole.matvec(v), whole.matvec(v))


def test_trace_and_density():
    spectrum = np.linspace(0, 2, 100)
    matvec, _ = quadratic(spectrum, seed=8)
    mean, stderr = hutchinson_trace(matvec, 100, n_samples=400, generator=torch.Generator().manual_seed(0))
    assert abs(mean - spectrum.sum()) < 4 * stderr + 1e-9
    nodes, weights = spectral_density(matvec, 100, n_vectors=3, n_steps=30, generator=torch.Generator().manual_seed(1))
    assert weights.sum() == pytest.approx(1.0, rel=1e-10)
    assert nodes.min() >= -1e-8 and nodes.max() <= 2 + 1e-8
    grid = np.linspace(-1, 3, 2001)
    density = density_on_grid(nodes, weights, grid, sigma=0.05)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, rel=1e-3)
    # first moment of the measure = mean eigenvalue
    assert float((nodes * weights).sum()) == pytest.approx(spectrum.mean(), rel=0.15)


def test_slq_runs_exactly_the_requested_steps():
    """n_steps is honoured: no residual test stops SLQ early (a converged extreme Ritz pair
    has residual 0.0, which once passed the test ``<= tol * scale`` with tol=0 after ~30 steps)."""
    spectrum = np.concatenate([np.linspace(0, 1, 150), [5.0, 8.0]])  # well-separated top: converges early
    matvec, _ = quadratic(spectrum, seed=3)
    nodes, weights = spectral_density(matvec, len(spectrum), n_vectors=2, n_steps=100,
                                      generator=torch.Generator().manual_seed(0))
    assert len(nodes) == len(weights) == 2 * 100


def test_bad_input_one_line_errors():
    x, y = toy_data()
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 3)).double()
    with pytest.raises(FlatnessError, match="Dropout module '1' is in train mode"):
        HessianOperator(model, CE, [(x, y)])
    model.eval()
    with pytest.raises(FlatnessError, match="must return a scalar"):
        HessianOperator(model, lambda o, t: F.cross_entropy(o, t, reduction="none"), [(x, y)]).matvec(
            torch.zeros(sum(p.numel() for p in model.parameters()), dtype=torch.float64))
    with pytest.raises(FlatnessError, match="empty data set"):
        HessianOperator(model, CE, [])
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(FlatnessError) as error:
        measure(HessianOperator(model, CE, [(x, y)]), "plain")
    assert "\n" not in str(error.value) and ("NaN" in str(error.value) or "nan" in str(error.value))
    bn = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.BatchNorm1d(4)).double()
    with pytest.raises(FlatnessError, match="BatchNorm1d"):
        measure(HessianOperator(bn, CE, [(x, y)]), "rsi")
    with pytest.raises(FlatnessError, match="unknown measure"):
        measure(HessianOperator(model, CE, [(x, y)]), "sharpness")


def test_depth_blocks_of_a_grown_net_group_weights_by_the_depth_they_feed():
    """Independent of storage order: the weights of each block are the edges into neurons of
    one depth (compared by value, from the id-ordered edge list)."""
    from minima.geometry.flatness import depth_blocks

    x, y = toy_data(d=5, classes=2)
    net = GrowingNet(5, 2, seed=4, device="cpu", dtype=torch.float64, bias=True)
    net.grow(25, 3)
    op = HessianOperator(net, CE, [(x, y)])
    theta = op.parameters_vector()
    blocks = depth_blocks(op)
    edge_depth = net.depth[net.dst]
    weights = net.edge_weights()
    bias_by_id = net.in_id_order(net.bias.detach())
    depths = sorted(set(edge_depth.tolist()))
    assert len(blocks) == len(depths)
    for block, d in zip(blocks, depths):
        expected = torch.cat([weights[torch.as_tensor(edge_depth == d)],
                              bias_by_id[torch.as_tensor(net.depth[net.n_inputs:] == d)]])
        assert torch.equal(theta[block].sort().values, expected.sort().values)


def test_gradient_graph_is_reused_across_products_and_dropped_when_parameters_change():
    x, y = toy_data(n=50)
    model = mlp(6, [5], 3, seed=0, bias=True).double().eval()
    forwards = []
    model.register_forward_hook(lambda *args: forwards.append(1))
    batches = [(x[:30], y[:30]), (x[30:], y[30:])]
    reused, rebuilt = HessianOperator(model, CE, batches), HessianOperator(model, CE, batches, graph_budget=0)
    vectors = torch.randn(3, reused.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    forwards.clear()
    first = [reused.matvec(v) for v in vectors]
    assert len(forwards) == 2 and reused.graph_bytes > 0  # one forward per batch, then only backward passes
    forwards.clear()
    assert all(torch.allclose(a, rebuilt.matvec(v), rtol=1e-12, atol=1e-14) for a, v in zip(first, vectors))
    assert len(forwards) == 6  # graph_budget=0: rebuilt for every product
    exact = exact_hessian(model, x, y)
    assert torch.allclose(first[0], exact @ vectors[0], rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # an in-place update (an optimizer step) must invalidate the graphs
        next(model.parameters()).add_(0.1)
    forwards.clear()
    after = reused.matvec(vectors[0])
    assert len(forwards) == 2 and torch.allclose(after, exact_hessian(model, x, y) @ vectors[0], rtol=1e-10, atol=1e-12)


def test_graph_budget_keeps_what_fits_and_rebuilds_the_rest():
    x, y = toy_data(n=60)
    model = mlp(6, [5], 3, seed=0).double().eval()
    batches = [(x[:20], y[:20]), (x[20:40], y[20:40]), (x[40:], y[40:])]
    one = HessianOperator(model, CE, batches[:1])
    one.matvec(torch.ones(one.dim, dtype=torch.float64))
    op = HessianOperator(model, CE, batches, graph_budget=int(one.graph_bytes * 1.5))
    v = torch.randn(op.dim, dtype=torch.float64)
    result = op.matvec(v)
    assert len(op._graphs) == 1 and op.graph_bytes == one.graph_bytes
    assert torch.allclose(result, exact_hessian(model, x, y) @ v, rtol=1e-10, atol=1e-12)


def _explicit_scaled_top(H, d):
    """lambda_max of D H D with D = diag(d), by a dense eigensolver (the oracle)."""
    return float(torch.linalg.eigvalsh(d[:, None] * H * d[None, :])[-1])


@pytest.mark.parametrize("case", ["mlp, blocks=None", "mlp, blocks=depth", "grown net, blocks=depth"])
def test_rsi_and_elementwise_are_lambda_max_of_an_explicit_d_h_d(case):
    """D built here by hand: the Frobenius norm of each block (one per tensor, or one per
    layer = weights and bias together), |theta| for elementwise. A block scale other than the
    Frobenius norm (say its largest entry) keeps every invariance test green but fails here."""
    from minima.geometry.flatness import depth_blocks

    x, y = toy_data(n=70, d=5, classes=3)
    if case.startswith("mlp"):
        model = mlp(5, [6, 4], 3, bias=True, activation="tanh", seed=7).double()
        H = exact_hessian(model, x, y)
        params = [p.detach().flatten() for p in model.parameters()]
        if case.endswith("None"):
            groups = [p for p in params]
        else:  # weight and bias of each nn.Linear
            groups = [torch.cat(params[i: i + 2]) for i in range(0, len(params), 2)]
        d_rsi = torch.cat([torch.full_like(g, float(g.norm())) for g in groups])
        theta = torch.cat(params)
    else:
        model = GrowingNet(5, 3, seed=3, device="cpu", dtype=torch.float64, activation="tanh", bias=True)
        model.grow(12, 3)
        operator = HessianOperator(model, CE, [(x, y)])
        keep = torch.cat([model.mask.flatten(), torch.ones(model.bias.numel(), dtype=torch.bool)])
        H = exact_hessian(model, x, y)[keep][:, keep]
        theta = operator.parameters_vector()
        d_rsi = torch.empty_like(theta)
        for block in depth_blocks(operator):  # which coordinates share a depth: tested above by value
            d_rsi[block] = theta[block].norm()
    blocks = None if case.endswith("None") else "depth"
    rsi = measure(HessianOperator(model, CE, [(x, y)]), "rsi", blocks=blocks, tol=1e-12, max_iter=200)["rsi"]
    elementwise = measure(HessianOperator(model, CE, [(x, y)]), "elementwise", tol=1e-12, max_iter=200)["elementwise"]
    assert rsi == pytest.approx(_explicit_scaled_top(H, d_rsi), rel=1e-9)
    assert elementwise == pytest.approx(_explicit_scaled_top(H, theta.abs()), rel=1e-9)
    max_entry = torch.cat([torch.full_like(g, float(g.abs().max())) for g in
                           ([theta[b] for b in depth_blocks(HessianOperator(model, CE, [(x, y)]))]
                            if blocks == "depth" else groups)])
    assert abs(_explicit_scaled_top(H, max_entry) - rsi) / rsi > 1e-3  # the oracle tells the two norms apart


def test_hutchinson_trace_brackets_the_exact_trace_of_a_small_network():
    x, y = toy_data(n=60, d=6, classes=3)
    model = mlp(6, [5, 4], 3, bias=True, activation="tanh", seed=1).double()
    exact = float(torch.trace(exact_hessian(model, x, y)))
    operator = HessianOperator(model, CE, [(x, y)])
    mean, stderr = hutchinson_trace(operator.matvec, operator.dim, n_samples=300,
                                    generator=torch.Generator().manual_seed(0))
    assert abs(mean - exact) < 4 * stderr and stderr < 0.1 * abs(exact)


def test_batched_hessian_columns_equal_one_product_at_a_time():
    """matmat (vmapped forward-over-reverse, chunked) against matvec (reverse-over-reverse) on
    two uneven batches; a chunk size that does not divide the columns."""
    x, y = toy_data(n=50)
    model = mlp(6, [7], 3, seed=1).double().eval()
    op = HessianOperator(model, CE, [(x[:33], y[:33]), (x[33:], y[33:])])
    vectors = torch.randn(op.dim, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = torch.stack([op.matvec(v) for v in vectors.T], dim=1)
    assert relative(op.matmat(vectors, chunk_size=4), expected) < 1e-12
    with pytest.raises(FlatnessError, match="pass \\(dim, k\\)"):
        op.matmat(vectors[:-1])


def test_shifted_and_rescaled_operators_have_the_dense_matrices_spectra():
    """Oracle: ``eigvalsh`` of ``A + s I`` and of ``D A D`` formed densely. Lanczos runs a
    shifted operator on ``A`` and shifts the Ritz values: the eigenvalues, the Ritz history and
    the products must all be those of ``A + s I``."""
    from minima.core.operators import MatrixFree, Rescaled, Shifted

    g = torch.Generator().manual_seed(3)
    m = torch.randn(40, 40, generator=g, dtype=torch.float64)
    a = (m + m.T) / 2
    d = torch.rand(40, generator=g, dtype=torch.float64) + 0.5
    base = MatrixFree(lambda v: a @ v, 40)
    shifted, rescaled = Shifted(base, 0.3), Rescaled(base, d)
    v = torch.randn(40, generator=g, dtype=torch.float64)
    assert torch.allclose(shifted @ v, (a + 0.3 * torch.eye(40, dtype=torch.float64)) @ v)
    assert torch.allclose(rescaled @ v, torch.diag(d) @ a @ torch.diag(d) @ v)
    exact = torch.linalg.eigvalsh(a + 0.3 * torch.eye(40, dtype=torch.float64))
    top, _, info = lanczos(shifted, k=2, which="LA", tol=1e-12, generator=torch.Generator().manual_seed(0))
    assert top.tolist() == pytest.approx(exact[-2:].flip(0).tolist(), rel=1e-10)
    assert info["ritz_history"][-1] == pytest.approx(top.tolist(), rel=1e-12)
    bottom, _, _ = lanczos(shifted, which="SA", tol=1e-12, generator=torch.Generator().manual_seed(0))
    assert float(bottom[0]) == pytest.approx(float(exact[0]), rel=1e-10)
    unshifted, _, _ = lanczos(base, which="SA", tol=1e-12, generator=torch.Generator().manual_seed(0))
    assert float(bottom[0]) == float(unshifted[0]) + 0.3, "the same run, shifted exactly"
    scaled_top, _, _ = lanczos(rescaled, which="LA", tol=1e-12, generator=torch.Generator().manual_seed(0))
    assert float(scaled_top[0]) == pytest.approx(float(torch.linalg.eigvalsh(torch.diag(d) @ a @ torch.diag(d))[-1]),
                                                 rel=1e-10)
    with pytest.raises(TypeError, match="dim"):
        lanczos(lambda v: a @ v)
