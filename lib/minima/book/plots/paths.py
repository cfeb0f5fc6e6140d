"""Figures of the no-barriers pages: surfaces with paths, energy profiles, saddle histories, the minima graph, first passage, the transition figure."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .style import COLOURS, log_hline


def surface_with_paths(xs, ys, energies, paths: list, names: list[str], levels: int = 40) -> go.Figure:
    """Contour map of a 2-D energy with polyline paths (``(P, 2)`` arrays) drawn over it."""
    fig = go.Figure(go.Contour(x=xs, y=ys, z=energies, ncontours=levels, colorscale="Viridis",
                               contours=dict(coloring="heatmap"), colorbar=dict(title="energy")))
    for path, name in zip(paths, names):
        fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name=name,
                                 marker=dict(size=6), line=dict(width=2)))
    fig.update_layout(height=520, xaxis_title="x", yaxis_title="y", legend=dict(orientation="h", y=-0.15))
    return fig


def energy_profile(paths: dict, title: str = "Energy along the path", metric: str | None = None) -> go.Figure:
    """Dense energy (or ``metric``) against position along each path, pivots marked.

    ``paths``: ``{name: Path or summary dict}``.
    """
    fig = go.Figure()
    for name, path in paths.items():
        record = path if isinstance(path, dict) else path.summary()
        values = record["energies"] if metric is None else record["metrics"][metric]
        fig.add_trace(go.Scatter(x=record["position"], y=values, mode="lines", name=name))
        pivots = [k for k, p in enumerate(record["is_pivot"]) if p]
        fig.add_trace(go.Scatter(x=[record["position"][k] for k in pivots], y=[values[k] for k in pivots],
                                 mode="markers", name=f"{name}: pivots", marker=dict(size=7), showlegend=False))
    fig.update_layout(title=title, xaxis_title="position along the path (arc length, 0 to 1)",
                      yaxis_title=metric or "energy", height=420)
    return fig


def profiles_by_width(paths: dict, title: str, metric: str | None = None) -> go.Figure:
    """Loss (or ``metric``) along one path per network, log y axis: ``paths`` maps a label
    (``"width 8"``) to a path summary with its ``"straight"`` line; the AutoNEB path is drawn
    solid and the straight line dotted, in the network's colour."""
    fig = go.Figure()
    for index, (name, record) in enumerate(paths.items()):
        colour = COLOURS[index % len(COLOURS)]
        for kind, part, dash in (("AutoNEB", record, None), ("straight line", record["straight"], "dot")):
            values = part["energies"] if metric is None else part["metrics"][metric]
            fig.add_trace(go.Scatter(x=part["position"], y=values, mode="lines", name=f"{name}, {kind}",
                                     line=dict(color=colour, dash=dash), legendgroup=name))
    fig.update_layout(title=title, xaxis_title="position along the path (0: one minimum, 1: the other)",
                      yaxis=dict(type="log", title=metric or "training loss"), height=460)
    return fig


def saddle_history(histories: dict) -> go.Figure:
    """Saddle energy after each AutoNEB cycle; cycles that inserted pivots are marked."""
    fig = go.Figure()
    for name, history in histories.items():
        cycles = [h["cycle"] + 1 for h in history]
        saddles = [h["saddle_energy"] for h in history]
        fig.add_trace(go.Scatter(x=cycles, y=saddles, mode="lines+markers", name=name))
        inserted = [(c, s, len(h["inserted"])) for c, s, h in zip(cycles, saddles, history) if h["inserted"]]
        if inserted:
            fig.add_trace(go.Scatter(x=[c for c, _, _ in inserted], y=[s for _, s, _ in inserted], mode="markers",
                                     marker=dict(symbol="star", size=13, color="#d62728"),
                                     name=f"{name}: pivots inserted", text=[f"+{k} pivots" for *_, k in inserted]))
    fig.update_layout(title="Saddle energy through the AutoNEB cycles", xaxis_title="cycles completed",
                      yaxis_title="saddle energy", height=400)
    return fig


