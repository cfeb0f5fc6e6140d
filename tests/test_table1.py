"""Table 1's per-run rows: both protocols, the certificate of each end point, the claim counts."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from minima.book import summaries
from minima.experiments import table1
from minima.core.hessian import HessianOperator
from minima.geometry.certificate import certify
from minima.data import TrainTest, batches
from minima.train import loss_and_accuracy


def digits_task():
    return table1.image_task("digits")


def text_task():
    """A tiny two-class text task with a learned embedding bag (token ids 2..11 vs 12..21)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 2
    x = torch.randint(2, 12, (60, 6), generator=g) + 10 * y[:, None]
    return TrainTest(x[:40], y[:40], x[40:], y[40:], 2, "AG News", "toy text", n_features=8, vocabulary=22)


def test_rows_carry_the_results_columns_and_one_row_checks_by_hand():
    task = digits_task()
    spec = table1.Table1Run(task, 16, "a", 10, 0, lr=0.05, max_epochs=3, schedule_scale=1.0, hessian_subset=150,
                            small=True, train_limit=150, protocols=(table1.Converged(lr=0.1, max_epochs=8, chunk=5),))
    trained = table1.train_run(spec)
    rows = [row.as_row() for row in trained.record.rows]
    results = pd.DataFrame(list(rows))
    assert set(table1.RESULT_COLUMNS) <= set(results.columns)
    assert results.protocol.tolist() == ["paper", "converged"]
    paper, converged = rows
    assert paper["epochs"] == 3 and paper["stopped"] == "max epochs"
    assert converged["epochs"] in (3, 8) and converged["curve"][:3] == paper["curve"]
    # the converged row, recomputed by hand at the model's end point
    net = trained.net
    _, x, y = table1.run.training_data(task, 150, validation=False)  # the stratified trim
    by_hand = certify(HessianOperator(net.eval(), F.cross_entropy, batches(x, y, 1000)),
                      loss_history=[e["loss"] for e in rows[1]["curve"]] + rows[1]["finish losses"], seed=0)
    assert rows[1]["train_loss"] == pytest.approx(by_hand.train_loss, rel=1e-9)
    assert rows[1]["lambda_max"] == pytest.approx(by_hand.lambda_max, rel=1e-6)
    assert rows[1]["verdict"] == by_hand.verdict
    assert rows[1]["test_accuracy"] == loss_and_accuracy(net, task.x_test, task.y_test)[1]


@pytest.mark.parametrize("finish_rounds", [0, 40])
def test_a_run_sgd_cannot_certify_is_finished_by_full_batch_lbfgs(finish_rounds):
    task = digits_task()
    go_on = table1.Converged(lr=0.01, max_epochs=4, chunk=2, finish_rounds=finish_rounds)
    spec = table1.Table1Run(task, 16, "a", 10, 0, lr=0.01, max_epochs=2, schedule_scale=1.0, hessian_subset=150,
                            small=True, train_limit=150, protocols=(go_on,))
    paper, converged = (row.as_row() for row in table1.train_run(spec).record.rows)
    assert paper["verdict"] != "minimum" and converged["epochs"] == 4
    if not finish_rounds:
        assert converged["finish"] == "none" and converged["verdict"] != "minimum"
        return
    assert converged["finish"].startswith("L-BFGS, ") and converged["verdict"] == "minimum"
    assert converged["stopped"] == "certified minimum" and converged["train_loss"] < paper["train_loss"]
    losses = converged["finish losses"]
    assert 0 < len(losses) <= 40 and losses[-1] <= losses[0], "full-batch L-BFGS descends"


