"""``python -m minima run --profile NAME --plan``: every run the selected notebooks would
dispatch, with its resources and a cost estimate, without running anything.

Each experiment notebook has a planner here that builds its runs from the notebook's
parameters (its defaults, then the profile's, then the command line's) with the same library
calls the notebook makes. Estimates are each spec's :meth:`~minima.runs.Spec.resources`:
rough CPU-core seconds, stated as such, never measurements. A no-barriers path's pair is
chosen while the batch runs (the tree heuristic reads the minima's energies), so its paths
are counted as ``max_paths`` runs of one estimate.
"""
from __future__ import annotations

import sys

from ..data import DataError
from ..experiments import barriers, table1, table2
from ..runs import Resources
from .jobs import PlanError, Project, executor_config, notebook_defaults, plan


def _table1(p: dict) -> list[tuple[str, Resources]]:
    refs = table1.load_tasks(p["tasks"], p["mnist_dataset"], p["text_dataset"], p["embedding_dim"])
    settings = table1.Settings.from_parameters(p)
    selection, decays = table1.regularisation.planned(refs, settings)
    return [(f"{s.label()} (choosing lambda)", s.resources()) for s in selection] + \
        [(s.label(), s.resources()) for s in table1.plan(refs, settings, decays)]


def _no_barriers(p: dict) -> list[tuple[str, Resources]]:
    rows = []
    grid = barriers.plan(p["datasets"], p["architectures"], dict(epochs=p["epochs"], lr=p["lr"],
                         batch_size=p["batch_size"], max_epochs=p["max_epochs"]), p["recipes"],
                         seeds=tuple(p["seeds"]), neb_batch_size=p["neb_batch_size"], cycle_scale=p["cycle_scale"],
                         max_insert=p["max_insert"], max_paths=p["max_paths"], eval_subset=p["eval_subset"],
                         max_extra_cycles=p["max_extra_cycles"], pairs=p["pairs"], spectrum_max_params=p["spectrum_max_params"],
                         finish_rounds=p["finish_rounds"], max_doublings=p["max_doublings"],
                         aligned_autoneb=p["aligned_autoneb"])
    refs = {dataset: barriers.DataRef.of(dataset) for dataset in p["datasets"]}
    for (dataset, arch), settings in grid.items():
        rows += [(s.label(), s.resources()) for s in barriers.minimum_runs(settings, refs[dataset])]
        path = barriers.PathRun.resources_of(settings)
        paths = len(settings.seeds) * (len(settings.seeds) - 1) // 2 if settings.pairs == "all" else settings.max_paths
        rows += [(f"{dataset} {arch} path {k + 1} of {paths}", path) for k in range(paths)]
        if settings.aligned_autoneb:  # how many is known only once the paths are: at most one per path
            rows += [(f"{dataset} {arch} path {k + 1} of {paths} from aligned ends (if its aligned line is below its "
                      "saddle)", path) for k in range(paths)]
    return rows


def _table2(p: dict) -> list[tuple[str, Resources]]:
    rows = []
    if p["weight_decay"] == "choose":  # the selection runs of the first grid; a run's cost does not depend on lambda
        p = {**p, "weight_decay": 0.0}
        selection = table2.frozen_settings(p)
        setup = table2.setup_for(selection)[0]
        rows += [(f"{s.label()} (choosing lambda)", s.resources())
                 for s in (table2.regularisation.selection_run(setup, selection, decay) for decay in p["weight_decay_grid"])]
    for protocol, settings in table2.protocol_settings(p).items():
        specs = table2.plan(table2.setup_for(settings)[0], settings)
        rows += [(f"{protocol}: {s.label()}", s.resources()) for s in specs]
    return rows


PLANNERS = {"40_table1": _table1, "50_no_barriers": _no_barriers, "60_table2": _table2}


def print_plan(profile: str, only=None, overrides=None, executor: dict | None = None, project: Project | None = None,
               out=None) -> int:
    """Print the runs of every selected notebook (a planner's notebooks; the others dispatch no
    runs) and their estimated cost; returns a process exit code."""
    project, out = project or Project(), out or sys.stdout
    try:
        jobs = plan(project, profile, only, overrides)
        config = executor_config(project, profile, **(executor or {}))
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"profile {profile}; runs would execute on: {config.describe()}", file=out)
    print("estimates: rough CPU-core seconds from each run's spec (Spec.resources), not measurements", file=out)
    for job in jobs:
        planner = PLANNERS.get(job.name)
        if planner is None:
            print(f"\n{job.name}: no runs (executes in its own kernel)", file=out)
            continue
        parameters = {**notebook_defaults(job.source), **job.parameters}
        try:
            rows = planner(parameters)
        except (DataError, OSError, ValueError, RuntimeError) as error:
            print(f"\n{job.name}: cannot plan here: {str(error).splitlines()[0]}", file=out)
            continue
        cpu = sum(r.estimate_s * r.cpus for _, r in rows)
        gpu = sum(r.estimate_s * r.gpus for _, r in rows)
        print(f"\n{job.name}: {len(rows)} runs, about {cpu / 3600:.2f} CPU-core hours"
              + (f", {gpu / 3600:.2f} GPU-hours if each GPU run took its CPU estimate" if gpu else ""), file=out)
        for label, r in rows:
            print(f"  {label:<72} cpus {r.cpus}  gpus {r.gpus:g}  ~{r.estimate_s:,.0f} s", file=out)
    return 0
