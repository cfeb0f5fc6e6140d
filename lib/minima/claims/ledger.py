"""The claims ledger: one headline verdict per claim, and detail rows per scope, protocol and
measure, computed from the results files.

:func:`read` loads the results tables (and records them as the page's inputs, so the ledger
page re-executes whenever one changes). :func:`verdicts` evaluates every claim: its evidence
(comparisons, or runs of a trend claim) is reduced to one summary per *cluster* (the unit
that shares a run, :attr:`~minima.claims.registry.Claim.unit`), and the claim's
:class:`~minima.claims.registry.Headline` test runs on those summaries; Holm's adjustment runs
over the headlines of every claim of the registry (a claim this build cannot test counts as
p = 1), and the headline's verdict is taken on the adjusted p-value. Detail rows apply the
same test per scope, protocol and measure without adjustment: they describe, the headline
decides. The rows carry :data:`COLUMNS` (written to ``claims.csv``) and a few more for the page.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.files import md5sum
from ..data.loads import record_load
from . import stats
from .evidence import flag
from .growing_networks import END_POINTS
from .no_barriers import over_parameterised
from .registry import CLAIMS, EQUAL_LOSS, Claim, Headline

COLUMNS = ("claim", "paper", "protocol", "measure", "headline", "unit", "clusters", "n", "k", "effect", "ci_low",
           "ci_high", "p_value", "p_adjusted", "verdict", "clusters_needed", "loss_ratio", "collapsed_left_out",
           "evidence")
EXTRA = ("source", "where", "statement", "scope", "reason", "test", "page")
VERDICTS = ("holds", "fails", "confounded by loss", "inconclusive", "not tested here")
LOSS_CONFOUND = 2.0  # a flatness comparison whose flatter arm has a training CE this many times lower measures the loss
MATERIAL = 1.1  # a flatness or CE ratio within 10 % of 1 names no flatter arm and no higher loss
# the protocols whose points count uncertified: the paper's end points, and points at a stated equal loss
UNCERTIFIED = (END_POINTS, EQUAL_LOSS)
ROBUSTNESS = "robustness row, stated before the data"  # how a headline's robustness row's reason begins


def read(folder: str | os.PathLike, names=None) -> dict[str, pd.DataFrame | None]:
    """The results tables the claims read, by notebook name (``None`` for a missing file). Each
    file read is recorded as an input of the page being executed."""
    names = names or sorted({name for c in CLAIMS for name in c.reads})
    tables = {}
    for name in names:
        path = Path(folder) / f"{name}.csv"
        if not path.is_file():
            tables[name] = None
            continue
        tables[name] = pd.read_csv(path)
        record_load({"name": name, "description": f"results file {path.name}", "split": "rows",
                     "size": len(tables[name]), "files": {str(path.resolve()): md5sum(path)}})
    return tables


def _paper(claim: Claim, scope: str, measure: str) -> str:
    return claim.paper(scope, measure) if callable(claim.paper) else claim.paper


def _row(claim: Claim, **values) -> dict:
    base = {"claim": claim.id, "source": claim.source, "where": claim.where, "statement": claim.statement,
            "page": claim.page, "paper": "", "scope": "", "protocol": "", "measure": "", "headline": False,
            "unit": claim.unit, "clusters": 0, "n": 0, "k": np.nan, "effect": np.nan, "ci_low": np.nan,
            "ci_high": np.nan, "p_value": np.nan, "p_oppose": np.nan, "p_adjusted": np.nan, "verdict": "not tested here",
            "clusters_needed": np.nan, "loss_ratio": np.nan, "collapsed_left_out": 0, "reason": "",
            "test": claim.headline.describe() if claim.headline else "", "evidence": ""}
    return {**base, **values}


# ----------------------------------------------------------------------------- clusters

def _cluster_keys(claim: Claim, group: pd.DataFrame) -> pd.DataFrame:
    """``group`` with a ``key`` per row naming its cluster within its scope; a path (cluster
    ``a-b``) of a claim whose unit is the minimum appears once for each of its minima."""
    if claim.unit != "minimum" or not group.cluster.astype(str).str.contains("-").any():
        return group.assign(key=group.scope.astype(str) + " | " + group.cluster.astype(str))
    ends = group.cluster.astype(str).str.split("-", n=1, expand=True)
    return pd.concat([group.assign(key=group.scope.astype(str) + " | minimum " + ends[i]) for i in (0, 1)])


def _mean(values: np.ndarray) -> float:
    """The mean of the values that are not NaN (infinite ones included); NaN when none is."""
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if len(kept) else np.nan


def _on_scale(headline: Headline, values: np.ndarray) -> np.ndarray:
    """A comparison's value on the test's scale, signed so that positive agrees with the claim."""
    with np.errstate(divide="ignore", invalid="ignore"):
        shifted = np.log(values / headline.threshold) if headline.scale == "log" else values - headline.threshold
    return headline.direction * shifted


def _summaries(claim: Claim, headline: Headline, group: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster: ``summary`` (the mean of its comparisons on the test's scale, or
    for a trend claim its runs' Spearman rho times the direction), ``value`` (the same mean
    on the value's own scale, the effect), ``agrees`` (every comparison of the cluster agrees)."""
    keyed = _cluster_keys(claim, group)
    rows = []
    for key, members in keyed.groupby("key", sort=True):
        if claim.kind == "trend":
            rho = stats.spearman(members.x, members.y)
            rows.append({"key": key, "summary": headline.direction * rho, "value": rho, "agrees": headline.direction * rho > 0})
            continue
        values = members.value.to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.exp(_mean(np.log(values))) if headline.scale == "log" else _mean(values)
        rows.append({"key": key, "summary": _mean(_on_scale(headline, values)), "value": value,
                     "agrees": bool(members.supports.astype(bool).all())})
    table = pd.DataFrame(rows, columns=["key", "summary", "value", "agrees"])
    return table[table.summary.notna()]


