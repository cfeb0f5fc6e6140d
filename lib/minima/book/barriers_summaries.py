"""The tables and sentences the no-barriers page shows (``50_no_barriers``), computed from its
results tables: the setup, the paths' convergence, where the barriers vanish, what alignment
shows, and the saddles' curvature."""
from __future__ import annotations

import pandas as pd

from ..experiments import papers


def no_barriers_setup(loaded: dict, plan: dict, cycles: list[dict], neb_batch_size: int, eval_subset: int,
                      finish_rounds: int) -> pd.DataFrame:
    """What the no-barriers page runs, one row per item (column ``""``): per dataset, the data, the
    widths and their training recipes, minima per width, the finish, AutoNEB's cycles against
    the paper's, and where paths are evaluated. ``plan``: :func:`minima.experiments.barriers.plan`."""
    from ..experiments.barriers import network_name

    steps, paper_steps = sum(c["steps"] for c in cycles), sum(c["steps"] for c in papers.AUTONEB_CYCLES)
    rows = {}
    for name, dataset in loaded.items():
        settings = [one for (ds, _), one in plan.items() if ds == name]
        recipes = "; ".join(f"{network_name(one.architecture)}: {one.epochs} epochs, batch {one.batch_size}, "
                            f"lr {one.lr:g}" for one in settings)
        short = dataset.description.split(" (")[0]
        rows[f"{short}: data"] = (
            f"{dataset.description}, {len(dataset.y_train):,} training and {len(dataset.y_test):,} test images")
        pairs = "a path between every pair" if settings[0].pairs == "all" else "pairs picked by the paper's MST heuristic"
        rows[f"{short}: networks"] = (", ".join(network_name(one.architecture) for one in settings)
                                      + f" (mlp: one hidden layer of ReLU units); {len(settings[0].seeds)} minima each, {pairs}")
        rows[f"{short}: training"] = (
            f"SGD, momentum 0.9, weight decay {settings[0].weight_decay:g}, learning rate / 10 at 50 % and 75 %; "
            + recipes)
    rows["finish"] = (f"a minimum SGD leaves uncertified: full-batch L-BFGS on the same objective, at most "
                      f"{finish_rounds} rounds of 25 iterations, until the certificate holds" if finish_rounds else "none")
    rows["AutoNEB"] = (f"{len(cycles)} cycles, {steps:,} steps in all (paper: {len(papers.AUTONEB_CYCLES)} cycles, "
                       f"{paper_steps:,} steps), batch {neb_batch_size}")
    doublings = max((one.max_doublings for one in plan.values()), default=0)
    rows["saddle certificate"] = (
        f"the schedule re-run from the path reached with every cycle 2x, then 4x, ... as long, at most {doublings} "
        f"time{'s' if doublings != 1 else ''} (at most {steps * (2 ** (doublings + 1) - 1):,} steps per path): "
        "converged when a doubling lowers the saddle by at most 5 % of its gap to the higher minimum, else "
        "budget-limited (an upper bound)" if doublings else "none: every saddle is an upper bound")
    rows["dense evaluation"] = (f"9 points between pivots; training loss on the first {eval_subset:,} training "
                                "images, test loss and error on the whole test split")
    return pd.Series(rows, name="").to_frame()


def paths_sentence(paths: pd.DataFrame) -> str:
    """How many paths converged, peak at an end, and join two certified minima."""
    joined = int(((paths.verdict_start == "minimum") & (paths.verdict_end == "minimum")).sum())
    return (f"{int(paths.path_converged.sum())} of {len(paths)} paths converged by the 5 % rule; "
            f"{int(paths.saddle_at_an_end.sum())} have their highest point at an end; {joined} join two "
            "certified minima")


def interior_saddles_sentence(curvature: pd.DataFrame) -> str:
    """How many saddles inside their paths (not at an end) have a negative eigenvalue, from
    :func:`minima.experiments.barriers.curvature_table`."""
    interior = curvature[curvature.point.str.startswith("saddle") & ~curvature.point.str.contains("at an end")]
    if not len(interior):
        return "no saddle lies inside its path"
    return (f"{int((interior.lambda_min < 0).sum())} of {len(interior)} interior saddles have a negative "
            f"eigenvalue (most negative {interior.lambda_min.min():.3g})")


