"""Table 1's records: one :class:`Table1Row` per run and protocol, a run's
:class:`Table1Record`, and the results table built from them."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ...geometry.certificate import Certificate


@dataclass(frozen=True)
class Table1Row:
    """One end point of a run under one protocol (``"paper"`` or one of :data:`~.protocols.PROTOCOLS`): the run's
    identity and sizes, how training stopped and took (``train_seconds``, ``samples_per_second``
    of the SGD passes), the point's certificate, flatness ``measures`` (``{name: value}``) and
    test accuracy, the seconds its Hessians took and the training ``curve`` (one dict per
    epoch). :meth:`as_row` is its row of the results file."""

    task: str
    hidden: int
    model: str
    batch: int
    seed: int
    parameters: int
    depth: int
    samples_per_second: float
    threads: int
    kernel: str
    protocol: str
    stopped: str
    finish: str
    train_seconds: float
    epochs: int
    certificate: Certificate
    measures: dict
    test_accuracy: float
    hessian_seconds: float
    curve: list
    finish_losses: tuple = ()
    train_examples: int = 0  # the training examples the run saw (the trim applied)
    weight_decay: float = 0.0  # lambda of the objective the end point minimises (0: the plain cross-entropy)
    objective: float = float("nan")  # that objective's value there
    theta_norm: float = float("nan")  # |theta| of the network part
    stability: float = float("nan")  # largest relative change of a flatness measure over one more finish round
    hidden_share: float = float("nan")  # a grown net: share of |theta|^2 off its direct input-output map
    hidden_effect: float = float("nan")  # ... and the largest logit change when that part is zeroed
    collapsed: bool | None = None  # a grown net whose hidden part changes no logit (None: not a grown net)
    direct_share: float = float("nan")  # a grown net: share of its weights on the direct input-output map
    constant: bool = False  # the network predicts one class for every training example of the Hessian data
    target_loss: float = float("nan")  # matched-loss: the training CE its cell's runs stop at (nan: other protocols)

    def as_row(self) -> dict:
        """The results file's columns (:data:`RESULT_COLUMNS` among them, names as the file has
        them) and the curve, which stays on the page."""
        return {"task": self.task, "hidden": self.hidden, "model": self.model, "batch": self.batch, "seed": self.seed,
                "parameters": self.parameters, "depth": self.depth, "samples/s": self.samples_per_second,
                "threads": self.threads, "kernel": self.kernel, "protocol": self.protocol, "stopped": self.stopped,
                "finish": self.finish,
                "train s": self.train_seconds, "epochs": self.epochs, **self.certificate.as_row(), **self.measures,
                "test_accuracy": self.test_accuracy, "hessian s": self.hessian_seconds, "curve": list(self.curve),
                "finish losses": list(self.finish_losses), "train examples": self.train_examples,
                "weight_decay": self.weight_decay, "objective": self.objective, "theta_norm": self.theta_norm,
                "stability": self.stability, "hidden_share": self.hidden_share, "hidden_effect": self.hidden_effect,
                "collapsed": self.collapsed, "direct_share": self.direct_share,
                "constant": self.constant, "target_loss": self.target_loss}


@dataclass(frozen=True)
class Table1Record:
    """What one :class:`Table1Run` produced: its :class:`Table1Row` per protocol (``paper``, then
    ``converged`` when that protocol ran) and, when asked, the spectral density of the network
    part's Hessian at the last end point (``(nodes, weights)``,
    :func:`minima.core.spectrum.spectral_density`)."""

    rows: tuple
    density: tuple | None = None


@dataclass
class TrainedRun:
    """A run's record with the trained model (``full``), its network part (``net``: the Hessian's
    parameters) and the Hessian data at the last end point, for callers that inspect them."""

    record: Table1Record
    full: nn.Module
    net: nn.Module
    hessian_data: list


def results_table(records) -> "pd.DataFrame":
    """The per-run results table (one row per run and protocol) of the successful records, in
    spec order; failures are left out (:func:`minima.runs.failures` lists them)."""
    import pandas as pd

    return pd.DataFrame([row.as_row() for record in records if isinstance(record, Table1Record) for row in record.rows])


RESULT_COLUMNS = ("task", "hidden", "model", "batch", "seed", "protocol", "epochs", "finish", "train_accuracy", "train_loss",
                  "grad_norm", "lambda_max", "lambda_min", "verdict", "rsi", "elementwise", "plain", "test_accuracy",
                  "weight_decay", "objective", "theta_norm", "stability", "hidden_share", "hidden_effect", "collapsed",
                  "direct_share", "constant", "target_loss")
