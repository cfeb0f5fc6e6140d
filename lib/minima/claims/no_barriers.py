"""The evidence for Draxler et al.'s claims, from the no-barriers results files
(``50_no_barriers.csv``: one row per AutoNEB path, :data:`minima.experiments.barriers.PATH_COLUMNS`;
``50_no_barriers_minima.csv``: one row per minimum) and, for the paper's own numbers, its
Table 1 (CIFAR ResNets and DenseNets, :data:`minima.experiments.papers.NO_BARRIERS_TABLE1`).

A path counts as certified when both of its minima are certified ``minimum`` and the path
converged by the 5 % rule. Paths that share a minimum are not independent: the bootstrap
resamples paths, and the ledger page says so.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..experiments import papers
from .evidence import PAIRED, frame

INIT_FACTOR = 30.0  # "about two orders of magnitude" below the loss at initialisation: at least 10^1.5
ERROR_RISE_PP = 1.0  # "the error rises by up to ... 1 %" (DenseNets, CIFAR-10)
STRAIGHT_FACTOR = 2.0  # "far below" the straight line: the saddle at most half its barrier


def _paired(paths: pd.DataFrame, measure: str, value, supports) -> pd.DataFrame:
    certified = (paths.verdict_start == "minimum") & (paths.verdict_end == "minimum") & paths.path_converged.astype(bool)
    scope = paths.dataset.astype(str) + " " + paths.architecture.astype(str)
    # a file with paths off the tree holds every pair (pairs="all"): they are decided together
    every_pair = paths["in_tree"].astype(bool).groupby(scope).transform("all").eq(False) if "in_tree" in paths \
        else pd.Series(False, index=paths.index)
    protocol = np.where(every_pair, "all pairs", "tree paths")
    return frame(pd.DataFrame({
        "scope": scope, "protocol": protocol, "measure": measure, "cluster": paths.pair, "value": value,
        "supports": supports, "certified": certified,
        "evidence": "50_no_barriers.csv: dataset=" + paths.dataset.astype(str) + ", architecture="
                    + paths.architecture.astype(str)}), PAIRED)


def _needs(paths: pd.DataFrame, *columns: str) -> bool:
    return all(c in paths.columns for c in columns)


def below_initialisation(paths: pd.DataFrame):
    """Section 5: saddle training losses are about two orders of magnitude below the loss at
    initialisation. ``value``: initial / saddle training loss; agrees when at least
    :data:`INIT_FACTOR`. ``None`` when the file lacks the initial loss."""
    if not _needs(paths, "train_loss_init"):
        return None
    ratio = paths.train_loss_init / paths.train_loss_saddle
    return _paired(paths, "training loss", ratio, ratio >= INIT_FACTOR)


def below_test_loss(paths: pd.DataFrame):
    """Section 5: the saddles' training loss is below the minima's test loss. ``value``: the
    two minima's mean test loss / the saddle's training loss; agrees above 1."""
    if not _needs(paths, "test_loss_minima"):
        return None
    ratio = paths.test_loss_minima / paths.train_loss_saddle
    return _paired(paths, "loss", ratio, ratio > 1)


def small_error_rise(paths: pd.DataFrame):
    """Section 5: the test error at the saddle rises by at most about one percentage point.
    ``value``: saddle minus minima test error, points; agrees at most :data:`ERROR_RISE_PP`."""
    rise = paths.test_error_saddle - paths.test_error_minima
    return _paired(paths, "test error", rise, rise <= ERROR_RISE_PP)


def below_straight_line(paths: pd.DataFrame):
    """Section 4: the AutoNEB saddle is far below the barrier on the straight line between the
    same minima. ``value``: straight-line barrier / saddle training loss; agrees when at least
    :data:`STRAIGHT_FACTOR`."""
    ratio = paths.straight_barrier / paths.train_loss_saddle
    return _paired(paths, "training loss", ratio, ratio >= STRAIGHT_FACTOR)


def vanishing_eigenvalue(minima: pd.DataFrame | None):
    """Abstract: each minimum has at least one vanishing Hessian eigenvalue beyond those of the
    trivial invariances. One row per minimum (``value``: how many non-trivial eigenvalues lie
    below the threshold; agrees when at least one). ``None`` when no file holds that count."""
    if minima is None or "nontrivial_vanishing" not in minima.columns:
        return None
    minima = minima[minima.nontrivial_vanishing.notna()]  # too large for the exact spectrum: not counted
    if not len(minima):
        return None
    return frame(pd.DataFrame({
        "scope": minima.dataset.astype(str) + " " + minima.architecture.astype(str), "protocol": "minima",
        "measure": "Hessian eigenvalues", "cluster": minima.minimum, "value": minima.nontrivial_vanishing,
        "supports": minima.nontrivial_vanishing >= 1, "certified": minima.verdict == "minimum",
        "evidence": "50_no_barriers_minima.csv: dataset=" + minima.dataset.astype(str) + ", architecture="
                    + minima.architecture.astype(str)}), PAIRED)


def paper_ranges() -> dict[str, str]:
    """The paper's Table 1 in the terms of each claim: ranges over its architectures per dataset.
    The loss at initialisation is not in its table: a network at initialisation predicts about
    uniformly, so ln(classes) stands for it."""
    t = papers.NO_BARRIERS_TABLE1.reset_index()
    classes = t.dataset.map({"CIFAR-10": 10, "CIFAR-100": 100})

    def ranges(values) -> str:
        return "; ".join(f"{ds}: {v.min():.3g} to {v.max():.3g}" for ds, v in values.groupby(t.dataset))
    return {"no-barriers.below-initialisation": "ln(classes) / saddle " + ranges(np.log(classes) / t["train saddles"]),
            "no-barriers.below-test-loss": "test loss at minima / saddle " + ranges(t["test minima"] / t["train saddles"]),
            "no-barriers.small-error-rise": "error rise in points " + ranges(t["test error saddles %"] - t["test error minima %"]),
            "no-barriers.below-straight-line": "not tabulated (the paper's Figure 3 shows straight lines far above the paths)",
            "no-barriers.vanishing-eigenvalue": "stated in the abstract; no count given"}
