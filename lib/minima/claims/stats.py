"""The statistics behind a verdict, at the level of independent units (clusters).

A *cluster* is what shares a run: a seed of Table 1 (one grown run is compared with three
twins of its seed), a minimum of the no-barriers chapter (one minimum ends several paths).
Each cluster contributes one summary (the mean of its comparisons' effects on the test's
scale), and every test below is exact or standard at that level:

- :func:`sign_test` on cluster summaries (exact binomial; ``k`` of ``n`` clusters positive);
- :func:`tost`, two one-sided t-tests of the cluster-mean gap against an equivalence margin;
- :func:`proportion_test` and :func:`clopper_pearson_lower`, the exact one-sided test and
  lower bound on a proportion, for claims about *every* unit;
- :func:`holm`, Holm's step-down adjustment over the family of headline tests (statsmodels);
- :func:`bootstrap_median`, percentile intervals that resample clusters, never shown with
  fewer than :data:`N_MIN` clusters;
- ``clusters_needed_*``: the clusters a test would need to decide at the observed effect with
  :data:`POWER` power, for an inconclusive headline.
"""
from __future__ import annotations

import numpy as np

ALPHA = 0.05  # family-wise level of the headline verdicts (Holm over the family)
N_MIN = 5  # fewest clusters for a verdict or an interval: 4 unanimous clusters give p = 1/16 > ALPHA
POWER = 0.8  # power at which "clusters needed" is computed
RESAMPLES = 2000  # bootstrap resamples of the clusters
LEVEL = 0.95  # two-sided confidence level of the bootstrap interval
MAX_CLUSTERS = 10_000  # "clusters needed" beyond this is reported as more than it


def sign_test(k: int, n: int) -> tuple[float, float]:
    """Exact one-sided sign test of ``k`` positive cluster summaries out of ``n`` (zeros left
    out before counting): ``(p_support, p_oppose)``, the probabilities under "positive and
    negative equally likely" of at least ``k`` and of at most ``k`` positive. ``(nan, nan)`` for
    ``n = 0``."""
    from scipy.stats import binom

    if n == 0:
        return float("nan"), float("nan")
    return float(binom.sf(k - 1, n, 0.5)), float(binom.cdf(k, n, 0.5))


def sign_counts(summaries) -> tuple[int, int]:
    """``(k, n)``: positive summaries and non-zero summaries (ties with the threshold left out)."""
    s = np.asarray(summaries, float)
    s = s[~np.isnan(s) & (np.abs(s) > 1e-12)]  # a summary within rounding of 0 is a tie
    return int((s > 0).sum()), len(s)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (``nan`` entries stay ``nan`` and count as 1 in the
    family: a hypothesis the build could not test still belongs to it)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, float)
    filled = np.where(np.isfinite(p), p, 1.0)
    adjusted = multipletests(filled, method="holm")[1] if len(p) else filled
    return np.where(np.isfinite(p), adjusted, np.nan)


def tost(gaps, margin: float) -> tuple[float, float]:
    """Two one-sided t-tests that the mean of ``gaps`` (one per cluster) lies within
    ``(-margin, margin)``: ``(p_equivalent, p_outside)``. ``p_equivalent`` is the larger of the
    two one-sided p-values (equivalence when it is small); ``p_outside`` that of the one-sided
    test that the mean lies beyond the margin on the side of the observed mean (the claim
    fails when it is small). ``(nan, nan)`` with fewer than two clusters or no spread."""
    from scipy.stats import ttest_1samp

    g = np.asarray(gaps, float)
    g = g[np.isfinite(g)]
    if len(g) < 2 or np.ptp(g) == 0:
        return float("nan"), float("nan")
    p_above = ttest_1samp(g, -margin, alternative="greater").pvalue  # mean > -margin
    p_below = ttest_1samp(g, margin, alternative="less").pvalue  # mean < +margin
    side = margin if g.mean() >= 0 else -margin
    p_outside = ttest_1samp(g, side, alternative="greater" if side > 0 else "less").pvalue
    return float(max(p_above, p_below)), float(p_outside)


