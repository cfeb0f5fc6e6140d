"""Plotly figure builders and the offline ``show()`` helper.

Under papermill, plotly emits only its JSON mime type, which Jupyter Book drops.
``show`` therefore emits ``text/html`` without the plotly library itself; the book
serves ``plotly.min.js`` from its own ``_static`` folder, so pages render offline.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from IPython.display import HTML, display

from ..core.spectrum import density_on_grid

TEMPLATE = "plotly_white"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")  # one per model


def show(fig: go.Figure) -> None:
    """Display ``fig`` as self-contained HTML that needs only the site's local plotly.min.js."""
    fig.update_layout(template=TEMPLATE)
    display(HTML(fig.to_html(full_html=False, include_plotlyjs=False,
                             config={"displaylogo": False, "responsive": True})))


def image_grid(images, labels, title: str, columns: int = 10) -> go.Figure:
    """Grid of grey-scale images ``(N, H, W)`` in [0, 1] with their labels as subplot titles."""
    from plotly.subplots import make_subplots

    rows = -(-len(images) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[str(l) for l in labels],
                        horizontal_spacing=0.01, vertical_spacing=0.06)
    for k, image in enumerate(images):
        fig.add_trace(go.Heatmap(z=image[::-1], colorscale="gray_r", showscale=False, zmin=0, zmax=1,
                                 hoverinfo="skip"), row=k // columns + 1, col=k % columns + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=110 * rows + 80, margin=dict(l=10, r=10, t=70, b=10))
    return fig


def class_balance(counts: dict[str, dict[str, list[int]]], classes: dict[str, list[str]]) -> go.Figure:
    """Grouped bars of class counts: ``counts[dataset][split] = [n_class0, ...]``."""
    fig = go.Figure()
    for dataset, by_split in counts.items():
        for split, values in by_split.items():
            fig.add_trace(go.Bar(name=f"{dataset} / {split}",
                                 x=[f"{dataset}: {c}" for c in classes[dataset]], y=values))
    fig.update_layout(barmode="group", title="Class balance", yaxis_title="examples",
                      height=420, legend=dict(orientation="h", y=-0.3))
    return fig


# ----------------------------------------------------------------------------- growing networks

def dag_positions(depth, ids) -> dict[int, tuple[float, float]]:
    """Neuron id -> (x = depth, y = rank within its depth, centred)."""
    import numpy as np

    positions = {}
    depth = np.asarray(depth)
    for d in np.unique(depth[ids]):
        members = [i for i in ids if depth[i] == d]
        for rank, i in enumerate(members):
            positions[int(i)] = (float(d), rank - (len(members) - 1) / 2)
    return positions


def _edge_xy(edges, positions):
    xs, ys = [], []
    for a, b in edges:
        xs += [positions[a][0], positions[b][0], None]
        ys += [positions[a][1], positions[b][1], None]
    return xs, ys


def dag_traces(net, highlight: dict | None = None) -> list[go.Scatter]:
    """Plotly traces drawing ``net`` (a GrowingNet) as a layered DAG.

    ``highlight`` (from :func:`insertion_highlight`) colours the primary parent, the new
    neuron, its other parents and the moved edges. pi0 edges are drawn darker.
    """
    import numpy as np

    highlight = highlight or {}
    positions = dag_positions(net.depth, list(range(net.n)))
    special = set(highlight.get("moved", [])) | set(highlight.get("new_edges", []))
    edges = list(zip(net.src.tolist(), net.dst.tolist()))
    groups = {
        "edge": [e for e, p in zip(edges, net.pi0) if not p and e not in special],
        "pi0 edge": [e for e, p in zip(edges, net.pi0) if p and e not in special],
        "moved edge": highlight.get("moved", []),
        "new edge": highlight.get("new_edges", []),
    }
    styles = {"edge": dict(color="rgba(120,120,120,0.35)", width=1),
              "pi0 edge": dict(color="rgba(40,40,40,0.8)", width=2),
              "moved edge": dict(color="#d62728", width=3, dash="dash"),
              "new edge": dict(color="#2ca02c", width=3)}
    traces = []
    for name, group in groups.items():
        xs, ys = _edge_xy(group, positions)
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", line=styles[name], name=name,
                                 hoverinfo="skip", showlegend=bool(group) or name in ("edge", "pi0 edge")))
    role = np.full(net.n, "hidden", dtype=object)
    role[net.input_ids] = "input"
    role[net.output_ids] = "output"
    for key, label in (("primary_parent", "primary parent"), ("new", "new neuron")):
        if key in highlight:
            role[highlight[key]] = label
    for p in highlight.get("parents", []):
        if role[p] not in ("primary parent",):
            role[p] = "other parent"
    colours = {"input": "#1f77b4", "output": "#ff7f0e", "hidden": "#7f7f7f", "primary parent": "#9467bd",
               "new neuron": "#2ca02c", "other parent": "#17becf"}
    for name, colour in colours.items():
        ids = [i for i in range(net.n) if role[i] == name]
        if not ids:
            continue
        traces.append(go.Scatter(
            x=[positions[i][0] for i in ids], y=[positions[i][1] for i in ids], mode="markers+text",
            marker=dict(size=16, color=colour, line=dict(color="white", width=1)), name=name,
            text=[str(i) for i in ids], textfont=dict(color="white", size=9),
            hovertext=[f"neuron {i}, depth {net.depth[i]}" for i in ids], hoverinfo="text"))
    return traces


