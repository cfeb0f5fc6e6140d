"""Benchmark of batched pivot evaluation (vmap or stacked MLP products, by the fixed rule) against a
per-pivot loop, the share of an AutoNEB cycle spent in its dense evaluation, and the compiled NEB
step (:mod:`minima.paths.kernel`) against the eager one on the default page's paths."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from ..models import mlp
from ..paths.energy import ModelEnergy
from ..paths.neb import auto_neb, interpolate, relax
from . import devices, paired, table


def small_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def cases():
    """(name, model, input shape): ~5k and ~100k parameter MLPs, a small CNN."""
    return [("MLP 5k (64-64-10)", mlp(64, [64], 10, bias=True, init_range=0.1), (64,)),
            ("MLP 100k (784-128-10)", mlp(784, [128], 10, bias=True, init_range=0.05), (784,)),
            ("small CNN (8-16 ch, 28x28)", small_cnn(), (1, 28, 28))]


def per_pivot_loop(energy, points: torch.Tensor) -> torch.Tensor:
    """The obvious alternative: one functional call and one backward per pivot."""
    x, y = energy.batches[0]
    grads = []
    for p in points:
        p = p.detach().requires_grad_(True)
        value = energy._loss_at(p, x, y)
        grads.append(torch.autograd.grad(value, p)[0])
    return torch.stack(grads)


def batched(energy, points: torch.Tensor) -> torch.Tensor:
    leaf = points.detach().requires_grad_(True)
    return torch.autograd.grad(energy(leaf).sum(), leaf)[0]


def main() -> None:
    rows = []
    for device in devices():
        for name, model, shape in cases():
            model = model.to(device)
            g = torch.Generator().manual_seed(0)
            x = torch.randn(128, *shape, generator=g).to(device)
            y = torch.randint(0, 10, (128,), generator=g).to(device)
            energy = ModelEnergy(model, F.cross_entropy, [(x, y)])
            for pivots in (8, 16, 32):
                points = energy.point()[None] + 0.01 * torch.randn(pivots, energy.dim, device=device)
                t_loop, t_vmap, ratio = paired(lambda: per_pivot_loop(energy, points),
                                               lambda: batched(energy, points), rounds=7, repeat=3)
                rows.append({"device": device, "model": name, "params": energy.dim, "pivots": pivots,
                             "loop ms": round(t_loop * 1e3, 2), "batched ms": round(t_vmap * 1e3, 2),
                             "loop / batched": round(ratio, 2), "mode": energy._chunk_for(points, x, y)})
    print("Energy and gradient of all pivots, batch 128 (targets: >= 3x at 16 pivots for the 5k MLP "
          "on CPU, never slower for the others; >= 5x for the 100k MLP on a GPU):")
    print(table(rows))

    # share of a cycle in the dense evaluation (9 points per segment on the evaluation data)
    name, model, shape = cases()[1]
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(128, *shape, generator=g), torch.randint(0, 10, (128,), generator=g)) for _ in range(8)]
    energy = ModelEnergy(model, F.cross_entropy, batches)
    start_point = energy.point()
    end_point = start_point + 0.1 * torch.randn(energy.dim, generator=g)
    timings = {}
    original = energy.data_mean

    def timed_data_mean(points, *args, **kwargs):
        t0 = time.perf_counter()
        out = original(points, *args, **kwargs)
        timings["dense"] = timings.get("dense", 0.0) + time.perf_counter() - t0
        return out

    energy.data_mean = timed_data_mean
    t0 = time.perf_counter()
    auto_neb(energy, start_point, end_point, cycles=[dict(steps=100, lr=0.01)] * 2, n_initial=9)
    total = time.perf_counter() - t0
    print(f"\nAutoNEB, {name}, 9 pivots, 2 cycles of 100 steps, evaluation on 8 x 128 examples: "
          f"dense evaluation share {timings['dense'] / total:.1%} of the time (target < 50%)")


    compiled_rows()


def compiled_rows(widths=(2, 16, 100), pivot_counts=(7, 15), steps: int = 10) -> None:
    """The compiled NEB cycle and dense evaluation against the eager ones, as the default page
    runs them: MNIST (official 10k test set re-split, 8,000 training images), ``mlp-H`` at
    widths 2, 16 and 100, NEB batch 256, paths of 7 and 15 pivots near a network's initial point,
    one torch thread; the dense evaluation on the 1,000 evaluation images, 9 points per segment."""
    from ..data import train_test
    from ..experiments.barriers.data import energy_of

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    data = train_test("mnist-10k")
    rows, dense_rows = [], []
    for width in widths:
        energy, _ = energy_of(f"mlp-{width}", data, 256, 1000)
        eager, _ = energy_of(f"mlp-{width}", data, 256, 1000)
        eager.kernel = None  # the same energy without its kernel: the eager torch step
        for count in pivot_counts:
            g = torch.Generator().manual_seed(count)
            points = energy.point()[None] + 0.01 * torch.randn(count, energy.dim, generator=g)
            t_eager, t_compiled, ratio = paired(lambda: relax(eager, points, steps, 0.1, 0.9, 1e-4),
                                                lambda: relax(energy, points, steps, 0.1, 0.9, 1e-4), rounds=5, repeat=3)
            rows.append({"width": width, "params": energy.dim, "pivots": count,
                         "eager ms/step": round(t_eager / steps * 1e3, 2),
                         "compiled ms/step": round(t_compiled / steps * 1e3, 2), "eager / compiled": round(ratio, 2)})
            t_eager, t_compiled, ratio = paired(lambda: eager.data_mean(interpolate(points, 9)[0]),
                                                lambda: energy.kernel.along(points, 9, *energy._arrays(energy.eval_batches)),
                                                rounds=5, repeat=3)
            dense_rows.append({"width": width, "pivots": count, "dense points": (count - 1) * 10 + 1,
                               "eager ms": round(t_eager * 1e3, 1), "compiled ms": round(t_compiled * 1e3, 1),
                               "eager / compiled": round(ratio, 2)})
    torch.set_num_threads(previous)
    print(f"\nThe compiled NEB step against the eager one (one AutoNEB cycle of {steps} steps, the default page's "
          "MNIST paths, batch 256, one thread):")
    print(table(rows))
    print("\nDense evaluation of a path (training loss at every pivot and 9 points per segment, 1,000 images), "
          "compiled (first-layer products at the pivots only) against the eager interpolated points:")
    print(table(dense_rows))


if __name__ == "__main__":
    main()
