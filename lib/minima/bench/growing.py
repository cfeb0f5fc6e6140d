"""Benchmark of the growing network: training step against nn.Sequential, against the naive
per-neuron implementation, and the cost of one insertion."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..growing import GrowingNet, fan_in_for_budget, fully_connected_parameters
from ..models import mlp
from . import devices, paired, table, timeit


def grown_like_784_500_10(device: str, seed: int = 0) -> GrowingNet:
    budget = fully_connected_parameters(784, [500], 10)
    net = GrowingNet(784, 10, seed=seed, device=device)
    net.grow(500, fan_in_for_budget(784, 10, 500, budget))
    return net


def train_step(model, x, y, optimizer):
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def naive_step(net: GrowingNet, x: torch.Tensor, y: torch.Tensor, lr: float = 1e-3) -> None:
    """The paper's recursion neuron by neuron (a Python loop), forward, backward and SGD."""
    W = net.in_id_order(net.weight.detach()).clone().requires_grad_(True)
    order = sorted(net.hidden_ids.tolist(), key=lambda i: net.depth[i])
    parents = {i: net.src[net.dst == i] for i in order + net.output_ids.tolist()}
    cols = lambda i: i - net.n_inputs  # noqa: E731
    values = {j: x[:, j] for j in range(net.n_inputs)}
    for i in order:
        p = torch.as_tensor(parents[i])
        values[i] = torch.relu(torch.stack([values[j] for j in p.tolist()], 1) @ W[p, cols(i)])
    out = torch.stack([torch.stack([values[j] for j in parents[o].tolist()], 1)
                       @ W[torch.as_tensor(parents[o]), cols(o)] for o in net.output_ids.tolist()], 1)
    F.cross_entropy(out, y).backward()
    with torch.no_grad():
        W -= lr * W.grad


def main() -> None:
    torch.manual_seed(0)
    rows = []
    for device in devices():
        net = grown_like_784_500_10(device)
        fc = mlp(784, [500], 10).to(device)
        levels = len(net.levels)
        for batch in (10, 100):
            x = torch.randn(batch, 784, device=device)
            y = torch.randint(0, 10, (batch,), device=device)
            opt_net = net.adopt(torch.optim.SGD(net.parameters(), lr=1e-3))
            opt_fc = torch.optim.SGD(fc.parameters(), lr=1e-3)
            t_net, t_fc, ratio = paired(lambda: train_step(net, x, y, opt_net),
                                        lambda: train_step(fc, x, y, opt_fc))
            row = {"device": device, "batch": batch, "depth levels": levels,
                   "grown step ms": round(t_net * 1e3, 3), "784-500-10 step ms": round(t_fc * 1e3, 3),
                   "grown / FC": round(ratio, 2),
                   "target": "<= 1.5x (goal 1.2x)"}
            if device == "cpu":
                t_naive = timeit(lambda: naive_step(net, x, y), repeat=3, warmup=1)
                row["naive per-neuron ms"] = round(t_naive * 1e3, 1)
                row["naive / grown"] = round(t_naive / t_net, 1)
            rows.append(row)
        insert_times = [timeit(lambda: net.insert(778), repeat=1, warmup=0) for _ in range(20)]
        rows_insert = {"device": device, "one insertion at 500+ neurons, median ms":
                       round(float(np.median(insert_times)) * 1e3, 2), "target": "< 10 ms"}
        print(table([rows_insert]))
    print(table(rows))


if __name__ == "__main__":
    main()
