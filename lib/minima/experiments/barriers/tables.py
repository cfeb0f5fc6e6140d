"""The no-barriers results tables: the paper's summary row, one row per path and per minimum,
the curvature at minima and saddles, the capacity sweep, and the paper's saddles measured as
ours are."""
from __future__ import annotations

import numpy as np

from ...paths.neb import metric_at_saddle, saddle_change, steps_run
from ..papers import NO_BARRIERS_TABLE1
from .explore import Exploration


def summary_row(exploration: Exploration) -> dict:
    """The paper's columns for one architecture, from the MST of saddle energies.

    Minima columns average
    over all minima; saddle columns over the MST edges, at each path's saddle (the highest
    point of the training loss), with test loss and error taken at that same point.
    """
    graph, test_at_minima = exploration.graph, exploration.test_at_minima
    tree = graph.mst()
    edges = [tuple(sorted(e)) for e in tree.edges]
    paths = [graph.paths[e] for e in edges]
    train_minima = float(np.mean(list(graph.minima.values())))
    train_saddles = float(np.mean([p["saddle_energy"] for p in paths]))
    test_minima = float(np.mean([v[0] for v in test_at_minima.values()]))
    error_minima = 100 * float(np.mean([v[1] for v in test_at_minima.values()]))
    error_saddles = 100 * float(np.mean([metric_at_saddle(p, "test error") for p in paths]))
    return {"minima": len(graph.minima), "paths": len(graph.paths), "MST edges": len(edges),
            "train minima": train_minima, "train saddles": train_saddles,
            "factor": train_saddles / train_minima if train_minima > 0 else float("inf"),
            "straight-line barrier": float(np.mean([max(p["straight"]["energies"]) for p in paths])),
            "test minima": test_minima, "test saddles": float(np.mean([metric_at_saddle(p, "test loss") for p in paths])),
            "test error minima %": error_minima, "test error saddles %": error_saddles,
            "error rise %": error_saddles - error_minima}


PATH_COLUMNS = ("dataset", "architecture", "pair", "train_loss_start", "train_loss_end", "train_loss_saddle", "saddle_position",
                "straight_barrier", "test_error_minima", "test_error_saddle", "lambda_min_start", "lambda_max_start",
                "lambda_min_end", "lambda_max_end", "verdict_start", "verdict_end", "lambda_min_saddle",
                "lambda_max_saddle", "grad_norm_saddle", "cycles", "saddle_change_last_cycles", "saddle_certificate",
                "budget_steps", "budget_factor", "saddle_passes", "excess_fraction", "error_rise", "straight_fraction",
                "weight_matched_fraction", "activation_matched_fraction", "aligned_fraction", "aligned_certificate")


def path_rows(exploration: Exploration) -> list[dict]:
    """One row per path (:data:`PATH_COLUMNS` and a few more; ``in_tree``: an edge of the MST): the two minima's losses and
    certificates, the saddle (training loss, position along the path, test error there, the
    extreme Hessian eigenvalues and gradient norm of its certificate), the
    straight-line barrier, the path's convergence (cycles run, saddle change over the last
    two cycles, whether that is within 5 % of the saddle-minus-minimum gap), the doubling
    certificate of its saddle (:func:`saddle_budget`), and the transition figure's measures:
    ``excess_fraction``, the saddle's excess over the higher minimum as a fraction of the fall
    from initialisation to it, and ``error_rise``, the test error's rise at the saddle (points);
    the barriers after permutation alignment (:func:`aligned_barriers`). Test errors in %."""
    rows = []
    graph, found, tests = exploration.graph, exploration.minima, exploration.test_at_minima
    tree = {tuple(sorted(e)) for e in graph.mst().edges}
    for a, b in sorted(graph.paths):
        path = graph.paths[(a, b)]  # keys are sorted pairs
        start, end = found[a].certificate, found[b].certificate
        rows.append({"dataset": exploration.settings.dataset, "architecture": exploration.settings.architecture,
                     "pair": f"{a}-{b}",
                     "train_loss_start": graph.minima[a], "train_loss_end": graph.minima[b],
                     "train_loss_saddle": path["saddle_energy"], "saddle_position": path["saddle_position"],
                     "straight_barrier": max(path["straight"]["energies"]),
                     "test_error_minima": 100 * (tests[a][1] + tests[b][1]) / 2,
                     "test_loss_minima": (tests[a][0] + tests[b][0]) / 2,
                     "test_loss_saddle": metric_at_saddle(path, "test loss"),
                     "train_loss_init": (found[a].init_energy + found[b].init_energy) / 2,
                     "test_error_saddle": 100 * metric_at_saddle(path, "test error"),
                     "lambda_min_start": start["lambda_min"], "lambda_max_start": start["lambda_max"],
                     "lambda_min_end": end["lambda_min"], "lambda_max_end": end["lambda_max"],
                     "verdict_start": start["verdict"], "verdict_end": end["verdict"],
                     "lambda_min_saddle": path["certificate_saddle"]["lambda_min"],
                     "lambda_max_saddle": path["certificate_saddle"]["lambda_max"],
                     "grad_norm_saddle": path["certificate_saddle"]["grad_norm"],
                     "cycles": len(path["history"]) - 1, "saddle_change_last_cycles": saddle_change(path["history"]),
                     "saddle_gap": path["saddle_energy"] - max(graph.minima[a], graph.minima[b]),
                     "path_converged": bool(path.get("converged", False)),
                     "saddle_at_an_end": path["saddle_position"] in (0.0, 1.0),
                     "in_tree": (a, b) in tree, "hidden": width_of(exploration.settings.architecture),
                     **saddle_budget(path)})
    for row in rows:  # the transition figure's measures, and the barriers after alignment beside them
        a, b = row["pair"].split("-")
        higher = max(row["train_loss_start"], row["train_loss_end"])
        fall = row["train_loss_init"] - higher
        row["excess_fraction"] = (row["train_loss_saddle"] - higher) / fall
        row["error_rise"] = row["test_error_saddle"] - row["test_error_minima"]
        row.update(aligned_barriers(graph.paths[(a, b)], exploration.aligned_paths.get((a, b)), higher, fall))
    return rows


