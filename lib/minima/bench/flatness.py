"""Benchmark of the flatness kernels: HVP cost over gradient cost, Lanczos against power
iteration, batched against looped Hessian columns, and the cost of the "rsi" measure of a 784-500-10 network on 8,000 images."""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataError, batches, load
from ..geometry.flatness import measure_operator
from ..core.hessian import HessianOperator
from ..core.spectrum import lanczos, power_iteration
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
    reference, _, _ = lanczos(op, tol=1e-12, max_iter=300, generator=torch.Generator().manual_seed(9))
    reference = float(reference[0])
    _, _, info = lanczos(op, tol=0.0, max_iter=80, generator=torch.Generator().manual_seed(1))
    lanczos_steps = first_within([h[0] for h in info["ritz_history"]], reference)
    _, _, pinfo = power_iteration(op, tol=0.0, max_iter=300, generator=torch.Generator().manual_seed(1))
    power_steps = first_within(pinfo["history"], reference)
    stop_value, _, stop_info = power_iteration(op, tol=1e-3, max_iter=300,
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
    top, _, info = lanczos(measure_operator(HessianOperator(model, F.cross_entropy, data), "rsi"), tol=1e-6)
    value = float(top[0])
    t_rsi = time.perf_counter() - start
    return {"data": f"8,000 {what}", "rsi": round(value, 4), "matvecs": info["matvecs"],
            "rsi seconds": round(t_rsi, 1), "in full-data gradient passes": round(t_rsi / t_grad, 1)}


def dense_hessian(device: str, columns: int = 256) -> dict:
    """``columns`` columns of the Hessian of a 784-8-10 MLP on 2,000 images: one
    :meth:`HessianOperator.matmat` (vmapped reverse-over-reverse) against ``columns`` calls of
    :meth:`~HessianOperator.matvec` (the loop it replaces in ``to_dense``), with their largest
    difference relative to the largest entry."""
    x, y, what = mnist_or_random(2000)
    model = mlp(784, [8], 10, seed=0).to(device).eval()
    op = HessianOperator(model, F.cross_entropy, [(x.to(device), y.to(device))])
    eye = torch.eye(op.dim, dtype=torch.float64, device=device)[:, :columns]
    start = time.perf_counter()
    looped = torch.stack([op.matvec(e) for e in eye.T], dim=1)
    t_loop = time.perf_counter() - start
    start = time.perf_counter()
    batched = op.matmat(eye)
    t_matmat = time.perf_counter() - start
    return {"device": device, "model": f"MLP 784-8-10 ({op.dim:,} parameters), 2,000 {what}", "columns": columns,
            "matvec loop s": round(t_loop, 2), "matmat s": round(t_matmat, 2), "matmat / loop": round(t_matmat / t_loop, 3),
            "max difference": f"{float((looped - batched).abs().max() / looped.abs().max()):.1e}", "target": "<= 0.2"}


def _counted(fn):
    """``fn`` wrapped to count its calls in ``wrapper.calls``."""
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return fn(*args, **kwargs)

    wrapper.calls = 0
    return wrapper


def peers() -> list[dict] | str:
    """minima against PyHessian and curvlinops + scipy ``eigsh`` on one trained 784-100-10 MLP,
    Hessian on 2,000 images in one batch: lambda_max's error against a float64 reference, the
    products each needed, the time, and one product's time over one gradient's."""
    try:
        import importlib

        pyhessian = importlib.import_module("pyhessian.hessian")  # the module (the package exports a class of that name)
        from curvlinops import HessianLinearOperator
        from scipy.sparse.linalg import LinearOperator, eigsh
    except ImportError:
        return "skipped: the peers are dev extras (pip install -e '.[dev]' installs pyhessian and curvlinops)"
    x, y, what = mnist_or_random(2000)
    model = train_quickly(mlp(784, [100], 10, seed=0, init_range=0.05), x, y)
    params = list(model.parameters())
    double = copy.deepcopy(model).double()
    exact = HessianLinearOperator(double, nn.CrossEntropyLoss(), list(double.parameters()), [(x.double(), y)])
    reference = float(eigsh(exact.to_scipy(), k=1, which="LA", tol=1e-14)[0][0])

    def gradient():
        torch.autograd.grad(F.cross_entropy(model(x), y), params)

    t_grad = timeit(gradient, repeat=10)
    rows = []
    # minima: Lanczos to a relative Ritz residual of 1e-6, gradient graph reused across products
    operator = HessianOperator(model, F.cross_entropy, [(x, y)])
    start = time.perf_counter()
    value, _, info = lanczos(operator, tol=1e-6, generator=torch.Generator().manual_seed(0))
    seconds = time.perf_counter() - start
    v = torch.randn(operator.dim, dtype=torch.float64)
    rows.append({"method": "minima Lanczos (tol 1e-6)", "error": float(value[0]), "products": info["matvecs"],
                 "seconds": seconds, "product / gradient": timeit(lambda: operator.matvec(v), repeat=10) / t_grad})
    # curvlinops + scipy's ARPACK (implicitly restarted Lanczos) at the same tolerance
    peer = HessianLinearOperator(model, nn.CrossEntropyLoss(), params, [(x, y)]).to_scipy()
    matvec = _counted(peer.matvec)
    start = time.perf_counter()
    found = eigsh(LinearOperator(peer.shape, matvec=matvec, dtype=peer.dtype), k=1, which="LA", tol=1e-6)[0][0]
    seconds = time.perf_counter() - start
    w = v.float().numpy()
    rows.append({"method": "curvlinops + scipy eigsh (tol 1e-6)", "error": float(found), "products": matvec.calls,
                 "seconds": seconds, "product / gradient": timeit(lambda: peer.matvec(w), repeat=10) / t_grad})
    # PyHessian with its defaults: power iteration, relative change 1e-3, graph built once
    product = pyhessian.hessian_vector_product
    pyhessian.hessian_vector_product = counted = _counted(product)
    try:
        torch.manual_seed(0)
        start = time.perf_counter()
        hessian = pyhessian.hessian(model, nn.CrossEntropyLoss(), data=(x, y), cuda=False)
        found = hessian.eigenvalues()[0][0]
        seconds = time.perf_counter() - start
    finally:
        pyhessian.hessian_vector_product = product
    vs = [t.float() for t in operator.unflatten(v)]
    rows.append({"method": "PyHessian defaults (power, tol 1e-3)", "error": float(found), "products": counted.calls,
                 "seconds": seconds,
                 "product / gradient": timeit(lambda: product(hessian.gradsH, hessian.params, vs), repeat=10) / t_grad})
    for row in rows:
        row["error"] = f"{abs(row['error'] - reference) / reference:.1e}"
        row["seconds"], row["product / gradient"] = round(row["seconds"], 3), round(row["product / gradient"], 2)
    rows[0]["target"] = "error <= 1e-6 in fewer products than either; product <= PyHessian's and <= 2.0"
    print(f"(784-100-10 trained 3 epochs on 2,000 {what}; reference lambda_max {reference:.6f} from a float64 "
          f"copy, eigsh tol 1e-14; one gradient {1e3 * t_grad:.1f} ms)")
    return rows


def main() -> None:
    rows = [r for device in devices() for r in hvp_over_gradient(device)]
    print("HVP cost over gradient cost (same batch):")
    print(table(rows))
    print("\nMatvecs to 1e-4 relative accuracy on the top eigenvalue:")
    print(table([lanczos_vs_power()]))
    print("\nThe dense Hessian (exact spectra of small networks), batched against looped products:")
    print(table([dense_hessian(device) for device in devices()]))
    print("\nThe rsi measure of a 784-500-10 network:")
    print(table([rsi_cost()]))
    print("\nlambda_max beside the public peers (one process, same model and data):")
    rows = peers()
    print(rows if isinstance(rows, str) else table(rows))


if __name__ == "__main__":
    main()
