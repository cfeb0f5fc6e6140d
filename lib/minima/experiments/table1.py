"""Table 1 of the growing-network paper: grown versus fully connected networks.

One *cell* of the table is (task, size, model, batch size, seed): build the model, train
it with :func:`minima.train.fit`, then certify the final point (:mod:`minima.geometry.certificate`)
and measure test accuracy and the three flatness measures there, on one fixed subset of
the training set. The ``converged`` protocol (:class:`GoOn`) continues a run that the
certificate does not call a minimum.

Architectures are given as fractions of the hidden budget ``H``, as in the paper:
``a`` one layer of ``H``, ``b`` ``0.8H`` then ``0.2H``, ``c`` ``0.6H, 0.3H, 0.1H``
(500 -> 400+100 and 300+150+50 for MNIST; 100 -> 80+20 and 60+30+10 for AG News).
The grown network ends with exactly the parameter count of architecture ``a``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry.certificate import Certificate, Rule, certify, fits
from ..data import TrainTest, batches, load, train_test
from ..geometry.flatness import MEASURES, certified_measures
from ..growing import GrowingNet, GrowthSchedule, fan_in_for_budget, fully_connected_parameters
from ..models import mlp
from ..data.text import Vocabulary
from .papers import GROWING_INSERTIONS
from ..train import fit, fit_together, loss_and_accuracy

ARCHITECTURES = {"a": (1.0,), "b": (0.8, 0.2), "c": (0.6, 0.3, 0.1)}


def image_task(dataset: str, name: str = "MNIST") -> TrainTest:
    """Flat images ``(N, pixels)``."""
    images = train_test(dataset)
    return replace(images, x_train=images.x_train.flatten(1), x_test=images.x_test.flatten(1), name=name,
                   comparable=dataset.startswith("mnist"))


def text_task(dataset: str, embedding_dim: int, max_tokens: int = 64, name: str = "AG News") -> TrainTest:
    """Token ids padded with 0 to ``max_tokens``; the vocabulary comes from the training split."""
    train, test = load(dataset, "train"), load(dataset, "test")
    vocab = Vocabulary.build(train.inputs)

    def encode(texts):
        rows = [(vocab.encode(t) or [1])[:max_tokens] for t in texts]
        out = torch.zeros(len(rows), max_tokens, dtype=torch.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.as_tensor(row)
        return out

    return TrainTest(encode(train.inputs), train.targets, encode(test.inputs), test.targets, len(train.classes),
                     name, train.description, n_features=embedding_dim, vocabulary=len(vocab))


def paper_schedule(task: str, hidden: int, small: bool) -> GrowthSchedule:
    """The paper's insertion scheme for ``hidden`` final units: 10 steps of ``hidden / 10`` units
    (1 unit every 10 epochs from 5 for the 10-unit nets; every 5 from 10 for MNIST-500,
    see the Reproduction notes; every 10 from 5 for AG News-100)."""
    # two schemes in the paper: the large MNIST network's, and every other network's
    every, start = GROWING_INSERTIONS.loc[("MNIST", 500) if task == "MNIST" and not small else ("MNIST", 10)]
    return GrowthSchedule.regular(units=max(1, hidden // 10), every=int(every), start=int(start), total=hidden)


def _embedding(task: TrainTest, seed: int) -> nn.EmbeddingBag:
    # Sum, not mean: with U(-0.5, 0.5) vectors the mean of ~40 words is ~0.05 in size and SGD at
    # the paper's learning rate barely moves (training accuracy 26 -> 28 % in 8 epochs on
    # ag_news-7600, against 36 -> 45 % in 3 epochs with the sum).
    bag = nn.EmbeddingBag(task.vocabulary, task.n_features, mode="sum", padding_idx=0, sparse=True)
    with torch.no_grad():
        g = torch.Generator().manual_seed(10_000 + seed)
        bag.weight.copy_(torch.rand(bag.weight.shape, generator=g) - 0.5)
        bag.weight[0] = 0
    return bag


def build(task: TrainTest, model: str, hidden: int, seed: int, small: bool):
    """``(full model, network part, GrowingNet or None, schedule or None, fan-ins or None)``."""
    if model == "growing":
        net = GrowingNet(task.n_features, task.n_classes, seed=seed, device="cpu")
        budget = fully_connected_parameters(task.n_features, [hidden], task.n_classes)
        fan_ins = fan_in_for_budget(task.n_features, task.n_classes, hidden, budget)
        schedule = paper_schedule(task.name, hidden, small)
        grower = net
    else:
        widths = [max(1, round(f * hidden)) for f in ARCHITECTURES[model]]
        net = mlp(task.n_features, widths, task.n_classes, seed=seed)
        grower = schedule = fan_ins = None
    full = nn.Sequential(_embedding(task, seed), net) if task.vocabulary else net
    return full, net, grower, schedule, fan_ins


@dataclass(frozen=True)
class GoOn:
    """The ``converged`` protocol: a run whose certificate is not ``minimum`` after the paper's
    protocol goes on with plain SGD at ``lr`` (one rate per task), same batch, ``chunk`` epochs
    at a time, until its certificate says ``minimum`` or ``max_epochs`` epochs in all."""

    lr: float
    max_epochs: int
    chunk: int = 10


def per_batch(value, batch_size: int):
    """A parameter that may differ by batch size: ``value[batch_size]`` when ``value`` is a dict
    keyed by batch size, else ``value`` itself."""
    if isinstance(value, dict):
        if batch_size not in value:
            raise ValueError(f"no value for batch size {batch_size} in {value}; give one per batch size")
        return value[batch_size]
    return value


def run_cells(task: TrainTest, hidden: int, model: str, batch_size: int, seeds: list[int], *, lr: float,
              max_epochs: int, schedule_scale: float, hessian_subset: int, small: bool, measures=MEASURES,
              train_limit: int = 0, keep: dict | None = None, together: bool = True,
              go_on: GoOn | None = None, rule: Rule = Rule()) -> list[dict]:
    """Train one model per seed and certify and measure each at its final point.

    Returns one row per seed and protocol: ``protocol="paper"`` (the paper's stopping rule:
    100 % training accuracy once growth is over, or ``max_epochs``) and, when ``go_on`` is
    given, ``protocol="converged"`` (the same run continued until certified, see :class:`GoOn`;
    the same point as the paper row when that was already a minimum).

    Fully connected networks on images are trained side by side (:func:`minima.train.fit_together`,
    the same runs as one :func:`minima.train.fit` per seed up to float32 rounding) when
    ``together``; grown networks (each seed grows its own structure) and text models (each
    has its own embedding) are trained one after another. ``train_limit > 0`` trains on the
    first examples only. When ``keep`` is a dict, the first seed's ``(network part, Hessian
    data)`` at its last end point is stored under ``(task, hidden, model, batch, seed)``.
    """
    x_train, y_train = (task.x_train[:train_limit], task.y_train[:train_limit]) if train_limit else \
        (task.x_train, task.y_train)
    built = []
    for seed in seeds:
        torch.manual_seed(seed)
        full, net, grower, schedule, fan_ins = build(task, model, hidden, seed, small)
        if schedule is not None:
            schedule = schedule.scaled(schedule_scale)
            if schedule.last_epoch >= max_epochs:
                raise ValueError(f"the growth schedule ends at epoch {schedule.last_epoch} but training stops after "
                                 f"{max_epochs}; raise max_epochs or lower schedule_scale")
        built.append((seed, full, net, grower, schedule, fan_ins))
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    side_by_side = together and model != "growing" and not task.vocabulary and len(seeds) > 1
    start = time.perf_counter()
    if side_by_side:
        results = fit_together([b[1] for b in built], x_train, y_train, lr=lr, batch_size=batch_size,
                               max_epochs=max_epochs, generators=generators)
        seconds = [(time.perf_counter() - start) / len(seeds)] * len(seeds)  # the wall time, split evenly
    else:
        results, seconds = [], []
        for (seed, full, net, grower, schedule, fan_ins), generator in zip(built, generators):
            start = time.perf_counter()
            results.append(fit(full, x_train, y_train, lr=lr, batch_size=batch_size, max_epochs=max_epochs,
                               generator=generator, growing=grower, schedule=schedule, fan_ins=fan_ins))
            seconds.append(time.perf_counter() - start)
    rows = []
    for (seed, full, net, grower, *_), result, train_seconds, generator in zip(built, results, seconds, generators):
        key = (task.name, hidden, model, batch_size, seed)
        hessian_data = _hessian_data(task, full, x_train, y_train, hessian_subset)
        common = {"task": task.name, "hidden": hidden, "model": model, "batch": batch_size, "seed": seed,
                  "parameters": sum(p.numel() for p in net.parameters()) if grower is None else grower.num_parameters(),
                  "depth": int(grower.depth.max()) if grower is not None else len(ARCHITECTURES.get(model, ())) + 1,
                  "samples/s": result.samples_per_second * (len(seeds) if side_by_side else 1),
                  "trained": f"{len(seeds)} side by side" if side_by_side else "alone"}
        paper = {**common, "protocol": "paper", "stopped": result.stopped, "train s": train_seconds,
                 **_measure(task, full, net, hessian_data, result.epochs, seed, measures, rule)}
        rows.append(paper)
        if go_on is not None:
            converged, hessian_data = _go_on(task, full, net, x_train, y_train, hessian_data, hessian_subset,
                                             result, paper, generator, batch_size, seed, measures, rule, go_on)
            rows.append({**common, **converged})
        if keep is not None and seed == seeds[0]:
            keep[key] = (net, hessian_data)  # the last protocol's end point
    return rows


def _hessian_data(task: TrainTest, full, x_train, y_train, hessian_subset: int) -> list:
    """Batches of the network part's inputs on the first ``hessian_subset`` training examples;
    for text the embedding is held fixed and its output is the network's input."""
    full.eval()
    x = x_train[:hessian_subset]
    with torch.no_grad():
        features = full[0](x) if task.vocabulary else x
    return batches(features.detach(), y_train[:hessian_subset], 1000)


