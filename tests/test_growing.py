"""GrowingNet against a naive per-neuron oracle, the invariants of Algorithm 1, and growth in training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from minima import growing
from minima.growing import (GrowingNet, GrowthError, GrowthSchedule, double_backward,
                            fan_in_for_budget, fully_connected_parameters)
from minima.models import mlp

ACT = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def naive_forward(net: GrowingNet, x: torch.Tensor, W: torch.Tensor | None = None,
                  b: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's recursion z_i = sum_j sigma_j(z_j) w_ji (+ b_i), neuron by neuron in topological
    order; ``W`` ``(n, n)`` and ``b`` ``(n - n_inputs,)`` by neuron id default to the network's."""
    dense, mask, depth = net.to_dense()
    W = dense.to(x.dtype) if W is None else W
    if b is None and net.bias is not None:
        b = net.in_id_order(net.bias.detach())
    out = {}
    order = sorted(range(net.n), key=lambda i: (int(depth[i]), i))
    outputs, inputs = set(net.output_ids.tolist()), set(net.input_ids.tolist())
    for i in order:
        if i in inputs:
            out[i] = x[:, i]
            continue
        z = sum(out[j] * W[j, i] for j in torch.nonzero(mask[:, i]).flatten().tolist())
        if net.bias is not None:
            z = z + b[i - net.n_inputs]
        out[i] = z if i in outputs else ACT[net.activation](z)
    return torch.stack([out[i] for i in net.output_ids.tolist()], dim=1)


def longest_path_depths(n, src, dst, n_inputs):
    """Independent oracle: relax d(i) = max(d(j) + 1) to a fixed point."""
    depth = np.zeros(n, np.int64)
    depth[n_inputs:] = 1
    for _ in range(n):
        new = depth.copy()
        np.maximum.at(new, dst, depth[src] + 1)
        if np.array_equal(new, depth):
            return depth
        depth = new
    raise AssertionError("cycle")


def check_invariants(net: GrowingNet, initial_params: int, total_fan_in: int):
    depth = longest_path_depths(net.n, net.src, net.dst, net.n_inputs)
    assert np.array_equal(depth, net.depth), "stored depths are not the longest paths"
    assert np.all(net.depth[net.dst] > net.depth[net.src]), "an edge does not go strictly deeper"
    D = net.depth.max()
    assert set(np.flatnonzero(net.depth == D)) == set(net.output_ids), "outputs not alone at max depth"
    assert np.all(net.pi0[np.isin(net.dst, net.output_ids)]), "an edge into an output is not in pi0"
    assert net.num_parameters() == initial_params + total_fan_in
    assert int(net.mask.sum()) == len(net.src) and len(set(zip(net.src, net.dst))) == len(net.src)
    W, mask, _ = net.to_dense()
    assert torch.all(W[~mask] == 0), "weights off the edge set are not zero"
    # every hidden neuron has a child (no dead neuron) and a pi0 parent
    assert set(net.src) >= set(net.hidden_ids)
    assert set(net.dst[net.pi0]) >= set(net.hidden_ids)