ALIGNED_COLUMNS = ("straight_fraction", "weight_matched_barrier", "weight_matched_fraction", "activation_matched_barrier",
                   "activation_matched_fraction", "aligned_saddle", "aligned_fraction", "aligned_certificate")


def aligned_barriers(path: dict, aligned_path: dict | None, higher: float, fall: float) -> dict:
    """A path's barriers after permutation alignment (:data:`ALIGNED_COLUMNS`), each also as its
    excess over the higher minimum over the fall from initialisation (``*_fraction``), as the
    saddle's ``excess_fraction``: the straight line as it is, after weight matching and after
    activation matching (NaN for networks alignment does not take), and the saddle AutoNEB found
    from the weight-aligned ends with its doubling certificate (``"not run"`` where it was not)."""
    lines = path.get("aligned_lines") or {}
    nan = float("nan")
    straight = max(path["straight"]["energies"])
    weight = lines["weight"]["barrier"] if lines else nan
    activation = lines["activation"]["barrier"] if lines else nan
    saddle = aligned_path["saddle_energy"] if aligned_path else nan
    return {"straight_fraction": (straight - higher) / fall,
            "weight_matched_barrier": weight, "weight_matched_fraction": (weight - higher) / fall,
            "activation_matched_barrier": activation, "activation_matched_fraction": (activation - higher) / fall,
            "aligned_saddle": saddle, "aligned_fraction": (saddle - higher) / fall,
            "aligned_certificate": saddle_budget(aligned_path)["saddle_certificate"] if aligned_path else "not run"}


def saddle_budget(path: dict) -> dict:
    """The doubling certificate of a path's summary as result columns: ``saddle_certificate``
    (``"converged"``: doubling the AutoNEB cycles no longer lowers the saddle, by 5 % of its gap
    at most; ``"budget-limited"``: it still did at the last doubling allowed, so the saddle is an
    upper bound; ``"none"``: no doubling was run), ``budget_steps`` (NEB steps run, all
    doublings included), ``budget_factor`` (the last run's cycle length relative to the
    schedule's) and ``saddle_passes`` (the saddle after each run, ``;``-separated)."""
    budget = path.get("budget") or {}
    passes = budget.get("passes", [])
    steps = steps_run(path["history"])
    return {"saddle_certificate": budget.get("verdict", "none"), "budget_steps": passes[-1]["steps"] if passes else steps,
            "budget_factor": passes[-1]["factor"] if passes else 1,
            "saddle_passes": ";".join(f"{p['saddle_energy']:.6g}" for p in passes)}


def network_name(architecture_name: str) -> str:
    """How a page names an architecture: ``"width 8"`` for ``mlp-8`` (one hidden layer of 8
    units), else the name itself (``resnet-20``)."""
    return f"width {architecture_name.split('-')[1]}" if architecture_name.startswith("mlp-") else architecture_name


def width_of(architecture_name: str) -> float:
    """The hidden width of ``mlp-H`` (the capacity sweep's axis), else NaN."""
    return float(architecture_name.split("-")[1]) if architecture_name.startswith("mlp-") else float("nan")


