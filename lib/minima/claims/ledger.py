"""The claims ledger: a verdict per claim, scope, protocol and measure, computed from the
results files.

:func:`read` loads the results tables (and records them as the page's inputs, so the ledger
page re-executes whenever one changes); :func:`ledger` applies :func:`minima.claims.stats.decide`
to each claim's certified comparisons (:func:`verdicts`); the rows carry :data:`COLUMNS` (written to
``claims.csv``) and a few more for the page. :func:`headline` is the one-line version of a
claim's rows for the landing page.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.files import md5sum
from ..data.loads import record_load
from . import stats
from .registry import CLAIMS, Claim

COLUMNS = ("claim", "paper", "protocol", "measure", "n", "k", "effect", "ci_low", "ci_high", "p_value", "verdict",
           "evidence")
EXTRA = ("source", "where", "statement", "scope", "reason", "n_all", "k_all", "page")
VERDICTS = ("holds", "fails", "inconclusive", "not tested here")


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
            "page": claim.page, "paper": "", "scope": "", "protocol": "", "measure": "", "n": 0, "k": np.nan,
            "n_all": 0, "k_all": np.nan, "effect": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
            "verdict": "not tested here", "reason": "", "evidence": ""}
    return {**base, **values}


def _median(values: np.ndarray):
    return lambda index: float(np.median(values[index]))


def _paired_row(claim: Claim, group: pd.DataFrame) -> dict:
    certified = group[group.certified.astype(bool)]
    n, k = len(certified), int(certified.supports.astype(bool).sum())
    p_support, p_oppose = stats.sign_test(k, n)
    verdict = stats.decide(p_support, p_oppose, n)
    values = certified.value.to_numpy(float)
    low, high = stats.cluster_bootstrap(certified.cluster.to_numpy(), _median(values)) if n else (np.nan, np.nan)
    if n < stats.N_MIN:
        reason = f"{n} comparison(s) between certified points: at least {stats.N_MIN} are needed to decide"
    elif verdict == "holds":
        reason = f"{k} of {n} agree: one-sided sign test p = {p_support:.2g} < {stats.ALPHA:g}"
    elif verdict == "fails":
        reason = f"{k} of {n} agree: the opposite direction is significant (p = {p_oppose:.2g})"
    else:
        reason = f"{k} of {n} agree: p = {p_support:.2g}, neither direction significant at {stats.ALPHA:g}"
    return dict(n=n, k=k, n_all=len(group), k_all=int(group.supports.astype(bool).sum()),
                effect=float(np.median(values)) if n else np.nan, ci_low=low, ci_high=high, p_value=p_support,
                verdict=verdict, reason=reason)


def _trend_row(claim: Claim, group: pd.DataFrame) -> dict:
    certified = group[group.certified.astype(bool)]
    n = len(certified)
    x, y = certified.x.to_numpy(float), certified.y.to_numpy(float)
    rho, p_negative, p_positive = stats.spearman(x, y)
    verdict = stats.decide(p_negative, p_positive, n) if np.isfinite(rho) else "inconclusive"

    def rho_of(index):
        return stats.spearman(x[index], y[index])[0]
    low, high = stats.cluster_bootstrap(certified.cluster.to_numpy(), rho_of) if n >= 3 else (np.nan, np.nan)
    if n < stats.N_MIN:
        reason = f"{n} certified run(s): at least {stats.N_MIN} are needed to decide"
    elif not np.isfinite(rho):
        reason = "no spread in flatness or accuracy: no correlation to test"
    else:
        reason = (f"rho = {rho:.2f} over {n} certified runs, one-sided p = {p_negative:.2g}"
                  + (f" (positive: p = {p_positive:.2g})" if verdict == "fails" else ""))
    return dict(n=n, n_all=len(group), effect=rho, ci_low=low, ci_high=high, p_value=p_negative, verdict=verdict,
                reason=reason)


def evaluate(claim: Claim, tables: dict[str, pd.DataFrame | None]) -> list[dict]:
    """The ledger rows of one claim: one per scope, protocol and measure of its evidence, or one
    ``not tested here`` row saying what would test it."""
    missing = [name for name in claim.reads if tables.get(name) is None]
    if missing:
        why = claim.untested or "its results"
        return [_row(claim, reason=f"no {', '.join(m + '.csv' for m in missing)} in this build: needs {why}")]
    evidence = claim.evidence(*(tables[name] for name in claim.reads))
    if evidence is None:
        return [_row(claim, reason=f"the results files lack what this test needs: {claim.untested}")]
    if not len(evidence):
        return [_row(claim, reason="no comparison of this kind in this build's results (other tasks or sizes)")]
    rows = []
    for (scope, protocol, measure), group in evidence.groupby(["scope", "protocol", "measure"], sort=False):
        numbers = _trend_row(claim, group) if claim.kind == "trend" else _paired_row(claim, group)
        rows.append(_row(claim, paper=_paper(claim, scope, measure), scope=scope, protocol=protocol, measure=measure,
                         evidence=str(group.evidence.iloc[0]), **numbers))
    return rows


def verdicts(tables: dict[str, pd.DataFrame | None], claims=CLAIMS) -> pd.DataFrame:
    """Every claim's rows (:func:`evaluate`), columns :data:`COLUMNS` then :data:`EXTRA`."""
    rows = [row for c in claims for row in evaluate(c, tables)]
    return pd.DataFrame(rows)[list(COLUMNS) + list(EXTRA)]


def headline(rows: pd.DataFrame) -> str:
    """One claim's verdicts in a line, decided rows named, the others counted:
    ``"**holds** (MNIST-500, converged, rsi); **inconclusive** in 3 rows"``."""
    parts = []
    for verdict in VERDICTS:
        chosen = rows[rows.verdict == verdict]
        if not len(chosen):
            continue
        if verdict in ("holds", "fails"):
            where = "; ".join(", ".join(str(v) for v in (r.scope, r.protocol, r.measure) if v)
                              for r in chosen.itertuples())
            parts.append(f"**{verdict}**" + (f" ({where})" if where else ""))
        else:
            parts.append(f"**{verdict}**" + (f" in {len(chosen)} row{'s' if len(chosen) > 1 else ''}"
                                             if len(rows) > 1 else ""))
    return "; ".join(parts)
