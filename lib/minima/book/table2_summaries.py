"""Table 2's page in words and tables, computed from ``60_table2.csv`` and the page's settings:
the table beside the paper's, how lambda was chosen, which heads learn CoLA, what runs, and the
heads that are not certified minima."""
from __future__ import annotations

import pandas as pd

from ..experiments import papers
from .results import mean_sd


def _head_points(results: pd.DataFrame) -> pd.DataFrame:
    """``60_table2.csv`` with its ``protocol`` and ``point`` columns (older files: fine-tuned,
    finished heads)."""
    results = results if "protocol" in results else results.assign(protocol="fine-tuned")
    return results if "point" in results else results.assign(point="regularised")


HEAD_NAMES = {"growing": "grown head", "reference": "reference head"}


def table2_summary(results: pd.DataFrame, protocol: str | None = None) -> pd.DataFrame:
    """Table 2 beside the paper's: one row per protocol, point (the paper's end point, the
    regularised minimum) and head, mean ± sd over seeds: MCC, heads that beat the majority class,
    the training CE at the point, flatness, certificates. With ``protocol``: that protocol's
    part, transposed (one column per point and head, one row per quantity: a page's width)."""
    results = _head_points(results)
    if protocol is not None:
        part = table2_summary(results[results.protocol == protocol])
        return part.rename(index=lambda name: name.split(", ", 1)[1]).T
    table = pd.DataFrame({f"{protocol}, {point}: {HEAD_NAMES.get(kind, kind)}": {
        "seeds": len(g),
        "MCC x 100 (out-of-domain dev)": mean_sd(100 * g.mcc, lambda v: f"{v:.1f}"),
        "paper's \"test accuracy\" (read as MCC x 100)": f"{papers.GROWING_TABLE2.test_accuracy[kind]}",
        "beats the majority class (MCC > 0)": f"{int((g.mcc > 0).sum())} of {len(g)}",
        "accuracy (majority class: 68.6 %)": mean_sd(100 * g.accuracy, lambda v: f"{v:.1f} %"),
        "training CE at the point": mean_sd(g["certificate train loss"], lambda v: f"{v:.3g}")
        if "certificate train loss" in g else "",
        "plain λmax": mean_sd(g.plain, lambda v: f"{v:.3g}"),
        "paper's spectral norm": f"{papers.GROWING_TABLE2.spectral_norm[kind]:.3g}",
        "rsi": mean_sd(g.rsi, lambda v: f"{v:.3g}"), "elementwise": mean_sd(g.elementwise, lambda v: f"{v:.3g}"),
        "parameters": f"{int(g.parameters.iloc[0]):,}", "training time per run": f"{g['train_seconds'].mean():.0f} s",
        "certified minima": f"{int((g.verdict == 'minimum').sum())} of {len(g)}"
        if point != "paper (end points)" else "end points (uncertified, as the paper)"}
        for (protocol, point, kind), g in results.groupby(["protocol", "point", "head"], sort=False)}).T
    return table


def table2_lambda(points: list[dict], chosen: float) -> str:
    """How the head objective's ``lambda`` was chosen, in one sentence (``points``:
    :func:`minima.experiments.table2.regularisation.choose`'s rows; none: given by hand)."""
    if not points:
        return f"λ = {chosen:g}, given as a parameter (not chosen on held-out data in this build)"
    curve = ", ".join(f"{p['held_out_mcc']:.3f} at {p['weight_decay']:g}" for p in points)
    values = [p["weight_decay"] for p in points]
    edge = " (at the edge of the grid, widened as far as the rule allows)" if chosen in (min(values), max(values)) \
        and len(values) > 1 else ""
    return (f"λ = {chosen:g}{edge}, the best held-out MCC of the reference head (frozen encoder, seed 0, trained on "
            f"80 % of CoLA's training sentences and finished at each λ, scored on the other 20 %): {curve}")