MINIMA_COLUMNS = ("dataset", "architecture", "minimum", "epochs", "finish", "train_loss", "train_accuracy", "grad_norm",
                  "lambda_max", "lambda_min", "verdict", "dead_units", "collapsed", "train_energy", "train_loss_init",
                  "test_loss", "test_error")


def minima_rows(exploration: Exploration) -> list[dict]:
    """One row per minimum (:data:`MINIMA_COLUMNS` and the rest of its certificate): SGD epochs
    trained and the finish after them, dead units and whether it collapsed, the certificate (whole training set, objective with weight decay), the node energy
    and the loss at initialisation (evaluation subset), test loss and error (%, whole test split)."""
    return [{"dataset": exploration.settings.dataset, "architecture": exploration.settings.architecture,
             "minimum": key, "epochs": len(record.curve), "finish": record.finish, **record.certificate,
             "train_energy": record.train_energy, "collapsed": record.collapsed,
             "train_loss_init": record.init_energy, "test_loss": record.test_loss, "test_error": 100 * record.test_error,
             "hidden": width_of(exploration.settings.architecture), **record.symmetry,
             "dead_units": record.dead_units}
            for key, record in exploration.minima.items()]


CURVATURE_COLUMNS = ("dataset", "architecture", "point", "train_loss", "grad_norm", "lambda_max", "lambda_min", "verdict",
                     "lambda_min / lambda_max")


def curvature_table(explorations: list[Exploration]):
    """The certificate at every minimum, then at every path's saddle (the path's highest point,
    which is the higher minimum when it lies at an end), of the ``explorations``: one row each
    with :data:`CURVATURE_COLUMNS` (a DataFrame). A saddle's ``point`` says where it lies."""
    import pandas as pd

    rows = [{**m, "point": f"minimum {m['minimum']}"} for e in explorations for m in minima_rows(e)]
    for exploration in explorations:
        for (a, b), path in sorted(exploration.graph.paths.items()):
            where = "at an end: the higher minimum" if path["saddle_position"] in (0.0, 1.0) else \
                f"at {path['saddle_position']:.2f}"
            rows.append({"dataset": exploration.settings.dataset, "architecture": exploration.settings.architecture,
                         "point": f"saddle {a}-{b} ({where})", **path["certificate_saddle"]})
    table = pd.DataFrame(rows)
    table["lambda_min / lambda_max"] = table.lambda_min / table.lambda_max
    return table[list(CURVATURE_COLUMNS)]


def paper_excess_fractions():
    """The paper's saddles as this page measures ours (Draxler et al., Table 1): per CIFAR row,
    (train saddles - train minima) / (initial loss - train minima), taking the initial loss as
    ln(classes), the cross-entropy of a uniform prediction (the paper gives no loss at
    initialisation). A Series indexed like :data:`~minima.experiments.papers.NO_BARRIERS_TABLE1`;
    its range is 0.35 % to 7.5 %."""
    table = NO_BARRIERS_TABLE1
    initial = np.log([100.0 if dataset == "CIFAR-100" else 10.0 for dataset, _ in table.index])
    return (table["train saddles"] - table["train minima"]) / (initial - table["train minima"])


def certified_saddles(paths) -> "pd.Series":
    """Which paths' saddles are certified (a boolean Series over ``paths``): the path rule holds
    and doubling the AutoNEB cycles no longer lowers the saddle (``saddle_certificate`` is
    ``converged``). A file written before the doubling certificate has no certified saddle."""
    if "saddle_certificate" not in paths:
        return paths.path_converged.astype(bool) & False
    return paths.path_converged.astype(bool) & paths.saddle_certificate.astype(str).eq("converged")


def transition_table(paths):
    """The transition from barriers to none, from certified saddles only: one row per dataset and
    width (``hidden``) with ``paths``, ``certified`` and ``budget_limited`` (path counts), and over
    the certified paths the saddle's excess as a fraction of the fall from initialisation
    (``(saddle - higher minimum) / (initial loss - higher minimum)``: ``median``, ``q25``,
    ``q75``), the test error's rise at the saddle (``rise``, points, median) and the NEB steps the
    certificate needed (``steps``, median). NaN where no saddle of that width is certified."""
    import pandas as pd

    paths = paths.assign(fraction=paths.excess_fraction, rise=paths.error_rise, certified=certified_saddles(paths),
                         limited=paths.get("saddle_certificate", pd.Series("none", index=paths.index))
                         .astype(str).eq("budget-limited"))
    rows = []
    for (dataset, hidden), part in paths.groupby(["dataset", "hidden"], sort=False):
        good = part[part.certified]
        rows.append({"dataset": dataset, "hidden": hidden, "paths": len(part), "certified": len(good),
                     "budget_limited": int(part.limited.sum()), "median": good.fraction.median(),
                     "q25": good.fraction.quantile(0.25), "q75": good.fraction.quantile(0.75),
                     "rise": good.rise.median(),
                     "steps": good.budget_steps.median() if "budget_steps" in good else float("nan")})
    return pd.DataFrame(rows, columns=["dataset", "hidden", "paths", "certified", "budget_limited", "median", "q25",
                                       "q75", "rise", "steps"])


