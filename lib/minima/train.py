"""Training loops: SGD on cross-entropy until 100 % training accuracy, with growth callbacks."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .growing import GrowingNet, GrowthSchedule


class TrainingError(RuntimeError):
    """Training diverged or was set up wrongly; the message is one line."""


@dataclass
class TrainResult:
    """What happened during :func:`fit`.

    ``epochs``: one dict per completed epoch (``epoch`` 1-based, ``loss`` and ``accuracy`` on
    the full training set in eval mode, ``inserted`` neurons before that epoch, ``seconds``).
    ``stopped``: ``"100% training accuracy"`` or ``"max epochs"``.
    """

    epochs: list = field(default_factory=list)
    stopped: str = ""
    train_seconds: float = 0.0
    samples_seen: int = 0

    @property
    def final(self) -> dict:
        return self.epochs[-1]

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / max(self.train_seconds, 1e-9)

    @property
    def insertion_epochs(self) -> list[int]:
        return [e["epoch"] for e in self.epochs if e["inserted"]]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        out = model(x[start: start + batch_size])
        target = y[start: start + batch_size]
        loss += float(F.cross_entropy(out, target, reduction="sum"))
        correct += int((out.argmax(1) == target).sum())
    model.train(was_training)
    return loss / len(y), correct / len(y)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float, batch_size: int, max_epochs: int,
        generator: torch.Generator, growing: GrowingNet | None = None, schedule: GrowthSchedule | None = None,
        fan_ins: list[int] | None = None, target_accuracy: float = 1.0, optimizer: str = "sgd",
        progress=None) -> TrainResult:
    """Plain SGD (no momentum, no weight decay, as in the paper) on cross-entropy; ``optimizer=
    "adamw"`` for transformer heads (AdamW, weight decay 0.01).

    Each epoch starts with the growth ``schedule`` (inserting into ``growing``, taking
    ``fan_ins`` in order), then one shuffled pass over ``(x, y)`` in batches of
    ``batch_size``. Training stops after the first epoch that ends at ``target_accuracy``
    on the whole training set *once growth has finished*, or after ``max_epochs``.
    Embeddings with sparse gradients are supported (SGD handles them).
    """
    if schedule is not None and (growing is None or fan_ins is None):
        raise TrainingError("a growth schedule needs the GrowingNet to grow and its fan-ins")
    if optimizer not in ("sgd", "adamw"):
        raise TrainingError(f"unknown optimizer {optimizer!r}; choose sgd or adamw")
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd" else \
        torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    if growing is not None:
        growing.adopt(optimizer)
    result = TrainResult()
    growth_done = schedule.last_epoch if schedule is not None else 0
    for epoch in range(max_epochs):
        inserted = schedule.on_epoch_start(epoch, growing, fan_ins, growing.generator) if schedule else []
        start = time.perf_counter()
        order = torch.randperm(len(y), generator=generator)
        for step, index in enumerate(order.split(batch_size)):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[index]), y[index])
            if not torch.isfinite(loss):
                raise TrainingError(f"the loss diverged to {float(loss.detach())} at epoch {epoch + 1}, step {step}; "
                                    "lower the learning rate")
            loss.backward()
            optimizer.step()
        result.train_seconds += time.perf_counter() - start
        result.samples_seen += len(y)
        train_loss, accuracy = evaluate(model, x, y)
        result.epochs.append({"epoch": epoch + 1, "loss": train_loss, "accuracy": accuracy,
                              "inserted": len(inserted), "seconds": time.perf_counter() - start})
        if progress is not None:
            progress(result.epochs[-1])
        if accuracy >= target_accuracy and epoch >= growth_done:
            result.stopped = "100% training accuracy" if target_accuracy >= 1.0 else f"{target_accuracy:.0%} accuracy"
            return result
    result.stopped = "max epochs"
    return result
