"""The landing page's first screen: what was reproduced and how it came out.

:func:`write_summary` writes ``book/generated/claims_summary.md`` (the landing page includes
it) from the claims ledger's verdicts, the results files and the provenance the results pages
recorded: a table of every claim, the paper's setting beside ours and the verdict in plain
words (:func:`reproduction_table`), a "what differs from the papers" box
(:func:`differences`) and the finding a reader most needs, in one sentence
(:func:`key_finding`). Nothing in it is typed by hand: a re-run under another profile
rewrites it.
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import pandas as pd

from ..claims import CLAIMS, SHORT_NAMES
from ..core.io import atomic_write
from ..experiments.papers import GROWING_TABLE1, GROWING_TABLE2
from .ledger import LEDGER_DOC

#: experiment -> the paper's setting
PAPER_SETTINGS = {
    "Table 1": ("MNIST (60,000 training images), AG News (120,000 articles); grown and fully connected "
                "networks of 10 / 500 and 10 / 100 hidden units; SGD"),
    "Table 2": "CoLA; RoBERTa-large fine-tuned with its head",
    "No barriers": "CIFAR-10 and CIFAR-100; ResNets and DenseNets, 10 minima each",
}



def experiment(claim_id: str) -> str:
    if claim_id == "growing.head-flatter":
        return "Table 2"
    return "Table 1" if claim_id.startswith("growing.") else "No barriers"


def plain_verdict(row) -> str:
    """A headline row's verdict in plain words."""
    if row.verdict == "holds":
        return "holds"
    if row.verdict == "fails":
        return "fails: the opposite holds"
    if row.verdict == "confounded by loss":
        return "confounded: the flatter arm also has a much lower loss"
    if row.verdict == "inconclusive":
        if not row.clusters:
            return "undecided: no comparable pair"
        needed = row.clusters_needed
        more = f", ~{int(needed)} needed" if isinstance(needed, float) and math.isfinite(needed) else ""
        units = {"minimum": "minima"}.get(row.unit, f"{row.unit}s")
        return f"undecided ({int(row.clusters)} {units}{more})"
    return "not tested here"


def _provenance(folder: Path, notebook: str) -> dict:
    path = folder / f"{notebook}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _table1_data(table1: pd.DataFrame, provenance_folder: Path) -> list[str]:
    """``["4,000 training examples of MNIST", ...]``: per task, the examples its runs saw (the
    results file's ``train examples``) and the dataset it read (the page's provenance, its
    name before any parenthesis: the data page says the rest)."""
    datasets = [entry["description"] for entry in _provenance(provenance_folder, "40_table1").get("datasets", [])
                if entry.get("split") == "train"]
    lines = []
    for task, part in table1.groupby("task", sort=False):
        named = next((d.split(" (")[0] for d in datasets if d.lower().startswith(task.lower().split()[0][:4])), task)
        count = int(part["train examples"].iloc[0]) if "train examples" in part else None
        lines.append(f"{count:,} training examples of {named}" if count else named)
    return lines


