"""Figures of training and flatness: Lanczos convergence, spectral densities, training curves, Table 1 and 2 ratios."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ...core.spectrum import density_on_grid
from .style import COLOURS, log_hline, log_range


def convergence(reference: float, curves: dict[str, list[float]]) -> go.Figure:
    """Relative error of eigenvalue estimates against matvecs, one line per method (log scale)."""
    fig = go.Figure()
    every = []
    for name, values in curves.items():
        errors = [max(abs(v - reference) / abs(reference), 1e-16) for v in values]
        every += errors
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=errors, mode="lines+markers", name=name))
    fig.update_layout(title="Convergence to the top eigenvalue", xaxis_title="Hessian-vector products",
                      yaxis=dict(type="log", title="relative error", exponentformat="power", range=log_range(every)),
                      height=400)
    return fig


def spectral_density_figure(spectra: dict[str, tuple], marks: dict[str, float] | None = None,
                            points: int = 800, smoothing: float = 1 / 200, title: str | None = None) -> go.Figure:
    """Smoothed spectral densities (log-scaled y) on one grid, with optional vertical marks.

    ``spectra``: ``{name: (nodes, weights)}`` from :func:`minima.core.spectrum.spectral_density`;
    each is smoothed by a Gaussian of width ``smoothing`` times the joint span of the nodes
    (:func:`~minima.core.spectrum.density_on_grid`), on ``points`` eigenvalues 5 % beyond that span.
    """
    nodes = np.concatenate([np.asarray(n) for n, _ in spectra.values()])
    span = max(float(nodes.max() - nodes.min()), 1e-12)
    grid = np.linspace(nodes.min() - 0.05 * span, nodes.max() + 0.05 * span, points)
    fig = go.Figure()
    for name, (n, w) in spectra.items():
        density = np.maximum(density_on_grid(np.asarray(n), np.asarray(w), grid, smoothing * span), 1e-8)
        fig.add_trace(go.Scatter(x=grid, y=density, mode="lines", name=name))
    for label, x in (marks or {}).items():
        fig.add_vline(x=x, line_dash="dot", annotation_text=label, annotation_position="top")
    fig.update_layout(title=title or "Hessian spectral density (stochastic Lanczos quadrature)", xaxis_title="eigenvalue",
                      yaxis=dict(type="log", title="density", exponentformat="power"), height=420)
    return fig


def training_curves(curves: dict[str, list[dict]], growth_epochs=(), title: str = "training set",
                    log_loss: bool = False) -> go.Figure:
    """Training accuracy (solid, left axis) and loss (dashed, right axis) per epoch, one colour
    per model.

    ``curves``: ``{name: [{"epoch", "accuracy", "loss"}, ...]}`` as the training loops record
    them; ``growth_epochs``: x positions of dotted vertical lines (insertions of neurons).
    """
    fig = go.Figure()
    for index, (name, curve) in enumerate(curves.items()):
        colour = COLOURS[index % len(COLOURS)]
        epochs = [r["epoch"] for r in curve]
        fig.add_trace(go.Scatter(x=epochs, y=[r["accuracy"] for r in curve], mode="lines+markers", legendgroup=name,
                                 name=f"{name}: accuracy (solid)", line=dict(color=colour)))
        fig.add_trace(go.Scatter(x=epochs, y=[r["loss"] for r in curve], mode="lines+markers", legendgroup=name,
                                 name=f"{name}: loss (dashed, right axis)", line=dict(color=colour, dash="dash"),
                                 yaxis="y2"))
    for epoch in growth_epochs:
        fig.add_vline(x=epoch, line_dash="dot", line_color="grey")
    # each axis places its own round ticks (an overlaying axis would otherwise take the left one's positions)
    fig.update_layout(title=title, xaxis=dict(title="epoch", dtick=1 if len(epochs) <= 20 else None),
                      yaxis=dict(title="accuracy", tickformat=".0%", tickmode="auto"),
                      yaxis2=dict(title="loss", overlaying="y", side="right", type="log" if log_loss else "linear",
                                  tickmode="auto", showgrid=False, tickformat=".2g"),
                      height=420, legend=dict(orientation="h", y=-0.2))
    return fig


def _head_groups(results):
    """``60_table2.csv`` by protocol and point (older files: fine-tuned, finished heads)."""
    results = results if "protocol" in results else results.assign(protocol="fine-tuned")
    results = results if "point" in results else results.assign(point="regularised")
    return list(results.groupby(["protocol", "point"], sort=False))


def head_ratios(results, paper_ratio: float, measures=("plain", "rsi", "elementwise")) -> go.Figure:
    """Table 2 seed by seed: per protocol and point (one colour each) and flatness measure, the
    reference head's flatness over the grown head's, one point per seed (log axis; above 1: the
    grown head is flatter; crosses: at a finished point, either head not a certified minimum;
    open markers: either head at MCC <= 0), with the paper's ratio and 1 marked."""
    fig = go.Figure()
    groups = _head_groups(results)
    for index, ((protocol, point), part) in enumerate(groups):
        grown = part[part["head"] == "growing"].set_index("seed")
        reference = part[part["head"] == "reference"].set_index("seed")
        seeds = grown.index.intersection(reference.index)
        certified = ((grown.verdict[seeds] == "minimum") & (reference.verdict[seeds] == "minimum")) \
            | (point == "paper (end points)")
        learn = (grown.mcc[seeds] > 0) & (reference.mcc[seeds] > 0)
        for k, m in enumerate(measures):
            ratio = reference[m][seeds] / grown[m][seeds]
            offset = (index - (len(groups) - 1) / 2) * 0.8 / max(len(groups), 1)
            fig.add_trace(go.Scatter(
                x=[k + offset] * len(seeds), y=ratio, mode="markers", name=f"{protocol}, {point}",
                legendgroup=f"{protocol}, {point}", showlegend=k == 0,
                marker=dict(color=COLOURS[index % len(COLOURS)], size=9,
                            symbol=[("circle" if c else "x") + ("" if l else "-open") for c, l in zip(certified, learn)]),
                text=[f"seed {s}" for s in seeds]))
    log_hline(fig, paper_ratio, f"paper: {paper_ratio:.1f}x", line_dash="dot", line_color="grey")
    log_hline(fig, 1.0, "equal", line_color="black", line_width=1)
    fig.update_layout(title="Reference head's flatness over the grown head's, one point per seed",
                      xaxis=dict(tickvals=list(range(len(measures))), ticktext=list(measures), title="measure"),
                      yaxis=dict(type="log", title="reference / grown"), height=420, legend=dict(orientation="h", y=-0.2))
    return fig


