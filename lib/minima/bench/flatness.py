"""Benchmark of the flatness kernels: HVP cost over gradient cost, Lanczos against power
iteration, and the cost of the "rsi" measure of a 784-500-10 network on 8,000 images."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataError, batches, load
from ..flatness import HessianOperator, flatness, lanczos, power_iteration
from ..models import mlp
from . import devices, table, timeit


def small_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def mnist_or_random(n: int):
    """MNIST images (official 10k test set, re-split) when MINIMA_DATA has them, else noise."""
    try:
        train = load("mnist-10k", "train")
        return train.inputs[:n], train.targets[:n], "MNIST (10k test set re-split)"
    except DataError:
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), "uniform noise"


def hvp_over_gradient(device: str) -> list[dict]:
    x, y, _ = mnist_or_random(1000)
    x, y = x.to(device), y.to(device)
    rows = []
    for name, model in (("MLP 784-500-10", mlp(784, [500], 10, seed=0)), ("small CNN", small_cnn())):
        model = model.to(device).eval()
        params = list(model.parameters())

        def gradient():
            torch.autograd.grad(F.cross_entropy(model(x), y), params)

        t_grad = timeit(gradient, repeat=10)
        row = {"device": device, "model": name, "batch": len(y), "gradient ms": round(t_grad * 1e3, 2)}
        for method in ("double_backward", "forward_over_reverse"):
            op = HessianOperator(model, F.cross_entropy, [(x, y)], method=method)
            v = torch.randn(op.dim, dtype=torch.float64, device=device)
            t = timeit(lambda: op.matvec(v), repeat=10)
            row[f"HVP/grad ({method})"] = round(t / t_grad, 2)
        row["target"] = "<= 3.5"
        rows.append(row)
    return rows


def train_quickly(model, x, y, epochs: int = 3, lr: float = 0.05, batch: int = 100):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            optimizer.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    return model.eval()


def first_within(values, reference, rel=1e-4):
    for step, value in enumerate(values, start=1):
        if abs(value - reference) <= rel * abs(reference):
            return step
    return None


def lanczos_vs_power() -> dict:
    x, y, what = mnist_or_random(2000)
    torch.manual_seed(0)
    model = train_quickly(mlp(784, [100], 10, seed=0, init_range=0.05), x, y)
    op = HessianOperator(model, F.cross_entropy, batches(x, y, 1000))
    reference, _, _ = lanczos(op.matvec, op.dim, tol=1e-12, max_iter=300, generator=torch.Generator().manual_seed(9))
    reference = float(reference[0])
    _, _, info = lanczos(op.matvec, op.dim, tol=0.0, max_iter=80, generator=torch.Generator().manual_seed(1))
    lanczos_steps = first_within([h[0] for h in info["ritz_history"]], reference)
    _, _, pinfo = power_iteration(op.matvec, op.dim, tol=0.0, max_iter=300, generator=torch.Generator().manual_seed(1))
    power_steps = first_within(pinfo["history"], reference)
    stop_value, _, stop_info = power_iteration(op.matvec, op.dim, tol=1e-3, max_iter=300,
                                               generator=torch.Generator().manual_seed(1))
    return {"model": f"MLP 784-100-10 trained 3 epochs on 2,000 {what}", "lambda_max": round(reference, 6),
            "Lanczos matvecs to 1e-4": lanczos_steps, "power matvecs to 1e-4": power_steps,
            "Lanczos / power": round(lanczos_steps / power_steps, 3) if lanczos_steps and power_steps else None,
            "power (tol 1e-3 rule) stops after": stop_info["matvecs"],
            "its true relative error": f"{abs(stop_value - reference) / reference:.2e}",
            "target": "<= 1/3"}


def rsi_cost() -> dict:
    x, y, what = mnist_or_random(8000)
    model = mlp(784, [500], 10, seed=0).eval()
    data = batches(x, y, 1000)
    params = list(model.parameters())
    start = time.perf_counter()
    for xb, yb in data:
        torch.autograd.grad(F.cross_entropy(model(xb), yb), params)
    t_grad = time.perf_counter() - start
    start = time.perf_counter()
    value, info = flatness(model, F.cross_entropy, data, "rsi", return_info=True)
    t_rsi = time.perf_counter() - start
    return {"data": f"8,000 {what}", "rsi": round(value, 4), "matvecs": info["matvecs"],
            "rsi seconds": round(t_rsi, 1), "in full-data gradient passes": round(t_rsi / t_grad, 1)}


def main() -> None:
    rows = [r for device in devices() for r in hvp_over_gradient(device)]
    print("HVP cost over gradient cost (same batch):")
    print(table(rows))
    print("\nMatvecs to 1e-4 relative accuracy on the top eigenvalue:")
    print(table([lanczos_vs_power()]))
    print("\nThe rsi measure of a 784-500-10 network:")
    print(table([rsi_cost()]))


if __name__ == "__main__":
    main()
