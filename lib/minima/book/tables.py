"""Tables as pages show them: human column labels with units, instead of the results files'
column names (which stay as they are: they are a contract with the files' readers)."""
from __future__ import annotations

import re

#: results-file column -> label on a page
LABELS = {
    "train_loss": "training loss", "train_accuracy": "training accuracy", "test_accuracy": "test accuracy",
    "grad_norm": "gradient norm", "lambda_max": "λmax", "lambda_min": "λmin", "verdict": "certificate",
    "rsi": "rsi", "elementwise": "elementwise", "plain": "plain λmax", "epochs": "epochs", "stopped": "stopped by",
    "train_energy": "training loss (evaluation subset)", "train_loss_init": "loss at initialisation",
    "test_loss": "test loss", "test_error": "test error %", "n_params": "parameters",
    "n_trivial": "trivial directions", "n_null": "data-null directions", "dead_units": "dead units", "n_complement": "dimension left", "lambda_max_data": "λmax (data loss)",
    "smallest_nontrivial": "smallest non-trivial |λ| / λmax", "nontrivial_vanishing": "vanishing non-trivial λ", "nontrivial_zero": "numerically zero non-trivial λ",
    "train_loss_start": "loss, first minimum", "train_loss_end": "loss, second minimum",
    "train_loss_saddle": "loss at the saddle", "saddle_certificate": "saddle certificate",
    "budget_steps": "NEB steps run", "saddle_passes": "saddle after each run (schedule, then doublings)", "saddle_position": "saddle position (0-1)",
    "straight_barrier": "straight-line barrier", "test_error_minima": "test error minima %",
    "test_error_saddle": "test error saddle %", "test_loss_minima": "test loss minima",
    "test_loss_saddle": "test loss saddle", "lambda_min_start": "λmin, first minimum",
    "lambda_max_start": "λmax, first minimum", "lambda_min_end": "λmin, second minimum",
    "lambda_max_end": "λmax, second minimum", "verdict_start": "certificate, first minimum",
    "verdict_end": "certificate, second minimum", "lambda_min_saddle": "λmin, saddle",
    "lambda_max_saddle": "λmax, saddle", "grad_norm_saddle": "gradient norm, saddle", "cycles": "AutoNEB cycles",
    "saddle_change_last_cycles": "saddle change, last 2 cycles", "saddle_gap": "saddle - higher minimum",
    "path_converged": "path converged", "saddle_at_an_end": "highest point at an end", "in_tree": "MST edge",
    "hidden": "hidden units", "batch": "batch", "seed": "seed", "model": "model", "task": "task",
    "protocol": "protocol", "pair": "pair", "minimum": "minimum", "dataset": "dataset",
    "architecture": "architecture", "head": "head", "mcc": "MCC", "accuracy": "accuracy",
    "lambda_min / lambda_max": "λmin / λmax", "point": "point", "weight_decay": "λ",
    "mcc_interval": "MCC, 95 % bootstrap interval", "stability": "measures' change, one more round",
}


def labelled(frame):
    """``frame`` (a DataFrame) with :data:`LABELS` for its columns and index names; other names
    are kept."""
    frame = frame.rename(columns=LABELS)
    frame.index = frame.index.set_names([LABELS.get(n, n) for n in frame.index.names])
    return frame


def styled(frame, formats: dict | None = None, **options):
    """:func:`labelled` ``frame`` as a Styler, ``formats`` keyed by the results files' column
    names (``{"train_loss": "{:.2e}"}``), ``options`` passed to ``Styler.format``."""
    formats = {LABELS.get(k, k): v for k, v in (formats or {}).items()}
    return labelled(frame).style.format(formats or None, **options)


def not_certified(frame, by: list[str], noun: str) -> str:
    """A sentence for a page: how many rows of ``frame`` (a results table with a ``verdict``
    column) are not certified ``minimum``, per group of the ``by`` columns that has any, with
    their verdicts: ``"5 of 20 minima are not certified minima (mnist-10k mlp-8: 5 of 5, not
    converged)"``."""
    missed = frame.verdict != "minimum"
    if not missed.any():
        return f"all {len(frame)} {noun} are certified minima"
    parts = []
    for key, group in frame.groupby(by, sort=False):
        bad = group[group.verdict != "minimum"]
        if len(bad):
            name = " ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
            parts.append(f"{name}: {len(bad)} of {len(group)}, {', '.join(sorted(set(bad.verdict)))}")
    return f"{int(missed.sum())} of {len(frame)} {noun} are not certified minima ({'; '.join(parts)})"


# ----------------------------------------------------------------------------- formatted tables

NOT_COMPUTED = "not computed"


