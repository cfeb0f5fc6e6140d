"""Table 2 of the growing-network paper: growing the classification head of a pretrained
transformer on CoLA, against the model's own (reference) head of the same size.

With a frozen encoder, the first-token features of every sentence are computed once
(:func:`minima.heads.first_token_features`) and the heads are trained on them; this is
the CPU default. The paper fine-tunes the whole model, which needs a GPU.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from sklearn.metrics import matthews_corrcoef

from .data import batches
from .flatness import MEASURES, flatness
from .growing import GrowthSchedule
from .heads import GrowingHead, ReferenceHead, growth_plan, reference_parameters
from .train import evaluate, fit

PAPER = {"growing": (68.2, 1.8945e5), "reference": (68.0, 6.7778e5)}  # test accuracy %, spectral norm


def run_head(kind: str, features: tuple, seed: int, *, epochs: int, batch_size: int, lr: float,
             phases: list[int], hessian_subset: int, keep: dict | None = None) -> dict:
    """Train one head on frozen features ``(x_train, y_train, x_test, y_test)`` and measure it."""
    x_train, y_train, x_test, y_test = features
    hidden, labels = x_train.shape[1], int(y_train.max()) + 1
    torch.manual_seed(seed)
    if kind == "growing":
        head = GrowingHead(hidden, labels, seed=seed)
        fan_ins = growth_plan(hidden, labels)
        schedule = GrowthSchedule.phases(hidden, tuple(phases))
        growing, network = head.net, head.net
    else:
        head = ReferenceHead(hidden, labels, seed=seed)
        fan_ins = schedule = growing = None
        network = head
    start = time.perf_counter()
    result = fit(head, x_train, y_train, lr=lr, batch_size=batch_size, max_epochs=epochs, target_accuracy=2.0,
                 generator=torch.Generator().manual_seed(seed), growing=growing, schedule=schedule, fan_ins=fan_ins,
                 optimizer="adamw")
    seconds = time.perf_counter() - start
    head.eval()
    with torch.no_grad():
        predictions = head(x_test).argmax(1)
    _, accuracy = evaluate(head, x_test, y_test)
    data = batches(x_train[:hessian_subset], y_train[:hessian_subset], 1000)
    values = {m: flatness(network, F.cross_entropy, data, m, blocks="depth", generator=torch.Generator().manual_seed(seed))
              for m in MEASURES}
    if keep is not None:
        keep[(kind, seed)] = head
    parameters = growing.num_parameters() if growing is not None else sum(p.numel() for p in head.parameters())
    return {"head": kind, "seed": seed, "parameters": parameters, "reference parameters": reference_parameters(hidden, labels),
            "accuracy": accuracy, "mcc": float(matthews_corrcoef(y_test.numpy(), predictions.numpy())),
            "train accuracy": result.final["accuracy"], "train loss": result.final["loss"],
            "train s": seconds, **values, "curve": result.epochs,
            "depth histogram": (torch.bincount(torch.as_tensor(growing.depth[growing.hidden_ids])).tolist()
                                if growing is not None else None)}