def minima_graph(graph, title: str = "Minima and their minimum spanning tree") -> go.Figure:
    """The graph of minima: every computed path as an edge labelled with its saddle energy,
    the minimum spanning tree drawn bold; node colour = energy at the minimum."""
    import networkx as nx

    g, tree = graph.graph(), graph.mst()
    pos = nx.circular_layout(sorted(g.nodes))
    fig = go.Figure()
    for u, v, w in g.edges(data="weight"):
        in_tree = tree.has_edge(u, v)
        fig.add_trace(go.Scatter(x=[pos[u][0], pos[v][0]], y=[pos[u][1], pos[v][1]], mode="lines",
                                 line=dict(width=4 if in_tree else 1, color="#1f77b4" if in_tree else "#bbbbbb",
                                           dash=None if in_tree else "dot"), hoverinfo="skip", showlegend=False))
        fig.add_annotation(x=(pos[u][0] + pos[v][0]) / 2, y=(pos[u][1] + pos[v][1]) / 2, text=f"{w:.3g}",
                           showarrow=False, bgcolor="white", font=dict(size=11, color="#1f77b4" if in_tree else "grey"))
    nodes = sorted(g.nodes)
    fig.add_trace(go.Scatter(x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text",
                             text=[f"seed {n}" for n in nodes], textposition="top center", showlegend=False,
                             marker=dict(size=22, color=[graph.minima[n] for n in nodes], colorscale="Viridis",
                                         showscale=True, colorbar=dict(title="loss at minimum")),
                             hovertext=[f"minimum {n}: loss {graph.minima[n]:.4g}" for n in nodes], hoverinfo="text"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title=title + " (bold: MST; labels: saddle training loss)", height=480)
    return fig


def first_passage(curve: list[float], saddle: float, title: str) -> go.Figure:
    """Training loss of one run per epoch (log axis) against a saddle energy, marking the first
    epoch below it."""
    epochs = list(range(1, len(curve) + 1))
    fig = go.Figure(go.Scatter(x=epochs, y=curve, mode="lines+markers", name="training loss of the run"))
    log_hline(fig, saddle, "saddle energy", line_dash="dash")
    below = next((e for e, v in zip(epochs, curve) if v < saddle), None)
    if below is not None:
        fig.add_vline(x=below, line_dash="dot", annotation_text=f"first below: epoch {below}")
    fig.update_layout(title=title, xaxis_title="epoch", yaxis=dict(type="log", title="training loss"), height=400)
    return fig


def transition(paths, table, paper_fractions, names: dict | None = None,
               title: str = "Where the barriers vanish (certified saddles)") -> go.Figure:
    """The no-barriers transition from certified saddles only, per dataset (one colour each)
    against hidden width (log axis). Left: each certified path's saddle excess as a fraction of
    the fall from initialisation (``excess_fraction``; a path whose highest point is an end has
    no barrier and is drawn at the axis floor as a down triangle), the median per width as a line
    with the quartiles as error bars, and the paper's range (``paper_fractions``, its CIFAR rows)
    as a grey band; the count of budget-limited paths (upper bounds, not drawn) is written at each
    width. Right: the test error's rise at the saddle (points).

    ``paths``: the path table (:func:`minima.experiments.barriers.path_rows` as a DataFrame);
    ``table``: :func:`minima.experiments.barriers.transition_table` of it; ``names``: dataset -> label."""
    from plotly.subplots import make_subplots

    from ...experiments.barriers import certified_saddles

    names = names or {}
    shown = paths[certified_saddles(paths)]
    positive = shown.excess_fraction[shown.excess_fraction > 0]
    floor = float(min(positive.min(), min(paper_fractions))) / 3 if len(positive) else min(paper_fractions) / 3
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "saddle excess / fall from initialisation", "test error rise at the saddle (points)"))
    widths = sorted(paths.hidden.unique())
    lo, hi = min(widths) / 1.3, max(widths) * 1.3
    fig.add_trace(go.Scatter(x=[lo, hi, hi, lo], y=[min(paper_fractions)] * 2 + [max(paper_fractions)] * 2,
                             fill="toself", mode="lines", line=dict(width=0), fillcolor="rgba(128,128,128,0.2)",
                             name="paper's range (CIFAR ResNets and DenseNets)", hoverinfo="skip"), row=1, col=1)
    for index, (dataset, rows) in enumerate(table.groupby("dataset", sort=False)):
        colour, label = COLOURS[index % len(COLOURS)], names.get(dataset, dataset)
        part = shown[shown.dataset == dataset]
        jitter = np.exp(np.random.default_rng(index).uniform(-0.08, 0.08, len(part)))  # spread the points of a width
        barrier = part.excess_fraction > 0
        if barrier.any():
            fig.add_trace(go.Scatter(x=(part.hidden * jitter)[barrier], y=part.excess_fraction[barrier], mode="markers",
                                     marker=dict(color=colour, size=7, opacity=0.5), legendgroup=dataset,
                                     name=f"{label}: one certified path", text=part.pair[barrier]), row=1, col=1)
        if (~barrier).any():
            fig.add_trace(go.Scatter(x=(part.hidden * jitter)[~barrier], y=[floor] * int((~barrier).sum()),
                                     mode="markers", marker=dict(color=colour, size=8, symbol="triangle-down"),
                                     legendgroup=dataset, name=f"{label}: no barrier (highest point at an end)"),
                          row=1, col=1)
        known = rows.dropna(subset=["median"])
        median = known["median"].clip(lower=floor)
        if len(known):
            fig.add_trace(go.Scatter(x=known.hidden, y=median, mode="lines+markers", line=dict(color=colour, width=3),
                                     error_y=dict(type="data", symmetric=False, array=known.q75.clip(lower=floor) - median,
                                                  arrayminus=median - known.q25.clip(lower=floor)),
                                     legendgroup=dataset, name=f"{label}: median and quartiles"), row=1, col=1)
        limited = rows[rows.budget_limited > 0]
        if len(limited):
            fig.add_trace(go.Scatter(x=limited.hidden, y=[max(paper_fractions) * (3 + 3 * index)] * len(limited),
                                     mode="text", text=[f"{n} of {m} budget-limited" for n, m in
                                                        zip(limited.budget_limited, limited.paths)],
                                     textfont=dict(color=colour, size=10), legendgroup=dataset, showlegend=False),
                          row=1, col=1)
        if len(part):  # the right panel has only the certified saddles: no empty traces, no range past them
            fig.add_trace(go.Scatter(x=part.hidden * jitter, y=part.error_rise, mode="markers", showlegend=False,
                                     marker=dict(color=colour, size=7, opacity=0.5), legendgroup=dataset,
                                     text=part.pair), row=1, col=2)
            fig.add_trace(go.Scatter(x=known.hidden, y=known.rise, mode="lines+markers", showlegend=False,
                                     line=dict(color=colour, width=3), legendgroup=dataset), row=1, col=2)
    tick = dict(type="log", title="hidden units (one hidden layer)", tickvals=widths, ticktext=[str(int(w)) for w in widths])
    fig.update_xaxes(**tick)
    fig.update_xaxes(range=[np.log10(lo), np.log10(hi)], row=1, col=1)
    fig.update_yaxes(type="log", tickformat=".1%", row=1, col=1, dtick=1)
    fig.update_yaxes(title="points", row=1, col=2)
    fig.update_layout(title=title, height=500, legend=dict(orientation="h", y=-0.25))
    return fig