def random_net(activation: str, bias: bool, insertions: int) -> GrowingNet:
    net = GrowingNet(6, 3, activation=activation, bias=bias, seed=3, device="cpu", dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for _ in range(insertions):
        net.insert(int(torch.randint(1, 6, (1,), generator=gen)), gen)
    return net


@pytest.mark.parametrize("activation, bias", [("relu", False), ("tanh", True), ("sigmoid", False)])
def test_forward_and_gradients_match_naive_recursion(activation, bias):
    assert_matches_naive_recursion(random_net(activation, bias, 300), bias)


@pytest.mark.parametrize("insertions", [0, 1, 2, 5, 300])
def test_gradients_match_on_shallow_nets_and_with_every_level_on_the_thread_pool(insertions, monkeypatch):
    """Nets with no hidden level, only the first level (which pulls its derivative), or a few;
    and every level GEMM switching to the CPU thread pool, as the wide levels of big nets do."""
    monkeypatch.setattr(growing.kernel.Plan, "PARALLEL_FROM", 0)
    assert_matches_naive_recursion(random_net("relu", True, insertions), True)


def assert_matches_naive_recursion(net: GrowingNet, bias: bool) -> None:
    x = torch.randn(17, 6, dtype=torch.float64)
    expected = naive_forward(net, x)
    assert torch.allclose(net(x), expected, rtol=1e-10, atol=1e-12)
    with double_backward():
        assert torch.allclose(net(x), expected, rtol=1e-10, atol=1e-12)
    # gradients with respect to the edge weights: naive recursion on a differentiable W
    W_leaf = net.to_dense()[0].requires_grad_(True)
    b_leaf = net.in_id_order(net.bias.detach()).requires_grad_(True) if bias else None
    loss_naive = naive_forward(net, x, W_leaf, b_leaf).pow(2).sum()
    g_naive, *g_bias = torch.autograd.grad(loss_naive, [W_leaf] + ([b_leaf] if bias else []))
    loss = net(x).pow(2).sum()
    loss.backward()
    expected_grad = g_naive[:, net.n_inputs:] * net.in_id_order(net.mask)
    assert torch.allclose(net.in_id_order(net.weight.grad), expected_grad, rtol=1e-9, atol=1e-11)
    if bias:
        assert torch.allclose(net.in_id_order(net.bias.grad), g_bias[0], rtol=1e-9, atol=1e-11)


def test_float32_forward_matches_after_hundreds_of_insertions():
    net = GrowingNet(20, 4, seed=11, device="cpu")
    net.grow(400, 4)
    x = torch.randn(8, 20)
    expected = naive_forward(net, x.double()).float()
    assert torch.allclose(net(x), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_invariants_after_thousands_of_insertions(seed):
    gen = torch.Generator().manual_seed(seed)
    net = GrowingNet(50, 3, seed=seed, device="cpu")
    initial, total = net.num_parameters(), 0
    for step in range(1500):
        fan_in = int(torch.randint(1, 20, (1,), generator=gen))
        net.insert(fan_in, gen)
        total += fan_in
        if step % 500 == 499:  # checked at 500, 1000, 1500 neurons
            check_invariants(net, initial, total)


@pytest.mark.parametrize("seed", range(4))
def test_each_insertion_follows_algorithm_1(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    net = GrowingNet(4, 2, seed=seed, device="cpu")
    for _ in range(300):
        depth, src, dst, pi0 = net.depth.copy(), net.src.copy(), net.dst.copy(), net.pi0.copy()
        weights = {(int(a), int(b)): float(w) for a, b, w in zip(src, dst, net.edge_weights())}
        fan_in = int(torch.randint(1, 4, (1,), generator=gen))
        new = net.insert(fan_in, gen)
        record = net.history[-1]
        j = record["primary_parent"]
        D = depth[net.n_inputs]
        assert depth[j] < D and net.depth[new] == depth[j] + 1 == record["depth"]
        parents = net.src[net.dst == new]
        assert len(parents) == fan_in and j in parents and np.all(depth[parents] <= depth[j])
        now = {(int(a), int(b)): (float(w), bool(p)) for a, b, w, p in
               zip(net.src, net.dst, net.edge_weights(), net.pi0)}
        for e in np.flatnonzero(src == j):
            i = int(dst[e])
            should_move = depth[i] > depth[j] + 1 or (depth[i] == depth[j] + 1 and pi0[e])
            assert ((new, i) in now) == should_move and ((j, i) in now) != should_move
            if should_move:  # the weight and the pi0 flag travel with the edge
                assert now[(new, i)] == (weights[(j, i)], bool(pi0[e]))
        assert now[(j, new)][1] and sum(now[(p, new)][1] for p in parents) == 1
        assert len(record["moved_children"]) >= 1, "the new neuron inherited no child"


def test_same_seed_same_network_bit_for_bit():
    nets = []
    for _ in range(2):
        net = GrowingNet(30, 5, seed=42, device="cpu")
        net.grow(60, 7)
        nets.append(net)
    a, b = nets
    assert torch.equal(a.weight, b.weight) and np.array_equal(a.src, b.src) and np.array_equal(a.depth, b.depth)
    c = GrowingNet(30, 5, seed=43, device="cpu")
    c.grow(60, 7)
    assert not torch.equal(a.weight[:30, :5], c.weight[:30, :5])


def test_growth_mid_training_keeps_weights_and_momentum():
    torch.manual_seed(0)
    net = GrowingNet(10, 3, seed=0, device="cpu")
    net.grow(20, 4)
    optimizer = net.adopt(torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3))
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))

    def train(steps):
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()

    train(5)
    before_w = {(int(a), int(b)): float(w) for a, b, w in zip(net.src, net.dst, net.edge_weights())}
    buf = net.in_id_order(optimizer.state[net.weight]["momentum_buffer"])
    before_m = {(int(a), int(b)): float(buf[a, b - 10]) for a, b in zip(net.src, net.dst)}
    src_before = net.src.copy()
    new = net.insert(4)
    moved_from = net.history[-1]["primary_parent"]
    (param,) = [p for g in optimizer.param_groups for p in g["params"] if p.dim() == 2]
    assert param is net.weight, "the optimizer still holds the old weight"
    buf = optimizer.state[net.weight]["momentum_buffer"]
    assert buf.shape == net.weight.shape
    buf, weight = net.in_id_order(buf), net.in_id_order(net.weight.detach())
    for e, (a, b) in enumerate(zip(net.src, net.dst)):
        a, b = int(a), int(b)
        if e < len(src_before):
            key = (a, b) if src_before[e] == a else (moved_from, b)
            assert float(weight[a, b - 10]) == before_w[key] and float(buf[a, b - 10]) == before_m[key]
        else:
            assert b == new and float(buf[a, b - 10]) == 0.0
    train(5)
    assert torch.all(net.weight[~net.mask] == 0), "training moved a weight that is not an edge"
    assert torch.isfinite(net.weight).all()


