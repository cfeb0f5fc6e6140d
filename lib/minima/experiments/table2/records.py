"""Table 2's heads and records: how a head is built (:func:`make_head`), measured
(:func:`head_row`: finished to a certified minimum of its own problem, then test accuracy,
Matthews correlation, certificate and flatness) and written (:class:`HeadRecord`)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.metrics import matthews_corrcoef

from ...core.hessian import HessianOperator
from ...data import batches
from ...geometry.certificate import Certificate, certify
from ...geometry.finish import Objective, finish
from ...geometry.flatness import measure
from ...growing import GrowthPlan, GrowthSchedule
from ..heads import GrowingHead, ReferenceHead, growth_plan, reference_parameters


RESULT_COLUMNS = ("protocol", "head", "seed", "accuracy", "mcc", "rsi", "elementwise", "plain", "lambda_min", "lambda_max",
                  "verdict", "finish", "parameters", "train_seconds")


@dataclass(frozen=True)
class HeadTraining:
    """How every head of Table 2 trains and is measured: ``epochs`` of AdamW (weight decay 0.01,
    constant ``lr``) in batches of ``batch_size``, the grown head grown at the start of the epochs
    in ``phases``; then, the encoder fixed, at most ``finish_rounds`` rounds of full-batch L-BFGS
    on the head's own problem (cross-entropy plus ``finish_weight_decay / 2 * |theta|^2``) until
    its certificate says ``minimum`` (:func:`finish_head`; 0: no finish); the Hessian on the
    first ``hessian_subset`` training sentences."""

    epochs: int
    batch_size: int
    lr: float
    phases: tuple
    hessian_subset: int
    finish_rounds: int = 0
    finish_iterations: int = 25
    finish_weight_decay: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "phases", tuple(self.phases))


@dataclass
class Head:
    """A head as :func:`make_head` builds it: ``module`` (what is installed on the encoder),
    ``net`` (the part whose Hessian is measured) and, for the grown head, its
    :class:`~minima.growing.GrowthPlan` (``None`` for the reference head)."""

    kind: str
    module: torch.nn.Module
    net: torch.nn.Module
    growth: GrowthPlan | None

    @property
    def parameters(self) -> int:
        return self.growth.net.num_parameters() if self.growth else sum(p.numel() for p in self.module.parameters())


def make_head(kind: str, hidden: int, labels: int, seed: int, phases: tuple) -> Head:
    """The ``"growing"`` head (grown to the reference head's size after each epoch of ``phases``)
    or the ``"reference"`` head, for features of size ``hidden``."""
    if kind == "growing":
        head = GrowingHead(hidden, labels, seed=seed)
        return Head(kind, head, head.net, GrowthPlan(head.net, GrowthSchedule.phases(hidden, tuple(phases)),
                                                     growth_plan(hidden, labels)))
    if kind == "reference":
        head = ReferenceHead(hidden, labels, seed=seed)
        return Head(kind, head, head, None)
    raise ValueError(f"unknown head {kind!r}; choose growing or reference")


@dataclass(frozen=True)
class HeadRecord:
    """One trained head of Table 2: its kind and seed, the ``protocol`` (``"frozen"`` encoder or
    ``"fine-tuned"`` with the head), how it was finished (``finish``, the rounds' training
    losses ``finish_losses``), sizes (``parameters`` and the reference
    head's), test ``accuracy`` and ``mcc``, the last epoch's running training loss and accuracy,
    the training seconds, the flatness ``measures`` and certificate at the end point, the
    training ``curve`` and, for the grown head, hidden neurons per depth. :meth:`as_row` is its
    row of the results file."""

    head: str
    seed: int
    parameters: int
    reference_parameters: int
    accuracy: float
    mcc: float
    train_accuracy: float
    train_loss: float
    train_seconds: float
    measures: dict
    certificate: Certificate
    curve: list
    depth_histogram: list | None
    protocol: str = "fine-tuned"
    finish: str = "none"
    finish_losses: tuple = ()

    def as_row(self) -> dict:
        """The results file's columns (:data:`RESULT_COLUMNS` among them, names as the file has
        them); the certificate's loss and accuracy are on the Hessian subset, in eval mode."""
        cert = self.certificate
        return {"protocol": self.protocol, "head": self.head, "seed": self.seed, "finish": self.finish,
                "finish losses": list(self.finish_losses), "parameters": self.parameters,
                "reference parameters": self.reference_parameters, "accuracy": self.accuracy, "mcc": self.mcc,
                "train accuracy": self.train_accuracy, "train loss": self.train_loss,
                "train_seconds": self.train_seconds, **self.measures,
                **{k: v for k, v in cert.as_row().items() if k not in ("train_loss", "train_accuracy")},
                "certificate train loss": cert.train_loss, "certificate train accuracy": cert.train_accuracy,
                "curve": self.curve, "depth histogram": self.depth_histogram}


def head_row(head: Head, seed: int, train_features: torch.Tensor, y_train: torch.Tensor, test_features: torch.Tensor,
             y_test: torch.Tensor, history: list[dict], seconds: float, training: HeadTraining,
             protocol: str) -> HeadRecord:
    """One row of Table 2 for a trained ``head`` on fixed features ``(N, H)`` of every training
    and test sentence: the head finished to a minimum of its own problem when
    ``training.finish_rounds`` (:func:`finish_head`), then the accuracy and Matthews correlation
    of its test predictions, its convergence certificate and flatness (Hessian with respect to
    the head's parameters on the first ``training.hessian_subset`` training sentences), sizes.
    ``history``: one record per training epoch."""
    hidden, labels = train_features.shape[1], int(y_train.max()) + 1
    subset = training.hessian_subset
    head.module.eval()  # dropout off: the head's loss as the Hessian measures it
    hessian = HessianOperator(head.net, F.cross_entropy, batches(train_features[:subset], y_train[:subset], 1000))
    finish, finish_losses, certificate = "none", [], None
    if training.finish_rounds:
        start = time.perf_counter()
        certificate, finish_losses = finish_head(head, hessian, train_features, y_train, training, seed)
        seconds += time.perf_counter() - start
        finish = f"L-BFGS, {len(finish_losses)} rounds of at most {training.finish_iterations} iterations"
    with torch.no_grad():
        predictions = head.module(test_features).argmax(1)
    if certificate is None:
        certificate = certify(hessian, loss_history=[e["loss"] for e in history], seed=seed)
    values = measure(hessian, seed=seed, blocks="depth", certificate=certificate)
    growing = head.growth.net if head.growth else None
    return HeadRecord(head.kind, seed, head.parameters, reference_parameters(hidden, labels),
                      float((predictions == y_test).double().mean()),
                      float(matthews_corrcoef(y_test.numpy(), predictions.numpy())),
                      history[-1]["accuracy"], history[-1]["loss"], seconds, values, certificate, history,
                      torch.bincount(torch.as_tensor(growing.depth[growing.hidden_ids])).tolist()
                      if growing is not None else None, protocol, finish, tuple(finish_losses))


def finish_head(head: Head, hessian: HessianOperator, train_features: torch.Tensor, y_train: torch.Tensor,
                training: HeadTraining, seed: int) -> tuple[Certificate, list[float]]:
    """The head's own problem solved from where training left it (:func:`minima.geometry.finish.finish`):
    the encoder fixed (its features ``train_features`` of every training sentence), the head's
    mean cross-entropy in eval mode (no dropout: the loss the Hessian measures) plus
    ``training.finish_weight_decay / 2 * |theta|^2`` (default 0: the paper's loss; measured on
    MiniLM, the minimum then nearly interpolates the training sentences, and with AdamW's 0.01
    the heads fall to the majority class), certified on ``hessian``'s data. Returns the
    certificate and the rounds' training losses."""
    head.module.eval()
    objective = Objective(head.net, train_features, y_train, weight_decay=training.finish_weight_decay,
                          hessian_data=hessian.batches)
    done = finish(objective, training.finish_rounds, training.finish_iterations, seed=seed)
    return done.certificate, done.losses


def results_table(records) -> "pd.DataFrame":
    """The per-run results table (one row per head and seed) of the successful records, in spec
    order; failures are left out (:func:`minima.runs.failures` lists them)."""
    import pandas as pd

    return pd.DataFrame([record.as_row() for record in records if isinstance(record, HeadRecord)])
