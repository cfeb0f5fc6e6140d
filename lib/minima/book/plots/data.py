"""Figures of the data overview: sample images and class balance."""
from __future__ import annotations

import plotly.graph_objects as go



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