def vanishing_sentence(table: pd.DataFrame, paper_fractions, names: dict | None = None) -> str:
    """Where the barriers vanish, in one sentence from
    :func:`minima.experiments.barriers.transition_table`: per dataset, the narrowest width from
    which the certified saddles' median excess lies within the paper's range (at most its
    largest fraction of the fall) at every wider width run, or that it does at none; then how
    many paths were budget-limited (upper bounds, left out)."""
    names = names or {}
    ceiling = float(max(paper_fractions))
    parts = []
    for dataset, rows in table.groupby("dataset", sort=False):
        label = names.get(dataset, dataset)
        known = rows.dropna(subset=["median"]).sort_values("hidden")
        if not len(known):
            parts.append(f"on {label} no saddle was certified within the budget")
            continue
        within = (known["median"] <= ceiling).to_numpy()
        tail = len(within)
        while tail and within[tail - 1]:
            tail -= 1
        uncertified = [f"{int(w)}" for w in rows.hidden[rows.certified == 0]]
        missing = f" (no certified saddle at width {', '.join(uncertified)})" if uncertified else ""
        if tail == len(within):
            parts.append(f"on {label} the certified saddles stay above the paper's range at every width with one"
                         f"{missing}")
        else:
            parts.append(f"on {label} the certified saddles' median excess is within the paper's range from "
                         f"width {int(known.hidden.iloc[tail])} on{missing}")
    limited, total = int(table.budget_limited.sum()), int(table.paths.sum())
    return (f"Measured as a fraction of the fall from initialisation (the paper's range is at most "
            f"{ceiling:.1%}), {'; '.join(parts)}. {limited} of {total} paths are budget-limited: doubling their "
            "AutoNEB cycles still lowered the saddle at the last doubling allowed, so their saddles are upper "
            "bounds and are left out of the figure and the claims.")


def alignment_sentence(table: pd.DataFrame, paper_fractions, names: dict | None = None) -> str:
    """What alignment shows, in sentences from :func:`minima.experiments.barriers.alignment_table`:
    per dataset, from which width on the weight-matched straight line's median barrier is as low
    as the AutoNEB saddle's (at that width and every wider one), and at which widths a barrier
    remains after alignment (its median above the paper's largest saddle, as a fraction of the
    fall); then how often AutoNEB from the aligned ends found a lower saddle, and by how much."""
    names = names or {}
    ceiling = float(max(paper_fractions))
    parts = []
    for dataset, rows in table.groupby("dataset", sort=False):
        rows = rows.sort_values("hidden")
        label = names.get(dataset, dataset)
        low = (rows.weight_matched_fraction <= rows.excess_fraction).to_numpy()
        tail = len(low)
        while tail and low[tail - 1]:
            tail -= 1
        reach = (f"the weight-matched straight line is as low as the AutoNEB saddle from width "
                 f"{int(rows.hidden.iloc[tail])} on" if tail < len(low)
                 else "the weight-matched straight line stays above the AutoNEB saddle at every width")
        remains = [f"{int(h)}" for h, v in zip(rows.hidden, rows.weight_matched_fraction) if v > ceiling]
        barrier = (f"a barrier above the paper's range remains after alignment at width {', '.join(remains)}"
                   if remains else "no barrier above the paper's range remains after alignment")
        parts.append(f"on {label} {reach}, and {barrier}")
    ran, lower = int(table["aligned runs"].sum()), int(table["aligned lower"].sum())
    if ran:
        drops = table.loc[table["aligned lower"] > 0, "aligned drop"]
        by = (f"{drops.iloc[0]:.1%}" if len(drops) == 1 else f"{drops.min():.1%} to {drops.max():.1%}")
        again = (f" AutoNEB from the aligned ends ran for {ran} pairs (where the aligned line lay below the saddle) "
                 f"and found a lower saddle for {lower}" + (f", lower by a median {by} of the fall (per width): from "
                                                           "the unaligned ends it had not found the lowest path"
                                                           if lower else "") + "."
                 + (" Where the two saddles are budget-limited, both are upper bounds at the same budget: the "
                    "aligned ends start from a lower straight line." if lower else ""))
    else:
        again = " AutoNEB from the aligned ends did not run: no aligned line lay below its saddle where it was asked for."
    return (f"As fractions of the fall from initialisation (medians over pairs; the saddles include "
            f"budget-limited upper bounds), {'; '.join(parts)}." + again)