ALIGNMENT_BARRIERS = {"straight_fraction": "straight line", "weight_matched_fraction": "straight line, weight matching",
                      "activation_matched_fraction": "straight line, activation matching",
                      "excess_fraction": "AutoNEB saddle"}


def alignment_table(paths):
    """Barriers before and after alignment, one row per dataset and width (``hidden``): for each
    of :data:`ALIGNMENT_BARRIERS` (fractions of the fall from initialisation) the median and
    quartiles over the paths (``<column>`` and ``<column> q25`` / ``q75``); ``saddles
    certified`` (how many of the AutoNEB saddles are; the others are upper bounds); ``aligned
    runs`` (AutoNEB from the weight-aligned ends), ``aligned lower`` (of them, how many found a
    lower saddle than from the unaligned ends) and ``aligned drop`` (the median drop of those,
    as a fraction of the fall)."""
    import pandas as pd

    rows = []
    for (dataset, hidden), part in paths.groupby(["dataset", "hidden"], sort=False):
        row = {"dataset": dataset, "hidden": hidden, "paths": len(part),
               "saddles certified": int(certified_saddles(part).sum())}
        for column in ALIGNMENT_BARRIERS:
            values = part[column]
            row.update({column: values.median(), f"{column} q25": values.quantile(0.25),
                        f"{column} q75": values.quantile(0.75)})
        ran = part[part.aligned_certificate.astype(str) != "not run"]
        drop = ran.excess_fraction - ran.aligned_fraction
        row.update({"aligned runs": len(ran), "aligned lower": int((drop > 0).sum()),
                    "aligned drop": drop[drop > 0].median() if (drop > 0).any() else float("nan")})
        rows.append(row)
    return pd.DataFrame(rows)


def capacity_table(paths, minima):
    """The capacity sweep, one row per dataset and architecture (hidden width ``hidden``), from the
    results tables (:func:`path_rows`, :func:`minima_rows` as DataFrames). Over the paths: the
    saddle's excess over the higher minimum (median and quartiles), the saddle / higher-minimum
    ratio, the straight-line barrier, the saddle's share of the way from the higher minimum's
    loss up to the loss at initialisation, test errors at minima and saddles (%); over the
    minima: how many are certified, and the vanishing non-trivial eigenvalues where counted."""
    import pandas as pd

    paths = paths.assign(higher=np.maximum(paths.train_loss_start, paths.train_loss_end))
    paths = paths.assign(excess=paths.train_loss_saddle - paths.higher, ratio=paths.train_loss_saddle / paths.higher,
                         share=(paths.train_loss_saddle - paths.higher) / (paths.train_loss_init - paths.higher),
                         rise=paths.test_error_saddle - paths.test_error_minima)
    rows = []
    for (dataset, architecture), part in paths.groupby(["dataset", "architecture"], sort=False):
        found = minima[(minima.dataset == dataset) & (minima.architecture == architecture)]
        counted = found["nontrivial_vanishing"].dropna() if "nontrivial_vanishing" in found else pd.Series(dtype=float)
        collapsed = int(found.collapsed.astype(bool).sum()) if "collapsed" in found else 0
        rows.append({"dataset": dataset, "architecture": architecture, "hidden": part.hidden.iloc[0],
                     "minima certified": f"{int((found.verdict == 'minimum').sum())} of {len(found)}",
                     "minima collapsed": collapsed,
                     "paths converged": f"{int(part.path_converged.sum())} of {len(part)}",
                     "saddles certified": f"{int(certified_saddles(part).sum())} of {len(part)}",
                     "saddle excess (median)": part.excess.median(), "excess q25": part.excess.quantile(0.25),
                     "excess q75": part.excess.quantile(0.75), "saddle / higher minimum": part.ratio.median(),
                     "straight-line barrier": part.straight_barrier.median(),
                     "share of the way to initialisation": part.share.median(),
                     "test error minima %": part.test_error_minima.median(),
                     "test error saddles %": part.test_error_saddle.median(), "error rise (points)": part.rise.median(),
                     "vanishing non-trivial eigenvalues": counted.median() if len(counted) else float("nan")})
    return pd.DataFrame(rows)
