"""Benchmark of Table 1 training: per-model throughput of the paper's networks trained one
after another (:func:`minima.train.fit`) against the same seeds trained side by side
(:func:`minima.train.fit_together`), and of a grown network against its fully connected twin.

Where side-by-side training is no faster, a step is bound by arithmetic (large GEMMs) and
the Python overhead that stacking removes is negligible; where it is faster, the gap is
that overhead.
"""
from __future__ import annotations

import time

import torch

from ..growing import GrowingNet, fan_in_for_budget, fully_connected_parameters
from ..models import mlp
from ..train import fit, fit_together
from . import table

SEEDS = (0, 1, 2)


def _data(n: int = 2000, features: int = 784, classes: int = 10):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


def _sequential(hidden: list[int], x, y, batch: int) -> float:
    """Samples per second per model, training the seeds one after another (one epoch each)."""
    start = time.perf_counter()
    for seed in SEEDS:
        fit(mlp(x.shape[1], hidden, 10, seed=seed), x, y, lr=1e-3, batch_size=batch, max_epochs=1,
            generator=torch.Generator().manual_seed(seed), target_accuracy=2.0)
    return len(y) * len(SEEDS) / (time.perf_counter() - start)


def _together(hidden: list[int], x, y, batch: int) -> float:
    """Samples per second per model (all models' samples over the wall time), side by side."""
    models = [mlp(x.shape[1], hidden, 10, seed=seed) for seed in SEEDS]
    start = time.perf_counter()
    fit_together(models, x, y, lr=1e-3, batch_size=batch, max_epochs=1,
                 generators=[torch.Generator().manual_seed(s) for s in SEEDS], target_accuracy=2.0)
    return len(y) * len(SEEDS) / (time.perf_counter() - start)


def _grown(hidden: int, x, y, batch: int) -> float:
    net = GrowingNet(x.shape[1], 10, seed=0, device="cpu")
    net.grow(hidden, fan_in_for_budget(x.shape[1], 10, hidden, fully_connected_parameters(x.shape[1], [hidden], 10)))
    start = time.perf_counter()
    fit(net, x, y, lr=1e-3, batch_size=batch, max_epochs=1, generator=torch.Generator().manual_seed(0),
        target_accuracy=2.0)
    return len(y) / (time.perf_counter() - start)


def main() -> None:
    torch.manual_seed(0)
    x, y = _data()
    rows = []
    architectures = {"784-10-10 (MNIST a, 10)": [10], "784-500-10 (MNIST a)": [500],
                     "784-400-100-10 (MNIST b)": [400, 100], "784-300-150-50-10 (MNIST c)": [300, 150, 50]}
    for batch in (10, 100):
        for name, hidden in architectures.items():
            best_seq = max(_sequential(hidden, x, y, batch) for _ in range(3))
            best_tog = max(_together(hidden, x, y, batch) for _ in range(3))
            rows.append({"batch": batch, "model": name, "one after another, samples/s per model": round(best_seq),
                         f"{len(SEEDS)} side by side, samples/s per model": round(best_tog),
                         "speed-up": round(best_tog / best_seq, 2)})
        for hidden in (10, 500):
            rows.append({"batch": batch, "model": f"grown {hidden} (784 inputs)",
                         "one after another, samples/s per model": round(max(_grown(hidden, x, y, batch)
                                                                             for _ in range(3)))})
    print(f"Training throughput on {torch.get_num_threads()} CPU threads, {len(y)} examples of 784 features, "
          "one epoch per run (evaluation of the epoch included):")
    print(table(rows))


if __name__ == "__main__":
    main()
