"""The tables and sentences the experiment pages show, computed from their results tables.

Each function takes what a page holds (the per-run results as a DataFrame, the loaded tasks,
the experiment's settings) and returns a DataFrame to display or a sentence to glue, so that
the notebooks only call them and the tests can check what a reader is told.
"""
from __future__ import annotations

import pandas as pd

from ..claims.growing_networks import TWINS
from ..experiments import papers
from ..experiments.table1 import Settings as Table1Settings
from . import tables
from .results import mean_sd


# ----------------------------------------------------------------------------- Table 1

def table1_data(loaded: dict, settings: Table1Settings) -> pd.DataFrame:
    """What each task of Table 1 trains on: one row per task of ``loaded`` (name -> TrainTest)."""
    return pd.DataFrame([{"task": t.name, "data": t.description, "train": settings.train_count(name, t),
                          "test": len(t.y_test), "network inputs": t.n_features, "vocabulary": t.vocabulary or "-"}
                         for name, t in loaded.items()]).set_index("task")


def table1_protocol(loaded: dict, settings: Table1Settings, weight_decays: dict | None = None) -> pd.DataFrame:
    """The protocols as run, one column per task, against the paper's where it says
    (``weight_decays``: the regularised protocol's lambda per task, as chosen)."""
    columns = {}
    for name, t in loaded.items():
        scale = settings.schedule_scale[name]
        large = settings.seeds_of(name, small=False)
        seeds = f"{len(settings.seeds)}" + (f" (large size: {len(large)})" if large != settings.seeds else "")
        columns[name] = {
            "epochs (paper: 100, then stop at 100 % training accuracy)": f"at most {settings.max_epochs[name]}",
            "growth epochs": "as in the paper" if scale == 1 else f"paper epochs x {scale}",
            "seeds (paper: 1)": seeds,
            "training examples (the trim, stratified)": settings.train_count(name, t),
            "paper protocol's certificate and Hessians on": f"first {min(settings.hessian_subset, settings.train_count(name, t)):,} "
                                                            "training examples"}
        if "regularised" in settings.protocols:
            decay = (weight_decays or {}).get(name)
            columns[name]["regularised protocol"] = (
                f"float64 L-BFGS to a certified minimum of CE + λ/2 |θ|², λ = {decay:g}" if decay is not None else
                "float64 L-BFGS to a certified minimum of CE + λ/2 |θ|²") + \
                f" (at most {settings.finish_rounds} rounds of 25 iterations); certificate and Hessians on every training example" + \
                ("" if settings.takes_protocols(name, settings.sizes[name][-1]) else
                 f"; size {', '.join(str(h) for h in settings.sizes[name] if not settings.takes_protocols(name, h))}: "
                 "the paper's end points only (this profile's budget)")
        if "converged" in settings.protocols:
            caps = ", ".join(f"lr {settings.rate(name, b):g} and at most {settings.cap(name, b)} epochs at batch {b}"
                             for b in settings.batch_sizes[name])
            columns[name]["converged protocol"] = f"goes on at {caps}; then a full-batch L-BFGS finish"
    return pd.DataFrame(columns)


# the training sets the paper's Table 1 trained on (full MNIST and AG News training splits)
PAPER_TRAIN_EXAMPLES = {"MNIST": 60_000, "AG News": 120_000}