def test_bad_input_leaves_network_unchanged():
    net = GrowingNet(3, 2, seed=0, device="cpu")
    net.grow(2, 2)
    state = (net.weight.detach().clone(), net.src.copy(), net.depth.copy())
    for fan_in in (50, 0, -1, 2.5):
        with pytest.raises(GrowthError) as error:
            net.insert(fan_in)
        assert "\n" not in str(error.value)
    assert torch.equal(state[0], net.weight) and np.array_equal(state[1], net.src)
    assert np.array_equal(state[2], net.depth)
    for kwargs in (dict(n_inputs=0, n_outputs=2), dict(n_inputs=3, n_outputs=-1)):
        with pytest.raises(GrowthError):
            GrowingNet(**kwargs)
    with pytest.raises(GrowthError, match="unknown activation 'gelu'; choose one of relu"):
        GrowingNet(3, 2, activation="gelu")


@pytest.mark.parametrize("n_in, hidden, n_out", [
    (784, [10], 10), (784, [500], 10), (784, [400, 100], 10), (784, [300, 150, 50], 10),
    (64, [10], 4), (64, [100], 4), (64, [80, 20], 4), (64, [60, 30, 10], 4)])
def test_fan_ins_reach_the_fully_connected_budget_exactly(n_in, hidden, n_out):
    budget = fully_connected_parameters(n_in, hidden, n_out)
    assert budget == sum(p.numel() for p in mlp(n_in, hidden, n_out).parameters())
    fan_ins = fan_in_for_budget(n_in, n_out, sum(hidden), budget)
    assert len(fan_ins) == sum(hidden) and n_in * n_out + sum(fan_ins) == budget
    assert max(fan_ins) - min(fan_ins) <= 1


def test_grown_net_matches_twin_parameter_count_after_real_growth():
    for bias in (False, True):
        budget = fully_connected_parameters(40, [12, 8], 3, bias=bias)
        net = GrowingNet(40, 3, seed=0, bias=bias, device="cpu")
        net.grow(20, fan_in_for_budget(40, 3, 20, budget, bias=bias))
        assert net.num_parameters() == budget == sum(p.numel() for p in mlp(40, [12, 8], 3, bias=bias).parameters())


def test_mlp_init_range_and_shape():
    model = mlp(784, [400, 100], 10, seed=0)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    weights = torch.cat([p.flatten() for p in model.parameters()])
    assert weights.abs().max() <= 0.5 and weights.abs().max() > 0.49