def _counted(claim: Claim, group: pd.DataFrame) -> pd.DataFrame:
    """The comparisons a test counts: certified points only, except the paper's end points and
    the points at matched loss (:data:`UNCERTIFIED`)."""
    if group.protocol.iloc[0] in UNCERTIFIED:
        return group
    return group[group.certified.astype(bool)]


def _collapsed(group: pd.DataFrame) -> pd.Series:
    """The comparisons whose grown network collapsed onto its direct map (a softmax regression)."""
    return flag(group, "collapsed")


def loss_guard(effect: float, loss_ratio: float, scale: str = "log") -> str:
    """How the loss level bears on a flatness comparison whose median effect (sharper arm's over
    flatter arm's flatness, as the claim orders them) is ``effect`` and whose median training CE
    ratio in the same order is ``loss_ratio``: ``"confounded"`` when the arm the data find flatter
    also has a CE more than :data:`LOSS_CONFOUND` times lower (a lower CE alone flattens the
    cross-entropy's Hessian), ``"against"`` when the flatter arm has a CE more than 10 % higher
    (the loss level works against the finding), else ``""`` (also when the flatness ratio is within
    10 % of 1: no arm is flatter)."""
    if scale != "log" or not (np.isfinite(effect) and np.isfinite(loss_ratio)) or 1 / MATERIAL < effect < MATERIAL:
        return ""
    lower_loss_of_flatter = loss_ratio if effect > 1 else 1 / loss_ratio  # other arm's CE / flatter arm's CE
    if lower_loss_of_flatter > LOSS_CONFOUND:
        return "confounded"
    return "against" if lower_loss_of_flatter < 1 / MATERIAL else ""


