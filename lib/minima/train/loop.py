"""Training, the one home of every experiment's optimisation loop.

:class:`Trainer` is one model, its optimiser (plain SGD, SGD with momentum and weight decay,
or AdamW), its learning-rate milestones and its minibatch order, stepping one epoch at a time
with growth at the start of an epoch; it trains on any ``loss_on(index)``, so a model fed by
tensors and a transformer fed by tokenised sentences share it. On top of it: :func:`fit`
(Table 1's stopping rule, 100 % training accuracy once growth is over; also notebook 20 and
the Table 2 heads; its epochs run in the compiled :class:`~minima.train.kernel.SgdKernel` where
that covers the model), :func:`minima.experiments.barriers.train_minimum` (He et al.'s recipe until a
certified minimum) and :func:`minima.experiments.table2.fine_tune_top` (fine-tuning). :func:`fit_together`
trains several seeds of one MLP side by side in stacked tensors.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..growing import GrowthPlan
from ..models import plain_mlp_layers, stacked_mlp
from .kernel import SgdKernel, covers

__all__ = ['KERNELS', 'TrainResult', 'Trainer', 'TrainingError', 'choose_kernel', 'fit', 'fit_together', 'loss_and_accuracy', 'tensor_loss']


KERNELS = ("auto", "numba", "autograd")  # how fit runs an epoch; see fit


class TrainingError(RuntimeError):
    """Training diverged or was set up wrongly; the message is one line."""


@dataclass
class TrainResult:
    """What happened during :func:`fit`.

    ``epochs``: one dict per completed epoch (``epoch`` 1-based, ``loss`` and ``accuracy`` on
    the full training set in eval mode, ``inserted`` neurons before that epoch, ``seconds``).
    ``stopped``: ``"100% training accuracy"`` or ``"max epochs"``; ``kernel``: what ran the
    epochs (``"numba"`` or ``"autograd"``).
    """

    epochs: list = field(default_factory=list)
    stopped: str = ""
    kernel: str = "autograd"
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

    def record_epoch(self, epoch: int, loss: float, accuracy: float, inserted: int, train_seconds: float,
                     seconds: float, samples: int, progress=None) -> None:
        """Append one epoch (``train_seconds``: the SGD pass, counted in the throughput;
        ``seconds``: the whole epoch, evaluation included) and report it to ``progress``."""
        self.train_seconds += train_seconds
        self.samples_seen += samples
        self.epochs.append({"epoch": epoch, "loss": loss, "accuracy": accuracy, "inserted": inserted,
                            "seconds": seconds})
        if progress is not None:
            progress(self.epochs[-1])


class Trainer:
    """A model with its optimiser, stepping through shuffled minibatches one epoch at a time.

    Args:
        model: the parameters to train (all of them).
        loss_on: ``loss_on(index) -> (batch mean loss, correct predictions or None)`` for the
            examples ``index`` (``(b,)`` int64); see :func:`tensor_loss` for tensors.
        n: number of training examples.
        lr, batch_size: the learning rate and the minibatch size.
        generator: draws each epoch's order (``torch.randperm(n)``).
        optimizer: ``"sgd"`` (with ``momentum`` and ``weight_decay``, default 0: the plain SGD
            of Caillon & Cerisara) or ``"adamw"`` (``weight_decay`` default 0.01).
        milestones: epochs after which the learning rate is divided by 10.
        growth: a :class:`~minima.growing.GrowthPlan` whose net is inside ``model``, grown at the
            start of each epoch as its schedule says; the optimiser is adopted so that its
            state follows the growth.
        kernel: a :class:`~minima.train.kernel.SgdKernel` of ``model`` on the training data that
            runs each pass instead of ``loss_on`` and autograd (plain SGD only; the same
            minibatches in the same order).
    """

    def __init__(self, model: nn.Module, loss_on, n: int, *, lr: float, batch_size: int,
                 generator: torch.Generator, optimizer: str = "sgd", momentum: float = 0.0,
                 weight_decay: float | None = None, milestones=(), growth: GrowthPlan | None = None,
                 kernel: SgdKernel | None = None):
        if kernel is not None and (optimizer != "sgd" or momentum or weight_decay):
            raise TrainingError("the compiled kernel takes plain SGD only; use kernel='autograd' for "
                                "momentum, weight decay or AdamW")
        self.kernel = kernel
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                             weight_decay=weight_decay or 0.0)
        elif optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr,
                                               weight_decay=0.01 if weight_decay is None else weight_decay)
        else:
            raise TrainingError(f"unknown optimizer {optimizer!r}; choose sgd or adamw")
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(milestones), 0.1) \
            if milestones else None
        if growth is not None:
            growth.net.adopt(self.optimizer)
        self.model, self.loss_on, self.n, self.batch_size, self.generator = model, loss_on, n, batch_size, generator
        self.growth = growth
        self.epochs_done = 0

    def epoch(self) -> dict:
        """Grow (per the schedule), then one shuffled pass. Returns ``{"epoch"`` (1-based),
        ``"inserted"`` (neurons), ``"loss"`` and ``"accuracy"`` (running means over the pass; the
        accuracy ``None`` when ``loss_on`` does not count), ``"seconds"`` (the pass)``}``."""
        epoch = self.epochs_done
        inserted = self.growth.on_epoch_start(epoch) if self.growth else []
        self.model.train()
        start, total, correct = time.perf_counter(), 0.0, 0
        order = torch.randperm(self.n, generator=self.generator)
        if self.kernel is not None:
            total, bad_step = self.kernel.epoch(order, self.batch_size, self.optimizer.param_groups[0]["lr"])
            if bad_step >= 0:
                raise TrainingError(f"the loss diverged to {total} at epoch {epoch + 1}, step {bad_step}; "
                                    "lower the learning rate")
            correct = None
        else:
            for step, index in enumerate(order.split(self.batch_size)):
                self.optimizer.zero_grad(set_to_none=True)
                loss, right = self.loss_on(index)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingError(f"the loss diverged to {value} at epoch {epoch + 1}, step {step}; "
                                        "lower the learning rate")
                loss.backward()
                self.optimizer.step()
                total += value * len(index)
                correct = None if right is None or correct is None else correct + right
        if self.scheduler is not None:
            self.scheduler.step()
        self.epochs_done += 1
        return {"epoch": epoch + 1, "inserted": len(inserted), "loss": total / self.n,
                "accuracy": None if correct is None else correct / self.n, "seconds": time.perf_counter() - start}


def tensor_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """``loss_on`` for :class:`Trainer` over tensors: cross-entropy of ``model(x[index])``."""
    return lambda index: (F.cross_entropy(model(x[index]), y[index]), None)


def _stop_label(target_accuracy: float) -> str:
    return "100% training accuracy" if target_accuracy >= 1.0 else f"{target_accuracy:.0%} accuracy"


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> tuple[float, float]:
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


def choose_kernel(kernel: str, model: nn.Module, optimizer: str = "sgd", momentum: float = 0.0) -> str:
    """What runs :func:`fit`'s epochs: ``"numba"`` (:class:`~minima.train.kernel.SgdKernel`) or
    ``"autograd"`` (:class:`Trainer`'s loop). ``kernel="auto"`` takes the compiled kernel
    whenever it covers the model and the optimiser is plain SGD: a choice made from the model
    alone, never from timing, so that a run's numbers do not depend on where it ran."""
    if kernel not in KERNELS:
        raise TrainingError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    reason = covers(model) or ("the compiled kernel takes plain SGD only" if optimizer != "sgd" or momentum else None)
    if kernel == "numba" and reason:
        raise TrainingError(f"{reason}; use kernel='autograd' for this model")
    return "autograd" if kernel == "autograd" or reason else "numba"


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float, batch_size: int, max_epochs: int,
        generator: torch.Generator, growth: GrowthPlan | None = None, target_accuracy: float | None = 1.0,
        optimizer: str = "sgd", momentum: float = 0.0, progress=None, kernel: str = "auto",
        target_loss: float | None = None) -> TrainResult:
    """Train until ``target_accuracy`` on the whole training set once growth has finished, or
    ``max_epochs`` (``target_accuracy=None``: always ``max_epochs``); with ``target_loss``, until
    the training loss is at most that instead (the first epoch after growth where it is). Plain SGD by default (no
    momentum, no weight decay, as in Caillon & Cerisara); ``optimizer="adamw"`` for transformer
    heads. Each epoch is :meth:`Trainer.epoch`, then the training loss and accuracy on the
    whole set in eval mode (by the kernel's own forward pass when it trains). Embeddings with
    sparse gradients are supported (SGD handles them). ``kernel`` (:func:`choose_kernel`): ``"auto"``, ``"numba"`` or ``"autograd"``; the two give
    the same training up to float32 rounding (summation order).
    """
    chosen = choose_kernel(kernel, model, optimizer, momentum)
    trainer = Trainer(model, tensor_loss(model, x, y), len(y), lr=lr, batch_size=batch_size, generator=generator,
                      optimizer=optimizer, momentum=momentum, growth=growth,
                      kernel=SgdKernel(model, x, y) if chosen == "numba" else None)
    result = TrainResult(kernel=chosen)
    growth_done = growth.schedule.last_epoch if growth is not None else 0
    for epoch in range(max_epochs):
        start = time.perf_counter()
        record = trainer.epoch()
        train_loss, accuracy = trainer.kernel.evaluate() if trainer.kernel else loss_and_accuracy(model, x, y)
        result.record_epoch(epoch + 1, train_loss, accuracy, record["inserted"], record["seconds"],
                            time.perf_counter() - start, len(y), progress)
        if epoch >= growth_done and target_loss is not None and train_loss <= target_loss:
            result.stopped = f"training loss at most {target_loss:.3g}"
            return result
        if target_loss is None and target_accuracy is not None and accuracy >= target_accuracy and epoch >= growth_done:
            result.stopped = _stop_label(target_accuracy)
            return result
    result.stopped = "max epochs"
    return result


