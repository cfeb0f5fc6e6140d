"""The statistics behind a verdict: an exact sign test on paired comparisons, Spearman's rank
correlation for the one claim about a trend, and percentile bootstrap intervals that resample
seeds (the independent units of a batch of runs), not single comparisons.

:func:`decide` is the rule every verdict of the ledger comes from; the ledger page states it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

ALPHA = 0.05  # one-sided level of every test, per ledger row (no correction across rows; stated on the page)
N_MIN = 5  # fewest comparisons to decide: with 4, even 4 of 4 gives a sign-test p of 1/16 > ALPHA
RESAMPLES = 2000  # bootstrap resamples of the seeds
LEVEL = 0.95  # two-sided confidence level of the bootstrap interval


def sign_test(k: int, n: int) -> tuple[float, float]:
    """Exact one-sided sign test of ``k`` comparisons agreeing with a claim out of ``n`` (ties
    left out before counting): ``(p_support, p_oppose)``, the probabilities under "agree and
    disagree are equally likely" of at least ``k`` and of at most ``k`` agreeing. ``(nan, nan)``
    for ``n = 0``."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan"), float("nan")
    return (float(binomtest(k, n, 0.5, alternative="greater").pvalue),
            float(binomtest(k, n, 0.5, alternative="less").pvalue))


def decide(p_support: float, p_oppose: float, n: int, n_min: int = N_MIN, alpha: float = ALPHA) -> str:
    """The ledger's rule: ``inconclusive`` below ``n_min`` comparisons between certified points;
    else ``holds`` when the one-sided test in the claim's direction rejects at ``alpha``,
    ``fails`` when the test in the opposite direction does, ``inconclusive`` when neither does."""
    if n < n_min:
        return "inconclusive"
    if p_support < alpha:
        return "holds"
    if p_oppose < alpha:
        return "fails"
    return "inconclusive"


def spearman(x, y) -> tuple[float, float, float]:
    """Spearman's rank correlation of ``x`` and ``y`` (1-D, same length) with its one-sided
    p-values: ``(rho, p_negative, p_positive)`` (``p_negative``: of rho this low or lower
    under no association). ``nan`` for fewer than three points or a constant input."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan"), float("nan")
    rho = float(spearmanr(x, y).statistic)
    return (rho, float(spearmanr(x, y, alternative="less").pvalue),
            float(spearmanr(x, y, alternative="greater").pvalue))


def cluster_bootstrap(clusters, statistic: Callable[[np.ndarray], float], resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over resamples of the clusters.

    ``clusters``: one label per comparison (its seed); a resample draws as many clusters as
    there are, with replacement, and takes every comparison of each drawn cluster (comparisons
    that share a seed share its run, so they are not independent). ``statistic`` receives the
    indices of the resampled comparisons. ``(nan, nan)`` with fewer than two clusters: one seed
    says nothing about the spread over seeds. Deterministic for a given ``seed``.
    """
    clusters = np.asarray(clusters)
    labels = np.unique(clusters)
    if len(labels) < 2:
        return float("nan"), float("nan")
    members = [np.flatnonzero(clusters == label) for label in labels]
    generator = np.random.default_rng(seed)
    values = []
    for draw in generator.integers(0, len(labels), size=(resamples, len(labels))):
        value = statistic(np.concatenate([members[i] for i in draw]))
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)
