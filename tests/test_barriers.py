"""The no-barriers experiment: run keys, the run cache, and the summary columns on a hand-built graph."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from minima.experiments import barriers
from minima.data import TrainTest
from minima.core.parameters import FlatView
from minima.paths.landscape import MinimaGraph
from minima.runs import spec_key


def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(120, 1, 4, 4, generator=g)
    y = (x.flatten(1).sum(1) > 8).long()
    return TrainTest(x[:100], y[:100], x[100:], y[100:], 2)


def tiny_settings(**changes):
    base = barriers.Settings("toy", "mlp-4", seeds=(0, 1), epochs=2, lr=0.1, batch_size=20, neb_batch_size=50,
                             cycle_scale=0.001, max_paths=1, eval_subset=50)
    return dataclasses.replace(base, **changes)


def test_minimum_runs_depend_on_the_training_settings_only():
    """A path setting (max_paths, cycle_scale) must not retrain the minima; a training setting must."""
    data = tiny_data()
    keys = [spec_key(r) for r in barriers.minimum_runs(tiny_settings(), data)]
    assert len(set(keys)) == 2
    assert [spec_key(r) for r in barriers.minimum_runs(tiny_settings(max_paths=5, cycle_scale=0.5), data)] == keys
    for change in (dict(epochs=3), dict(lr=0.2), dict(batch_size=10), dict(weight_decay=0.0), dict(architecture="mlp-8")):
        assert not set(spec_key(r) for r in barriers.minimum_runs(tiny_settings(**change), data)) & set(keys), change


def test_cached_minima_and_paths_are_reused_and_changed_settings_recompute(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMA_RUNS_CACHE", str(tmp_path))
    calls = []
    original = barriers.train_minimum
    monkeypatch.setattr(barriers.minimum, "train_minimum", lambda *a, **k: calls.append(1) or original(*a, **k))
    data = tiny_data()
    first = barriers.explore(tiny_settings(), data, executor="serial")
    graph, found = first.graph, first.minima
    assert len(calls) == 2 and len(graph.paths) == 1 and set(found) == {"0", "1"} and not first.failures
    assert set(graph.paths[("0", "1")]["certificate_saddle"]) >= {"lambda_min", "lambda_max", "verdict"}
    again = barriers.explore(tiny_settings(), data, executor="serial")
    assert len(calls) == 2, "cached minima were retrained"
    assert again.graph.paths[("0", "1")]["saddle_energy"] == graph.paths[("0", "1")]["saddle_energy"]
    barriers.explore(tiny_settings(epochs=3), data, executor="serial")
    assert len(calls) == 4, "a changed setting must retrain"


def test_all_pairs_and_the_spectrum_off_the_trivial_symmetries(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMA_RUNS_CACHE", str(tmp_path))
    data = tiny_data()
    data.x_train[:, 0, 0, 0] = 0.0  # an input that is zero in every training example: at least 4 data-null directions
    exploration = barriers.explore(tiny_settings(seeds=(0, 1, 2), pairs="all", max_paths=1), data, executor="serial")
    rows = barriers.path_rows(exploration)
    assert sorted(r["pair"] for r in rows) == ["0-1", "0-2", "1-2"], "n (n - 1) / 2 paths, max_paths aside"
    assert sum(r["in_tree"] for r in rows) == 2 and all(r["hidden"] == 4 for r in rows)
    minima = barriers.minima_rows(exploration)
    assert len(minima) == 3 and set(barriers.MINIMA_COLUMNS) <= set(minima[0])
    for row in minima:
        assert row["n_params"] == 16 * 4 + 4 + 4 * 2 + 2
        assert row["n_trivial"] == 4 + 4 + 1 and row["n_null"] >= 4
        assert row["n_params"] - row["n_trivial"] - row["n_null"] <= row["n_complement"] <= row["n_params"] - row["n_trivial"]
        assert 0 <= row["smallest_nontrivial"] <= 1 and row["lambda_max_data"] > 0
        assert 0 <= row["nontrivial_vanishing"] <= row["n_complement"]
    small = barriers.explore(tiny_settings(spectrum_max_params=10), data, executor="serial")
    assert "nontrivial_vanishing" not in barriers.minima_rows(small)[0], "too large for the exact spectrum: not computed"
    with pytest.raises(ValueError, match="pairs='some'"):
        barriers.explore(tiny_settings(pairs="some"), data, executor="serial")


def test_summary_columns_on_a_hand_built_graph():
    graph = MinimaGraph()
    for key, energy in (("a", 0.01), ("b", 0.03), ("c", 0.02)):
        graph.add_minimum(key, energy)

    def path(energies, test_loss, test_error, straight_max):
        n = len(energies)
        return {"saddle_energy": max(energies), "energies": energies, "position": [k / (n - 1) for k in range(n)],
                "is_pivot": [True] * n, "metrics": {"test loss": test_loss, "test error": test_error},
                "straight": {"energies": [0.0, straight_max, 0.0]}}

    graph.add_path("a", "b", path([0.01, 0.05, 0.03], [0.3, 0.40, 0.35], [0.1, 0.12, 0.11], 2.0))
    graph.add_path("b", "c", path([0.03, 0.07, 0.02], [0.35, 0.50, 0.31], [0.11, 0.20, 0.10], 4.0))
    graph.add_path("a", "c", path([0.01, 0.09, 0.02], [0.3, 0.9, 0.31], [0.1, 0.5, 0.10], 9.0))  # not in the MST
    minima = {key: barriers.MinimumRecord(torch.zeros(1), (), {}, graph.minima[key], loss, error, 2.3)
              for key, (loss, error) in {"a": (0.30, 0.10), "b": (0.35, 0.11), "c": (0.31, 0.10)}.items()}
    row = barriers.summary_row(barriers.Exploration(tiny_settings(), graph, minima))
    assert row["MST edges"] == 2 and row["paths"] == 3
    assert row["train minima"] == pytest.approx(0.02)
    assert row["train saddles"] == pytest.approx(0.06)  # (0.05 + 0.07) / 2, the MST edges only
    assert row["factor"] == pytest.approx(3.0)
    assert row["straight-line barrier"] == pytest.approx(3.0)
    assert row["test minima"] == pytest.approx(0.32)
    assert row["test saddles"] == pytest.approx(0.45)  # test loss at each saddle: (0.40 + 0.50) / 2
    assert row["test error minima %"] == pytest.approx(100 * 0.31 / 3)
    assert row["test error saddles %"] == pytest.approx(16.0)
    assert row["error rise %"] == pytest.approx(16.0 - 100 * 0.31 / 3)


def test_curvature_table_lists_every_minimum_then_every_saddle_with_where_it_lies():
    graph = MinimaGraph()
    for key in "abc":
        graph.add_minimum(key, 0.1)
    certificate = lambda low: {"train_loss": 0.2, "grad_norm": 0.01, "lambda_max": 10.0, "lambda_min": low,
                               "verdict": "minimum" if low >= 0 else "negative curvature"}
    graph.add_path("b", "a", {"saddle_energy": 0.3, "saddle_position": 0.5, "certificate_saddle": certificate(-2.0)})
    graph.add_path("b", "c", {"saddle_energy": 0.1, "saddle_position": 1.0, "certificate_saddle": certificate(0.5)})
    minima = {key: barriers.MinimumRecord(torch.zeros(1), (), certificate(0.1), 0.1, 0.3, 0.1, 2.3) for key in "abc"}
    table = barriers.curvature_table([barriers.Exploration(tiny_settings(), graph, minima)])
    assert list(table.columns) == list(barriers.CURVATURE_COLUMNS)
    assert table.point.tolist() == ["minimum a", "minimum b", "minimum c", "saddle a-b (at 0.50)",
                                    "saddle b-c (at an end: the higher minimum)"]
    assert table["lambda_min / lambda_max"].tolist() == pytest.approx([0.01, 0.01, 0.01, -0.2, 0.05])
    from minima.book import barriers_summaries

    assert barriers_summaries.interior_saddles_sentence(table) == \
        "1 of 1 interior saddles have a negative eigenvalue (most negative -2)"
    assert barriers_summaries.interior_saddles_sentence(table.iloc[:3]) == "no saddle lies inside its path"


def digits_data(n=400):
    from minima import data as datasets

    train, test = datasets.load("digits", "train"), datasets.load("digits", "test")
    return TrainTest(train.inputs[:n], train.targets[:n], test.inputs, test.targets, 10)


def test_minima_on_digits_are_certified_and_the_results_rows_carry_the_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMA_RUNS_CACHE", str(tmp_path))
    settings = barriers.Settings("digits", "mlp-16", seeds=(0, 1, 2), epochs=40, lr=0.2, batch_size=32,
                                 neb_batch_size=100, cycle_scale=0.002, max_paths=2, eval_subset=400,
                                 max_epochs=60, max_extra_cycles=3, max_doublings=1, aligned_autoneb=True)
    exploration = barriers.explore(settings, digits_data())
    graph, found = exploration.graph, exploration.minima
    for record in found.values():
        certificate = record.certificate
        assert certificate["verdict"] == "minimum", certificate
        assert certificate["lambda_min"] / certificate["lambda_max"] >= -0.01
    rows = barriers.path_rows(exploration)
    assert len(rows) == 2  # a tree on three minima
    for row in rows:
        assert set(barriers.PATH_COLUMNS) <= set(row)
        a, b = row["pair"].split("-")
        assert row["train_loss_start"] == graph.minima[a] and row["verdict_start"] == "minimum"
        assert row["train_loss_saddle"] >= max(row["train_loss_start"], row["train_loss_end"]) - 1e-12
        assert row["cycles"] >= 14 and row["saddle_change_last_cycles"] >= 0
        assert 0 <= row["saddle_position"] <= 1 and 0 <= row["test_error_saddle"] <= 100
        saddle = graph.paths[(a, b)]["certificate_saddle"]
        assert (row["lambda_min_saddle"], row["lambda_max_saddle"]) == (saddle["lambda_min"], saddle["lambda_max"])
        if not row["saddle_at_an_end"]:  # an interior highest point of a converged path: a direction goes down
            assert row["lambda_min_saddle"] < 0
        # the doubling certificate: the schedule (32 steps), then once with cycles twice as long
        passes = [float(v) for v in row["saddle_passes"].split(";")]
        assert row["saddle_certificate"] in ("converged", "budget-limited") and len(passes) == 2
        assert row["budget_steps"] == sum(h.get("steps", 0) for h in graph.paths[(a, b)]["history"]) >= 3 * 32
        assert row["train_loss_saddle"] == pytest.approx(passes[-1]) and row["budget_factor"] == 2
        assert (row["saddle_certificate"] == "converged") == (passes[0] - passes[1] <= 0.05 * max(
            passes[0] - max(row["train_loss_start"], row["train_loss_end"]), 0))
        # the straight lines to the aligned copies start and end at the two minima's energies, and
        # AutoNEB ran again from the aligned ends exactly where the weight-matched line is below the saddle
        path = graph.paths[(a, b)]
        for method in ("weight", "activation"):
            energies = path["aligned_lines"][method]["energies"]
            assert energies[0] == pytest.approx(row["train_loss_start"], rel=1e-5)
            assert energies[-1] == pytest.approx(row["train_loss_end"], rel=1e-5), "the aligned copy is the same function"
        lower = row["weight_matched_barrier"] < row["train_loss_saddle"]
        assert lower == ((a, b) in exploration.aligned_paths) == (row["aligned_certificate"] != "not run")
        assert math.isfinite(row["weight_matched_fraction"]) and math.isfinite(row["activation_matched_fraction"])


def test_recipes_override_by_architecture_prefix_and_refuse_unknown_keys():
    defaults = dict(epochs=164, lr=0.1, batch_size=128, max_epochs=200)
    densenet = {"densenet": {"epochs": 300, "batch_size": 64}}
    assert barriers.recipe("densenet-40-12", defaults, densenet) == dict(defaults, epochs=300, batch_size=64)
    assert barriers.recipe("resnet-20", defaults, densenet) == defaults
    with pytest.raises(ValueError, match="unknown keys \\['momentum'\\]"):
        barriers.recipe("resnet-20", defaults, {"resnet": {"momentum": 0.8}})
    by_name = {"mlp": {"lr": 0.05}, "mlp-1": {"epochs": 1}, "fashion-10k": {"lr": 0.02},
               "fashion-10k mlp-4": {"batch_size": 16}}
    assert barriers.recipe("mlp-16", defaults, by_name, "mnist-10k") == dict(defaults, lr=0.05)  # "mlp-1" is no width
    assert barriers.recipe("mlp-4", defaults, by_name, "fashion-10k") == dict(defaults, lr=0.02, batch_size=16)
    grid = barriers.plan(["mnist-10k", "fashion-10k"], {"mnist-10k": ["mlp-2"], "fashion-10k": ["mlp-4", "mlp-16"]},
                         defaults, by_name, seeds=(0, 1))
    assert list(grid) == [("mnist-10k", "mlp-2"), ("fashion-10k", "mlp-4"), ("fashion-10k", "mlp-16")]
    assert grid[("fashion-10k", "mlp-4")].batch_size == 16 and grid[("mnist-10k", "mlp-2")].lr == 0.05
    assert grid[("fashion-10k", "mlp-16")].seeds == (0, 1)


def test_architectures_explored_together_equal_each_explored_alone(tmp_path, monkeypatch):
    """explore_all batches every architecture's runs (tree and all-pairs side by side), from
    an empty cache each time: the minima and paths are those of each exploration alone."""
    data = tiny_data()
    plan = [tiny_settings(seeds=(0, 1, 2), max_paths=2), tiny_settings(architecture="mlp-2", pairs="all")]
    monkeypatch.setenv("MINIMA_RUNS_CACHE", str(tmp_path / "together"))
    together = barriers.explore_all(plan, data, executor="serial")
    monkeypatch.setenv("MINIMA_RUNS_CACHE", str(tmp_path / "alone"))
    alone = [barriers.explore(settings, data, executor="serial") for settings in plan]
    for joint, single in zip(together, alone):
        assert joint.settings == single.settings and set(joint.minima) == set(single.minima)
        for key in single.minima:
            assert torch.equal(joint.minima[key].point, single.minima[key].point)
        assert joint.graph.paths.keys() == single.graph.paths.keys()
        for pair, path in single.graph.paths.items():
            assert joint.graph.paths[pair]["saddle_energy"] == path["saddle_energy"]
    assert len(together[0].graph.paths) == 2 and len(together[1].graph.paths) == 1


def test_sgd_cut_short_is_finished_by_lbfgs_to_a_certified_minimum_of_the_same_objective():
    """Two SGD epochs leave a digits minimum uncertified; the L-BFGS finish must reach the
    certificate for the objective with weight decay (its gradient, not the data loss's, is small)."""
    data = digits_data(400)
    run = barriers.MinimumRun(data, "mlp-8", 0, epochs=2, lr=0.05, batch_size=32, weight_decay=1e-3, max_epochs=2,
                              eval_subset=200, neb_batch_size=200)
    unfinished = run.run()
    assert unfinished.certificate["verdict"] != "minimum" and unfinished.finish == "none"
    finished = dataclasses.replace(run, finish_rounds=30, finish_iterations=25).run()
    assert finished.certificate["verdict"] == "minimum", finished.certificate
    assert finished.finish.startswith("L-BFGS, ") and len(finished.finish_losses) >= 1
    assert finished.curve == unfinished.curve, "the finish must not rewrite SGD's curve"
    model = barriers.make_model("mlp-8", data)
    FlatView(model).load(finished.point)
    parameters = list(model.parameters())
    loss = torch.nn.functional.cross_entropy(model(data.x_train), data.y_train)
    objective = loss + 1e-3 / 2 * sum((p * p).sum() for p in parameters)
    gradient = torch.cat([g.flatten() for g in torch.autograd.grad(objective, parameters)])
    assert abs(float(gradient.norm()) - finished.certificate["grad_norm"]) < 1e-4
    assert finished.certificate["grad_norm"] < 0.1 * unfinished.certificate["grad_norm"]
    rows = barriers.minima_rows(barriers.Exploration(tiny_settings(), MinimaGraph(), {"0": finished}))
    assert rows[0]["finish"] == finished.finish and rows[0]["collapsed"] is False


def test_collapse_flags_all_dead_units_and_constant_predictions():
    data = digits_data(200)
    model = barriers.make_model("mlp-4", data)
    assert not barriers.collapse(model, data)[1], "an untrained network predicts more than one class"
    with torch.no_grad():
        model[1].bias.fill_(-100.0)  # every hidden unit silent on every image: the constant predictor
    assert barriers.collapse(model, data) == (4, True)
    with torch.no_grad():
        model[1].bias.fill_(0.0)
        model[3].bias.copy_(torch.tensor([100.0] + [0.0] * 9))  # units alive, but one class always wins
    dead, collapsed = barriers.collapse(model, data)
    assert dead < 4 and collapsed


def test_the_papers_saddles_measured_as_ours_span_its_stated_range():
    fractions = barriers.paper_excess_fractions()
    assert len(fractions) == 10
    assert round(fractions.min(), 4) == 0.0035 and round(fractions.max(), 3) == 0.075
    resnet20 = fractions[("CIFAR-10", "resnet-20")]
    assert abs(resnet20 - (0.034 - 0.016) / (math.log(10) - 0.016)) < 1e-12