def insertion_highlight(net) -> dict:
    """What the last insertion of ``net`` did, in the form :func:`dag_traces` takes."""
    record = net.history[-1]
    new = record["id"]
    return {"new": new, "primary_parent": record["primary_parent"], "parents": record["parents"],
            "moved": [(new, c) for c in record["moved_children"]],
            "new_edges": [(p, new) for p in record["parents"]]}


def before_after_insertion(before, after) -> go.Figure:
    """Figure 1 of the paper: the same network before and after one insertion, side by side."""
    from plotly.subplots import make_subplots

    record = after.history[-1]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "before", f"after inserting neuron {record['id']} under primary parent {record['primary_parent']}"))
    for trace in dag_traces(before, {"primary_parent": record["primary_parent"]}):
        trace.showlegend = False
        fig.add_trace(trace, row=1, col=1)
    for trace in dag_traces(after, insertion_highlight(after)):
        fig.add_trace(trace, row=1, col=2)
    fig.update_xaxes(title="depth", dtick=1)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=460, title="One insertion of Algorithm 1")
    return fig


def growth_animation(snapshots: list, titles: list[str]) -> go.Figure:
    """Plotly animation with one frame per network snapshot (deep copies of a GrowingNet)."""
    frames = [go.Frame(data=dag_traces(net), name=str(k), layout=go.Layout(title=title))
              for k, (net, title) in enumerate(zip(snapshots, titles))]
    # every frame must have the same number of traces: pad with empty scatters
    width = max(len(f.data) for f in frames)
    for f in frames:
        f.data = tuple(f.data) + tuple(go.Scatter(x=[], y=[]) for _ in range(width - len(f.data)))
    max_depth = max(int(net.depth.max()) for net in snapshots)
    fig = go.Figure(data=frames[0].data, frames=frames)
    steps = [dict(method="animate", label=str(k), args=[[str(k)], dict(mode="immediate", frame=dict(
        duration=400, redraw=True), transition=dict(duration=0))]) for k in range(len(frames))]
    fig.update_layout(
        title=titles[0], height=560, xaxis=dict(title="depth", range=[-0.5, max_depth + 0.5], dtick=1),
        yaxis=dict(visible=False, range=[-max(len(s.depth) for s in snapshots) / 4 - 1,
                                         max(len(s.depth) for s in snapshots) / 4 + 1]),
        updatemenus=[dict(type="buttons", x=0, y=-0.08, xanchor="left", buttons=[
            dict(label="play", method="animate", args=[None, dict(frame=dict(duration=400, redraw=True),
                                                                  fromcurrent=True)]),
            dict(label="pause", method="animate", args=[[None], dict(mode="immediate")])])],
        sliders=[dict(steps=steps, x=0.12, y=-0.02, len=0.88, currentvalue=dict(prefix="insertions: "))])
    return fig