def significant(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures (``"0.000796"``, ``"1.21e+04"``); NaN or None
    as :data:`NOT_COMPUTED`."""
    if value is None or (isinstance(value, float) and value != value):
        return NOT_COMPUTED
    return f"{value:.{digits}g}"


def count(value) -> str:
    """An integer count (``"1,600"``); NaN as :data:`NOT_COMPUTED`."""
    if value is None or (isinstance(value, float) and value != value):
        return NOT_COMPUTED
    return f"{int(value):,d}"


_NUMERIC_TEXT = re.compile(r"^(?=.*\d)[-+\u2212\d.,eE%±x\s\[\]]+$")  # digits, signs, exponents, %, ±, intervals


def html(frame, formats: dict | None = None, default=significant, index: bool = False) -> str:
    """``frame`` as an HTML table for a page: columns labelled (:data:`LABELS`), each formatted by
    ``formats[column]`` (keyed by the results files' names), else ``default`` for numbers and
    yes / no for flags; a formatted number never wraps (``<span class="n">``) and is right-aligned,
    text may wrap and is left-aligned (``<span class="t">``; the ``minima-table`` class)."""
    import html as markup

    import pandas as pd

    frame = frame.copy() if index else frame.reset_index(drop=True)
    formats = formats or {}
    for column in frame.columns:
        if column in formats:
            values = frame[column].map(formats[column])
        elif pd.api.types.is_bool_dtype(frame[column]):
            values = frame[column].map(lambda v: "yes" if v else "no")
        elif pd.api.types.is_numeric_dtype(frame[column]):
            values = frame[column].map(default)
        else:
            # words read from the left and may wrap; a number written as text ("4.6 ± 1.8",
            # "60.4 %") is right-aligned like the numbers, each of its numbers unbroken (a line
            # may break at the ±)
            frame[column] = frame[column].map(
                lambda v: " ± ".join(f'<span class="n">{markup.escape(part)}</span>' for part in str(v).split(" ± "))
                if _NUMERIC_TEXT.match(str(v)) else f'<span class="t">{markup.escape(str(v))}</span>')
            continue
        # "not computed" is words, free to wrap; a number is one unbreakable span
        frame[column] = values.map(lambda v: markup.escape(str(v)) if v == NOT_COMPUTED
                                   else f'<span class="n">{markup.escape(str(v))}</span>')
    frame = labelled(frame)
    if frame.index.nlevels == 1:
        frame.index = frame.index.map(lambda v: markup.escape(str(v)))
    else:
        frame.index = frame.index.set_levels([level.map(lambda v: markup.escape(str(v))) for level in frame.index.levels])
    return frame.to_html(index=index, classes="minima-table", border=0, escape=False, na_rep=NOT_COMPUTED)


def _fold(table_html: str, title: str) -> str:
    return f"<details class='minima-fold'><summary>{title}</summary>{table_html}</details>"


def folded(table_html: str, title: str) -> "HTML":
    """A table folded under a one-line summary the reader clicks to open (a ``<details>`` block)."""
    from IPython.display import HTML

    return HTML(_fold(table_html, title))


def shown(table_html: str) -> "HTML":
    """A table shown in full on the page."""
    from IPython.display import HTML

    return HTML(table_html)


def _networks(frame, names: dict):
    """``dataset`` and ``architecture`` as a reader names them: the dataset's short description,
    ``"width 8"`` for ``mlp-8``."""
    from ..experiments.barriers import network_name

    frame = frame.copy()
    frame["dataset"] = frame["dataset"].map(lambda d: names.get(d, d))
    frame.insert(list(frame.columns).index("architecture"), "network", frame.pop("architecture").map(network_name))
    return frame


def capacity(table, names: dict) -> "HTML":
    """The capacity table (:func:`minima.experiments.barriers.capacity_table`) for the page: the
    saddle excess as its median with the quartiles in brackets; the test errors at minima and
    saddles, whose difference is the rise shown, stay in the per-path table."""
    # the path rule's count stays in the results; the page shows the saddles' certificate
    frame = _networks(table, names).drop(columns=["hidden", "test error minima %", "test error saddles %",
                                                  "paths converged"])
    quartiles = [f"{significant(m)} [{significant(a)}, {significant(b)}]" for m, a, b in
                 zip(frame.pop("saddle excess (median)"), frame.pop("excess q25"), frame.pop("excess q75"))]
    frame.insert(list(frame.columns).index("saddle / higher minimum"), "saddle excess, median [quartiles]", quartiles)
    fraction = lambda v: f"{100 * v:.3g} %" if v == v else NOT_COMPUTED  # noqa: E731
    return shown(html(frame, {"minima collapsed": count, "share of the way to initialisation": fraction,
                              "vanishing non-trivial eigenvalues": count}))


MINIMA_SHOWN = ("dataset", "network", "minimum", "epochs", "finish", "train_loss", "train_accuracy", "grad_norm",
                "lambda_max", "lambda_min", "verdict", "dead_units", "collapsed", "test_error")


def minima(table, names: dict) -> str:
    frame = _networks(table, names)
    frame = frame[[c for c in MINIMA_SHOWN if c in frame]]
    return html(frame, {"minimum": str, "epochs": count, "dead_units": lambda v: count(v) if v >= 0 else NOT_COMPUTED,
                        "train_accuracy": lambda v: f"{100 * v:.2f} %", "grad_norm": lambda v: f"{v:.1e}",
                        "lambda_min": lambda v: f"{v:.2g}"})


PATHS_SHOWN = ("dataset", "network", "pair", "train_loss_start", "train_loss_end", "train_loss_saddle",
               "saddle_position", "straight_barrier", "test_error_minima", "test_error_saddle", "lambda_min_saddle",
               "cycles", "saddle_certificate", "in_tree")  # the path rule and the saddle after each run: results file


def paths(table, names: dict) -> str:
    frame = _networks(table, names)
    return html(frame[[c for c in PATHS_SHOWN if c in frame]], {"cycles": count, "saddle_position": lambda v: f"{v:.2f}",
                                                                 "lambda_min_saddle": lambda v: f"{v:.2g}"})


def alignment(table, names: dict) -> "HTML":
    """The alignment table (:func:`minima.experiments.barriers.alignment_table`) for the page:
    per dataset and width, the four barriers as fractions of the fall (median [quartiles]), how
    many AutoNEB saddles are certified, and AutoNEB from the aligned ends (runs, how many found a
    lower saddle, the median drop)."""
    import pandas as pd

    from ..experiments.barriers import ALIGNMENT_BARRIERS

    fraction = lambda v: f"{100 * v:.3g} %" if v == v else NOT_COMPUTED  # noqa: E731
    frame = pd.DataFrame({"dataset": table.dataset.map(lambda d: names.get(d, d)),
                          "network": [f"width {int(h)}" for h in table.hidden]})
    for column, name in ALIGNMENT_BARRIERS.items():  # medians; the quartiles are in the figure
        frame[name.replace("straight line, ", "")] = [fraction(v) for v in table[column]]
    frame["saddles certified"] = [f"{c} of {n}" for c, n in zip(table["saddles certified"], table.paths)]
    frame["from aligned ends: lower"] = [f"{low} of {ran}" if ran else "not run"
                                         for low, ran in zip(table["aligned lower"], table["aligned runs"])]
    frame["median drop"] = [fraction(v) for v in table["aligned drop"]]
    return shown(html(frame))


def transition(table, names: dict) -> "HTML":
    """The transition table (:func:`minima.experiments.barriers.transition_table`) for the page:
    per dataset and width, the paths with a certified saddle and the budget-limited ones, the
    certified saddles' excess as a fraction of the fall (median [quartiles]), the test error
    rise (points) and the NEB steps the certificate needed (median)."""
    import pandas as pd

    fraction = lambda v: f"{100 * v:.3g} %" if v == v else NOT_COMPUTED  # noqa: E731
    frame = pd.DataFrame({
        "dataset": table.dataset.map(lambda d: names.get(d, d)),
        "network": [f"width {int(h)}" for h in table.hidden],
        "certified": [f"{c} of {n}" for c, n in zip(table.certified, table.paths)],
        "budget-limited": table.budget_limited,
        "excess / fall [quartiles]": [f"{fraction(m)} [{fraction(a)}, {fraction(b)}]" if m == m else NOT_COMPUTED
                                      for m, a, b in zip(table["median"], table.q25, table.q75)],
        "error rise (points)": table.rise, "steps needed": table.steps})
    return shown(html(frame, {"budget-limited": count,
                              "steps needed": lambda v: count(v) if v == v else NOT_COMPUTED}))


def curvature(table, names: dict) -> str:
    return html(_networks(table, names), {"grad_norm": lambda v: f"{v:.1e}", "lambda_min": lambda v: f"{v:.2g}",
                                          "lambda_min / lambda_max": lambda v: f"{v:.2g}"})


# the dimension the non-trivial spectrum is counted in (n_complement) stays in the results file
SYMMETRY_SHOWN = ("dataset", "network", "minimum", "n_params", "n_trivial", "n_null", "dead_units",
                  "lambda_max_data", "smallest_nontrivial", "nontrivial_vanishing", "nontrivial_zero", "verdict")


def symmetry(table, names: dict) -> "HTML":
    """The spectra off the trivial symmetries, for the minima where they were computed."""
    from IPython.display import Markdown

    if "n_params" not in table or table.n_params.isna().all():
        return Markdown("Not computed here: every network of this page is above the size limit for the exact Hessian.")
    frame = _networks(table[table.n_params.notna()], names)
    counts = {c: count for c in ("n_params", "n_trivial", "n_null", "dead_units", "n_complement",
                                 "nontrivial_vanishing", "nontrivial_zero")}
    return shown(html(frame[[c for c in SYMMETRY_SHOWN if c in frame]],
                      {**counts, "minimum": str, "smallest_nontrivial": lambda v: f"{v:.2e}"}))


SUMMARY_COUNTS = ("minima", "paths", "MST edges")


def summary(frame) -> "HTML":
    """A summary table with an index (the paper's Table 1, or ours in its columns)."""
    formats = {c: count for c in SUMMARY_COUNTS if c in frame}
    return shown(html(frame, formats, index=True))


# ----------------------------------------------------------------------------- Table 1's page

#: the summary's columns that make Table 1 beside the paper's, and those of the regime each cell ran in
TABLE1_SHOWN = ("certified minima", "test accuracy", "paper accuracy", "rsi (ours)", "paper spectral norm",
                "elementwise", "plain λmax")
TABLE1_REGIME = ("certified minima", "epochs", "train accuracy", "parameters", "SGD updates",
                 "paper's SGD updates (at most)")


def table1(summary) -> "HTML":
    """Table 1 (:func:`minima.book.summaries.table1_summary`) beside the paper's, then the regime
    of each cell (epochs, fit, SGD updates against the paper's) folded under it."""
    from IPython.display import HTML

    main = html(summary[[c for c in TABLE1_SHOWN if c in summary]], index=True)
    regime = html(summary[[c for c in TABLE1_REGIME if c in summary]], {"parameters": count}, index=True)
    return HTML(main + _fold(regime, "The regime of each cell: epochs, training accuracy, parameters and SGD "
                                     "updates beside the paper's"))


def per_run(results, keys: tuple, parts: dict, formats: dict, noun: str = "run") -> "HTML":
    """Every row of a per-run ``results`` table, in one folded table per entry of ``parts``
    (title -> columns), each led by the ``keys`` columns: a run's dozen numbers fit the page
    as two tables, not as one twice its width."""
    from IPython.display import HTML

    return HTML("".join(_fold(html(results[[c for c in keys + columns if c in results]], formats),
                              f"Every {noun} ({len(results)}): {title}") for title, columns in parts.items()))


RUN_FORMATS = {"seed": str, "batch": count, "hidden": count, "epochs": count, "grad_norm": lambda v: f"{v:.1e}",
               "lambda_min": lambda v: f"{v:.2g}"}
CERTIFICATE = ("epochs", "stopped", "finish", "train_accuracy", "train_loss", "grad_norm", "lambda_max", "lambda_min",
               "verdict")


def table1_runs(results) -> "HTML":
    """Every run of ``40_table1.csv``: how it trained and its certificate, then its flatness and
    test accuracy. Task and size are one column, named as the paper names a cell (``MNIST-500``)."""
    percent = lambda v: f"{100 * v:.2f} %"  # noqa: E731
    results = results.assign(**{"task-size": results.task + "-" + results.hidden.astype(int).astype(str)})
    return per_run(results, ("task-size", "model", "batch", "seed", "protocol"),
                   {"how it trained, and its certificate": CERTIFICATE,
                    "its flatness and test accuracy": ("verdict", "rsi", "elementwise", "plain", "test_accuracy")},
                   {**RUN_FORMATS, "train_accuracy": percent, "test_accuracy": percent})


def table2_runs(results) -> "HTML":
    """Every head of ``60_table2.csv``: its certificate on the head's own problem, then its
    flatness, MCC and accuracy."""
    percent = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    results = results if "point" in results else results.assign(point="regularised")
    if "mcc_low" in results:
        results = results.assign(mcc_interval=[f"{low:.3f} to {high:.3f}" for low, high in
                                               zip(results.mcc_low, results.mcc_high)])
    return per_run(results, ("protocol", "point", "head", "seed"),
                   {"its certificate": ("finish", "weight_decay", "certificate train loss", "certificate train accuracy",
                                        "grad_norm", "lambda_max", "lambda_min", "stability", "verdict"),
                    "its flatness, MCC and accuracy": ("verdict", "plain", "rsi", "elementwise", "mcc", "mcc_interval",
                                                       "accuracy")},
                   {**RUN_FORMATS, "certificate train accuracy": percent, "accuracy": percent,
                    "mcc": lambda v: f"{v:.3f}", "weight_decay": lambda v: f"{v:g}",
                    "stability": lambda v: "" if v != v else f"{100 * v:.2f} %"}, noun="head")