def test_text_certificates_use_the_embedding_at_the_end_point():
    task = text_task()
    trained = table1.train_run(table1.Table1Run(task, 4, "a", 4, 0, lr=0.01, max_epochs=2, schedule_scale=1.0,
                                                hessian_subset=40, small=True,
                                                protocols=(table1.Converged(lr=0.05, max_epochs=12, chunk=5),)))
    rows, net, data = [row.as_row() for row in trained.record.rows], trained.net, trained.hessian_data
    assert rows[1]["epochs"] > rows[0]["epochs"], "the converged protocol went on"
    # certified on the features of the trained embedding (not of the paper protocol's end): the
    # certificate's loss is the whole model's training loss at the end point (after the L-BFGS
    # finish, when it ran)
    end_loss = (rows[1]["finish losses"] or [rows[1]["curve"][-1]["loss"]])[-1]
    assert rows[1]["train_loss"] == pytest.approx(end_loss, rel=1e-5)
    with torch.no_grad():
        assert float(F.cross_entropy(net.eval()(data[0][0]), data[0][1])) == pytest.approx(rows[1]["train_loss"], rel=1e-5)


def test_claim_counts_by_hand():
    rows = []
    for protocol, grown, fc, certified in (("paper", 1.0, 2.0, "minimum"), ("converged", 3.0, 2.0, "minimum")):
        for batch, scale in ((10, 1.0), (100, 5.0)):
            rows.append({"protocol": protocol, "task": "MNIST", "hidden": 10, "model": "growing", "batch": batch,
                         "seed": 0, "rsi": grown * scale, "elementwise": grown, "verdict": certified})
            rows.append({"protocol": protocol, "task": "MNIST", "hidden": 10, "model": "a", "batch": batch,
                         "seed": 0, "rsi": fc * scale, "elementwise": fc,
                         "verdict": "minimum" if batch == 10 else "not converged"})
    counts = summaries.table1_claim_counts(pd.DataFrame(rows))
    flatter = counts.loc[(summaries.TABLE1_CLAIMS[0], "paper", "rsi")]
    assert flatter["all runs"] == "2 of 2" and flatter["certified minima only"] == "1 of 1"
    assert counts.loc[(summaries.TABLE1_CLAIMS[0], "converged", "rsi"), "all runs"] == "0 of 2"
    batch = counts.loc[(summaries.TABLE1_CLAIMS[1], "paper", "rsi")]
    assert batch["all runs"] == "2 of 2" and batch["certified minima only"] == "1 of 1"  # the grown pair only
    assert counts.loc[(summaries.TABLE1_CLAIMS[1], "paper", "elementwise"), "all runs"] == "0 of 2"  # equal values: not sharper


def test_per_batch_parameters():
    assert table1.per_batch(150, 16) == 150
    assert table1.per_batch({1: 150, 16: 1000}, 16) == 1000
    with pytest.raises(ValueError, match="batch size 32"):
        table1.per_batch({1: 150, 16: 1000}, 32)


@pytest.mark.parametrize("model", ["a", "growing"])
def test_the_regularised_protocol_ends_at_a_certified_minimum_of_its_own_objective(model):
    task = digits_task()
    decay = 1e-2
    spec = table1.Table1Run(task, 10, model, 10, 0, lr=0.05, max_epochs=6, schedule_scale=0.1, hessian_subset=100,
                            small=True, train_limit=300, protocols=(table1.Regularised(decay, rounds=200),))
    trained = table1.train_run(spec)
    paper, regularised = trained.record.rows
    assert regularised.protocol == "regularised" and regularised.weight_decay == decay
    assert regularised.certificate.verdict == "minimum" and regularised.stability < 0.01
    # the objective's Hessian is the cross-entropy's + decay I: no eigenvalue below decay's scale at a minimum
    assert regularised.certificate.lambda_min > -0.01 * regularised.certificate.lambda_max
    # ReLU kinks keep L-BFGS's gradient near 1e-3 (see the Reproduction notes); still far below SGD's end point
    assert regularised.certificate.grad_norm < 2e-2 * paper.certificate.grad_norm
    # the objective recomputed by hand from its parts: CE + decay / 2 |theta|^2
    assert regularised.objective == pytest.approx(
        regularised.certificate.train_loss + decay / 2 * regularised.theta_norm ** 2, rel=1e-6)
    # the run's own model stays at the paper protocol's end point (every protocol starts there)
    _, x, y = table1.run.training_data(task, 300, validation=False)
    assert float(F.cross_entropy(trained.net.eval()(x[:100]), y[:100])) == pytest.approx(paper.certificate.train_loss,
                                                                                         rel=1e-5)
    # the certificate reads every training example: its loss is the CE on the stratified 300
    assert regularised.train_examples == 300
    if model == "growing":
        assert regularised.collapsed in (True, False) and 0 <= regularised.hidden_share <= 1
        assert 0 < regularised.direct_share < 1
    else:
        assert regularised.collapsed is None