def depth_profile(net) -> go.Figure:
    """Neurons per depth and edges by depth gap of a grown network, side by side."""
    import numpy as np
    from plotly.subplots import make_subplots

    hidden = net.hidden_ids
    per_depth = np.bincount(net.depth[hidden], minlength=int(net.depth.max()))
    gap = net.depth[net.dst] - net.depth[net.src]
    from_inputs = net.src < net.n_inputs
    fig = make_subplots(rows=1, cols=2, subplot_titles=("hidden neurons per depth", "edges by depth gap"))
    fig.add_trace(go.Bar(x=np.arange(len(per_depth))[1:], y=per_depth[1:], name="hidden neurons",
                         marker_color="#7f7f7f"), row=1, col=1)
    for mask, name, colour in ((from_inputs, "from an input", "#1f77b4"), (~from_inputs, "from a hidden neuron", "#2ca02c")):
        counts = np.bincount(gap[mask], minlength=int(gap.max()) + 1)
        fig.add_trace(go.Bar(x=np.arange(len(counts))[1:], y=counts[1:], name=name, marker_color=colour),
                      row=1, col=2)
    fig.update_xaxes(title="depth", row=1, col=1)
    fig.update_xaxes(title="d(child) - d(parent)", row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(barmode="stack", height=420,
                      title=f"Grown network: {len(hidden)} hidden neurons, depth {int(net.depth.max())}, "
                            f"{net.num_parameters():,} parameters")
    return fig


def log_range(values) -> list[float]:
    """A log axis's range (in decades) that holds the positive ``values`` with a margin of a tenth
    of a decade, up to half a decade on a wide span. Plotly's own pads a span of many decades by
    more than a decade, and widens one of almost none by a decade each way."""
    values = np.asarray(values, dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    if not len(positive):
        return [0.0, 1.0]
    low, high = float(np.log10(positive.min())), float(np.log10(positive.max()))
    pad = min(0.5, max(0.1, 0.05 * (high - low)))
    return [low - pad, high + pad]


# ----------------------------------------------------------------------------- Hessian spectra

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


def head_ratios(results, paper_ratio: float, measures=("plain", "rsi", "elementwise")) -> go.Figure:
    """Table 2 seed by seed: per protocol (one colour each) and flatness measure, the reference
    head's flatness over the grown head's, one point per seed (log axis; above 1: the grown head
    is flatter, crosses: either head not a certified minimum), with the paper's ratio and 1
    marked."""
    fig = go.Figure()
    for index, (protocol, part) in enumerate(results.groupby("protocol", sort=False)):
        grown = part[part["head"] == "growing"].set_index("seed")
        reference = part[part["head"] == "reference"].set_index("seed")
        seeds = grown.index.intersection(reference.index)
        certified = (grown.verdict[seeds] == "minimum") & (reference.verdict[seeds] == "minimum")
        for k, m in enumerate(measures):
            ratio = reference[m][seeds] / grown[m][seeds]
            offset = (index - 0.5) * 0.25
            fig.add_trace(go.Scatter(
                x=[k + offset] * len(seeds), y=ratio, mode="markers", name=f"{protocol} encoder" if protocol == "frozen"
                else f"{protocol} with the head", legendgroup=protocol, showlegend=k == 0,
                marker=dict(color=COLOURS[index], size=9, symbol=["circle" if c else "x" for c in certified]),
                text=[f"seed {s}" for s in seeds]))
    log_hline(fig, paper_ratio, f"paper: {paper_ratio:.1f}x", line_dash="dot", line_color="grey")
    log_hline(fig, 1.0, "equal", line_color="black", line_width=1)
    fig.update_layout(title="Reference head's flatness over the grown head's, one point per seed",
                      xaxis=dict(tickvals=list(range(len(measures))), ticktext=list(measures), title="measure"),
                      yaxis=dict(type="log", title="reference / grown"), height=420)
    return fig


# ----------------------------------------------------------------------------- paths between minima

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


def log_hline(fig: go.Figure, y: float, text: str, **line) -> None:
    """A horizontal line at ``y`` on a log y axis, labelled at its right end. (``add_hline``'s
    own label is placed in data units, which a log axis reads as a power of ten: a label at
    ``y = 0.8`` would sit at ``10**0.8``.)"""
    fig.add_hline(y=y, **line)
    fig.add_annotation(x=1, xref="x domain", y=float(np.log10(y)), yref="y", text=text, showarrow=False,
                       xanchor="right", yanchor="bottom")


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


def transition(paths, paper_fractions, names: dict | None = None,
               title: str = "Where the barriers vanish") -> go.Figure:
    """The no-barriers transition, per dataset (one colour each) against hidden width (log axis):
    left, every path's saddle excess as a fraction of the fall from initialisation
    (``(saddle - higher minimum) / (initial loss - higher minimum)``, log axis; a path whose
    highest point is an end has no barrier and is drawn at the axis floor as a down triangle)
    with the median per width as a line and the paper's range (``paper_fractions``, its CIFAR
    rows) as a grey band; right, the test error's rise at the saddle (percentage points).

    ``paths``: the path table (:func:`minima.experiments.barriers.path_rows` as a DataFrame);
    ``names``: dataset -> label."""
    from plotly.subplots import make_subplots

    names = names or {}
    higher = np.maximum(paths.train_loss_start, paths.train_loss_end)
    paths = paths.assign(fraction=(paths.train_loss_saddle - higher) / (paths.train_loss_init - higher),
                         rise=paths.test_error_saddle - paths.test_error_minima)
    positive = paths.fraction[paths.fraction > 0]
    floor = float(min(positive.min(), min(paper_fractions))) / 3 if len(positive) else 1e-4
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "saddle excess / fall from initialisation", "test error rise at the saddle (points)"))
    widths = sorted(paths.hidden.unique())
    lo, hi = min(widths) / 1.3, max(widths) * 1.3
    fig.add_trace(go.Scatter(x=[lo, hi, hi, lo], y=[min(paper_fractions)] * 2 + [max(paper_fractions)] * 2,
                             fill="toself", mode="lines", line=dict(width=0), fillcolor="rgba(128,128,128,0.2)",
                             name="paper's range (CIFAR ResNets and DenseNets)", hoverinfo="skip"), row=1, col=1)
    for index, (dataset, part) in enumerate(paths.groupby("dataset", sort=False)):
        colour, label = COLOURS[index % len(COLOURS)], names.get(dataset, dataset)
        jitter = np.exp(np.random.default_rng(index).uniform(-0.08, 0.08, len(part)))  # spread the points of a width
        barrier = part.fraction > 0
        fig.add_trace(go.Scatter(x=(part.hidden * jitter)[barrier], y=part.fraction[barrier], mode="markers",
                                 marker=dict(color=colour, size=7, opacity=0.6), legendgroup=dataset,
                                 name=f"{label}: one path", text=part.pair[barrier]), row=1, col=1)
        if (~barrier).any():
            fig.add_trace(go.Scatter(x=(part.hidden * jitter)[~barrier], y=[floor] * int((~barrier).sum()),
                                     mode="markers", marker=dict(color=colour, size=8, symbol="triangle-down"),
                                     legendgroup=dataset, name=f"{label}: no barrier (highest point at an end)"),
                          row=1, col=1)
        medians = part.groupby("hidden").agg(fraction=("fraction", "median"), rise=("rise", "median"))
        fig.add_trace(go.Scatter(x=medians.index, y=medians.fraction.clip(lower=floor), mode="lines+markers",
                                 line=dict(color=colour, width=3), legendgroup=dataset, name=f"{label}: median"),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=part.hidden * jitter, y=part.rise, mode="markers", showlegend=False,
                                 marker=dict(color=colour, size=7, opacity=0.6), legendgroup=dataset,
                                 text=part.pair), row=1, col=2)
        fig.add_trace(go.Scatter(x=medians.index, y=medians.rise, mode="lines+markers", showlegend=False,
                                 line=dict(color=colour, width=3), legendgroup=dataset), row=1, col=2)
    tick = dict(type="log", title="hidden units (one hidden layer)", tickvals=widths, ticktext=[str(int(w)) for w in widths])
    fig.update_xaxes(**tick, range=[np.log10(lo), np.log10(hi)])
    fig.update_yaxes(type="log", tickformat=".1%", row=1, col=1, dtick=1)
    fig.update_yaxes(title="points", row=1, col=2)
    fig.update_layout(title=title, height=480, legend=dict(orientation="h", y=-0.25))
    return fig


def final_rsi(results, task: str) -> go.Figure:
    """Table 1's rsi at each run's final point for ``task``, by model and size, one trace per
    protocol and batch (crosses: not a certified minimum)."""
    sub = results[results.task == task]
    fig = go.Figure()
    for (protocol, batch), part in sub.groupby(["protocol", "batch"]):
        fig.add_trace(go.Scatter(x=part.model + " / " + part.hidden.astype(str), y=part.rsi, mode="markers",
                                 name=f"{protocol}, batch {batch}",
                                 marker=dict(size=10, symbol=["circle" if v == "minimum" else "x" for v in part.verdict])))
    return fig.update_layout(title=f"{task}: rsi at the final point (x: not certified minimum)",
                             yaxis=dict(type="log", title="rsi", range=log_range(sub.rsi)),
                             xaxis_title="model / hidden units", height=420)
