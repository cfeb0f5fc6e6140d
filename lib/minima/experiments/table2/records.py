"""Table 2's heads and records: how a head is built (:func:`make_head`), measured
(:func:`head_rows`: at the paper's end point, then finished to a certified minimum of its
own regularised problem; test accuracy, Matthews correlation with its bootstrap interval,
certificate and flatness at each point) and written (:class:`HeadRecord`)."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import matthews_corrcoef

from ...core.hessian import HessianOperator
from ...data import batches
from ...geometry.certificate import Certificate, Rule, certify
from ...geometry.finish import Objective, finish, stability
from ...geometry.flatness import measure
from ...growing import GrowthPlan, GrowthSchedule, collapsed, hidden_part
from ..heads import GrowingHead, ReferenceHead, growth_plan, reference_parameters


RESULT_COLUMNS = ("protocol", "point", "head", "seed", "weight_decay", "accuracy", "mcc", "mcc_low", "mcc_high",
                  "learns", "rsi", "elementwise", "plain", "lambda_min", "lambda_max", "verdict", "finish", "parameters",
                  "train_seconds")

#: the two points a head is measured at: the paper's (the end of its training schedule,
#: uncertified, as the paper measured) and a certified minimum of the head's regularised problem
END_POINTS = "paper (end points)"
REGULARISED = "regularised"
#: the finish's certificate, as Table 1's regularised protocol: no training-accuracy test (a
#: regularised head need not fit every sentence), the objective flat to 1e-5 over 3 rounds
REGULARISED_RULE = Rule(accuracy=math.inf, plateau_rtol=1e-5, plateau_epochs=3)
STABILITY_TOLERANCE = 0.01  # one more L-BFGS round may move no flatness measure by 1 % or more
BOOTSTRAP_RESAMPLES = 2000  # resamples of the dev sentences for the MCC's 95 % interval


@dataclass(frozen=True)
class HeadTraining:
    """How every head of Table 2 trains and is measured: ``epochs`` of AdamW (weight decay 0.01,
    constant ``lr``) in batches of ``batch_size``, the grown head grown at the start of the epochs
    in ``phases``; the end point's Hessian on the first ``hessian_subset`` training sentences.
    Then, the encoder fixed, at most ``finish_rounds`` rounds of ``finish_iterations`` float64
    full-batch L-BFGS iterations on the head's own problem (mean cross-entropy over every
    training sentence plus ``finish_weight_decay / 2 * |theta_head|^2``, ``lambda``), in chunks of
    ``finish_chunk`` sentences, until its certificate says ``minimum`` (:func:`finish_head`; 0:
    no finish); that minimum's Hessian on every training sentence."""

    epochs: int
    batch_size: int
    lr: float
    phases: tuple
    hessian_subset: int
    finish_rounds: int = 0
    finish_iterations: int = 25
    finish_weight_decay: float = 0.0
    finish_chunk: int = 2000

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
    """One trained head of Table 2 at one ``point`` (:data:`END_POINTS` or :data:`REGULARISED`):
    its kind and seed, the ``protocol`` (``"frozen"`` encoder or ``"fine-tuned"`` with the head),
    the objective's ``weight_decay`` (``lambda``; 0 at the end point), how it was finished
    (``finish``, the rounds' training losses ``finish_losses``), sizes (``parameters`` and the
    reference head's), test ``accuracy`` and ``mcc`` with its bootstrap interval ``mcc_interval``
    (95 %, over dev sentences), the last epoch's running training loss and accuracy, the training
    seconds, the flatness ``measures`` and certificate at the point, the training ``curve``, for
    the grown head hidden neurons per depth and whether it ``collapsed`` onto its direct map, and
    the finish's ``stability`` (the largest change of a measure after one more round).
    :meth:`as_row` is its row of the results file."""

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
    point: str = END_POINTS
    weight_decay: float = 0.0
    mcc_interval: tuple = (math.nan, math.nan)
    collapsed: bool | None = None
    stability: float = math.nan

    @property
    def learns(self) -> bool:
        """Whether the head beats the majority-class baseline on the dev sentences (MCC > 0)."""
        return self.mcc > 0

    def as_row(self) -> dict:
        """The results file's columns (:data:`RESULT_COLUMNS` among them, names as the file has
        them); the certificate's loss and accuracy are on its Hessian data, in eval mode (the
        cross-entropy, without the penalty)."""
        cert = self.certificate
        return {"protocol": self.protocol, "point": self.point, "head": self.head, "seed": self.seed,
                "weight_decay": self.weight_decay, "finish": self.finish,
                "finish losses": list(self.finish_losses), "parameters": self.parameters,
                "reference parameters": self.reference_parameters, "accuracy": self.accuracy, "mcc": self.mcc,
                "mcc_low": self.mcc_interval[0], "mcc_high": self.mcc_interval[1], "learns": self.learns,
                "train accuracy": self.train_accuracy, "train loss": self.train_loss,
                "train_seconds": self.train_seconds, **self.measures,
                **{k: v for k, v in cert.as_row().items() if k not in ("train_loss", "train_accuracy")},
                "certificate train loss": cert.train_loss, "certificate train accuracy": cert.train_accuracy,
                "collapsed": self.collapsed, "stability": self.stability,
                "curve": self.curve, "depth histogram": self.depth_histogram}