def proportion_test(k: int, n: int, bound: float) -> tuple[float, float]:
    """Exact one-sided binomial tests of ``k`` agreeing units out of ``n`` against the share
    ``bound``: ``(p_above, p_below)``. ``p_above < alpha`` exactly when the Clopper-Pearson lower
    bound at ``alpha`` exceeds ``bound``."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, bound)), float(binom.cdf(k, n, bound))


def clopper_pearson_lower(k: int, n: int, alpha: float = ALPHA) -> float:
    """Exact one-sided ``1 - alpha`` lower bound on a proportion with ``k`` successes of ``n``."""
    from scipy.stats import beta

    if n == 0:
        return float("nan")
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def clopper_pearson_upper(k: int, n: int, alpha: float = ALPHA) -> float:
    """Exact one-sided ``1 - alpha`` upper bound on a proportion with ``k`` successes of ``n``."""
    from scipy.stats import beta

    if n == 0:
        return float("nan")
    return 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))


def spearman(x, y) -> float:
    """Spearman's rank correlation of ``x`` and ``y``; ``nan`` for fewer than three points or a
    constant input."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def clusters_needed_sign(k: int, n: int, alpha: float) -> int | None:
    """Clusters a one-sided sign test at ``alpha`` needs to reject with :data:`POWER` power when
    a cluster is positive with the observed probability ``k / n`` (the larger side: the test
    of whichever direction the data lean to). ``None`` when nothing leans (``k = n / 2``) or
    more than :data:`MAX_CLUSTERS` would be needed."""
    from scipy.stats import binom

    if n == 0:
        return None
    q = max(k, n - k) / n
    if q <= 0.5:
        return None
    for m in range(1, MAX_CLUSTERS + 1):
        critical = int(binom.isf(alpha, m, 0.5)) + 1  # fewest positives with P(>= critical) <= alpha
        if critical <= m and binom.sf(critical - 1, m, q) >= POWER:
            return m
    return None


def clusters_needed_mean(mean: float, sd: float, distance: float, alpha: float) -> int | None:
    """Clusters a one-sided t-test at ``alpha`` needs to show a mean ``distance`` away from its
    bound with :data:`POWER` power, when cluster summaries spread with ``sd`` (normal
    approximation, one cluster added for the t-distribution). ``None`` when ``distance <= 0``."""
    from scipy.stats import norm

    if not (np.isfinite(sd) and np.isfinite(distance)) or distance <= 0 or sd <= 0:
        return None
    m = ((norm.isf(alpha) + norm.isf(1 - POWER)) * sd / distance) ** 2 + 1
    return int(np.ceil(m)) if m <= MAX_CLUSTERS else None


def clusters_needed_universal(k: int, n: int, bound: float, alpha: float, most: int = 1000) -> int | None:
    """Units a Clopper-Pearson lower bound at ``alpha`` needs to exceed ``bound`` with
    :data:`POWER` power, at the observed proportion ``k / n`` (``None`` beyond ``most``)."""
    from scipy.stats import beta, binom

    if n == 0 or k / n <= bound:
        return None
    q = k / n
    for m in range(1, most + 1):
        successes = np.arange(1, m + 1)
        above = np.flatnonzero(beta.ppf(alpha, successes, m - successes + 1) > bound)  # increasing in successes
        if len(above) and binom.sf(successes[above[0]] - 1, m, q) >= POWER:
            return m
    return None


def bootstrap_median(summaries, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the median of the cluster ``summaries`` (one value per cluster)
    over resamples of the clusters, drawn with replacement. ``(nan, nan)`` with fewer than
    :data:`N_MIN` clusters (the percentile interval of three clusters covers far less than its
    nominal level). Deterministic for a given ``seed``."""
    values = np.asarray(summaries, float)
    if len(values) < N_MIN:
        return float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    medians = np.median(values[draws], axis=1)
    medians = medians[np.isfinite(medians)]
    if not len(medians):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return float(low), float(high)