def head_mcc(results, paper_mcc: float) -> go.Figure:
    """Table 2's heads on CoLA's dev set: per protocol and point (one column each) and head (one
    colour each), the Matthews correlation of every seed with its 95 % bootstrap interval over
    dev sentences; the majority-class baseline (MCC 0) and the paper's MCC marked."""
    fig = go.Figure()
    groups = _head_groups(results)
    for column, ((protocol, point), part) in enumerate(groups):
        for index, (kind, heads) in enumerate(part.groupby("head", sort=False)):
            offset = (index - 0.5) * 0.3
            jitter = [offset + 0.1 * (k / max(len(heads) - 1, 1) - 0.5) for k in range(len(heads))]
            fig.add_trace(go.Scatter(
                x=[column + j for j in jitter], y=heads.mcc, mode="markers", name=kind, legendgroup=kind,
                showlegend=column == 0, marker=dict(color=COLOURS[index], size=8),
                error_y=dict(type="data", symmetric=False, array=heads.mcc_high - heads.mcc,
                             arrayminus=heads.mcc - heads.mcc_low) if "mcc_low" in heads else None,
                text=[f"seed {s}" for s in heads.seed]))
    fig.add_hline(y=0.0, line_color="black", line_width=1, annotation_text="majority class (MCC 0)")
    fig.add_hline(y=paper_mcc, line_dash="dot", line_color="grey", annotation_text=f"paper: {paper_mcc:.2f}")
    fig.update_layout(title="Dev MCC per seed, with its 95 % bootstrap interval over dev sentences",
                      xaxis=dict(tickvals=list(range(len(groups))), ticktext=[f"{p}, {q}" for (p, q), _ in groups]),
                      yaxis_title="MCC (out-of-domain dev)", height=420)
    return fig