def test_several_protocols_each_start_from_the_paper_end_point():
    task = digits_task()
    converged = table1.Converged(lr=0.1, max_epochs=8, chunk=4, finish_rounds=5)
    one = table1.Table1Run(task, 10, "a", 10, 0, lr=0.05, max_epochs=4, schedule_scale=1.0, hessian_subset=100,
                           small=True, train_limit=200, protocols=(converged,))
    both = table1.Table1Run(task, 10, "a", 10, 0, lr=0.05, max_epochs=4, schedule_scale=1.0, hessian_subset=100,
                            small=True, train_limit=200, protocols=(table1.Regularised(1e-2, rounds=3), converged))
    alone, after = one.run().rows[1], both.run().rows[2]
    assert after.protocol == alone.protocol == "converged"
    assert after.certificate.train_loss == alone.certificate.train_loss and after.measures == alone.measures


def test_validation_runs_hold_out_a_fifth_of_the_trimmed_training_set():
    task = digits_task()
    held, x, y = table1.run.training_data(task, 500, validation=True)
    assert len(y) == 400 and len(held.y_test) == 100
    assert torch.bincount(held.y_test).min() >= 8, "stratified: every class held out"
    kept = {tuple(row.tolist()) for row in x}
    assert not any(tuple(row.tolist()) in kept for row in held.x_test), "no example both trains and is held out"


def test_lambda_is_the_best_held_out_accuracy_and_ties_take_the_larger():
    points = [{"weight_decay": 1e-3, "held_out_accuracy": 0.9}, {"weight_decay": 1e-2, "held_out_accuracy": 0.95},
              {"weight_decay": 1e-1, "held_out_accuracy": 0.95}]
    assert table1.regularisation.best(points) == 1e-1


def test_the_static_control_has_its_grown_runs_graph_edge_for_edge():
    task = digits_task()
    common = dict(lr=0.05, max_epochs=8, schedule_scale=0.1, hessian_subset=100, small=False, train_limit=200)
    grown = table1.train_run(table1.Table1Run(task, 20, "growing", 10, 3, **common)).net
    static = table1.build(task, "static", 20, 3, small=False).net
    assert len(grown.hidden_ids) == 20 and sorted(zip(grown.src.tolist(), grown.dst.tolist())) == \
        sorted(zip(static.src.tolist(), static.dst.tolist()))
    assert (grown.depth == static.depth).all() and static.num_parameters() == grown.num_parameters()
    weights = static.edge_weights()
    assert weights.abs().max() <= 0.5 and weights.abs().min() > 0, "every real edge drawn U(-0.5, 0.5)"
    linear = table1.build(task, "linear", 20, 3, small=False)
    assert linear.growth is None and linear.parameters == 64 * 10 and linear.depth == 1