def mcc_interval(y_true: np.ndarray, y_pred: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                 level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of the binary Matthews correlation over sentences:
    ``resamples`` resamples (seeded) of the ``(N,)`` labels and predictions with replacement. A
    resample with an empty row or column of the confusion table has MCC 0 (sklearn's convention)."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    index = np.random.default_rng(seed).integers(0, len(y_true), size=(resamples, len(y_true)))
    t, p = y_true[index], y_pred[index]
    tp, tn = (t & p).sum(1).astype(float), (~t & ~p).sum(1).astype(float)
    fp, fn = (~t & p).sum(1).astype(float), (t & ~p).sum(1).astype(float)
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    values = np.divide(tp * tn - fp * fn, denominator, out=np.zeros(resamples), where=denominator > 0)
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def _scores(predict, test_features: torch.Tensor, y_test: torch.Tensor, seed: int) -> dict:
    """Accuracy, MCC and its bootstrap interval of ``predict(features) -> logits`` on the test set."""
    with torch.no_grad():
        predictions = predict(test_features).argmax(1).cpu()
    y, yhat = y_test.numpy(), predictions.numpy()
    return {"accuracy": float((predictions == y_test).double().mean()), "mcc": float(matthews_corrcoef(y, yhat)),
            "mcc_interval": mcc_interval(y, yhat, seed)}


def head_rows(head: Head, seed: int, train_features: torch.Tensor, y_train: torch.Tensor,
              test_features: torch.Tensor, y_test: torch.Tensor, history: list[dict], seconds: float,
              training: HeadTraining, protocol: str, measured: bool = True) -> tuple[HeadRecord, ...]:
    """The rows of Table 2 for a trained ``head`` on fixed features ``(N, H)`` of every training
    and test sentence (``history``: one record per training epoch, ``seconds`` its time):

    - the paper's end point, as the paper measured it: its certificate from the training
      curve, flatness on the Hessian of the cross-entropy with respect to the head's parameters
      on the first ``training.hessian_subset`` training sentences;
    - when ``training.finish_rounds``, the certified minimum of the head's regularised problem
      from there (:func:`finish_head`), flatness on the cross-entropy's Hessian on every
      training sentence there. A certified point must also be stable (one more round moves no
      measure by :data:`STABILITY_TOLERANCE` or more); one that is not goes on with the finish
      from there, within ``finish_rounds`` rounds in all, else its verdict is ``not converged``.

    Each with the test accuracy and Matthews correlation of its predictions. ``measured=False``
    (choosing ``lambda``): no flatness measures, the regularised row only."""
    hidden, labels = train_features.shape[1], int(y_train.max()) + 1
    subset = training.hessian_subset
    head.module.eval()  # dropout off: the head's loss as the Hessian measures it
    growing = head.growth.net if head.growth else None
    common = dict(head=head.kind, seed=seed, parameters=head.parameters,
                  reference_parameters=reference_parameters(hidden, labels), train_accuracy=history[-1]["accuracy"],
                  train_loss=history[-1]["loss"], curve=history, protocol=protocol,
                  depth_histogram=torch.bincount(torch.as_tensor(growing.depth[growing.hidden_ids])).tolist()
                  if growing is not None else None)
    rows = []
    if measured:
        hessian = HessianOperator(head.net, F.cross_entropy, batches(train_features[:subset], y_train[:subset], 1000))
        certificate = certify(hessian, loss_history=[e["loss"] for e in history], seed=seed)
        values = measure(hessian, seed=seed, blocks="depth", certificate=certificate)
        inputs = train_features[:subset]
        rows.append(HeadRecord(**common, **_scores(head.module, test_features, y_test, seed), train_seconds=seconds,
                               measures=values, certificate=certificate, point=END_POINTS,
                               collapsed=_collapsed(head.net, inputs) if growing is not None else None))
    if training.finish_rounds:
        start = time.perf_counter()
        net, objective, done = finish_head(head, train_features, y_train, training, seed)
        losses, objectives = list(done.losses), list(done.objectives)
        certificate, values, change = done.certificate, {}, math.nan
        while measured:
            # the certificate's lambda_max is H + lambda I's: the cross-entropy's is lambda less
            plain = replace(certificate, lambda_max=certificate.lambda_max - training.finish_weight_decay)
            values = measure(objective.hessian(), seed=seed, blocks="depth", certificate=plain)
            if certificate.verdict != "minimum":
                break
            change = stability(objective, values, lambda: measure(objective.hessian(), seed=seed, blocks="depth"),
                               training.finish_iterations)
            loss, _, value = objective.evaluate()
            losses.append(loss)
            objectives.append(value)
            left = training.finish_rounds - len(losses)
            if change < STABILITY_TOLERANCE or left <= 0:
                if not change < STABILITY_TOLERANCE:
                    certificate = replace(certificate, verdict="not converged")
                break
            # the measures still move: the plateau test stopped too early; finish on from here
            done = finish(objective, left, training.finish_iterations, rule=REGULARISED_RULE, seed=seed,
                          history=objectives)
            losses += done.losses
            objectives += done.objectives
            certificate = done.certificate
        finish_seconds = time.perf_counter() - start
        net.eval()
        rows.append(HeadRecord(**common, **_scores(lambda x: net(x.double()), test_features, y_test, seed),
                               train_seconds=seconds + finish_seconds, measures=values, certificate=certificate,
                               finish=f"L-BFGS, {len(losses)} rounds of at most {training.finish_iterations} iterations "
                                      "(float64)", finish_losses=tuple(losses),
                               point=REGULARISED, weight_decay=training.finish_weight_decay, stability=change,
                               collapsed=_collapsed(net, train_features.double()) if growing is not None else None))
    return tuple(rows)


def _collapsed(net, inputs: torch.Tensor) -> bool:
    """Whether a grown head collapsed onto its direct input-output map, a linear classifier on
    the features (:func:`minima.growing.hidden_part`)."""
    with torch.no_grad():
        return collapsed(hidden_part(net.eval(), inputs)[1])


def finish_head(head: Head, train_features: torch.Tensor, y_train: torch.Tensor, training: HeadTraining,
                seed: int):
    """The head's own problem solved from where training left it (:func:`minima.geometry.finish.finish`),
    on a float64 copy of the head's network (``head`` itself stays at its end point): the
    encoder fixed (its features ``train_features`` of every training sentence), the head's mean
    cross-entropy in eval mode (no dropout: the loss the Hessian measures) plus
    ``training.finish_weight_decay / 2 * |theta|^2``, certified with :data:`REGULARISED_RULE` on
    that objective over every training sentence. Returns ``(network, objective, Finish)``."""
    net = copy.deepcopy(head.net).double().eval()
    objective = Objective(net, train_features.double(), y_train, weight_decay=training.finish_weight_decay,
                          chunk=training.finish_chunk)
    done = finish(objective, training.finish_rounds, training.finish_iterations, rule=REGULARISED_RULE, seed=seed)
    return net, objective, done


def results_table(records) -> "pd.DataFrame":
    """The per-run results table (one row per head, seed and point) of the successful runs'
    records (each a tuple of :class:`HeadRecord`), in spec order; failures are left out
    (:func:`minima.runs.failures` lists them)."""
    import pandas as pd

    return pd.DataFrame([row.as_row() for record in records if isinstance(record, tuple)
                         for row in record if isinstance(row, HeadRecord)])