def aligned_barriers(table, paper_fractions, dataset: str, label: str) -> go.Figure:
    """Barriers before and after permutation alignment for one dataset against hidden width (log
    axis): the medians over pairs, with the quartiles as error bars, of the straight line, the
    straight line after weight matching and after activation matching, and the AutoNEB saddle
    (every saddle: a budget-limited one is an upper bound), as fractions of the fall from
    initialisation (log axis; a median at or below 0 is drawn at the floor), and the paper's range
    as a grey band. ``table``: :func:`minima.experiments.barriers.alignment_table`."""
    from ...experiments.barriers import ALIGNMENT_BARRIERS

    rows = table[table.dataset == dataset].sort_values("hidden")
    values = rows[[c for c in ALIGNMENT_BARRIERS] + [f"{c} q25" for c in ALIGNMENT_BARRIERS]].to_numpy().ravel()
    positive = values[values > 0]
    floor = float(min(positive.min(), min(paper_fractions))) / 3 if len(positive) else min(paper_fractions) / 3
    widths = sorted(rows.hidden)
    lo, hi = min(widths) / 1.3, max(widths) * 1.3
    fig = go.Figure(go.Scatter(x=[lo, hi, hi, lo], y=[min(paper_fractions)] * 2 + [max(paper_fractions)] * 2,
                               fill="toself", mode="lines", line=dict(width=0), fillcolor="rgba(128,128,128,0.2)",
                               name="paper's range (AutoNEB saddles, CIFAR)", hoverinfo="skip"))
    styles = {"straight_fraction": dict(dash="dot"), "weight_matched_fraction": dict(dash="solid"),
              "activation_matched_fraction": dict(dash="dash"), "excess_fraction": dict(dash="solid", width=4)}
    for index, (column, name) in enumerate(ALIGNMENT_BARRIERS.items()):
        median = rows[column].clip(lower=floor)
        fig.add_trace(go.Scatter(
            x=rows.hidden, y=median, mode="lines+markers", name=name,
            line=dict(color=COLOURS[index % len(COLOURS)], width=styles[column].get("width", 2), dash=styles[column]["dash"]),
            error_y=dict(type="data", symmetric=False, array=rows[f"{column} q75"].clip(lower=floor) - median,
                         arrayminus=median - rows[f"{column} q25"].clip(lower=floor))))
    fig.update_xaxes(type="log", title="hidden units (one hidden layer)", tickvals=widths,
                     ticktext=[str(int(w)) for w in widths], range=[np.log10(lo), np.log10(hi)])
    fig.update_yaxes(type="log", tickformat=".1%", dtick=1, title="barrier / fall from initialisation")
    fig.update_layout(title=f"{label}: barriers before and after aligning the hidden units", height=480,
                      legend=dict(orientation="h", y=-0.25))
    return fig