def selection_curve(points: list[dict], score: str, label: str) -> go.Figure:
    """A hyper-parameter choice: ``score`` (a key of each of ``points``, e.g. a held-out MCC)
    against ``weight_decay`` (log axis), the chosen point (``chosen``) marked."""
    x = [p["weight_decay"] for p in points]
    fig = go.Figure(go.Scatter(x=x, y=[p[score] for p in points], mode="lines+markers", name=label,
                               text=[p.get("verdict", "") for p in points]))
    chosen = [p for p in points if p.get("chosen")]
    if chosen:
        fig.add_trace(go.Scatter(x=[chosen[0]["weight_decay"]], y=[chosen[0][score]], mode="markers", name="chosen",
                                 marker=dict(size=14, symbol="star", color=COLOURS[1])))
    return fig.update_layout(xaxis=dict(type="log", title="λ"), yaxis_title=label, height=360,
                             title=f"{label} at each λ of the grid")


def final_rsi(results, task: str, measure: str = "elementwise") -> go.Figure:
    """Table 1's flatness ``measure`` at each run's final point for ``task``, by model and size,
    one trace per protocol and batch (crosses: not a certified minimum)."""
    sub = results[results.task == task]
    fig = go.Figure()
    for (protocol, batch), part in sub.groupby(["protocol", "batch"]):
        fig.add_trace(go.Scatter(x=part.model + " / " + part.hidden.astype(str), y=part[measure], mode="markers",
                                 name=f"{protocol}, batch {batch}",
                                 marker=dict(size=10, symbol=["circle" if v == "minimum" else "x" for v in part.verdict])))
    return fig.update_layout(title=f"{task}: {measure} at the final point (x: not a certified minimum)",
                             yaxis=dict(type="log", title=measure, range=log_range(sub[measure])),
                             xaxis_title="model / hidden units", height=420)


ARM_NAMES = {"linear": "linear (direct map only)", "static": "static (grown graph, no insertion)",
             "growing": "grown", "a": "fully connected a"}


def arms(results, task: str, hidden: int, protocol: str = "regularised", measure: str = "elementwise") -> go.Figure:
    """The four arms of a scope (the two controls, the grown network, twin ``a``): ``measure``
    against test accuracy, one point per run (seed and batch) at certified minima of
    ``protocol``; the hover gives the run's training CE over the grown run's of the same seed
    and batch (the loss level the flatness is read at)."""
    sub = results[(results.task == task) & (results.hidden == hidden) & (results.protocol == protocol)
                  & (results.verdict == "minimum")]
    grown = sub[sub.model == "growing"].set_index(["seed", "batch"]).train_loss
    fig = go.Figure()
    for k, (model, name) in enumerate(ARM_NAMES.items()):
        part = sub[sub.model == model]
        if not len(part):
            continue
        ratio = [row.train_loss / grown.get((row.seed, row.batch), float("nan")) for row in part.itertuples()]
        fig.add_trace(go.Scatter(
            x=100 * part.test_accuracy, y=part[measure], mode="markers", name=name,
            marker=dict(size=10, color=COLOURS[k]),
            customdata=list(zip(part.seed, part.batch, part.train_loss, ratio)),
            hovertemplate="seed %{customdata[0]}, batch %{customdata[1]}<br>training CE %{customdata[2]:.3g} "
                          "(%{customdata[3]:.3g}x the grown run's)<extra>" + name + "</extra>"))
    return fig.update_layout(title=f"{task}-{hidden}, {protocol}: {measure} against test accuracy",
                             xaxis_title="test accuracy (%)",
                             yaxis=dict(type="log", title=f"{measure} (lower: flatter)",
                                        range=log_range(sub[measure]) if len(sub) else None), height=440)