def test_paper_schedules():
    """The schedules the experiments use (Table 1's and the RoBERTa head's phases)."""
    from minima.experiments.table1 import paper_schedule

    assert paper_schedule("MNIST", 10, small=True).events == {5 + 10 * k: 1 for k in range(10)}
    assert paper_schedule("AG News", 100, small=False).events == {5 + 10 * k: 10 for k in range(10)}
    mnist_500 = paper_schedule("MNIST", 500, small=False)
    assert mnist_500.total == 500 and mnist_500.last_epoch == 55
    assert GrowthSchedule.phases(1024, (2, 5, 7)).events == {2: 342, 5: 341, 7: 341}


def test_schedule_callback_inserts_on_time_with_the_planned_fan_ins():
    schedule = GrowthSchedule.regular(units=2, every=3, start=1, total=5)
    assert schedule.events == {1: 2, 4: 2, 7: 1}
    net = GrowingNet(8, 2, seed=0, device="cpu")
    fan_ins = [2, 3, 4, 5, 6]
    inserted = [schedule.on_epoch_start(epoch, net, fan_ins) for epoch in range(10)]
    assert [len(i) for i in inserted] == [0, 2, 0, 0, 2, 0, 0, 1, 0, 0]
    assert net.num_parameters() == 16 + sum(fan_ins)


def test_fused_kernel_accumulates_two_forward_passes_and_follows_storage_changes():
    """The kernel reuses workspaces and views: two forward passes before one backward pass
    (gradient accumulation), a deep copy, a dtype change and loaded weights must all see
    the right numbers (compared with the plain autograd path)."""
    import copy

    net = GrowingNet(8, 3, seed=5, device="cpu")
    net.grow(40, 3)
    x1, x2 = torch.randn(6, 8), torch.randn(6, 8)
    (net(x1).pow(2).sum() + net(x2).sin().sum()).backward()
    fused_grad, net.weight.grad = net.weight.grad.clone(), None
    with double_backward():
        (net(x1).pow(2).sum() + net(x2).sin().sum()).backward()
    assert torch.allclose(fused_grad, net.weight.grad, rtol=1e-5, atol=1e-6)
    # inputs that require gradients (a head on a fine-tuned encoder): d loss / d x as well
    grads = []
    for plain in (False, True):
        x = x1.clone().requires_grad_(True)
        with double_backward() if plain else torch.enable_grad():
            net(x).pow(2).sum().backward()
        grads.append(x.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6) and grads[0].abs().sum() > 0

    twin = copy.deepcopy(net)
    before = net(x1).detach()
    with torch.no_grad():
        twin.weight.mul_(2)
    assert torch.equal(net(x1), before) and not torch.allclose(twin(x1), before)

    net.double()
    assert torch.allclose(net(x1.double()), naive_forward(net, x1.double()), rtol=1e-10, atol=1e-12)
    net.load_state_dict(twin.double().state_dict())
    assert torch.allclose(net(x1.double()), naive_forward(net, x1.double()), rtol=1e-10, atol=1e-12)
    assert torch.allclose(net(x1.double()), twin(x1.double()))


def test_the_direct_map_and_collapse_onto_it():
    from minima.growing import GrowingNet, collapsed, direct_share, hidden_part

    net = GrowingNet(6, 3, seed=0, device="cpu")
    assert direct_share(net) == 1.0  # the starting network is the direct map alone
    net.grow(4, 3)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    before = net(x).detach()
    share, effect = hidden_part(net, x)
    assert 0 < share < 1 and effect > 1e-3 and not collapsed(effect)
    assert torch.equal(net(x), before), "hidden_part restores the weights it zeroes"
    # the direct map's edges, counted by hand from the graph: an input straight to an output
    direct = sum(1 for s, d in zip(net.src, net.dst) if s in set(net.input_ids) and d in set(net.output_ids))
    assert direct_share(net) == pytest.approx(direct / len(net.src))
    # zero every edge off the direct map by hand: the net is then its direct map, collapsed
    from minima.growing import direct_mask
    with torch.no_grad():
        net.weight.mul_(direct_mask(net).to(net.weight.dtype))
    share, effect = hidden_part(net, x)
    assert share == 0 and effect == 0 and collapsed(effect)