def ours(results: dict, provenance_folder: Path) -> dict[str, str]:
    """Per experiment, what this build ran: data, networks, and our test accuracy beside the paper's."""
    text = {}
    table1 = results.get("40_table1")
    if table1 is not None and len(table1):
        parts = []
        for (task, hidden), part in table1[table1.model == "growing"].groupby(["task", "hidden"]):
            if hidden != table1[table1.task == task].hidden.max():
                continue
            # the headline protocol's end points where the cell has them, else the paper's
            protocol = "regularised" if (part.protocol == "regularised").any() else "paper"
            part = part[part.protocol == protocol]
            text_part = (f"{task}-{hidden} grown: {100 * part.test_accuracy.mean():.1f} % test accuracy"
                         + ("" if protocol == "regularised" else " (paper protocol's end points)"))
            if (task, hidden, "growing") in GROWING_TABLE1.index.droplevel("batch"):
                paper = GROWING_TABLE1.test_accuracy.xs((task, hidden, "growing"), level=("task", "hidden", "model"))
                text_part += f" (paper {paper.min():.1f}-{paper.max():.1f} %)"
            parts.append(text_part)
        text["Table 1"] = "; ".join(_table1_data(table1, provenance_folder) + parts)
    heads = results.get("60_table2")
    if heads is not None and len(heads):
        protocols = heads.protocol.unique() if "protocol" in heads else ["fine-tuned"]
        finished = heads[heads.point == "regularised"] if "point" in heads else heads
        finished = finished[finished.protocol == "frozen"] if "protocol" in finished and \
            (finished.protocol == "frozen").any() else finished
        mcc = {kind: 100 * finished[finished["head"] == kind].mcc.mean() for kind in ("growing", "reference")}
        encoder = _provenance(provenance_folder, "60_table2").get("parameters", {}).get("model", "minilm")
        text["Table 2"] = (f"CoLA; {'MiniLM-L6 (6 layers, hidden 384)' if encoder == 'minilm' else encoder}, "
                           f"{' and '.join(protocols)}; MCC x 100 at the regularised minima"
                           f"{' (frozen)' if len(protocols) > 1 else ''} grown {mcc['growing']:.1f}, reference "
                           f"{mcc['reference']:.1f} (paper {GROWING_TABLE2.test_accuracy['growing']}, "
                           f"{GROWING_TABLE2.test_accuracy['reference']})")
    minima = results.get("50_no_barriers_minima")
    if minima is not None and len(minima):
        parts = []
        for dataset, part in minima.groupby("dataset", sort=False):
            widths = sorted({int(a.split("-")[1]) for a in part.architecture if a.startswith("mlp-")})
            error = part[part.architecture == part.architecture.iloc[-1]].test_error.mean()
            parts.append(f"{dataset}: one hidden layer of {', '.join(map(str, widths))} units "
                         f"(widest: {error:.1f} % test error)")
        text["No barriers"] = "; ".join(parts) + f"; {minima.groupby(['dataset', 'architecture']).size().max()} minima each"
    return text