def _measure(task: TrainTest, full, net, hessian_data: list, epochs: list[dict], seed: int, measures,
             rule: Rule, certificate: Certificate | None = None) -> dict:
    """Test accuracy, the convergence certificate and the flatness measures of one trained model
    (Hessians of the network part on ``hessian_data``); ``certificate``: one already made at
    this point (reused)."""
    _, test_accuracy = loss_and_accuracy(full, task.x_test, task.y_test)
    full.eval()
    start = time.perf_counter()
    certificate, values = certified_measures(net, F.cross_entropy, hessian_data, seed,
                                             loss_history=[e["loss"] for e in epochs], rule=rule, measures=measures,
                                             certificate=certificate)
    return {"epochs": epochs[-1]["epoch"], **certificate.as_row(), **values, "test_accuracy": test_accuracy,
            "hessian s": time.perf_counter() - start, "curve": list(epochs)}


def _go_on(task: TrainTest, full, net, x_train, y_train, hessian_data: list, hessian_subset: int, result,
           paper_row: dict, generator, batch_size: int, seed: int, measures, rule: Rule,
           go_on: GoOn) -> tuple[dict, list]:
    """The ``converged`` row and its Hessian data: continue ``full`` from the paper protocol's
    end point (see :class:`GoOn`). For text the Hessian data is recomputed after training:
    the embedding that feeds the network part trains too."""
    if paper_row["verdict"] == "minimum":
        return {**paper_row, "protocol": "converged", "stopped": "certified minimum (paper protocol)"}, hessian_data
    epochs, seconds, verdict = list(result.epochs), paper_row["train s"], paper_row["verdict"]
    stale = False  # True once the text model's embedding has trained past hessian_data
    certificate = None  # the last one, while it is of the current point
    while verdict != "minimum" and epochs[-1]["epoch"] < go_on.max_epochs:
        certificate = None
        start = time.perf_counter()
        more = fit(full, x_train, y_train, lr=go_on.lr, batch_size=batch_size, generator=generator,
                   max_epochs=min(go_on.chunk, go_on.max_epochs - epochs[-1]["epoch"]), target_accuracy=math.inf)
        seconds += time.perf_counter() - start
        epochs += [{**e, "epoch": e["epoch"] + epochs[-1]["epoch"]} for e in more.epochs]
        losses = [e["loss"] for e in epochs]
        stale = stale or bool(task.vocabulary)
        if fits(epochs[-1]["accuracy"], losses, rule):  # the Hessian only when the certificate can pass
            if stale:  # refreshed only when read: most chunks of a long run end without a certificate
                hessian_data, stale = _hessian_data(task, full, x_train, y_train, hessian_subset), False
            certificate = certify(net, F.cross_entropy, hessian_data, loss_history=losses, rule=rule, seed=seed)
            verdict = certificate.verdict
    if stale:
        hessian_data = _hessian_data(task, full, x_train, y_train, hessian_subset)
    row = _measure(task, full, net, hessian_data, epochs, seed, measures, rule, certificate)
    stopped = "certified minimum" if row["verdict"] == "minimum" else f"cap of {go_on.max_epochs} epochs"
    return {**row, "protocol": "converged", "stopped": stopped, "train s": seconds}, hessian_data


