"""The claims ledger as the book shows it: the ledger table with human labels and links to the
evidence (:func:`ledger_table`), the short version on the landing page
(:func:`landing_summary`) and the "paper / ours" box that opens a results page
(:func:`paper_ours_box`). The verdicts themselves come from :mod:`minima.claims`."""
from __future__ import annotations

import html
import math
import os
from pathlib import Path

import pandas as pd

from ..claims import CLAIMS, headline
from ..claims.stats import ALPHA, N_MIN
from ..core.io import atomic_write

LEDGER_DOC = "90_claims"  # the ledger page, beside the results pages in book/generated
SUMMARY = Path("book") / "generated" / "claims_summary.md"  # included by the landing page (book/intro.md)


def _unit(claim_id: str) -> str:
    effect = next(c.effect for c in CLAIMS if c.id == claim_id)
    return "rho" if "Spearman" in effect else "points" if "points" in effect else "x" if "ratio" in effect else ""


def format_effect(claim_id: str, effect: float, low: float, high: float) -> str:
    """``"13x [4.1, 20]"``, ``"+1.2 points [...]"``, ``"rho -0.43 [...]"``; ``"-"`` when absent."""
    if effect is None or not math.isfinite(effect):
        return "-"
    unit = _unit(claim_id)
    one = {"x": lambda v: f"{v:.3g}x", "points": lambda v: f"{v:+.2g} points", "rho": lambda v: f"{v:.2f}"}.get(
        unit, lambda v: f"{v:.3g}")
    text = ("rho " if unit == "rho" else "") + one(effect)
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{one(low)}, {one(high)}]"
    return text


def _link(page: str, label: str, prefix: str = "") -> str:
    doc, _, anchor = page.partition("#")
    target = prefix + doc.rsplit("/", 1)[-1].replace(".md", ".html") + (f"#{anchor}" if anchor else "")
    return f'<a href="{html.escape(target)}">{html.escape(label)}</a>'


def ledger_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per ledger row, human labels: the claim (statement and where the paper states
    it), the scope, protocol and measure, the paper's number, ours (effect with its 95 %
    bootstrap interval over seeds), the comparisons (agree of certified), the p-value, the
    verdict and why, and a link to the evidence. Cells hold HTML (links); render with
    ``to_html(escape=False)`` (:func:`ledger_html`)."""
    rows = []
    for r in verdicts.itertuples(index=False):
        counted = "-" if r.verdict == "not tested here" else (
            f"{int(r.k)} of {int(r.n)}" if isinstance(r.k, (int, float)) and math.isfinite(r.k) else f"{int(r.n)} runs")
        rows.append({
            "claim": f"{html.escape(r.statement)}<br><small>{html.escape(r.source)}, {html.escape(r.where)}</small>",
            "scope": html.escape(", ".join(str(v) for v in (r.scope, r.protocol, r.measure) if isinstance(v, str) and v))
                     or "-",
            "paper": html.escape(r.paper or "-"),
            "ours": format_effect(r.claim, r.effect, r.ci_low, r.ci_high),
            "agree / certified": counted,
            "p": f"{r.p_value:.2g}" if math.isfinite(r.p_value) else "-",
            "verdict": f"<b>{r.verdict}</b><br><small>{html.escape(r.reason)}</small>",
            "evidence": _link(r.page, "page") + (f"<br><small>{html.escape(r.evidence)}</small>" if r.evidence else ""),
        })
    return pd.DataFrame(rows)


def ledger_html(verdicts: pd.DataFrame) -> str:
    """The ledger table as an HTML table that wraps inside the page (class ``minima-ledger``)."""
    return ledger_table(verdicts).to_html(index=False, escape=False, classes="minima-ledger", border=0)


def rule_text() -> str:
    """The decision rule, as the ledger page states it."""
    return (f"A claim is decided on comparisons between certified points only (both runs certified `minimum`; for "
            f"a path, both minima and the path converged) and needs at least {N_MIN} of them: with 4, even 4 of 4 "
            f"gives a one-sided sign test p of 1/16. With enough comparisons the verdict is **holds** when an exact "
            f"one-sided sign test in the claim's direction rejects at {ALPHA:g}, **fails** when the test in the "
            f"opposite direction does, and **inconclusive** otherwise; a trend claim uses Spearman's rank "
            f"correlation the same way. The level is per row, with no correction for the number of rows. The effect "
            f"is the median over the certified comparisons, with a 95 % percentile bootstrap interval that resamples "
            f"seeds (comparisons that share a seed share its runs), or paths for the no-barriers claims, which are "
            f"not independent either when they share a minimum.")


def landing_summary(verdicts: pd.DataFrame) -> str:
    """The landing page's short ledger (MyST markdown): one bullet per claim with its verdicts."""
    lines = []
    for claim in CLAIMS:
        rows = verdicts[verdicts.claim == claim.id]
        if len(rows):
            lines.append(f"- *{claim.statement}* ({claim.source}, {claim.where}): {headline(rows)}")
    lines.append("")
    lines.append(f"Every verdict, the paper's number beside ours and the rule: {{doc}}`generated/{LEDGER_DOC}`.")
    return "\n".join(lines) + "\n"