def reproduction_table(verdicts: pd.DataFrame, results: dict, provenance_folder: Path) -> str:
    """The first screen's table (HTML): one row per experiment, the paper's setting beside ours,
    then each of its claims with the verdict in plain words."""
    ran = ours(results, provenance_folder)
    heads = verdicts[verdicts.headline.astype(bool)].set_index("claim")
    rows = []
    for name, setting in PAPER_SETTINGS.items():
        lines = []
        for claim in (c for c in CLAIMS if experiment(c.id) == name):
            verdict = plain_verdict(heads.loc[claim.id]) if claim.id in heads.index else "not tested here"
            kind = verdict.split(" ")[0].rstrip(":")
            lines.append(f"{html.escape(SHORT_NAMES[claim.id], quote=False)}: "
                         f'<span class="verdict-{kind}">{html.escape(verdict, quote=False)}</span>')
        rows.append(f"<tr><td><b>{name}</b></td><td>{html.escape(setting, quote=False)}</td>"
                    f"<td>{html.escape(ran.get(name, 'not run in this build'), quote=False)}</td>"
                    f"<td>{'<br>'.join(lines)}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("", "the paper", "ours", "the claims, decided"))
    return f'<table class="minima-landing"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def differences(results: dict, provenance_folder: Path) -> list[str]:
    """What differs from the papers, one line each, from the results files and the provenance."""
    lines = []
    table1 = results.get("40_table1")
    if table1 is not None and len(table1):
        lines.append("Table 1 trains on " + " and ".join(_table1_data(table1, provenance_folder))
                     + "; flatness is compared at certified minima of cross-entropy + λ/2 |θ|² (one λ per task, "
                     "chosen on held-out data): the plain cross-entropy the paper uses has no finite minimum on "
                     "separable data")
    heads = results.get("60_table2")
    if heads is not None and len(heads):
        encoder = _provenance(provenance_folder, "60_table2").get("parameters", {}).get("model", "minilm")
        name = "MiniLM-L6 (hidden 384)" if encoder == "minilm" else encoder
        lines.append(f"Table 2 uses {name} instead of RoBERTa-large (hidden 1,024); each head is also finished to "
                     "a certified minimum of its own loss plus λ/2 |θ|² (λ chosen on held-out training sentences) "
                     "with the encoder fixed, beside the paper's end points")
    minima = results.get("50_no_barriers_minima")
    if minima is not None and len(minima):
        sizes = {entry["name"]: entry["size"] for entry in _provenance(provenance_folder, "50_no_barriers").get(
            "datasets", []) if entry.get("split") == "train"}
        data = ", ".join(f"{d} ({sizes[d]:,} training images)" if d in sizes else d for d in minima.dataset.unique())
        lines.append(f"No barriers: one-hidden-layer networks on {data} instead of ResNets and DenseNets on CIFAR")
    return lines


def key_finding(verdicts: pd.DataFrame, results: dict) -> str:
    """The finding a reader most needs, in one sentence, from the headlines and the capacity sweep."""
    heads = verdicts[verdicts.headline.astype(bool)].set_index("claim")
    parts = []
    if "growing.flatter" in heads.index and heads.loc["growing.flatter"].verdict != "not tested here":
        row = heads.loc["growing.flatter"]
        measured = f"median ratio twin / grown {row.effect:.3g}x over {int(row.clusters)} seeds, {row.measure}"
        parts.append({"holds": f"grown networks reach flatter minima than their fully connected twins ({measured})",
                      "fails": f"grown networks reach sharper minima than their fully connected twins ({measured})",
                      "confounded by loss": f"the grown networks' flatter minima go with a much lower loss, which alone "
                                            f"flattens the Hessian ({measured})"}
                     .get(row.verdict, f"whether grown networks reach flatter minima is undecided ({measured})"))
    paths = results.get("50_no_barriers")
    if paths is not None and len(paths) and "train_loss_init" in paths:
        higher = paths[["train_loss_start", "train_loss_end"]].max(axis=1)
        share = ((paths.train_loss_saddle - higher) / (paths.train_loss_init - higher)).groupby(
            [paths.dataset, paths.hidden]).median()

        def widths(hidden) -> str:
            return ", ".join(str(int(h)) for h in hidden)

        within = []
        for dataset, part in share.groupby(level="dataset", sort=False):
            hidden = part.index.get_level_values("hidden")
            low = hidden[part.values <= 0.075]
            named = "no width" if len(low) == 0 else f"width {widths(low)}" if len(low) == 1 else f"widths {widths(low)}"
            within.append(f"on {dataset} at {named} (of {widths(hidden)})")
        parts.append("the median barrier lies within the paper's range (at most 7.5 % of the fall from "
                     "initialisation) " + "; ".join(within))
    return ("In short: " + "; ".join(parts) + ".") if parts else ""


def summary_markdown(verdicts: pd.DataFrame, results: dict, provenance_folder: Path) -> str:
    """The landing page's first screen (MyST markdown with raw HTML)."""
    box = "\n".join(f"- {line}" for line in differences(results, provenance_folder))
    return "\n".join([
        reproduction_table(verdicts, results, provenance_folder), "",
        f'<p class="minima-finding">{html.escape(key_finding(verdicts, results), quote=False)}</p>', "",
        "```{admonition} What differs from the papers", ":class: note minima-differences", box or "- nothing was run in this build", "```",
        "", f"Every verdict, its test and the paper's number beside ours: {{doc}}`generated/{LEDGER_DOC}`.", ""])


def write_summary(verdicts: pd.DataFrame, results: dict, provenance_folder: str | os.PathLike,
                  path: str | os.PathLike) -> Path:
    """Write :func:`summary_markdown` to ``path`` atomically."""
    return atomic_write(Path(path), summary_markdown(verdicts, results, Path(provenance_folder)))
