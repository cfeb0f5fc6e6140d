"""NEB/AutoNEB on the Mueller-Brown surface, the tangent rule, batching, and the graph of minima."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from minima.paths.landscape import MinimaGraph
from minima.models import mlp
from minima.paths.energy import ModelEnergy
from minima.paths.neb import (NEBError, auto_neb, evaluate_path, improved_tangents, insert_pivots,
                        insertion_points, interpolate, linear_path, respace)

from minima.paths.surfaces import MINIMA, MINIMA_ENERGIES, SADDLE_AB_ENERGY, mueller_brown

MINIMUM_A, MINIMUM_B, MINIMUM_C = MINIMA["A"], MINIMA["B"], MINIMA["C"]
MINIMUM_B_ENERGY = MINIMA_ENERGIES["B"]


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_known_values_of_the_surface():
    energies = mueller_brown(torch.tensor([MINIMUM_A, MINIMUM_B, MINIMUM_C], dtype=torch.float64))
    assert energies.tolist() == pytest.approx([-146.6995, -80.7678, -108.1667], abs=1e-3)


def test_auto_neb_finds_the_saddle_and_the_intermediate_minimum():
    start, end = t(*MINIMUM_A), t(*MINIMUM_C)
    cycles = [dict(steps=200, lr=1e-4)] * 6 + [dict(steps=200, lr=2e-5)] * 4
    path = auto_neb(mueller_brown, start, end, cycles=cycles, n_initial=9)
    straight = linear_path(mueller_brown, start, end, n=20)
    assert path.saddle_energy == pytest.approx(SADDLE_AB_ENERGY, abs=0.2)
    assert straight.saddle_energy > SADDLE_AB_ENERGY + 40, "the straight line must be far higher"
    e = path.energies
    local_minima = [float(e[i]) for i in range(1, len(e) - 1) if e[i] < e[i - 1] and e[i] < e[i + 1]]
    assert any(abs(v - MINIMUM_B_ENERGY) < 0.3 for v in local_minima), local_minima
    assert path.length > path.straight_distance
    assert [h["n_pivots"] for h in path.history][0] == 9 and len(path.history) == 11


def test_tangent_at_monotone_and_extremal_pivots_by_hand():
    points = t(0, 0, 1, 0, 1, 2, 3, 2).view(4, 2)
    # pivot 1: energies rise 0 -> 1 -> 3: uphill neighbour is next, tangent = x2 - x1 = (0, 2)
    # pivot 2: maximum (1, 3, 2): dVmax = 2 (to pivot 1), dVmin = 1 (to pivot 3); E3 > E1 so
    #          tangent = forward * dVmax + backward * dVmin = (2, 0) * 2 + (0, 2) * 1 = (4, 2)
    tangents = improved_tangents(points, t(0, 1, 3, 2))
    assert torch.allclose(tangents[0], t(0, 1))
    assert torch.allclose(tangents[1], t(4, 2) / math.sqrt(20))
    # equal neighbours: the plain sum of both segments
    tangents = improved_tangents(points, t(1, 0, 1, 0))
    assert torch.allclose(tangents[0], t(1, 2) / math.sqrt(5))


def test_respacing_keeps_ends_and_spaces_pivots_equally_along_the_path():
    points = t(0, 0, 0.1, 0, 3, 0, 3, 1, 3, 4).view(5, 2)  # arc length 7, corner at (3, 0)
    out = respace(points)
    assert torch.allclose(out, t(0, 0, 1.75, 0, 3, 0.5, 3, 2.25, 3, 4).view(5, 2))
    straight = torch.stack([t(0, 0), t(0.1, 0), t(0.2, 0), t(2, 0)])
    gaps = (respace(straight)[1:] - respace(straight)[:-1]).norm(dim=1)
    assert torch.allclose(gaps, torch.full_like(gaps, 2 / 3))
    assert torch.equal(out[0], points[0]) and torch.equal(out[-1], points[-1])


def test_insertion_goes_where_the_excess_is_largest():
    def bumpy(p):  # flat along x, with bumps at x = 0.25 (height 1) and x = 0.75 (height 3)
        x = p[:, 0]
        return torch.exp(-((x - 0.25) / 0.03) ** 2) + 3 * torch.exp(-((x - 0.75) / 0.03) ** 2)

    pivots = torch.stack([t(0, 0), t(0.5, 0), t(1, 0)])
    path = evaluate_path(bumpy, pivots, n_sub=9)
    where = insertion_points(path, n_sub=9, threshold=0.2, max_insert=1)
    assert where == [(1, 0.5)]
    both = insertion_points(path, n_sub=9, threshold=0.2, max_insert=2)
    assert both == [(1, 0.5), (0, 0.5)]
    assert insert_pivots(pivots, both)[:, 0].tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert insertion_points(path, 9, threshold=0.5, max_insert=2) == [(1, 0.5)]


@pytest.mark.parametrize("chunk", ["rule", None, 4, "stacked", 0])
def test_batched_energy_and_gradient_equal_a_per_pivot_loop(chunk):
    torch.manual_seed(0)
    model = mlp(20, [16, 8], 4, bias=True, init_range=0.3, seed=0)
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    energy = ModelEnergy(model, F.cross_entropy, [(x, y)], chunk=chunk)
    points = energy.point()[None] + 0.1 * torch.randn(8, energy.dim)
    points.requires_grad_(True)
    batched = energy(points)
    (g_batched,) = torch.autograd.grad(batched.sum(), points)
    loop, g_loop = [], []
    for p in points.detach():
        p = p.clone().requires_grad_(True)
        offset, tensors = 0, {}
        for (name, param) in model.named_parameters():
            tensors[name] = p[offset: offset + param.numel()].view_as(param)
            offset += param.numel()
        value = F.cross_entropy(torch.func.functional_call(model, tensors, (x,)), y)
        loop.append(value.detach())
        g_loop.append(torch.autograd.grad(value, p)[0])
    assert torch.allclose(batched.detach(), torch.stack(loop), rtol=1e-5, atol=1e-6)
    assert torch.allclose(g_batched, torch.stack(g_loop), rtol=1e-4, atol=1e-6)


def test_stacked_mlp_mode_evaluates_metrics_like_vmap_and_refuses_other_models():
    model = mlp(12, [10], 3, bias=False, init_range=0.3, seed=1)
    x, y = torch.randn(50, 12), torch.randint(0, 3, (50,))
    points = ModelEnergy(model, F.cross_entropy, [(x, y)]).point()[None] + 0.2 * torch.randn(5, 12 * 10 + 10 * 3)

    def error(outputs, targets):
        return (outputs.argmax(1) != targets).float().mean()

    values = {chunk: ModelEnergy(model, F.cross_entropy, [(x, y)], chunk=chunk).data_mean(points, metric=error)
              for chunk in (None, "stacked")}
    assert torch.equal(values[None], values["stacked"]) and values[None].max() > 0
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    with pytest.raises(NEBError, match="plain MLP"):
        ModelEnergy(cnn, F.cross_entropy, [(torch.randn(4, 1, 6, 6), torch.zeros(4, dtype=torch.long))], chunk="stacked")


def test_neural_network_path_is_lower_than_the_straight_line():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g)
    y = ((x[:, 0] * x[:, 1]) > 0).long()  # XOR-like: needs the hidden layer
    ends = []
    for seed in (1, 2):
        model = mlp(2, [16], 2, bias=True, init_range=1.0, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(300):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        ends.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    energy = ModelEnergy(mlp(2, [16], 2, bias=True), F.cross_entropy, [(x, y)])
    path = auto_neb(energy, ends[0], ends[1], cycles=[dict(steps=150, lr=0.05)] * 4, n_initial=5)
    straight = linear_path(energy, ends[0], ends[1], n=10)
    assert path.saddle_energy < straight.saddle_energy
    error = lambda o, t: (o.argmax(1) != t).double().mean()  # noqa: E731
    dense = evaluate_path(energy, path.pivots, 9, {"error": lambda pts: energy.data_mean(pts, metric=error)})
    # the error at the saddle, by hand: the highest dense point's parameters in a fresh network
    saddle_point = dense.dense_point(int(torch.as_tensor(dense.energies).argmax()))
    net = mlp(2, [16], 2, bias=True)
    torch.nn.utils.vector_to_parameters(saddle_point.to(torch.float32), net.parameters())
    with torch.no_grad():
        outputs = net(x)
    assert dense.saddle_energy == pytest.approx(float(F.cross_entropy(outputs, y)), rel=1e-5)
    assert dense.at_saddle("error") == pytest.approx(float((outputs.argmax(1) != y).double().mean()), abs=1e-12)


def test_bad_input_and_divergence():
    with pytest.raises(NEBError, match="same shape"):
        linear_path(mueller_brown, t(0, 0), t(0, 0, 0))
    with pytest.raises(NEBError, match="unknown keys \\['learning_rate'\\]"):
        auto_neb(mueller_brown, t(0, 0), t(1, 1), cycles=[dict(steps=1, lr=0.1, learning_rate=1)])
    explode = lambda p: torch.where(p[:, 0] > 0.3, torch.full_like(p[:, 0], float("nan")), p[:, 0] ** 2)  # noqa: E731
    with pytest.raises(NEBError) as error:
        auto_neb(explode, t(0, 0), t(1, 0), cycles=[dict(steps=5, lr=0.01)], n_initial=5)
    assert "cycle 0, step 0" in str(error.value) and error.value.path is not None


def test_interpolation_positions():
    dense, position, is_pivot = interpolate(torch.stack([t(0, 0), t(1, 0), t(1, 3)]), n_sub=1)
    assert dense.tolist() == [[0, 0], [0.5, 0], [1, 0], [1, 1.5], [1, 3]]
    assert position.tolist() == pytest.approx([0, 0.125, 0.25, 0.625, 1])
    assert is_pivot.tolist() == [True, False, True, False, True]


def test_a_dense_point_of_a_path_is_the_interpolated_point():
    g = torch.Generator().manual_seed(0)
    pivots = torch.randn(4, 3, generator=g, dtype=torch.float64)
    path = evaluate_path(lambda p: p.pow(2).sum(1), pivots, n_sub=5)
    dense = interpolate(pivots, 5)[0]
    assert len(dense) == len(path.energies)
    for index in range(len(dense)):
        assert torch.allclose(path.dense_point(index), dense[index], rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------- graph of minima

def hand_graph() -> MinimaGraph:
    graph = MinimaGraph()
    for key, energy in zip("abcd", (0.1, 0.2, 0.3, 0.4)):
        graph.add_minimum(key, energy)
    for a, b, s in (("a", "b", 1.0), ("b", "c", 3.0), ("a", "c", 2.0), ("c", "d", 5.0)):
        graph.add_path(a, b, {"saddle_energy": s})
    return graph


def test_mst_and_minimax_bounds_on_a_hand_made_graph():
    graph = hand_graph()
    assert sorted((min(u, v), max(u, v)) for u, v in graph.mst().edges) == [("a", "b"), ("a", "c"), ("c", "d")]
    assert graph.bound("b", "c") == 2.0  # b-a-c beats the direct 3.0
    assert graph.bound("b", "d") == 5.0
    assert graph.bound("a", "b") == 1.0


def test_highest_tree_edge_and_hardest_minimum_to_leave_by_hand():
    graph = hand_graph()  # tree: a-b 1.0, a-c 2.0, c-d 5.0; the direct b-c (3.0) is not in it
    assert graph.highest_tree_edge() == ("c", "d")
    # highest tree edge at each minimum over its energy: a 2.0 / 0.1, b 1.0 / 0.2, c 5.0 / 0.3, d 5.0 / 0.4
    node, saddle, ratio = graph.highest_escape()
    assert (node, saddle) == ("a", 2.0) and ratio == pytest.approx(20.0)


def test_pair_suggestion_cuts_the_highest_edge_and_stops_when_stable():
    graph = hand_graph()
    # highest MST edge c-d cuts {d} off; untried pairs across: (a,d), (b,d); lowest higher minimum: both 0.4 -> (a,d)
    assert graph.suggest_pair() == ("a", "d")
    graph.add_path("a", "d", {"saddle_energy": 4.0})
    assert graph.suggest_pair() == ("b", "d")
    graph.add_path("b", "d", {"saddle_energy": 4.5})
    assert graph.suggest_pair() is None  # every pair tried
    disconnected = MinimaGraph()
    for key, energy in (("x", 0.5), ("y", 0.1), ("z", 0.2)):
        disconnected.add_minimum(key, energy)
    assert disconnected.suggest_pair() == ("y", "z")


def test_graph_persistence_round_trip(tmp_path):
    graph = hand_graph()
    graph.save(tmp_path / "graph.json")
    again = MinimaGraph.load(tmp_path / "graph.json")
    assert again.minima == graph.minima and again.bounds() == graph.bounds() and again.tried == graph.tried


def test_climbing_image_finds_the_saddle_energy_the_plain_path_misses():
    # the configuration the AutoNEB page publishes: 5 pivots (growing to 7), 8 cycles of 200 steps
    plain = [dict(steps=200, lr=1e-4)] * 6 + [dict(steps=200, lr=2e-5)] * 2
    climbing = [dict(steps=200, lr=1e-4)] * 6 + [dict(steps=200, lr=2e-5, climb=True)] * 2
    start, end = t(*MINIMUM_A), t(*MINIMUM_C)
    paper = auto_neb(mueller_brown, start, end, cycles=plain, n_initial=5)
    climbed = auto_neb(mueller_brown, start, end, cycles=climbing, n_initial=5)
    assert len(paper.pivots) == len(climbed.pivots) == 7
    assert paper.saddle_energy > SADDLE_AB_ENERGY + 0.5  # read off the pivot spacing: -39.73
    assert float(mueller_brown(climbed.pivots).max()) == pytest.approx(SADDLE_AB_ENERGY, abs=0.01)
    assert climbed.saddle_energy == pytest.approx(SADDLE_AB_ENERGY, abs=0.01)


def test_paper_cycles_are_the_papers_schedule():
    from minima.paths.neb import scaled_cycles
    from minima.experiments.papers import AUTONEB_CYCLES as PAPER_CYCLES

    assert len(PAPER_CYCLES) == 14 and sum(c["steps"] for c in PAPER_CYCLES) == 16_000
    assert [(c["steps"], c["lr"], c["insert"]) for c in PAPER_CYCLES] == \
        [(1000, 0.1, True)] * 4 + [(2000, 0.1, False)] * 2 + [(1000, 0.01, True)] * 4 + [(1000, 0.001, True)] * 4
    assert all(c["momentum"] == 0.9 and c["weight_decay"] == 1e-4 for c in PAPER_CYCLES)
    assert [c["steps"] for c in scaled_cycles(0.001)][:6] == [1, 1, 1, 1, 2, 2]


def test_extra_cycles_run_until_the_saddle_has_stopped_moving():
    from minima.paths.neb import is_converged, saddle_change

    start, end = t(*MINIMUM_A), t(*MINIMUM_C)
    short = [dict(steps=10, lr=1e-5)] * 3  # far too short: the saddle falls by 3 a cycle (gap about 110)
    unconverged = auto_neb(mueller_brown, start, end, cycles=short, n_initial=7)
    assert not is_converged(unconverged)
    path = auto_neb(mueller_brown, start, end, cycles=short, n_initial=7, max_extra_cycles=60)
    extra = [h for h in path.history if h.get("extra")]
    assert extra and len(extra) < 60, "extra cycles are added, and stop once the rule holds"
    assert is_converged(path)
    gap = path.saddle_energy - max(float(path.energies[0]), float(path.energies[-1]))
    assert saddle_change(path.history) <= 0.05 * gap
    assert path.saddle_energy < unconverged.saddle_energy - 10


def test_saddle_change_by_hand():
    from minima.paths.neb import saddle_change

    history = [{"saddle_energy": e} for e in (10.0, 6.0, 5.0, 4.5)]
    assert saddle_change(history) == pytest.approx(1.5) and saddle_change(history, cycles=1) == pytest.approx(0.5)
    assert saddle_change(history[:1]) == 0.0


def test_the_doubling_certificate_sees_through_a_short_schedule_that_passes_the_path_rule():
    from minima.paths.neb import is_converged

    start, end = t(*MINIMUM_A), t(*MINIMUM_B)
    short = [dict(steps=5, lr=1e-5)] * 4  # the path rule holds after it, 40 above the saddle
    fooled = auto_neb(mueller_brown, start, end, cycles=short, n_initial=7)
    assert is_converged(fooled) and fooled.saddle_energy > SADDLE_AB_ENERGY + 30 and fooled.budget == {}
    limited = auto_neb(mueller_brown, start, end, cycles=short, n_initial=7, max_doublings=2)
    assert limited.budget["verdict"] == "budget-limited"
    passes = limited.budget["passes"]
    assert [p["factor"] for p in passes] == [1, 2, 4] and [p["steps"] for p in passes] == [20, 60, 140]
    assert passes[0]["saddle_energy"] == pytest.approx(fooled.saddle_energy)
    certified = auto_neb(mueller_brown, start, end, cycles=short, n_initial=7, max_doublings=8)
    assert certified.budget["verdict"] == "converged"
    assert certified.saddle_energy == pytest.approx(SADDLE_AB_ENERGY, abs=1.0), "the certified saddle is the saddle"
    last = certified.budget["passes"]
    assert 3 <= len(last) - 1 < 8, "it stops at the first doubling that no longer lowers the saddle"
    assert sum(h.get("steps", 0) for h in certified.history) == last[-1]["steps"]
    assert {h["pass"] for h in certified.history if h["cycle"] >= 0} == set(range(len(last)))


def test_is_certified_by_hand():
    from minima.paths.neb import doubled, is_certified

    assert is_certified([10.0, 9.65], higher_end=2.0)  # lowered by 0.35 of a gap of 8: under 5 %
    assert not is_certified([10.0, 9.5], higher_end=2.0)
    assert is_certified([10.0, 10.3], higher_end=2.0), "a rise is no drop"
    assert is_certified([2.0, 2.0], higher_end=2.0), "no barrier, and doubling finds none"
    assert not is_certified([10.0], higher_end=2.0), "one run certifies nothing"
    assert [c["steps"] for c in doubled([dict(steps=3, lr=1.0), dict(steps=5, lr=0.1)], 2)] == [12, 20]
