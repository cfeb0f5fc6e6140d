"""Tables as pages show them: human column labels with units, instead of the results files'
column names (which stay as they are: they are a contract with the files' readers)."""
from __future__ import annotations

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
    "train_loss_saddle": "loss at the saddle", "saddle_position": "saddle position (0-1)",
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
    "lambda_min / lambda_max": "λmin / λmax", "point": "point",
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
