"""Figures of the growing network: its DAG by depth, one insertion, the growth animation, depth profiles."""
from __future__ import annotations

import plotly.graph_objects as go



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
