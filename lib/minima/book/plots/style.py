"""The look every figure shares and the offline ``show()`` helper.

Under papermill, plotly emits only its JSON mime type, which Jupyter Book drops.
``show`` therefore emits ``text/html`` without the plotly library itself; the book
serves ``plotly.min.js`` from its own ``_static`` folder, so pages render offline.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from IPython.display import HTML, display


TEMPLATE = "plotly_white"


COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")  # one per model


def show(fig: go.Figure) -> None:
    """Display ``fig`` as self-contained HTML that needs only the site's local plotly.min.js."""
    fig.update_layout(template=TEMPLATE)
    display(HTML(fig.to_html(full_html=False, include_plotlyjs=False,
                             config={"displaylogo": False, "responsive": True})))


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


def log_hline(fig: go.Figure, y: float, text: str, **line) -> None:
    """A horizontal line at ``y`` on a log y axis, labelled at its right end. (``add_hline``'s
    own label is placed in data units, which a log axis reads as a power of ten: a label at
    ``y = 0.8`` would sit at ``10**0.8``.)"""
    fig.add_hline(y=y, **line)
    fig.add_annotation(x=1, xref="x domain", y=float(np.log10(y)), yref="y", text=text, showarrow=False,
                       xanchor="right", yanchor="bottom")