# ----------------------------------------------------------------------------- the claims

CLAIMS = ("grown flatter than each fully connected twin", "larger batch sharper")
RESULT_COLUMNS = ("task", "hidden", "model", "batch", "seed", "protocol", "epochs", "train_accuracy", "train_loss",
                  "grad_norm", "lambda_max", "lambda_min", "verdict", "rsi", "elementwise", "plain", "test_accuracy")


def claim_comparisons(results, measure: str = "rsi"):
    """Every comparison the paper's two claims make, under one flatness ``measure``.

    ``results``: the per-run table (:data:`RESULT_COLUMNS`). Comparisons stay within one
    protocol, task, size and seed: the grown network against each fully connected twin at
    the same batch; the small batch against the large one for the same model. Returns a
    DataFrame with ``claim, protocol, task, hidden, versus, seed, holds`` and ``certified``
    (both runs certified ``minimum``).
    """
    import pandas as pd

    rows = []
    minimum = results.verdict == "minimum"
    for (protocol, task, hidden, batch, seed), group in results.groupby(["protocol", "task", "hidden", "batch", "seed"]):
        grown = group[group.model == "growing"]
        for index, other in group[group.model != "growing"].iterrows():
            rows.append({"claim": CLAIMS[0], "protocol": protocol, "task": task, "hidden": hidden,
                         "versus": f"{other.model}, batch {batch}", "seed": seed,
                         "holds": bool(grown[measure].iloc[0] < other[measure]),
                         "certified": bool(minimum[grown.index[0]] and minimum[index])})
    for (protocol, task, hidden, model, seed), group in results.groupby(["protocol", "task", "hidden", "model", "seed"]):
        ordered = group.sort_values("batch")
        small, large = ordered.index[0], ordered.index[-1]
        rows.append({"claim": CLAIMS[1], "protocol": protocol, "task": task, "hidden": hidden, "versus": model,
                     "seed": seed, "holds": bool(results.at[large, measure] > results.at[small, measure]),
                     "certified": bool(minimum[small] and minimum[large])})
    return pd.DataFrame(rows)


def claim_counts(results, measures=("rsi", "elementwise")):
    """``k of n`` comparisons that agree with each claim, per protocol and measure, over all
    runs (as the paper counted) and over certified minima only."""
    import pandas as pd

    rows = []
    for measure in measures:
        comparisons = claim_comparisons(results, measure)
        for (claim, protocol), group in comparisons.groupby(["claim", "protocol"], sort=False):
            certified = group[group.certified]
            rows.append({"claim": claim, "protocol": protocol, "measure": measure,
                         "all runs": f"{int(group.holds.sum())} of {len(group)}",
                         "certified minima only": f"{int(certified.holds.sum())} of {len(certified)}",
                         "share (all)": group.holds.mean(),
                         "share (certified)": certified.holds.mean() if len(certified) else float("nan")})
    return pd.DataFrame(rows).set_index(["claim", "protocol", "measure"])
