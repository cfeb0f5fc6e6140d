"""The claims ledger as the book shows it: the ledger table with human labels and links to the
evidence (:func:`ledger_table`) and the "paper / ours" box that opens a results page
(:func:`paper_ours_box`); the landing page's version is :mod:`minima.book.landing`. The
verdicts themselves come from :mod:`minima.claims`."""
from __future__ import annotations

import html
import math
import re
import os
from pathlib import Path

import pandas as pd

from ..claims import CLAIMS, SHORT_NAMES, headline
from ..claims.ledger import ROBUSTNESS
from ..claims.stats import ALPHA, N_MIN, POWER
from ..core.io import atomic_write

LEDGER_DOC = "90_claims"  # the ledger page, beside the results pages in book/generated
SUMMARY = Path("book") / "generated" / "claims_summary.md"  # included by the landing page (book/intro.md)


def _unit(claim_id: str) -> str:
    effect = next(c.effect for c in CLAIMS if c.id == claim_id)
    return "rho" if "Spearman" in effect else "points" if "points" in effect else "x" if "ratio" in effect else \
        "share" if "share" in effect else "fraction" if "/" in effect else ""


def format_effect(claim_id: str, effect: float, low: float, high: float) -> str:
    """``"13x [4.1x, 20x]"``, ``"+1.2 points [...]"``, ``"rho -0.43 [...]"``, ``"90 % [74 %, 100 %]"``;
    ``"-"`` when absent."""
    if effect is None or not math.isfinite(effect):
        return "-"
    unit = _unit(claim_id)
    one = {"x": lambda v: f"{v:.3g}x", "points": lambda v: f"{v:+.2g} points", "rho": lambda v: f"{v:.2f}",
           "share": lambda v: f"{v:.0%}", "fraction": lambda v: f"{v:.2%}"}.get(unit, lambda v: f"{v:.3g}")
    text = ("rho " if unit == "rho" else "") + one(effect)
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{one(low)}, {one(high)}]"
    return text


def _link(page: str, label: str, prefix: str = "") -> str:
    doc, _, anchor = page.partition("#")
    target = prefix + doc.rsplit("/", 1)[-1].replace(".md", ".html") + (f"#{anchor}" if anchor else "")
    return f'<a href="{html.escape(target)}">{html.escape(label)}</a>'


def _p(value) -> str:
    return f'<span class="n">{value:.2g}</span>' if isinstance(value, float) and math.isfinite(value) else "-"


def _readable(scope: str) -> str:
    """A scope as a reader names it: ``mlp-8`` is "width 8" (one hidden layer of 8 units)."""
    return re.sub(r"\bmlp-(\d+)", r"width \1", scope)


def _unbroken(effect: str) -> str:
    """An effect as HTML whose numbers never break: the estimate and its interval may sit on
    two lines, each whole."""
    estimate, bracket, interval = effect.partition(" [")
    parts = [estimate] + ([bracket.strip() + interval] if bracket else [])
    return " ".join(f'<span class="n">{html.escape(part)}</span>' for part in parts)


def _needed(r) -> str:
    return f"{int(r.clusters_needed)}" if r.verdict == "inconclusive" and math.isfinite(r.clusters_needed) else "-"


