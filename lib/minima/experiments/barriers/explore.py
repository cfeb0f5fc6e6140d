"""Exploring the landscape: every minimum of every architecture in one batch, then rounds of
paths between the pairs the MST heuristic (or the ``all`` rule) proposes
(:func:`explore_all`), collected in one :class:`Exploration` per architecture."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ...data import TrainTest
from ...paths.landscape import MinimaGraph
from ...runs import Failure, run_all
from .data import DataRef
from .minimum import MinimumRecord, MinimumRun
from .paths import PathRun
from .plan import Settings


@dataclass
class Exploration:
    """The outcome of :func:`explore`: the settings, the graph of minima and paths, the minima's
    records by key (``str(seed)``) and the runs that failed (shown on the page)."""

    settings: Settings
    graph: MinimaGraph
    minima: dict[str, MinimumRecord]
    failures: list = field(default_factory=list)
    aligned_paths: dict = field(default_factory=dict)  # (a, b) -> the AutoNEB path from a to b's weight-aligned copy

    @property
    def test_at_minima(self) -> dict[str, tuple[float, float]]:
        """``{minimum: (test loss, test error)}``."""
        return {key: (m.test_loss, m.test_error) for key, m in self.minima.items()}


def minimum_runs(settings: Settings, data: DataRef) -> list[MinimumRun]:
    return [MinimumRun(data, settings.architecture, seed, settings.epochs, settings.lr, settings.batch_size,
                       settings.weight_decay, settings.max_epochs, settings.eval_subset, settings.neb_batch_size,
                       settings.spectrum_max_params, settings.finish_rounds, settings.finish_iterations)
            for seed in settings.seeds]


def path_run(settings: Settings, data: DataRef, a: str, b: str, found: dict[str, MinimumRecord],
             aligned: bool = False) -> PathRun:
    return PathRun(data, settings.architecture, a, b, found[a].point, found[b].point, settings.neb_batch_size,
                   settings.cycle_scale, settings.n_initial, settings.max_insert, settings.eval_subset,
                   settings.max_extra_cycles, settings.weight_decay, settings.max_doublings, aligned)


def lower_after_alignment(summary: dict) -> bool:
    """Whether a path's weight-matched straight line lies below its AutoNEB saddle: then AutoNEB
    from the aligned ends may find a lower path than the one it found from the unaligned ends."""
    lines = summary.get("aligned_lines")
    return bool(lines) and lines["weight"]["barrier"] < summary["saddle_energy"]


def explore(settings: Settings, data: "DataRef | TrainTest | None" = None, executor=None) -> Exploration:
    """One architecture's exploration: :func:`explore_all` of ``[settings]``."""
    return explore_all([settings], data, executor)[0]


def explore_all(settings: list[Settings], data: "DataRef | TrainTest | None" = None,
                executor=None) -> list[Exploration]:
    """Explore several architectures (or datasets) together, so that the executor always has
    the runs of all of them to spread over its workers: every architecture's minima in one batch,
    then rounds of paths. In each round every exploration proposes its next pairs, and all the
    proposals run as one batch: with ``pairs == "tree"``, the pairs that the MST heuristic
    proposes (:meth:`MinimaGraph.suggest_pairs`) until the tree is stable or ``max_paths`` paths
    exist; with ``pairs == "all"``, every pair of minima in the first round (the tree is then the
    MST over all of them). A run's record depends only on its spec, so each exploration is the
    same as when explored alone.

    ``data``: the datasets' reference (default: each ``settings.dataset`` from the registry) or a
    :class:`TrainTest` carried whole by every spec; ``executor``: as for
    :func:`minima.runs.run_all`. Last, for the explorations with ``aligned_autoneb``, AutoNEB runs
    again between the pairs whose weight-matched straight line lies below their saddle, from
    the first minimum to the weight-aligned copy of the second (:func:`lower_after_alignment`),
    into ``aligned_paths``. Returns the explorations in the order of ``settings``."""
    for one in settings:
        if one.pairs not in ("tree", "all"):
            raise ValueError(f"pairs={one.pairs!r}: choose 'tree' (the paper's heuristic) or 'all'")
    refs = {}
    for one in settings:
        if data is None and one.dataset not in refs:
            refs[one.dataset] = DataRef.of(one.dataset)
    sources = [data if data is not None else refs[one.dataset] for one in settings]
    batches_of = [minimum_runs(one, source) for one, source in zip(settings, sources)]
    records = iter(run_all([spec for specs in batches_of for spec in specs], executor,
                           desc=f"{_where(settings)}: minima"))
    explorations = []
    for one in settings:
        exploration = Exploration(one, MinimaGraph(), {})
        for seed in one.seeds:
            record = next(records)
            if isinstance(record, Failure):
                exploration.failures.append(record)
            else:
                exploration.minima[str(seed)] = record
                exploration.graph.add_minimum(str(seed), record.train_energy)
        explorations.append(exploration)
    for round_number in itertools.count():
        proposals = [(exploration, source, a, b) for exploration, source in zip(explorations, sources)
                     for a, b in _next_pairs(exploration, round_number)]
        if not proposals:
            break
        summaries = run_all([path_run(e.settings, source, a, b, e.minima) for e, source, a, b in proposals], executor,
                            desc=f"{_where(settings)}: {len(proposals)} path(s)")
        for (exploration, _, a, b), summary in zip(proposals, summaries):
            if isinstance(summary, Failure):
                exploration.failures.append(summary)
                exploration.graph.mark_tried(a, b)
            else:
                exploration.graph.add_path(a, b, summary)
    again = [(exploration, source, a, b) for exploration, source in zip(explorations, sources)
             if exploration.settings.aligned_autoneb
             for (a, b), summary in sorted(exploration.graph.paths.items()) if lower_after_alignment(summary)]
    if again:
        summaries = run_all([path_run(e.settings, source, a, b, e.minima, aligned=True) for e, source, a, b in again],
                            executor, desc=f"{_where(settings)}: {len(again)} path(s) from aligned ends")
        for (exploration, _, a, b), summary in zip(again, summaries):
            if isinstance(summary, Failure):
                exploration.failures.append(summary)
            else:
                exploration.aligned_paths[(a, b)] = summary
    return explorations


def _next_pairs(exploration: Exploration, round_number: int) -> list[tuple[str, str]]:
    """The pairs one exploration relaxes in round ``round_number`` (from 0) of :func:`explore_all`."""
    settings, graph, found = exploration.settings, exploration.graph, list(exploration.minima)
    if settings.pairs == "all":  # every pair at once, in the first round
        return [] if round_number else [(a, b) for i, a in enumerate(found) for b in found[i + 1:]]
    if len(graph.paths) >= settings.max_paths:
        return []
    return graph.suggest_pairs(settings.max_paths - len(graph.paths))


def _where(settings: list[Settings]) -> str:
    names = [f"{one.dataset} {one.architecture}" for one in settings]
    return names[0] if len(names) == 1 else f"{len(names)} architectures"
