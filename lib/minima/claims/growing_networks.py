"""The evidence for Caillon & Cerisara's claims, from Table 1's and Table 2's results files
(``40_table1.csv``: one row per run, :data:`minima.experiments.table1.RESULT_COLUMNS`;
``60_table2.csv``: one row per head and seed) and, for the paper's own numbers, from its
tables (:mod:`minima.experiments.papers`) put in the same shape.

Flatness ``measure`` is ``elementwise`` (the measure invariant for both kinds of network, see
the Table 1 page: the headline of every flatness claim), ``plain`` (the paper's own lambda_max)
or ``rsi`` (the paper's scale-invariant norm, not invariant for a grown network); test
accuracy is compared in percentage points. ``cluster`` is the unit that shares a run: the
seed, whose grown run every twin of that seed is compared with (``size/model/seed`` for the
batch comparison, whose two runs belong to it alone).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..experiments import papers
from .evidence import PAIRED, TREND, flag, frame

MEASURES = ("elementwise", "plain", "rsi")
RUN_KEYS = ["protocol", "task", "hidden", "batch", "seed"]
SIMILAR_ACCURACY_PP = 2.0  # "similar" / "roughly the same" accuracy: the equivalence margin, in points
# (no smaller than a test set's standard error: 1.2 points on 1,520 AG News sentences, 1.0 on
# 2,000 MNIST images)
SMALL_FLATTER_FACTOR = 2.5  # Discussion: "at least 2.5 (up to more than 10) times flatter"
HEAD_FLATTER_FACTOR = 10.0  # Discussion: "flatter by an order of magnitude"
# the paper's end points in the results files (Table 2's ``point``; the ledger's label of the paper protocol)
END_POINTS = "paper (end points)"


def paper_runs() -> pd.DataFrame:
    """The paper's Table 1 as a results table: one certified run per cell (seed 0, protocol
    ``paper``), its spectral norm as ``rsi`` (the same kind of measure), accuracy as a fraction."""
    table = papers.GROWING_TABLE1.reset_index()
    return pd.DataFrame({"task": table.task, "hidden": table.hidden, "model": table.model, "batch": table.batch,
                         "seed": 0, "protocol": "paper", "verdict": "minimum", "rsi": table.spectral_norm,
                         "elementwise": np.nan, "plain": np.nan, "test_accuracy": table.test_accuracy / 100,
                         "train_loss": np.nan})


def _scope(task, hidden) -> pd.Series:
    return task.astype(str) + "-" + hidden.astype(str)


def _evidence(pairs: pd.DataFrame) -> pd.Series:
    return ("40_table1.csv: protocol=" + pairs.protocol.astype(str) + ", task=" + pairs.task.astype(str)
            + ", hidden=" + pairs.hidden.astype(str))


TWINS = ("a", "b", "c")  # the paper's fully connected twins (the controls, linear and static, are not twins)


def twin_pairs(results: pd.DataFrame, twins=TWINS) -> pd.DataFrame:
    """The grown run beside each of ``twins`` (default: the fully connected twins; or a control)
    of the same protocol, task, size, batch and seed: one row per twin, columns suffixed
    ``_grown`` and ``_twin``."""
    grown = results[results.model == "growing"]
    others = results[results.model.isin(twins)]
    return others.merge(grown, on=RUN_KEYS, suffixes=("_twin", "_grown"))


def _paired(pairs: pd.DataFrame, measure: str, value, supports, certified, scope=None, loss_ratio=np.nan,
            collapsed=np.nan) -> pd.DataFrame:
    return frame(pd.DataFrame({
        "scope": _scope(pairs.task, pairs.hidden) if scope is None else scope, "protocol": pairs.protocol,
        "measure": measure, "cluster": pairs.seed, "value": value, "supports": supports,
        "certified": certified, "evidence": _evidence(pairs), "loss_ratio": loss_ratio, "collapsed": collapsed}), PAIRED)


def _collapsed(pairs: pd.DataFrame) -> pd.Series:
    """Whether the grown run of each comparison collapsed onto its direct map (False when the
    results file does not say)."""
    return flag(pairs, "collapsed_grown")


def _losses(pairs: pd.DataFrame, sharper: str, flatter: str) -> pd.Series:
    """The training cross-entropy of the arm a claim calls sharper over the one it calls flatter
    (NaN when the results file has no ``train_loss``)."""
    if f"train_loss_{sharper}" not in pairs:
        return pd.Series(np.nan, index=pairs.index)
    return pairs[f"train_loss_{sharper}"] / pairs[f"train_loss_{flatter}"]


def learnt(pairs: pd.DataFrame, arm: str) -> pd.Series:
    """False where the arm's network predicts one class for every example (it learnt nothing:
    at a large lambda a deep twin can decay to the constant predictor, the flattest point there
    is)."""
    return ~flag(pairs, f"constant_{arm}")


def _both_minima(pairs: pd.DataFrame, a: str, b: str) -> pd.Series:
    """Both runs certified minima of networks that learnt something (:func:`learnt`)."""
    return (pairs[f"verdict_{a}"] == "minimum") & (pairs[f"verdict_{b}"] == "minimum") & learnt(pairs, a) & \
        learnt(pairs, b)


def flatter(results: pd.DataFrame) -> pd.DataFrame:
    """Table 1: the grown network's minimum is flatter than each fully connected twin's.
    ``value``: twin / grown flatness (> 1 agrees), per task and size."""
    pairs = twin_pairs(results)
    parts = [_paired(pairs, m, pairs[f"{m}_twin"] / pairs[f"{m}_grown"], pairs[f"{m}_twin"] > pairs[f"{m}_grown"],
                     _both_minima(pairs, "twin", "grown"), loss_ratio=_losses(pairs, "twin", "grown"),
                     collapsed=_collapsed(pairs)) for m in MEASURES]
    return frame(pd.concat(parts, ignore_index=True), PAIRED)


def flatter_than(results: pd.DataFrame, control: str) -> pd.DataFrame | None:
    """The grown network against a control arm (``"static"``: its own final graph trained with no
    insertion; ``"linear"``: its direct input-output map alone) at the same protocol, task, size,
    batch and seed. ``value``: control / grown flatness (> 1: the grown one is flatter). ``None``
    when the results file has no such arm."""
    if control not in set(results.model):
        return None
    pairs = twin_pairs(results, (control,))
    parts = [_paired(pairs, m, pairs[f"{m}_twin"] / pairs[f"{m}_grown"], pairs[f"{m}_twin"] > pairs[f"{m}_grown"],
                     _both_minima(pairs, "twin", "grown"), loss_ratio=_losses(pairs, "twin", "grown"),
                     collapsed=_collapsed(pairs)) for m in MEASURES]
    return frame(pd.concat(parts, ignore_index=True), PAIRED)


def flatter_than_static(results: pd.DataFrame) -> pd.DataFrame | None:
    """What the insertion process adds: grown against ``static`` (:func:`flatter_than`)."""
    return flatter_than(results, "static")


def flatter_than_linear(results: pd.DataFrame) -> pd.DataFrame | None:
    """What growth adds over the direct map: grown against ``linear`` (:func:`flatter_than`)."""
    return flatter_than(results, "linear")


def generalises_better(results: pd.DataFrame) -> pd.DataFrame | None:
    """The paper's second claim, at the same points: the grown network's test accuracy against
    twin ``a`` and against ``static`` (grown minus other, in points; > 0 agrees). ``None`` when the
    file has no static arm."""
    if "static" not in set(results.model):
        return None
    pairs = twin_pairs(results, ("a", "static"))
    gap = _accuracy_gap(pairs)
    return _paired(pairs, "test accuracy", gap, gap > 0, _both_minima(pairs, "twin", "grown"),
                   collapsed=_collapsed(pairs))


def batch_sharper(results: pd.DataFrame) -> pd.DataFrame:
    """Table 1: a larger batch gives a sharper minimum. Each model and seed at the task's
    smallest and largest batch; ``value``: large / small flatness (> 1 agrees), per task."""
    keys = ["protocol", "task", "hidden", "model", "seed"]
    results = results[results.model.isin(("growing",) + TWINS)]  # the paper's arms
    small = results.loc[results.groupby(keys).batch.idxmin()]
    large = results.loc[results.groupby(keys).batch.idxmax()]
    pairs = small.merge(large, on=keys, suffixes=("_small", "_large"))
    pairs = pairs[pairs.batch_small != pairs.batch_large]
    # its cluster: the two runs of a model, size and seed belong to this comparison alone
    pairs = pairs.assign(seed=pairs.hidden.astype(str) + "/" + pairs.model.astype(str) + "/" + pairs.seed.astype(str))
    parts = [_paired(pairs, m, pairs[f"{m}_large"] / pairs[f"{m}_small"], pairs[f"{m}_large"] > pairs[f"{m}_small"],
                     _both_minima(pairs, "small", "large"), scope=pairs.task,
                     loss_ratio=_losses(pairs, "large", "small")) for m in MEASURES]
    return frame(pd.concat(parts, ignore_index=True), PAIRED)


def _accuracy_gap(pairs: pd.DataFrame) -> pd.Series:
    return 100 * (pairs.test_accuracy_grown - pairs.test_accuracy_twin)


def _size(results: pd.DataFrame, task: str, largest: bool) -> pd.DataFrame:
    part = results[results.task == task]
    if not len(part):
        return part
    return part[part.hidden == (part.hidden.max() if largest else part.hidden.min())]


def more_accurate_large(results: pd.DataFrame, task: str = "MNIST") -> pd.DataFrame:
    """Discussion: at the larger size the grown network has the higher test accuracy (MNIST).
    ``value``: grown minus twin test accuracy in points (> 0 agrees)."""
    pairs = twin_pairs(_size(results, task, largest=True))
    gap = _accuracy_gap(pairs)
    return _paired(pairs, "test accuracy", gap, gap > 0, _both_minima(pairs, "twin", "grown"))


def similar_accuracy_large(results: pd.DataFrame, task: str = "AG News") -> pd.DataFrame:
    """Discussion: on AG News the flatter grown minima do not bring better accuracy: "roughly
    the same performances". ``value``: grown minus twin accuracy in points; a comparison agrees
    when within :data:`SIMILAR_ACCURACY_PP` (the headline is an equivalence test on the
    seeds' mean gaps)."""
    pairs = twin_pairs(_size(results, task, largest=True))
    gap = _accuracy_gap(pairs)
    return _paired(pairs, "test accuracy", gap, gap.abs() <= SIMILAR_ACCURACY_PP, _both_minima(pairs, "twin", "grown"))


def small_much_flatter(results: pd.DataFrame) -> pd.DataFrame:
    """Discussion: with 10 hidden units the grown minimum is at least 2.5 times flatter at
    similar accuracy. At each task's smallest size; ``value``: twin / grown flatness; agrees
    when it is at least :data:`SMALL_FLATTER_FACTOR` and the accuracies are within
    :data:`SIMILAR_ACCURACY_PP`."""
    small = pd.concat([_size(results, task, largest=False) for task in results.task.unique()])
    pairs = twin_pairs(small)
    similar = _accuracy_gap(pairs).abs() <= SIMILAR_ACCURACY_PP
    parts = [_paired(pairs, m, pairs[f"{m}_twin"] / pairs[f"{m}_grown"],
                     (pairs[f"{m}_twin"] / pairs[f"{m}_grown"] >= SMALL_FLATTER_FACTOR) & similar,
                     _both_minima(pairs, "twin", "grown"), loss_ratio=_losses(pairs, "twin", "grown"),
                     collapsed=_collapsed(pairs)) for m in MEASURES]
    return frame(pd.concat(parts, ignore_index=True), PAIRED)


def flatness_goes_with_accuracy(results: pd.DataFrame) -> pd.DataFrame:
    """Discussion: a lower spectral norm goes with a higher test accuracy. Every run of a task
    and size (all models and batches): ``x`` its flatness, ``y`` its test accuracy; the claim
    is a negative rank correlation."""
    learnt_something = ~flag(results, "constant")
    parts = [pd.DataFrame({"scope": _scope(results.task, results.hidden), "protocol": results.protocol,
                           "measure": m, "cluster": results.seed, "x": results[m], "y": 100 * results.test_accuracy,
                           "certified": (results.verdict == "minimum") & learnt_something, "evidence": _evidence(results)})
             for m in MEASURES]
    return frame(pd.concat(parts, ignore_index=True), TREND)


def head_flatter(heads: pd.DataFrame) -> pd.DataFrame:
    """Table 2 and Discussion: the grown head on CoLA is flatter by an order of magnitude with
    no loss of accuracy. Per seed, protocol and point (files without a ``point`` column hold
    finished heads only); ``value``: reference / grown flatness; a comparison agrees when at
    least :data:`HEAD_FLATTER_FACTOR` and the grown head's MCC x 100 is at most
    :data:`SIMILAR_ACCURACY_PP` below the reference's. A comparison counts (``certified``) when
    both heads learn CoLA (dev MCC > 0: a head at the majority-class baseline or below tests
    nothing) and, at the finished points, both are certified minima; the paper's end points are
    labelled ``"<protocol>, paper (end points)"``."""
    heads = heads if "protocol" in heads else heads.assign(protocol="fine-tuned")
    heads = heads if "point" in heads else heads.assign(point="regularised")
    grown, reference = heads[heads["head"] == "growing"], heads[heads["head"] == "reference"]
    pairs = grown.merge(reference, on=["protocol", "point", "seed"], suffixes=("_grown", "_reference"))
    end_points = pairs.point == END_POINTS
    no_loss = 100 * (pairs.mcc_grown - pairs.mcc_reference) >= -SIMILAR_ACCURACY_PP
    learn = (pairs.mcc_grown > 0) & (pairs.mcc_reference > 0)
    minima = (pairs.verdict_grown == "minimum") & (pairs.verdict_reference == "minimum")
    protocol = pairs.protocol.where(~end_points, pairs.protocol + ", " + END_POINTS)
    parts = []
    for m in (m for m in MEASURES if f"{m}_grown" in pairs):
        ratio = pairs[f"{m}_reference"] / pairs[f"{m}_grown"]
        losses = (pairs["certificate train loss_reference"] / pairs["certificate train loss_grown"]
                  if "certificate train loss_grown" in pairs else np.nan)
        parts.append(pd.DataFrame({
            "scope": "CoLA", "protocol": protocol, "measure": m, "cluster": pairs.seed, "value": ratio,
            "loss_ratio": losses, "supports": (ratio >= HEAD_FLATTER_FACTOR) & no_loss,
            "certified": learn & (minima | end_points),
            "collapsed": flag(pairs, "collapsed_grown"),
            "evidence": "60_table2.csv: protocol=" + pairs.protocol + ", point=" + pairs.point + ", seed="
                        + pairs.seed.astype(str)}))
    return frame(pd.concat(parts, ignore_index=True) if parts else [], PAIRED)


def paper_head() -> str:
    """The paper's own Table 2, in the terms of :func:`head_flatter`."""
    t = papers.GROWING_TABLE2
    ratio = t.spectral_norm["reference"] / t.spectral_norm["growing"]
    return (f"{ratio:.1f}x flatter ({t.spectral_norm['growing']:.3g} against {t.spectral_norm['reference']:.3g}), "
            f"accuracy {t.test_accuracy['growing']} against {t.test_accuracy['reference']}: by its own numbers less "
            "than the order of magnitude its Discussion states")