def ledger_table(verdicts: pd.DataFrame, headline_rows: bool | None = None) -> pd.DataFrame:
    """One row per ledger row, human labels: the claim (statement and where the paper states
    it), the scope, protocol and measure, the paper's number, ours (effect with its 95 %
    interval over clusters), the clusters (and their unit), the p-value (Holm-adjusted on the
    headline table, which leaves out the paper's per-scope numbers), the verdict and why, the
    clusters a decision would need, and a link to the evidence. ``headline_rows``: only headlines (``True``), only details (``False``) or all.
    Cells hold HTML (links); render with ``to_html(escape=False)`` (:func:`ledger_html`)."""
    rows = []
    chosen = verdicts if headline_rows is None else verdicts[verdicts.headline.astype(bool) == headline_rows]
    for r in chosen.itertuples(index=False):
        tested = r.verdict != "not tested here"
        row = {
            "claim": f"{html.escape(r.statement)}<br><small>{html.escape(r.source)}, {html.escape(r.where)}</small>",
            "scope": html.escape(_readable(", ".join(str(v) for v in (r.scope, r.protocol, r.measure)
                                                     if isinstance(v, str) and v))) or "-",
            "paper": html.escape(r.paper or "-"),
            "ours": _unbroken(format_effect(r.claim, r.effect, r.ci_low, r.ci_high)),
            "clusters": f"{int(r.clusters)} ({html.escape(r.unit)}s)" if tested else "-",
            "p": _p(r.p_adjusted if r.headline else r.p_value),
            "verdict": f"<b>{r.verdict}</b><br><small>{html.escape(r.reason)}</small>",
            "to decide": _needed(r),
            "evidence": _link(r.page, "the page"),
        }
        if headline_rows:  # the paper's numbers are per scope: on the detail rows
            del row["paper"]
            row = {("adjusted p" if key == "p" else key): value for key, value in row.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def ledger_html(verdicts: pd.DataFrame, headline_rows: bool | None = None) -> str:
    """The ledger table as an HTML table that wraps inside the page (class ``minima-ledger``)."""
    return ledger_table(verdicts, headline_rows).to_html(index=False, escape=False, classes="minima-ledger", border=0)


def rule_text() -> str:
    """The decision rule, as the ledger page states it."""
    return (f"Each claim has one **headline** test, stated in the registry (`minima.claims.registry`) before any "
            f"data: its protocol, measure, the scopes it pools, the test, direction and threshold. Tests count "
            f"independent units, *clusters*: what shares a run (a seed of Table 1, whose grown run is compared with "
            f"three twins; a minimum of the no-barriers chapter, which ends several paths). Each cluster contributes "
            f"one summary, the mean of its comparisons on the test's scale (log-ratios for ratios), and the test "
            f"runs on the summaries: an exact sign test; two one-sided t-tests within a stated margin for "
            f"equivalence claims (\"similar\" accuracy: ±2 points, above the test sets' standard error of 1.0-1.2 "
            f"points); an exact Clopper-Pearson bound for claims about every unit. Only certified points count "
            f"(both runs certified `minimum`; for a path both minima certified, neither collapsed to a constant "
            f"predictor, and the path converged), except under the paper's protocol, whose end points are tested as "
            f"the paper computed them and labelled *end points*, and at matched loss (every run of a cell stopped "
            f"at one training cross-entropy), where the points are stated equal-loss points, not minima. Where the "
            f"registry states one, a *robustness row* applies the headline's test to another protocol (Table 1's "
            f"flatness claims: matched loss), unadjusted and outside the family. A headline needs at least {N_MIN} clusters; its "
            f"p-value is Holm-adjusted over the headlines of all {len(CLAIMS)} claims (family-wise level "
            f"{ALPHA:g}; a claim this build cannot test counts as p = 1). **holds**: the adjusted p in the claim's "
            f"direction is below {ALPHA:g}; **fails**: the adjusted p of the opposite direction is; "
            f"**inconclusive** otherwise, with the clusters that would decide it at the observed effect with "
            f"{POWER:.0%} power (at the family's first Holm level). Intervals are 95 % percentile bootstraps over "
            f"clusters, shown from {N_MIN} clusters on. Detail rows apply the same test per scope, protocol and "
            f"measure without adjustment: they describe, the headline decides.")


def paper_ours_box(verdicts: pd.DataFrame, claim_ids, title: str = "Paper / ours") -> str:
    """A MyST admonition for the top of a results page: per claim, the paper's statement and the
    headline verdict, then one short line per scope (ours and the unadjusted verdict), with what
    the scopes share (the paper's number, protocol, measure) said once, linking to the ledger."""
    lines = [f"```{{admonition}} {title}", ":class: tip"]
    for claim_id in claim_ids:
        rows = verdicts[verdicts.claim == claim_id]
        if not len(rows):
            continue
        claim = next(c for c in CLAIMS if c.id == claim_id)
        lines.append(f"- **{claim.statement}** ({claim.where}): {headline(rows)}")
        robust = rows.reason.astype(str).str.startswith(ROBUSTNESS)
        for r in rows[robust].itertuples(index=False):
            ours = format_effect(r.claim, r.effect, r.ci_low, r.ci_high)
            lines.append(f"  - robustness row ({r.protocol}, stated before the data, not adjusted): ours {ours}, "
                         f"{r.verdict} ({r.reason.split(': ', 1)[-1].replace(' (not adjusted)', '')})")
        details = rows[~rows.headline.astype(bool) & ~robust]
        if not len(details):
            continue
        parts = [[str(v) for v in (r.scope, r.protocol, r.measure) if isinstance(v, str) and v]
                 for r in details.itertuples(index=False)]
        shared = [part for part in parts[0] if all(part in other for other in parts)]
        papers = {r.paper if isinstance(r.paper, str) else "" for r in details.itertuples(index=False)}
        one_paper = len(papers) == 1 and "" not in papers  # the paper's number is the same for every scope
        common = ", ".join(shared + ([f"paper: {papers.pop()}"] if one_paper else []))
        lines.append(f"  - per scope, not adjusted{' (' + common + ')' if common else ''}:")
        for r, own in zip(details.itertuples(index=False), parts):
            where = _readable(", ".join(part for part in own if part not in shared))
            paper = f"paper: {r.paper}; " if not one_paper and isinstance(r.paper, str) and r.paper else ""
            ours = format_effect(r.claim, r.effect, r.ci_low, r.ci_high)
            reason = r.reason.replace(" (not adjusted)", "")
            lines.append(f"    - {where + ': ' if where else ''}{paper}ours {ours}, {r.verdict} ({reason})")
    lines.append(f"\nThe rule and every other claim: {{doc}}`{LEDGER_DOC}`.")
    lines.append("```")
    return "\n".join(lines)


def count_text(verdicts: pd.DataFrame) -> str:
    """``"14 claims: 3 hold, 2 fail, 7 inconclusive, 2 not tested here"`` (headlines only)."""
    counts = verdicts[verdicts.headline.astype(bool)].verdict.value_counts()
    parts = [f"{counts.get(v, 0)} {label}" for v, label in
             (("holds", "hold"), ("fails", "fail"), ("confounded by loss", "confounded by loss"),
              ("inconclusive", "inconclusive"), ("not tested here", "not tested here"))
             if v != "confounded by loss" or counts.get(v, 0)]
    return f"{verdicts.claim.nunique()} claims: " + ", ".join(parts)


def tests_table() -> pd.DataFrame:
    """Every claim's test and effect, as the ledger page lists them."""
    return pd.DataFrame([{"claim": SHORT_NAMES[c.id], "paper": f"{c.source}, {c.where}", "statement": c.statement,
                          "headline test": c.headline.describe(), "unit": c.unit,
                          "a comparison agrees when": c.test, "effect": c.effect} for c in CLAIMS]).set_index("claim")


def placeholder_summary(path: str | os.PathLike = SUMMARY) -> None:
    """Write the landing page's summary as "not computed yet" when no ledger has written it."""
    if not Path(path).exists():
        atomic_write(Path(path), "The claims ledger has not been computed in this build: run "
                                 "`python -m minima run` (the ledger page runs after the results pages).\n")