def test_matched_loss_points_retrace_the_paper_run_and_stop_at_the_cells_target():
    task = digits_task()
    common = dict(lr=0.05, max_epochs=10, schedule_scale=0.1, hessian_subset=100, small=False, train_limit=200)
    specs = [table1.Table1Run(task, 20, model, 10, seed, **common) for model in ("growing", "a") for seed in (0, 1)]
    records = [table1.train_run(spec).record for spec in specs]
    lowest = [table1.matched.lowest_loss(spec, record) for spec, record in zip(specs, records)]
    grown_end = table1.matched.growth_end(specs[0], "MNIST")
    assert 0 < grown_end < 10 and table1.matched.growth_end(specs[2], "MNIST") == 0
    assert lowest[0] == min(e["loss"] for e in records[0].rows[0].curve if e["epoch"] > grown_end)
    # no run gets to 0.01 in 10 epochs: the cell's target is the highest of the lowest losses
    target = max(lowest)
    assert target > table1.matched.FLOOR
    assert table1.matched.targets(specs, records) == {("MNIST", 20, 10): target}
    assert table1.matched.targets(specs, records, floor=10.0) == {("MNIST", 20, 10): 10.0}
    settings = table1.Settings(sizes={"MNIST": [20]}, batch_sizes={}, learning_rates={}, max_epochs={},
                               schedule_scale={}, train_examples={}, seeds=(0, 1), hessian_subset=100,
                               protocols=("matched-loss",))
    matched = table1.plan_matched_loss(specs, records, settings)
    for spec, record, point in zip(specs, records, (m.run().rows[0] for m in matched)):
        curve = record.rows[0].curve
        assert point.protocol == "matched-loss" and point.target_loss == target
        assert [e["loss"] for e in point.curve] == [e["loss"] for e in curve[:point.epochs]], "the same trajectory"
        end = table1.matched.growth_end(spec, "MNIST")
        first = next(e["epoch"] for e in curve if e["epoch"] > end and e["loss"] <= target)
        assert point.epochs == first and point.curve[-1]["loss"] <= target
    with pytest.raises(ValueError, match="positive cross-entropy"):
        table1.MatchedLossRun(specs[0], 0.0)


def test_matched_loss_is_planned_only_for_the_sizes_that_take_the_protocols():
    task = digits_task()
    common = dict(lr=0.05, max_epochs=2, schedule_scale=0.1, hessian_subset=50, train_limit=100)
    specs = [table1.Table1Run(task, 10, "a", 10, 0, small=True, **common),
             table1.Table1Run(task, 20, "a", 10, 0, small=False, **common)]
    records = [table1.train_run(spec).record for spec in specs]
    base = dict(sizes={"MNIST": [10, 20]}, batch_sizes={}, learning_rates={}, max_epochs={}, schedule_scale={},
                train_examples={}, seeds=(0,), hessian_subset=50)
    settings = table1.Settings(**base, protocols=("matched-loss",), protocol_sizes={"MNIST": [10]})
    assert [m.paper.hidden for m in table1.plan_matched_loss(specs, records, settings)] == [10]
    assert table1.plan_matched_loss(specs, records, table1.Settings(**base, protocols=("regularised",))) == []
    with pytest.raises(ValueError, match="matched-loss"):
        table1.Settings(**base, protocols=("matched",))


def test_rounding_noise_is_no_instability_and_input_independent_logits_are_a_constant_predictor():
    from types import SimpleNamespace

    from minima.geometry.finish import Objective, stability

    x, y = torch.randn(30, 4, dtype=torch.float64), torch.arange(30) % 3
    objective = Objective(torch.nn.Linear(4, 3, bias=False).double(), x, y, weight_decay=0.1)
    assert stability(objective, {"m": 3e-30}, lambda: {"m": -2e-31}) == 0.0, "both zero to rounding"
    assert stability(objective, {"m": 1.0}, lambda: {"m": 1.02}) == pytest.approx(0.02)
    assert stability(objective, {"m": 0.0}, lambda: {"m": 0.5}) == math.inf
    net = torch.nn.Linear(4, 3, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(1e-9 * torch.randn(3, 4, dtype=torch.float64))
    assert len(set(net(x).argmax(1).tolist())) > 1, "argmax alone sees several classes"
    fields = table1.Training.direct_map(SimpleNamespace(), net, [(x, y)])
    assert fields == {"constant": True}
    with torch.no_grad():
        net.weight.mul_(1e9)
    assert table1.Training.direct_map(SimpleNamespace(), net, [(x, y)]) == {"constant": False}
