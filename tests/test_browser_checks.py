"""The browser checks catch what a reader would find broken, and our figures pass them.

A page made to show the defects the book once had (a label in data units on a log axis, a
legend entry that draws nothing, a table wider than its column, a p-value wrapping digit by
digit) must be reported; the same kinds of figure from :mod:`minima.book.plots` must not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline
import pytest

import browser
from minima.book import plots, tables
from minima.experiments import barriers


def page(tmp_path, figures, body=""):
    divs = "".join(f.to_html(full_html=False, include_plotlyjs=False) for f in figures)
    path = tmp_path / "page.html"
    path.write_text(f"<html><head><script>{plotly.offline.get_plotlyjs()}</script></head>"
                    f"<body><main style='width:700px'>{divs}{body}</main></body></html>")
    return path


@pytest.fixture
def chromium():
    reason = browser.available()
    if reason:
        pytest.skip(f"browser check not run: {reason}")


def test_the_checks_report_a_page_made_to_show_the_old_defects(tmp_path, chromium):
    broken = go.Figure(go.Scatter(x=[2, 4, 8], y=[0.5, 0.05, 0.01], name="share"))
    broken.add_trace(go.Scatter(x=[2, 4], y=[float("nan")] * 2, name="a trace with no data"))  # in the legend, never drawn
    broken.add_hline(y=16, annotation_text="paper factor")  # the label sits at 10**16 on a log axis
    broken.update_layout(title="broken", yaxis_type="log")
    wide = "<table><tr>" + "".join(f"<td>column {k}</td>" for k in range(60)) + "</tr></table>"
    wrapping = "<table><tr><td style='max-width:12px; overflow-wrap:anywhere'>0.00026</td></tr></table>"
    report = browser.inspect_page(page(tmp_path, [broken], wide + wrapping))
    assert any("decades past its data" in d for d in report["figures"]), report["figures"]
    assert any("a trace with no data" in d for d in report["figures"]), report["figures"]
    assert len(report["wide"]) == 1 and "60" not in report["wrapped"]
    assert report["wrapped"] and "0.00026" in report["wrapped"][0]


def test_the_books_figures_and_tables_pass_the_checks(tmp_path, chromium):
    rng = np.random.default_rng(0)
    paths = pd.DataFrame([{"dataset": d, "hidden": h, "pair": f"{a}-{a + 1}", "train_loss_start": 0.1 / h,
                           "train_loss_end": 0.1 / h, "train_loss_saddle": 0.1 / h + rng.uniform(0, 0.5) / h ** 2,
                           "train_loss_init": 2.3, "test_error_minima": 5.0, "test_error_saddle": 5 + rng.uniform(0, 3)}
                          for d in ("mnist-10k", "fashion-10k") for h in (2, 4, 100) for a in range(4)])
    paths.loc[0, "train_loss_saddle"] = paths.loc[0, "train_loss_start"]  # a path with no barrier
    paths = paths.assign(excess_fraction=(paths.train_loss_saddle - paths.train_loss_start)
                         / (paths.train_loss_init - paths.train_loss_start),
                         error_rise=paths.test_error_saddle - paths.test_error_minima, path_converged=True,
                         saddle_certificate=["converged", "converged", "converged", "budget-limited"] * 6, budget_steps=640)
    paths = paths.assign(straight_fraction=paths.excess_fraction * 20, weight_matched_fraction=paths.excess_fraction * 2,
                         activation_matched_fraction=paths.excess_fraction * 3, aligned_fraction=paths.excess_fraction / 2,
                         aligned_certificate=["not run", "budget-limited"] * 12)
    curves = {"grown": [{"epoch": e, "accuracy": 0.5 + e / 20, "loss": 1 / (e + 1)} for e in range(1, 6)],
              "reference": [{"epoch": e, "accuracy": 0.4 + e / 20, "loss": 2 / (e + 1)} for e in range(1, 6)]}
    figures = [plots.transition(paths, barriers.transition_table(paths), [0.0035, 0.075]),
               plots.aligned_barriers(barriers.alignment_table(paths), [0.0035, 0.075], "mnist-10k", "MNIST"),
               plots.first_passage([2.3 / (e + 1) for e in range(30)], 0.4, "first passage"),
               plots.training_curves(curves, [1.5, 2.5]),
               # errors over sixteen decades, and rsi values within a hundredth of a decade of each other:
               # plotly's own ranges run more than a decade past both
               plots.convergence(1.0, {"Lanczos": [0.5, 1e-3, 1e-9, 1.0], "power": [0.9, 0.8, 0.7, 0.6]}),
               plots.final_rsi(pd.DataFrame({"task": "MNIST", "protocol": "paper", "batch": 10, "hidden": 10,
                                             "model": ["growing", "a"], "rsi": [4.43, 4.45],
                                             "verdict": ["minimum", "not converged"]}), "MNIST", measure="rsi"),
               plots.arms(pd.DataFrame({"task": "MNIST", "protocol": "regularised", "hidden": 10, "batch": 10,
                                        "seed": [0, 0, 0, 0, 1, 1, 1, 1], "verdict": "minimum",
                                        "model": ["growing", "a", "linear", "static"] * 2,
                                        "elementwise": [0.2, 1.4, 0.16, 0.3, 0.25, 1.1, 0.16, 0.35],
                                        "test_accuracy": [0.90, 0.92, 0.89, 0.91, 0.905, 0.915, 0.89, 0.908],
                                        "train_loss": [0.086, 0.0076, 0.1, 0.05, 0.09, 0.008, 0.1, 0.04]}),
                          "MNIST", 10)]
    frame = pd.DataFrame({"parameters": [1600, 3190], "λmax": [12111.28, 0.000796], "p": [2.6e-4, 0.031]})
    report = browser.inspect_page(page(tmp_path, figures, tables.html(frame)))
    assert report["plotly_svgs"] > 0
    assert report["figures"] == [] and report["wide"] == [] and report["wrapped"] == [], report