class StackedMLP:
    """``S`` MLPs of one architecture as stacked tensors, evaluated with batched GEMMs.

    ``models`` are plain MLPs (:func:`minima.models.plain_mlp_layers`, as
    :func:`minima.models.mlp` builds) without buffers. Layer ``l`` holds ``weights[l]``
    ``(S, in, out)`` and ``biases[l]`` ``(S, 1, out)`` or ``None``; :meth:`__call__` maps
    ``(S, B, in)`` (or a shared ``(B, in)``) to logits ``(S, B, classes)``
    (:func:`minima.models.stacked_mlp`).
    """

    def __init__(self, models: list[nn.Module]):
        layouts = [self._layout(m) for m in models]
        if any(layout != layouts[0] for layout in layouts):
            raise TrainingError("fit_together needs models of one architecture; train different ones with fit")
        linears = [[m for m in model if isinstance(m, nn.Linear)] for model in models]
        with torch.no_grad():
            self.weights = [torch.stack([m.weight.T for m in layer]).contiguous().requires_grad_(True)
                            for layer in zip(*linears)]
            self.biases = [torch.stack([m.bias[None] for m in layer]).requires_grad_(True)
                           if layer[0].bias is not None else None for layer in zip(*linears)]
        self.models = models

    @staticmethod
    def _layout(model: nn.Module) -> list:
        if plain_mlp_layers(model) is None or any(True for _ in model.buffers()):
            raise TrainingError("fit_together trains nn.Sequential MLPs (Flatten, Linear, elementwise "
                                "activations); train other models with fit")
        return [(type(m).__name__, tuple(m.weight.shape), m.bias is not None) if isinstance(m, nn.Linear)
                else type(m).__name__ for m in model]

    def parameters(self) -> list[torch.Tensor]:
        return [t for pair in zip(self.weights, self.biases) for t in pair if t is not None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return stacked_mlp(list(self.models[0]), x, self.weights, self.biases)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the stacked values into the original models."""
        for s, model in enumerate(self.models):
            linears = [m for m in model if isinstance(m, nn.Linear)]
            for layer, weight, bias in zip(linears, self.weights, self.biases):
                layer.weight.copy_(weight[s].T)
                if bias is not None:
                    layer.bias.copy_(bias[s, 0])


def fit_together(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor, *, lr: float, batch_size: int,
                 max_epochs: int, generators: list[torch.Generator], target_accuracy: float = 1.0,
                 progress=None) -> list[TrainResult]:
    """:func:`fit` for several MLPs of one architecture (seeds), computed side by side.

    Model ``s`` draws its minibatch order from ``generators[s]`` exactly as :func:`fit` would
    and takes plain SGD steps on its own minibatch mean loss; the models' weights are stacked
    (:class:`StackedMLP`) so that each step is one batched GEMM per layer for all of them and
    the Python and dispatch overhead of a small network is paid once instead of once per
    model. A model that reaches ``target_accuracy`` stops changing (bit for bit) while the
    others go on. The trained values are written back into ``models``; results equal
    separate :func:`fit` runs up to float32 rounding (summation order).
    """
    if len(models) != len(generators) or not models:
        raise TrainingError(f"got {len(models)} models and {len(generators)} generators; pass one generator per model")
    stacked = StackedMLP(models)
    x = x.flatten(1)
    results = [TrainResult() for _ in models]
    active = torch.ones(len(models), dtype=torch.bool)
    for epoch in range(max_epochs):
        start = time.perf_counter()
        orders = torch.stack([torch.randperm(len(y), generator=g) for g in generators])  # (S, N)
        for step, index in enumerate(orders.split(batch_size, dim=1)):  # (S, b)
            logits = stacked(x[index])
            losses = F.cross_entropy(logits.transpose(1, 2), y[index], reduction="none").mean(1)  # (S,)
            bad = active & ~torch.isfinite(losses.detach())
            if bad.any():
                s = int(bad.nonzero()[0])
                raise TrainingError(f"the loss of model {s} diverged to {float(losses.detach()[s])} at epoch {epoch + 1}, "
                                    f"step {step}; lower the learning rate")
            parameters = stacked.parameters()
            grads = torch.autograd.grad(losses.sum(), parameters)
            with torch.no_grad():
                if bool(active.all()):
                    torch._foreach_add_(parameters, grads, alpha=-lr)
                else:  # stopped models stay bit for bit (where, not a product: NaN * 0 is NaN)
                    for p, g in zip(parameters, grads):
                        p.sub_(torch.where(active.view(-1, *([1] * (g.dim() - 1))), g, 0), alpha=lr)
        train_seconds = time.perf_counter() - start
        train_loss, accuracy = _evaluate_stacked(stacked, x, y)
        seconds = time.perf_counter() - start
        for s in active.nonzero().flatten().tolist():
            results[s].record_epoch(epoch + 1, float(train_loss[s]), float(accuracy[s]), 0, train_seconds,
                                    seconds, len(y), progress)
            if accuracy[s] >= target_accuracy:
                results[s].stopped = _stop_label(target_accuracy)
                active[s] = False
        if not active.any():
            break
    for result in results:
        result.stopped = result.stopped or "max epochs"
    stacked.write_back()
    return results


@torch.no_grad()
def _evaluate_stacked(stacked: StackedMLP, x: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model mean cross-entropy and accuracy ``(S,)`` on ``(x, y)`` (flat inputs)."""
    n_models = len(stacked.models)
    loss, correct = torch.zeros(n_models, dtype=torch.float64), torch.zeros(n_models, dtype=torch.int64)
    for start in range(0, len(y), batch_size):
        out = stacked(x[start: start + batch_size])  # (S, b, classes)
        target = y[start: start + batch_size]
        loss += F.cross_entropy(out.transpose(1, 2), target.expand(n_models, -1), reduction="none").sum(1).double()
        correct += (out.argmax(2) == target).sum(1)
    return loss / len(y), correct.double() / len(y)
