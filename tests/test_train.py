"""The training loop's stopping rule and growth timing, and the Table 1 model pairs."""
from __future__ import annotations

import pytest
import torch

from minima.experiments import table1
from minima.growing import GrowingNet, GrowthPlan, GrowthSchedule
from minima.data import TrainTest
from minima.models import mlp
from minima.train import TrainingError, fit, fit_together


def separable(n=200, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] > 0).long()


def test_stops_at_full_training_accuracy_only_after_growth_has_finished():
    x, y = separable()
    net = GrowingNet(5, 2, seed=0, device="cpu", init_range=0.5)
    schedule = GrowthSchedule({1: 1, 6: 1})
    result = fit(net, x, y, lr=0.5, batch_size=20, max_epochs=30, generator=torch.Generator().manual_seed(0),
                 growth=GrowthPlan(net, schedule, (3, 3)))
    assert result.stopped == "100% training accuracy" and result.final["accuracy"] == 1.0
    assert result.final["epoch"] >= 7, "stopped before the last growth step had been trained"
    assert [e["inserted"] for e in result.epochs][:7] == [0, 1, 0, 0, 0, 0, 1]
    assert result.insertion_epochs == [2, 7] and len(net.hidden_ids) == 2
    assert all(e["accuracy"] < 1.0 for e in result.epochs[:-1] if e["epoch"] > 7)


def test_max_epochs_when_accuracy_is_not_reached():
    x, y = separable()
    y = torch.randint(0, 2, (200,), generator=torch.Generator().manual_seed(1))  # random labels
    model = mlp(5, [3], 2, seed=0)
    result = fit(model, x, y, lr=1e-4, batch_size=50, max_epochs=3, generator=torch.Generator().manual_seed(0))
    assert result.stopped == "max epochs" and len(result.epochs) == 3 and result.final["accuracy"] < 1.0
    assert result.samples_per_second > 0


def test_divergence_is_a_one_line_error():
    x, y = separable()
    model = mlp(5, [3], 2, seed=0)
    with torch.no_grad():
        model[1].weight.fill_(float("inf"))
    with pytest.raises(TrainingError, match="diverged .* at epoch 1, step 0; lower the learning rate"):
        fit(model, x, y, lr=0.1, batch_size=50, max_epochs=1, generator=torch.Generator().manual_seed(0))


def test_scaled_schedules_keep_their_units():
    schedule = table1.paper_schedule("MNIST", 500, small=False)
    assert schedule.events == {10 + 5 * k: 50 for k in range(10)}
    scaled = schedule.scaled(0.3)
    assert scaled.total == 500 and min(scaled.events) >= 1 and scaled.last_epoch == int(55 * 0.3)
    assert table1.paper_schedule("AG News", 100, small=False).events == {5 + 10 * k: 10 for k in range(10)}
    assert table1.paper_schedule("MNIST", 10, small=True).events == {5 + 10 * k: 1 for k in range(10)}


@pytest.mark.parametrize("n_features, n_classes, sizes", [(784, 10, (10, 500)), (100, 4, (10, 100)),
                                                          (64, 10, (10, 20)), (32, 4, (4, 20))])
def test_every_grown_network_ends_at_its_twins_parameter_count(n_features, n_classes, sizes):
    task = TrainTest(torch.zeros(1, n_features), torch.zeros(1), torch.zeros(1), torch.zeros(1), n_classes, "t",
                     n_features=n_features)
    for k, hidden in enumerate(sizes):
        growth = table1.build(task, "growing", hidden, seed=0, small=k == 0).growth
        grower, schedule, fan_ins = growth.net, growth.schedule, list(growth.fan_ins)
        if hidden <= 100:
            grower.grow(hidden, fan_ins)
            assert grower.num_parameters() == sum(p.numel() for p in mlp(n_features, [hidden], n_classes).parameters())
        assert schedule.total == hidden and len(fan_ins) == hidden
        assert task.n_features * n_classes + sum(fan_ins) == sum(p.numel() for p in mlp(n_features, [hidden], n_classes).parameters())
        for arch in ("a", "b", "c"):
            fc = table1.build(task, arch, hidden, seed=0, small=False).net
            widths = [m.out_features for m in fc if isinstance(m, torch.nn.Linear)][:-1]
            assert sum(widths) == hidden, "the fully connected twins keep the number of hidden neurons"


@pytest.mark.parametrize("bias", [False, True])
def test_side_by_side_training_equals_separate_runs_including_the_stopping_rule(bias):
    """fit_together must give each seed the run fit gives it: same minibatches, same SGD steps,
    the same stopping epoch (seeds stop at different epochs here), the same final weights."""
    x, y = separable(n=300, d=6, seed=3)
    seeds = [0, 1, 2, 3]
    kwargs = dict(lr=0.1, batch_size=16, max_epochs=12, target_accuracy=0.97)
    alone = []
    for seed in seeds:
        model = mlp(6, [12, 6], 2, seed=seed, bias=bias)
        alone.append((model, fit(model, x, y, generator=torch.Generator().manual_seed(seed), **kwargs)))
    together = [mlp(6, [12, 6], 2, seed=seed, bias=bias) for seed in seeds]
    results = fit_together(together, x, y, generators=[torch.Generator().manual_seed(s) for s in seeds], **kwargs)
    stops = set()
    for (model, expected), twin, result in zip(alone, together, results):
        assert result.stopped == expected.stopped and len(result.epochs) == len(expected.epochs)
        for a, b in zip(expected.epochs, result.epochs):
            assert a["accuracy"] == b["accuracy"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        for p, q in zip(model.parameters(), twin.parameters()):
            assert torch.allclose(p, q, atol=1e-5)
        stops.add(len(result.epochs))
    assert len(stops) > 1, "the seeds should stop at different epochs for this test to mean something"


def test_side_by_side_training_refuses_what_it_cannot_stack():
    x, y = separable()
    with pytest.raises(TrainingError, match="one architecture"):
        fit_together([mlp(5, [3], 2, seed=0), mlp(5, [4], 2, seed=1)], x, y, lr=0.1, batch_size=10, max_epochs=1,
                     generators=[torch.Generator(), torch.Generator()])
    with pytest.raises(TrainingError, match="nn.Sequential MLPs"):
        fit_together([GrowingNet(5, 2, seed=0, device="cpu")], x, y, lr=0.1, batch_size=10, max_epochs=1,
                     generators=[torch.Generator()])
    model = mlp(5, [3], 2, seed=0)
    with torch.no_grad():
        model[1].weight.fill_(float("inf"))
    with pytest.raises(TrainingError, match="model 1 diverged .* at epoch 1, step 0"):
        fit_together([mlp(5, [3], 2, seed=1), model], x, y, lr=0.1, batch_size=10, max_epochs=1,
                     generators=[torch.Generator(), torch.Generator()])


def test_a_growth_plan_needs_a_fan_in_per_inserted_neuron():
    from minima.growing import GrowthError

    net = GrowingNet(5, 2, seed=0, device="cpu")
    with pytest.raises(GrowthError, match="2 fan-ins for a schedule of 3 insertions"):
        GrowthPlan(net, GrowthSchedule({1: 2, 3: 1}), (3, 3))
    plan = GrowthPlan(net, GrowthSchedule({2: 1, 4: 2}), [3, 3, 2])
    assert plan.fan_ins == (3, 3, 2) and plan.scaled(0.5).schedule.events == {1: 1, 2: 2}
