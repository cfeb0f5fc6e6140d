"""Benchmark of Table 1 training: the compiled kernel (:class:`minima.train.SgdKernel`) against
the autograd :class:`minima.train.Trainer`, per model-step, on one thread, in one process.

Each row trains one epoch of the first 2,000 training examples of the shipped data
(``mnist-10k``, ``ag_news-7600``; the same minibatch order for both) and prints the time per
SGD step of each, their ratio and the issue's target. For the wide networks it also prints
the arithmetic limit: the step's multiply-adds (forward, weight gradients, and the input
gradients of every layer but the first) at this machine's single-thread GEMM rate, measured
here with one dense ``torch.mm`` of the same shapes; and the grown network's step against its
fully connected twin's.
"""
from __future__ import annotations

import time

import torch

from ..experiments import table1
from ..train import SgdKernel, Trainer, tensor_loss
from . import table

EXAMPLES = 2000


def _per_step(epoch, steps: int, rounds: int = 3) -> float:
    """Best of ``rounds`` epochs, seconds per step."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - start)
    return best / steps


def _network(task, model: str, hidden: int):
    network = table1.build(task, model, hidden, seed=0, small=hidden == 10)
    if network.growth is not None:  # the final layout of the grown network
        network.growth.net.grow(hidden, list(network.growth.fan_ins))
    return network.full


def _kernel_and_trainer(task, model: str, hidden: int, batch: int, lr: float) -> tuple[float, float]:
    x, y = task.x_train[:EXAMPLES], task.y_train[:EXAMPLES]
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    steps = -(-len(y) // batch)
    full = _network(task, model, hidden)
    kernel = SgdKernel(full, x, y)
    kernel.epoch(order[:batch * 4], batch, lr)  # compiles (or loads the compiled code) once
    t_kernel = _per_step(lambda: kernel.epoch(order, batch, lr), steps)
    full = _network(task, model, hidden)
    trainer = Trainer(full, tensor_loss(full, x, y), len(y), lr=lr, batch_size=batch,
                      generator=torch.Generator().manual_seed(0))
    t_trainer = _per_step(trainer.epoch, steps, rounds=2)
    return t_kernel, t_trainer


def _gemm_rate() -> float:
    """Single-thread multiply-adds per second of a dense ``(100, 784) @ (784, 500)`` product."""
    a, b = torch.rand(100, 784), torch.rand(784, 500)
    out = torch.empty(100, 500)
    for _ in range(5):
        torch.mm(a, b, out=out)
    start, reps = time.perf_counter(), 200
    for _ in range(reps):
        torch.mm(a, b, out=out)
    return reps * 100 * 784 * 500 / (time.perf_counter() - start)


def _multiply_adds(sizes: list[int], batch: int) -> int:
    """Forward and weight-gradient products of every layer, input gradients of all but the first."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    return batch * (2 * sum(a * b for a, b in layers) + sum(a * b for a, b in layers[1:]))


CASES = [  # (task, model, hidden, batch, target ratio, label)
    ("MNIST", "a", 10, 1, 10.0, "784-10-10"),
    ("AG News", "a", 100, 1, 10.0, "AG News 100 (bag + 100-100-4)"),
    ("MNIST", "a", 500, 10, 2.0, "784-500-10"),
    ("MNIST", "a", 500, 100, None, "784-500-10"),
    ("MNIST", "growing", 500, 10, None, "grown 500"),
    ("MNIST", "growing", 500, 100, None, "grown 500"),
]


def main() -> None:
    torch.set_num_threads(1)
    tasks = {"MNIST": (table1.image_task("mnist-10k"), 1e-3), "AG News": (table1.text_task("ag_news-7600", 100), 1e-4)}
    rate = _gemm_rate()
    rows, kernel_times = [], {}
    for name, model, hidden, batch, target, label in CASES:
        task, lr = tasks[name]
        t_kernel, t_trainer = _kernel_and_trainer(task, model, hidden, batch, lr)
        kernel_times[(model, hidden, batch)] = t_kernel
        row = {"network": label, "batch": batch, "kernel us/step": round(t_kernel * 1e6, 1),
               "Trainer us/step": round(t_trainer * 1e6, 1), "Trainer / kernel": round(t_trainer / t_kernel, 1),
               "target": f">= {target:g}x" if target else ""}
        if name == "MNIST" and hidden == 500:
            limit = _multiply_adds([784, 500, 10], batch) / rate
            row["kernel / arithmetic limit"] = round(t_kernel / limit, 2)
            if model == "growing":
                row["grown / fully connected (kernel)"] = round(t_kernel / kernel_times[("a", 500, batch)], 2)
                row["target"] = "<= 1.3x grown / fc"
        rows.append(row)
    print(f"SGD step time, one thread, one epoch of {EXAMPLES} examples of the shipped data; single-thread GEMM rate "
          f"{rate / 1e9:.1f} G multiply-adds/s (torch.mm 100x784 @ 784x500); the arithmetic limit of a 784-500-10 step "
          "is its multiply-adds at that rate:")
    print(table(rows).replace("NaN", "   "))


if __name__ == "__main__":
    main()