def paper_ours_box(verdicts: pd.DataFrame, claim_ids, title: str = "Paper / ours") -> str:
    """A MyST admonition for the top of a results page: per claim, the paper's statement and
    number, then ours and the verdict, per scope, linking to the ledger."""
    lines = [f"```{{admonition}} {title}", ":class: tip"]
    for claim_id in claim_ids:
        rows = verdicts[verdicts.claim == claim_id]
        if not len(rows):
            continue
        claim = next(c for c in CLAIMS if c.id == claim_id)
        lines.append(f"- **{claim.statement}** ({claim.where})")
        for r in rows.itertuples(index=False):
            where = ", ".join(str(v) for v in (r.scope, r.protocol, r.measure) if isinstance(v, str) and v)
            paper = f"paper: {r.paper}; " if r.paper else ""
            ours = format_effect(r.claim, r.effect, r.ci_low, r.ci_high)
            lines.append(f"  - {where + ': ' if where else ''}{paper}ours: {ours}, **{r.verdict}** ({r.reason})")
    lines.append(f"\nThe rule and every other claim: {{doc}}`{LEDGER_DOC}`.")
    lines.append("```")
    return "\n".join(lines)


def count_text(verdicts: pd.DataFrame) -> str:
    """``"12 claims tested in 40 rows: 9 hold, 2 fail, 25 inconclusive, 4 not tested here"``."""
    counts = verdicts.verdict.value_counts()
    parts = [f"{counts.get(v, 0)} {label}" for v, label in
             (("holds", "hold"), ("fails", "fail"), ("inconclusive", "inconclusive"), ("not tested here", "not tested here"))]
    return f"{verdicts.claim.nunique()} claims in {len(verdicts)} rows: " + ", ".join(parts)


def tests_table() -> pd.DataFrame:
    """Every claim's test and effect, as the ledger page lists them."""
    return pd.DataFrame([{"claim": c.id, "paper": f"{c.source}, {c.where}", "statement": c.statement,
                          "a comparison agrees when": c.test, "effect": c.effect} for c in CLAIMS]).set_index("claim")


def write_landing_summary(verdicts: pd.DataFrame, path: str | os.PathLike = SUMMARY) -> Path:
    """Write :func:`landing_summary` to ``path`` (the landing page includes it), atomically."""
    return atomic_write(Path(path), landing_summary(verdicts))


def placeholder_summary(path: str | os.PathLike = SUMMARY) -> None:
    """Write the landing page's summary as "not computed yet" when no ledger has written it."""
    if not Path(path).exists():
        atomic_write(Path(path), "The claims ledger has not been computed in this build: run "
                                 "`python -m minima run` (the ledger page runs after the results pages).\n")