def sgd_updates(epochs, examples: int, batch: int):
    """SGD updates of ``epochs`` epochs over ``examples`` at ``batch`` (the last batch may be short)."""
    return epochs * -(-examples // batch)


MODEL_NAMES = {"growing": "Growing", "linear": "Control: linear (direct map)",
               "static": "Control: static (grown graph, no insertion)"}


def table1_summary(results: pd.DataFrame, loaded: dict, settings: Table1Settings | None = None) -> pd.DataFrame:
    """Table 1 as the paper prints it, per protocol: mean ± sd over seeds of each cell (task,
    size, model, batch), how many runs are certified minima, and the paper's accuracy and
    spectral norm beside ours where the task is comparable (MNIST data). With ``settings``,
    also the regime: the SGD updates a run took against the paper's at most (100 epochs of the
    full training split, :data:`PAPER_TRAIN_EXAMPLES`)."""
    table = []
    for (protocol, name, hidden, model, batch), group in results.groupby(
            ["protocol", "task", "hidden", "model", "batch"], sort=False):
        key = (name, hidden, model, batch)
        paper = papers.GROWING_TABLE1.loc[key] if loaded[name].comparable and key in papers.GROWING_TABLE1.index \
            else None
        table.append({"protocol": protocol, "task": name, "hidden": hidden,
                      "model": MODEL_NAMES.get(model, f"Fully connected {model}"), "batch": batch,
                      "certified minima": f"{int((group.verdict == 'minimum').sum())} of {len(group)}",
                      "epochs": mean_sd(group["epochs"], lambda v: f"{v:.0f}"),
                      "test accuracy": mean_sd(100 * group["test_accuracy"], lambda v: f"{v:.2f}%"),
                      "paper accuracy": f"{paper.test_accuracy}%" if paper is not None else "",
                      "rsi (ours)": mean_sd(group["rsi"], lambda v: f"{v:.3g}"),
                      "paper spectral norm": f"{paper.spectral_norm:.4g}" if paper is not None else "",
                      "elementwise": mean_sd(group["elementwise"], lambda v: f"{v:.3g}"),
                      "plain λmax": mean_sd(group["plain"], lambda v: f"{v:.3g}"),
                      "train accuracy": mean_sd(100 * group["train_accuracy"], lambda v: f"{v:.1f}%"),
                      "parameters": int(group["parameters"].iloc[0])})
        if settings is not None:
            ours = sgd_updates(group["epochs"], settings.train_count(name, loaded[name]), batch)
            table[-1]["SGD updates"] = f"{ours.mean():,.0f}"
            table[-1]["paper's SGD updates (at most)"] = f"{sgd_updates(100, PAPER_TRAIN_EXAMPLES[name], batch):,}"
    return pd.DataFrame(table).set_index(["protocol", "task", "hidden", "model", "batch"])


FITS = 0.99  # training accuracy from which a network counts as fitting its training set
HEADLINE_PROTOCOL = "regularised"  # Table 1's well-posed end points (see minima.claims.registry)


def table1_regime(results: pd.DataFrame, loaded: dict, settings: Table1Settings) -> str:
    """How far this build is from the paper's regime, in one sentence: per comparable task and
    size, the grown network's mean test accuracy under the headline protocol (over batches and
    seeds) beside the paper's (over its batches), and the training examples against the paper's."""
    protocol = HEADLINE_PROTOCOL if (results.protocol == HEADLINE_PROTOCOL).any() else "paper"
    grown = results[(results.model == "growing") & (results.protocol == protocol)]
    cells, sizes = [], []
    for (name, hidden), group in grown.groupby(["task", "hidden"], sort=False):
        table = papers.GROWING_TABLE1.reset_index()
        paper = table[(table.task == name) & (table.hidden == hidden) & (table.model == "growing")].test_accuracy
        if not loaded[name].comparable or not len(paper):  # not the paper's data, or a size it did not run
            continue
        cells.append(f"{name}-{hidden} {100 * group.test_accuracy.mean():.0f} % (paper {paper.mean():.0f} %)")
    for name, t in loaded.items():
        if t.comparable:
            sizes.append(f"{settings.train_count(name, t):,} of its {PAPER_TRAIN_EXAMPLES[name]:,} {name} examples")
    if not cells:
        return "no cell of this run is one the paper reports on its dataset, so its accuracies are not compared"
    lowest = grown.train_accuracy.min()
    fit = (f"there the grown networks fit their training sets (training accuracy at least {100 * lowest:.1f} %): "
           "what is short of the paper's regime is the data, not the fit") if lowest >= FITS else \
        (f"there the grown networks do not fit their training sets either (training accuracy down to "
         f"{100 * lowest:.1f} %): the cells far below the paper's accuracy are below its regime in data and in fit")
    return (f"the grown network's test accuracy under the {protocol} protocol is " + ", ".join(cells)
            + "; this run trained on " + " and ".join(sizes) + ", and " + fit)


def table1_sentences(results: pd.DataFrame, loaded: dict, settings: Table1Settings) -> dict[str, str]:
    """The page's glued sentences: ``data_used`` (what each task trained on), ``stopped_note``
    (how many paper-protocol runs reached 100 % training accuracy), ``not_minima`` (how many
    rows are not certified minima, per protocol, task and size, and what that means) and
    ``regime`` (:func:`table1_regime`)."""
    paper_runs = results[results.protocol == "paper"]
    reached = int((paper_runs.stopped == "100% training accuracy").sum())
    return {
        "regime": table1_regime(results, loaded, settings),
        "data_used": "; ".join(f"{t.description}, first {settings.train_count(n, t):,} training examples"
                               for n, t in loaded.items()),
        "stopped_note": f"under the paper's protocol {reached} of {len(paper_runs)} runs reached 100 % training "
                        "accuracy within 100 epochs",
        "not_minima": table1_not_minima(results)}


# how each protocol's end points are named when their certificates are counted
PROTOCOL_END_POINTS = {
    "regularised": "under the regularised protocol (finished to a minimum of CE + λ/2 |θ|², stability test included)",
    "converged": "under the converged protocol (trained on until certified)",
    "matched-loss": "at matched loss (every run of a cell stopped at one training CE on the paper's schedule: "
                    "points at equal loss, not minima)",
    "paper": "under the paper's protocol (the end points where the paper stops: 100 epochs or 100 % training "
             "accuracy, measured there as the paper did, so mostly not minima)"}


def table1_not_minima(results: pd.DataFrame) -> str:
    """How many rows are not certified minima, per protocol (the headline one first) and
    within it per task and size, with their verdicts, and what that means for the page."""
    cells = results.assign(cell=results.task + "-" + results.hidden.astype(str))
    order = sorted(cells.protocol.unique(), key=lambda p: (p != HEADLINE_PROTOCOL, p))
    parts = [f"{PROTOCOL_END_POINTS.get(p, p)}, "
             + tables.not_certified(cells[cells.protocol == p], ["cell"], "rows") for p in order]
    from ..claims.evidence import flag

    constant = results[flag(results, "constant")] if "constant" in results else results.iloc[:0]
    learnt_nothing = ""
    if len(constant):
        groups = constant.groupby(["protocol", "task", "hidden", "model"], sort=False).size()
        learnt_nothing = (f". {len(constant)} rows predict one class for every input or have logits that do not "
                          "depend on it (" + ", ".join(f"{t}-{h} {m}, {p}: {n}" for (p, t, h, m), n in groups.items())
                          + "): networks that learnt nothing (under the regularised protocol, decayed to θ ≈ 0 by the "
                          "task's λ), never compared")
    return ("; ".join(parts) + learnt_nothing + ". A row that is not a minimum is shown with its verdict; its flatness "
            "is the curvature of a point that is not a minimum, counted in the 'all runs' column only")


TABLE1_CLAIMS = ("grown flatter than each fully connected twin", "larger batch sharper")


def table1_comparisons(results, measure: str = "rsi") -> pd.DataFrame:
    """Every comparison the paper's two claims make, under one flatness ``measure``.

    ``results``: the per-run table (:data:`minima.experiments.table1.RESULT_COLUMNS`). Comparisons stay within one
    protocol, task, size and seed: the grown network against each fully connected twin at
    the same batch; the small batch against the large one for the same model. Returns a
    DataFrame with ``claim, protocol, task, hidden, versus, seed, holds`` and ``certified``
    (both runs certified ``minimum``).
    """
    rows = []
    minimum = results.verdict == "minimum"
    for (protocol, task, hidden, batch, seed), group in results.groupby(["protocol", "task", "hidden", "batch", "seed"]):
        grown = group[group.model == "growing"]
        for index, other in group[group.model.isin(TWINS)].iterrows():
            rows.append({"claim": TABLE1_CLAIMS[0], "protocol": protocol, "task": task, "hidden": hidden,
                         "versus": f"{other.model}, batch {batch}", "seed": seed,
                         "holds": bool(grown[measure].iloc[0] < other[measure]),
                         "certified": bool(minimum[grown.index[0]] and minimum[index])})
    paper_arms = results[results.model.isin(("growing",) + TWINS)]
    for (protocol, task, hidden, model, seed), group in paper_arms.groupby(["protocol", "task", "hidden", "model", "seed"]):
        ordered = group.sort_values("batch")
        small, large = ordered.index[0], ordered.index[-1]
        rows.append({"claim": TABLE1_CLAIMS[1], "protocol": protocol, "task": task, "hidden": hidden, "versus": model,
                     "seed": seed, "holds": bool(results.at[large, measure] > results.at[small, measure]),
                     "certified": bool(minimum[small] and minimum[large])})
    return pd.DataFrame(rows)


def table1_claim_counts(results, measures=("rsi", "elementwise")) -> pd.DataFrame:
    """``k of n`` comparisons that agree with each claim, per protocol and measure, over all
    runs (as the paper counted) and over certified minima only."""
    rows = []
    for measure in measures:
        comparisons = table1_comparisons(results, measure)
        for (claim, protocol), group in comparisons.groupby(["claim", "protocol"], sort=False):
            certified = group[group.certified]
            rows.append({"claim": claim, "protocol": protocol, "measure": measure,
                         "all runs": f"{int(group.holds.sum())} of {len(group)}",
                         "certified minima only": f"{int(certified.holds.sum())} of {len(certified)}",
                         "share (all)": group.holds.mean(),
                         "share (certified)": certified.holds.mean() if len(certified) else float("nan")})
    return pd.DataFrame(rows).set_index(["claim", "protocol", "measure"])


def first_seed_curves(results: pd.DataFrame, task: str, hidden: int, batch: int, seed: int,
                      protocol: str = "paper") -> dict[str, list[dict]]:
    """``{model: training curve}`` of the runs of one cell row (task, size, batch, seed, protocol)."""
    chosen = results[(results.task == task) & (results.hidden == hidden) & (results.batch == batch)
                     & (results.seed == seed) & (results.protocol == protocol)]
    return {row.model: row.curve for row in chosen.itertuples()}


def table1_well_posed(results: pd.DataFrame, measure: str = "elementwise") -> pd.DataFrame:
    """Grown against each twin per protocol, task, size, batch and twin: over the seeds where both
    runs are certified and neither predicts one class for everything (the paper's end points:
    every seed; at matched loss, uncertified points at equal loss), the median flatness ratio twin /
    grown under ``measure`` beside the median training-CE ratio twin / grown, how the loss level
    bears on it (:func:`minima.claims.ledger.loss_guard`), and how many grown runs collapsed onto
    their direct input-output map (and that map's share of the grown weights)."""
    from ..claims.evidence import flag
    from ..claims.growing_networks import TWINS as twins, learnt, twin_pairs
    from ..claims.ledger import loss_guard
    from ..claims.registry import EQUAL_LOSS

    pairs = twin_pairs(results, twins + ("static", "linear"))
    rows = []
    for (protocol, task, hidden, batch, twin), group in pairs.groupby(
            ["protocol", "task", "hidden", "batch", "model_twin"], sort=False):
        learnt_both = learnt(group, "twin") & learnt(group, "grown")
        counted = group if protocol == "paper" else group[learnt_both] if protocol == EQUAL_LOSS else \
            group[(group.verdict_twin == "minimum") & (group.verdict_grown == "minimum") & learnt_both]
        collapsed = flag(group, "collapsed_grown")
        ratio = (counted[f"{measure}_twin"] / counted[f"{measure}_grown"]).median()
        losses = (counted.train_loss_twin / counted.train_loss_grown).median()
        guard = {"confounded": "confounded: the flatter arm has a >2x lower CE",
                 "against": "works against the finding"}.get(loss_guard(ratio, losses), "")
        rows.append({"protocol": protocol, "task": task, "hidden": hidden, "batch": batch, "twin": twin,
                     "seeds counted": f"{len(counted)} of {len(group)}",
                     f"{measure} twin / grown": ratio, "CE twin / grown": losses, "loss level": guard,
                     "grown collapsed": f"{int(collapsed.sum())} of {len(group)}",
                     "direct map's share of grown weights": group.direct_share_grown.median()
                     if "direct_share_grown" in group else float("nan")})
    return pd.DataFrame(rows).set_index(["protocol", "task", "hidden", "batch", "twin"])


def matched_loss_targets(results: pd.DataFrame) -> pd.DataFrame:
    """The matched-loss end points per cell (task, size, batch): the target training CE, how many
    runs stopped at it (the others ran to the epoch cap), the epochs where they stopped (median
    and range) and their median training and test accuracy (%)."""
    matched = results[results.protocol == "matched-loss"]
    rows = []
    for (task, hidden, batch), group in matched.groupby(["task", "hidden", "batch"], sort=False):
        reached = group.curve.map(lambda c: c[-1]["loss"]) <= group.target_loss
        rows.append({"task": task, "hidden": hidden, "batch": batch, "target CE": group.target_loss.iloc[0],
                     "runs at the target": f"{int(reached.sum())} of {len(group)}",
                     "epoch stopped": f"{int(group.epochs.median())} ({int(group.epochs.min())}-{int(group.epochs.max())})",
                     "training accuracy": 100 * group.curve.map(lambda c: c[-1]["accuracy"]).median(),
                     "test accuracy": 100 * group.test_accuracy.median()})
    return pd.DataFrame(rows).set_index(["task", "hidden", "batch"]) if rows else pd.DataFrame()


def weight_decay_curve(points: list[dict]) -> pd.DataFrame:
    """The lambda grid of each task as the page shows it: held-out accuracy (%) of twin ``a``
    at each lambda, its verdict, and which lambda was chosen."""
    table = pd.DataFrame(points)
    if not len(table):
        return table
    return table.assign(held_out_accuracy=100 * table.held_out_accuracy).set_index(["task", "weight_decay"])


# ----------------------------------------------------------------------------- no barriers