def table2_learning(results: pd.DataFrame) -> str:
    """Whether each head learns CoLA at its regularised minimum, per protocol: the mean dev MCC
    over seeds, in how many seeds it beats the majority-class baseline (MCC > 0) and in how many
    the bootstrap interval lies above 0; the heads at MCC <= 0, flagged (left out of the claim)."""
    results = _head_points(results)
    finished = results[results.point != "paper (end points)"]
    parts, flagged = [], []
    for (protocol, kind), g in finished.groupby(["protocol", "head"], sort=False):
        above = int((g.mcc_low > 0).sum()) if "mcc_low" in g else 0
        parts.append(f"{protocol}, {HEAD_NAMES.get(kind, kind)}: mean MCC {g.mcc.mean():.3f}, above the majority "
                     f"class in {int((g.mcc > 0).sum())} of {len(g)} seeds ({above} with the 95 % interval above 0)")
        flagged += [f"{protocol} {kind} seed {int(seed)}" for seed in g.seed[g.mcc <= 0]]
    text = "; ".join(parts)
    return text + (f". At MCC ≤ 0, flagged and left out of the head claim: {', '.join(flagged)}" if flagged else
                   ". No head is at or below the majority-class baseline")


def table2_setup(chosen: dict, setups: dict, data: str, n_train: int, n_test: int, hidden: int) -> pd.DataFrame:
    """What the Table 2 page runs, one row per item (column ``""``): the encoder, the data, and per
    protocol (``chosen``: :func:`minima.experiments.table2.protocol_settings`, ``setups``: their
    :func:`~minima.experiments.table2.setup_for`) how the heads train and finish."""
    rows = {"data": f"{data}; {n_train:,} training and {n_test:,} dev sentences", "feature size H": f"{hidden:,}"}
    for protocol, one in chosen.items():
        setup, training = setups[protocol][0], one.training
        trained = {"frozen": "the encoder frozen (its features computed once, shared by every head and seed)",
                   "whole": "the whole encoder fine-tuned with the head"}.get(
            setup.mode, f"the top {setup.trainable_layers} of {setup.layers} encoder layers fine-tuned with the head "
                        "(the output of the layers below computed once)")
        finish = (f"measured at that end point; then, the encoder fixed, float64 full-batch L-BFGS on the head's "
                  f"CE + λ/2 |θ|² (λ = {training.finish_weight_decay:g}) over every training sentence, at most "
                  f"{training.finish_rounds} rounds of {training.finish_iterations} iterations, until certified"
                  if training.finish_rounds else "measured at that end point; no finish")
        rows[f"{protocol} protocol"] = (
            f"{trained}; {len(one.seeds)} seeds per head; {training.epochs} epochs of AdamW (lr {training.lr:g}, "
            f"weight decay 0.01), batch {training.batch_size}, growth after epochs "
            f"{', '.join(str(p) for p in training.phases)}; {finish}; the end points' Hessian on the first "
            f"{min(training.hessian_subset, n_train):,} training sentences")
    return pd.Series(rows, name="").to_frame()


def table2_not_minima(results: pd.DataFrame) -> str:
    """How many finished heads are not certified minima, and what that means for their flatness
    (the paper's end points are uncertified by design)."""
    results = _head_points(results)
    ends = results[results.point == "paper (end points)"]
    results = results[results.point != "paper (end points)"]
    missed = results[results.verdict != "minimum"]
    end_note = (f"; of the {len(ends)} paper's end points, {int((ends.verdict != 'minimum').sum())} are not minima "
                "either (measured there as the paper did)") if len(ends) else ""
    if not len(missed):
        return f"all {len(results)} finished heads are certified minima of their own problem" + end_note
    return (f"{len(missed)} of {len(results)} finished heads are not certified minima "
            f"({', '.join(sorted(set(missed.verdict))) or 'none'}): their flatness is measured at a point that is not "
            "a minimum of the head's loss and says nothing about flat or sharp minima" + end_note)