def _median(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else np.nan


# ----------------------------------------------------------------------------- one test

def _test(claim: Claim, headline: Headline, group: pd.DataFrame, family: int, power: bool = True) -> dict:
    """The numbers of one row: clusters, the test's one-sided p-values in both directions, the
    effect with its interval over clusters, and (``power``) the clusters a decision would need
    at the family's first Holm level (``ALPHA / family``)."""
    counted = _counted(claim, group)
    summaries = _summaries(claim, headline, counted) if len(counted) else pd.DataFrame(
        columns=["key", "summary", "value", "agrees"])
    clusters = len(summaries)
    values = summaries.value.to_numpy(float)
    numbers = dict(clusters=clusters, n=len(counted), k=int(counted.supports.astype(bool).sum()) if claim.kind != "trend"
                   and len(counted) else np.nan,
                   loss_ratio=_median(counted.loss_ratio) if "loss_ratio" in counted and len(counted) else np.nan)
    if not clusters:
        return {**numbers, "p_value": np.nan, "p_oppose": np.nan, "effect": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                "clusters_needed": np.nan}
    level = stats.ALPHA / family
    effect = float(np.median(values)) if np.isfinite(values).any() else np.nan
    if headline.test == "universal":
        k = int(summaries.agrees.sum())
        p_support, p_oppose = stats.proportion_test(k, clusters, headline.bound)
        low, high = stats.clopper_pearson_lower(k, clusters), stats.clopper_pearson_upper(k, clusters)
        return {**numbers, "k": k, "p_value": p_support, "p_oppose": p_oppose, "effect": k / clusters, "ci_low": low,
                "ci_high": high,
                "clusters_needed": stats.clusters_needed_universal(k, clusters, headline.bound, level) if power
                else None}
    if headline.test == "tost":
        p_support, p_oppose = stats.tost(values, headline.margin)
        spread = float(np.std(values, ddof=1)) if clusters > 1 else np.nan
        needed = stats.clusters_needed_mean(float(np.mean(values)), spread, headline.margin - abs(float(np.mean(values))),
                                            level) if power else None
        effect = float(np.mean(values))
    else:
        k_pos, n_nonzero = stats.sign_counts(summaries.summary)
        p_support, p_oppose = stats.sign_test(k_pos, n_nonzero)
        needed = stats.clusters_needed_sign(k_pos, n_nonzero, level) if power else None
    low, high = stats.bootstrap_median(values)
    return {**numbers, "p_value": p_support, "p_oppose": p_oppose, "effect": effect, "ci_low": low, "ci_high": high,
            "clusters_needed": needed}


def _verdict(numbers: dict, p_support: float, p_oppose: float) -> tuple[str, str]:
    """Verdict and reason from (adjusted, for a headline) p-values in both directions."""
    clusters = numbers["clusters"]
    needed = numbers.get("clusters_needed")
    more = (f"; about {int(needed)} clusters would decide it at the observed effect ({stats.POWER:.0%} power)"
            if needed is not None and np.isfinite(needed) and needed > clusters else "")
    if clusters < stats.N_MIN:
        return "inconclusive", f"{clusters} cluster(s): at least {stats.N_MIN} are needed to decide" + more
    if np.isfinite(p_support) and p_support < stats.ALPHA:
        return "holds", f"p = {p_support:.2g} < {stats.ALPHA:g} over {clusters} clusters"
    if np.isfinite(p_oppose) and p_oppose < stats.ALPHA:
        return "fails", f"the opposite direction: p = {p_oppose:.2g} < {stats.ALPHA:g} over {clusters} clusters"
    return "inconclusive", f"p = {p_support:.2g} over {clusters} clusters, neither direction at {stats.ALPHA:g}" + more


def _guarded(verdict: str, reason: str, numbers: dict, headline: Headline) -> tuple[str, str]:
    """The verdict after the loss guard (:func:`loss_guard`): a decided flatness comparison whose
    flatter arm has a CE more than :data:`LOSS_CONFOUND` times lower is ``confounded by loss``."""
    guard = loss_guard(numbers.get("effect", np.nan), numbers.get("loss_ratio", np.nan), headline.scale)
    ratio = numbers.get("loss_ratio", np.nan)
    if guard == "confounded" and verdict in ("holds", "fails"):
        return "confounded by loss", (f"{reason}; but the flatter arm's training CE is more than {LOSS_CONFOUND:g}x "
                                      f"lower (median CE ratio {ratio:.3g}): the flatness gap is the loss level's")
    if guard == "against":
        return verdict, f"{reason}; the loss level works against the finding (median CE ratio {ratio:.3g})"
    return verdict, reason


def _label_protocols(evidence: pd.DataFrame) -> pd.DataFrame:
    return evidence.assign(protocol=evidence.protocol.replace({"paper": END_POINTS}))


def evaluate(claim: Claim, tables: dict[str, pd.DataFrame | None], family: int = len(CLAIMS)) -> list[dict]:
    """The rows of one claim: its headline (unadjusted; :func:`verdicts` adjusts), then one
    detail row per scope, protocol and measure; or one ``not tested here`` row saying what
    would test it."""
    headline = claim.headline
    missing = [name for name in claim.reads[:1] if tables.get(name) is None]
    if missing:
        why = claim.untested or "its results"
        return [_row(claim, headline=True, reason=f"no {', '.join(m + '.csv' for m in missing)} in this build: needs {why}")]
    evidence = claim.evidence(*(tables.get(name) for name in claim.reads))
    if evidence is None:
        return [_row(claim, headline=True, reason=f"the results files lack what this test needs: {claim.untested}")]
    if not len(evidence):
        return [_row(claim, headline=True, reason="no comparison of this kind in this build's results")]
    evidence = _label_protocols(evidence)
    chosen, left_out = _pooled(headline, evidence)
    rows = []
    if len(chosen):
        numbers = _test(claim, headline, chosen, family)
        rows.append(_row(claim, headline=True, scope=", ".join(dict.fromkeys(chosen.scope.astype(str))),
                         collapsed_left_out=left_out,
                         protocol=", ".join(dict.fromkeys(chosen.protocol.astype(str))), measure=headline.measure,
                         evidence=str(chosen.evidence.iloc[0]), **numbers))
    else:
        why = (f"every {headline.protocol or ''} {headline.measure} comparison has a grown network collapsed onto its "
               "direct input-output map (a softmax regression)" if left_out else
               f"no {headline.protocol or ''} {headline.measure} comparisons in this build's results")
        rows.append(_row(claim, headline=True, collapsed_left_out=left_out, reason=why))
    if headline.robustness:
        rows.append(_robustness(claim, evidence, family))
    for (scope, protocol, measure), group in evidence.groupby(["scope", "protocol", "measure"], sort=False):
        detail = replace(headline, protocol=protocol, measure=measure, scopes=(scope,), over_parameterised=False)
        numbers = _test(claim, detail, group, family, power=False)
        verdict, reason = _guarded(*_verdict(numbers, numbers["p_value"], numbers["p_oppose"]), numbers, detail)
        collapsed = int(_collapsed(group).sum())
        if collapsed:  # described here, left out of the headline
            reason += (f"; {collapsed} of {len(group)} comparisons have a grown network collapsed onto its direct "
                       "input-output map (a softmax regression): not in the headline")
        rows.append(_row(claim, paper=_paper(claim, scope, measure), scope=scope, protocol=protocol, measure=measure,
                         evidence=str(group.evidence.iloc[0]), verdict=verdict, reason=reason + " (not adjusted)",
                         **numbers))
    return rows


def _pooled(headline: Headline, evidence: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The comparisons ``headline`` pools (its protocol, measure and scopes), without those of a
    grown network collapsed onto its direct map, and how many of those were left out."""
    chosen = evidence[(evidence.measure == headline.measure)
                      & ((evidence.protocol == headline.protocol) if headline.protocol else
                         (evidence.protocol != END_POINTS))]
    if headline.scopes is not None:
        chosen = chosen[chosen.scope.isin(headline.scopes)]
    if headline.over_parameterised:
        chosen = chosen[chosen.scope.astype(str).map(over_parameterised).astype(bool)]
    collapsed = _collapsed(chosen)
    return chosen[~collapsed], int(collapsed.sum())


def _robustness(claim: Claim, evidence: pd.DataFrame, family: int) -> dict:
    """The headline's pre-stated robustness row: the same pooled test on the protocol
    ``headline.robustness``, its verdict unadjusted and outside the family."""
    headline = replace(claim.headline, protocol=claim.headline.robustness)
    chosen, left_out = _pooled(headline, evidence)
    label = f"{ROBUSTNESS} ({headline.protocol})"
    if not len(chosen):
        return _row(claim, protocol=headline.protocol, measure=headline.measure, collapsed_left_out=left_out,
                    reason=f"{label}: no {headline.protocol} comparisons in this build's results")
    numbers = _test(claim, headline, chosen, family)
    verdict, reason = _guarded(*_verdict(numbers, numbers["p_value"], numbers["p_oppose"]), numbers, headline)
    return _row(claim, scope=", ".join(dict.fromkeys(chosen.scope.astype(str))), protocol=headline.protocol,
                measure=headline.measure, collapsed_left_out=left_out, evidence=str(chosen.evidence.iloc[0]),
                verdict=verdict, reason=f"{label}: {reason} (not adjusted)", **numbers)


def verdicts(tables: dict[str, pd.DataFrame | None], claims=CLAIMS) -> pd.DataFrame:
    """Every claim's rows (:func:`evaluate`), the headlines' verdicts taken on Holm-adjusted
    p-values over the family of every registered claim; columns :data:`COLUMNS`, then
    :data:`EXTRA`."""
    rows = pd.DataFrame([row for c in claims for row in evaluate(c, tables)])
    heads = rows.index[rows.headline.astype(bool)]
    p_support = rows.loc[heads, "p_value"].to_numpy(float)
    p_oppose = rows.loc[heads, "p_oppose"].to_numpy(float)
    pad = len(CLAIMS) - len(heads)  # claims not evaluated here still belong to the family
    adjusted = stats.holm(np.concatenate([p_support, np.full(max(pad, 0), np.nan)]))[:len(heads)]
    adjusted_oppose = stats.holm(np.concatenate([p_oppose, np.full(max(pad, 0), np.nan)]))[:len(heads)]
    for index, p, q in zip(heads, adjusted, adjusted_oppose):
        if rows.at[index, "clusters"] == 0 and rows.at[index, "verdict"] == "not tested here" and rows.at[index, "reason"]:
            continue
        rows.at[index, "p_adjusted"] = p
        numbers = rows.loc[index].to_dict()
        verdict, reason = _verdict(numbers, p, q)
        if verdict == "fails":
            reason = reason.replace("p = ", "adjusted p = ", 1)
        elif verdict == "holds":
            reason = f"Holm-adjusted p = {p:.2g} < {stats.ALPHA:g} over {int(numbers['clusters'])} clusters"
        claim = next(c for c in claims if c.id == numbers["claim"])
        verdict, reason = _guarded(verdict, reason, numbers, claim.headline)
        if numbers.get("collapsed_left_out"):
            reason += (f"; {int(numbers['collapsed_left_out'])} comparison(s) with a grown network collapsed onto its "
                       "direct input-output map left out (they compare a softmax regression)")
        rows.at[index, "verdict"], rows.at[index, "reason"] = verdict, reason
        if verdict != "inconclusive":
            rows.at[index, "clusters_needed"] = np.nan
    return rows[list(COLUMNS) + list(EXTRA)]


def headlines(rows: pd.DataFrame) -> pd.DataFrame:
    """The headline row of each claim, in registry order."""
    return rows[rows.headline.astype(bool)]


def headline(rows: pd.DataFrame) -> str:
    """One claim's headline verdict in a line: ``"**holds** (converged, elementwise, 15 clusters)"``."""
    head = rows[rows.headline.astype(bool)]
    if not len(head):
        return "**not tested here**"
    r = head.iloc[0]
    if r.verdict == "not tested here":
        return "**not tested here**"
    where = ", ".join(str(v) for v in (r.protocol, r.measure) if isinstance(v, str) and v)
    text = f"**{r.verdict}** ({where}, {int(r.clusters)} clusters"
    if np.isfinite(r.p_adjusted):
        text += f", adjusted p = {r.p_adjusted:.2g}"
    if r.verdict == "inconclusive" and np.isfinite(r.clusters_needed):
        text += f"; about {int(r.clusters_needed)} clusters would decide it"
    return text + ")"
