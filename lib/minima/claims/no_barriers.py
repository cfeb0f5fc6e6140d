"""The evidence for Draxler et al.'s claims, from the no-barriers results files
(``50_no_barriers.csv``: one row per AutoNEB path, :data:`minima.experiments.barriers.PATH_COLUMNS`;
``50_no_barriers_minima.csv``: one row per minimum) and, for the paper's own numbers, its
Table 1 (CIFAR ResNets and DenseNets, :data:`minima.experiments.papers.NO_BARRIERS_TABLE1`).

A path counts as certified when both of its minima are certified ``minimum``, neither
collapsed to a constant predictor, the path converged by the 5 % rule, and its saddle is
certified against the AutoNEB budget (``saddle_certificate`` is ``converged``: doubling the
cycles no longer lowers it; a ``budget-limited`` saddle is only an upper bound and never
counts as a saddle). Paths that share a
minimum are not independent: the unit of every test is the minimum (each path counts for
both of its minima).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..experiments import papers
from .evidence import PAIRED, frame

# Thresholds in the paper's own terms (its Table 1, recomputed: see paper_ranges)
EXCESS_FRACTION = 0.075  # saddle minus minimum: at most 7.5 % of the fall from initialisation
TEST_LOSS_FACTOR = 2.0  # the minima's test loss at least 2.1x the saddle's training loss
ERROR_RISE_PP = {10: 1.0, 100: 2.9}  # error rise at the saddle, points, by classes (CIFAR-10 / -100)
STRAIGHT_FACTOR = 2.0  # "far below" the straight line: the straight line's barrier at least twice the path's
FLAT_FACTOR = 16.0  # "essentially flat": the saddle's training loss at most 16x the minima's (2-16x)
TEST_RISE_FACTOR = 1.05  # the test loss at the saddle at most 1.05x the minima's (0.36 -> 0.37, 1.42 -> 1.49)
COLLAPSED_ACCURACY = 0.2  # a minimum below twice chance (10 classes) predicts (nearly) one class
CLASSES = 10  # every dataset of this build's sweep has 10 classes
LARGE_WIDTH = 100  # the claims are about over-parameterised networks: an MLP this wide or wider, or any CNN
UNIVERSAL_BOUND = 0.75  # "each minimum": the share of minima that agree must be shown above three quarters
# "equivalent" (Entezari et al. 2022; Ainsworth et al. 2023): the weight-matched straight line's barrier
# within 2.5 % of the fall from initialisation of the AutoNEB saddle, a third of the paper's largest saddle (7.5 %)
ALIGNED_MARGIN = 0.025


def over_parameterised(scope: str) -> bool:
    """Whether a scope (``"<dataset> <architecture>"``) is in the paper's regime: every network
    of its table has at least 0.27M parameters, so an MLP of the capacity sweep counts from
    :data:`LARGE_WIDTH` hidden units on (the narrower ones show where barriers vanish, which
    the paper's Section 6 discusses but does not claim), any other architecture always."""
    architecture = scope.rsplit(" ", 1)[-1]
    if not architecture.startswith("mlp-"):
        return True
    return int(architecture.split("-")[1]) >= LARGE_WIDTH


def collapsed_minima(minima: pd.DataFrame | None) -> set[tuple[str, str, str]]:
    """``(dataset, architecture, minimum)`` of the minima that collapsed to a (nearly) constant
    predictor: the file's ``collapsed`` column where it has one, else a training accuracy
    below :data:`COLLAPSED_ACCURACY`."""
    if minima is None or not len(minima):
        return set()
    flag = minima.collapsed.astype(bool) if "collapsed" in minima else minima.train_accuracy < COLLAPSED_ACCURACY
    chosen = minima[flag]
    return {(str(d), str(a), str(m)) for d, a, m in zip(chosen.dataset, chosen.architecture, chosen.minimum)}


def _paired(paths: pd.DataFrame, minima: pd.DataFrame | None, measure: str, value, supports) -> pd.DataFrame:
    """Path evidence: certified when both minima are certified ``minimum``, the path
    converged and its saddle is certified against the budget, and neither minimum collapsed (a constant predictor is excluded from the paths'
    claims and shown on the page); ``cluster`` is the pair ``a-b``, whose two minima are the
    units (:data:`minima.claims.registry.Claim.unit`)."""
    collapsed = collapsed_minima(minima)
    ends = paths.pair.astype(str).str.split("-", n=1, expand=True)
    touches = [(str(d), str(a), s) in collapsed or (str(d), str(a), e) in collapsed
               for d, a, s, e in zip(paths.dataset, paths.architecture, ends[0], ends[1])]
    certified = (paths.verdict_start == "minimum") & (paths.verdict_end == "minimum") & \
        paths.path_converged.astype(bool) & ~pd.Series(touches, index=paths.index, dtype=bool)
    if "saddle_certificate" in paths:  # files written before the doubling certificate lack it
        certified &= paths.saddle_certificate.astype(str).eq("converged")
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


def _minima_loss(paths: pd.DataFrame) -> pd.Series:
    return paths[["train_loss_start", "train_loss_end"]].max(axis=1)


def below_initialisation(paths: pd.DataFrame, minima: pd.DataFrame | None = None):
    """Section 5, in the terms of its Table 1: the saddle's excess over the higher minimum is a
    small fraction of the fall from the loss at initialisation to the minima. ``value``: that
    fraction; agrees at most :data:`EXCESS_FRACTION`. ``None`` without the initial loss."""
    if not _needs(paths, "train_loss_init"):
        return None
    fall = paths.train_loss_init - paths[["train_loss_start", "train_loss_end"]].mean(axis=1)
    fraction = (paths.train_loss_saddle - _minima_loss(paths)).clip(lower=0) / fall
    return _paired(paths, minima, "training loss", fraction, fraction <= EXCESS_FRACTION)


def below_test_loss(paths: pd.DataFrame, minima: pd.DataFrame | None = None):
    """Section 5: the saddles' training loss is below the minima's test loss (in its Table 1 by
    2.1x or more). ``value``: the minima's mean test loss / the saddle's training loss; agrees
    at least :data:`TEST_LOSS_FACTOR`."""
    if not _needs(paths, "test_loss_minima"):
        return None
    ratio = paths.test_loss_minima / paths.train_loss_saddle
    return _paired(paths, minima, "loss", ratio, ratio >= TEST_LOSS_FACTOR)


def small_error_rise(paths: pd.DataFrame, minima: pd.DataFrame | None = None):
    """Section 5: the test error at the saddle rises by at most what the paper's Table 1 shows
    for a dataset with as many classes (:data:`ERROR_RISE_PP`). ``value``: saddle minus minima
    test error, points."""
    rise = paths.test_error_saddle - paths.test_error_minima
    return _paired(paths, minima, "test error", rise, rise <= ERROR_RISE_PP[CLASSES])


def _barrier_ratio(paths: pd.DataFrame) -> pd.Series:
    """Straight-line barrier over the path's, both above the higher minimum; a path without a
    barrier against a straight line with one is infinitely lower, both without is no
    comparison (NaN)."""
    straight = paths.straight_barrier - _minima_loss(paths)
    path = (paths.train_loss_saddle - _minima_loss(paths)).clip(lower=0)
    ratio = straight / path
    return ratio.where(~((straight <= 0) & (path <= 0)))


def below_straight_line(paths: pd.DataFrame, minima: pd.DataFrame | None = None):
    """Section 4: the AutoNEB saddle is far below the barrier on the straight line between the
    same minima. ``value``: the straight line's barrier over the path's, both above the higher
    minimum; agrees at least :data:`STRAIGHT_FACTOR`."""
    ratio = _barrier_ratio(paths)
    return _paired(paths, minima, "training loss", ratio, ratio >= STRAIGHT_FACTOR)


def essentially_flat(paths: pd.DataFrame, minima: pd.DataFrame | None = None):
    """Title and Section 5: the paths are essentially flat, their saddle's training loss
    within the paper's 2-16x of the minima's. ``value``: saddle / higher minimum training
    loss; agrees at most :data:`FLAT_FACTOR`."""
    ratio = paths.train_loss_saddle / _minima_loss(paths)
    return _paired(paths, minima, "training loss", ratio, ratio <= FLAT_FACTOR)


def flat_test_loss(paths: pd.DataFrame, minima: pd.DataFrame | None = None):
    """Section 5 and Table 1: the test loss does not rise along the path (its saddles' test
    loss is at most 1.05x the minima's). ``value``: test loss at the saddle / the minima's mean
    test loss; agrees at most :data:`TEST_RISE_FACTOR`. ``None`` without the saddle's test loss."""
    if not _needs(paths, "test_loss_saddle", "test_loss_minima"):
        return None
    ratio = paths.test_loss_saddle / paths.test_loss_minima
    return _paired(paths, minima, "test loss", ratio, ratio <= TEST_RISE_FACTOR)


def aligned_line(paths: pd.DataFrame, minima: pd.DataFrame | None = None):
    """Beyond the paper (Entezari et al. 2022; Ainsworth et al. 2023): once the hidden units of
    the second minimum are permuted to match the first's by weight matching, the straight line
    between them has no more barrier than the AutoNEB path. ``value``: the weight-matched straight
    line's barrier minus the AutoNEB saddle, both as fractions of the fall from initialisation
    (``weight_matched_fraction - excess_fraction``); agrees within :data:`ALIGNED_MARGIN` either
    way. ``None`` without the aligned barriers; paths without them (networks alignment does not
    take) are left out."""
    if not _needs(paths, "weight_matched_fraction", "excess_fraction"):
        return None
    paths = paths[paths.weight_matched_fraction.notna() & paths.excess_fraction.notna()]
    if not len(paths):
        return None
    gap = paths.weight_matched_fraction - paths.excess_fraction
    return _paired(paths, minima, "excess / fall", gap, gap.abs() <= ALIGNED_MARGIN)


def vanishing_eigenvalue(minima: pd.DataFrame | None):
    """Abstract: each minimum has at least one vanishing Hessian eigenvalue beyond those of the
    trivial invariances. One row per minimum (``value``: how many non-trivial eigenvalues lie
    below the threshold; agrees when at least one). ``None`` when no file holds that count."""
    if minima is None or "nontrivial_vanishing" not in minima.columns:
        return None
    collapsed = collapsed_minima(minima)
    minima = minima[minima.nontrivial_vanishing.notna()]  # too large for the exact spectrum: not counted
    minima = minima[[(str(d), str(a), str(m)) not in collapsed
                     for d, a, m in zip(minima.dataset, minima.architecture, minima.minimum)]]
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
    fall = np.log(classes) - t["train minima"]
    return {"no-barriers.below-initialisation": "excess / fall from ln(classes) "
                                                + ranges((t["train saddles"] - t["train minima"]) / fall),
            "no-barriers.essentially-flat": "saddle / minima training loss " + ranges(t["train saddles"] / t["train minima"]),
            "no-barriers.test-loss-flat": "saddle / minima test loss " + ranges(t["test saddles"] / t["test minima"]),
            "no-barriers.below-test-loss": "test loss at minima / saddle " + ranges(t["test minima"] / t["train saddles"]),
            "no-barriers.small-error-rise": "error rise in points " + ranges(t["test error saddles %"] - t["test error minima %"]),
            "no-barriers.below-straight-line": "not tabulated (the paper's Figure 3 shows straight lines far above the paths)",
            "no-barriers.vanishing-eigenvalue": "stated in the abstract; no count given"}
