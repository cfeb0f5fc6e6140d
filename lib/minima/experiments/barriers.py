"""The "no barriers" experiment (Draxler et al. 2018, section 4): minima, AutoNEB paths, summary.

For one or several architectures on one dataset: train several minima from different seeds
(:class:`MinimumRun`, all at once on the runs executor), connect pairs chosen by the MST
heuristic (:class:`minima.paths.landscape.MinimaGraph`) with AutoNEB in rounds
(:class:`PathRun`: the heuristic decides which pairs, the executor relaxes a round's paths
side by side), evaluate every final path densely (training loss, test loss, test error)
beside the straight line between the same minima, and summarise the minimum spanning tree's
saddles as in the paper's table.

Every minimum and path is a run of :mod:`minima.runs`, cached by content under
``.cache/runs``: a re-run with the same settings reuses them, an interrupted exploration
resumes with the runs that are missing, and a change to the code that computes them
recomputes them.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.hessian import HessianOperator
from ..geometry.certificate import certify, fits
from ..geometry.symmetries import (SymmetryError, complement_eigenvalues, data_null_directions, dead_units,
                                   orthonormal_span, trivial_basis)
from ..data import TrainTest, batches, train_test
from ..runs import Failure, Resources, Spec, run_all
from ..paths.landscape import MinimaGraph
from ..models import architecture
from .papers import NO_BARRIERS_TABLE1
from ..paths.energy import ModelEnergy
from ..paths.neb import auto_neb, is_converged, linear_path, metric_at_saddle, saddle_change, scaled_cycles
from ..core.parameters import FlatView
from ..train import Trainer, lbfgs_rounds, loss_and_accuracy, tensor_loss


@dataclass(frozen=True)
class Settings:
    """Everything that determines the minima and the paths of one exploration."""

    dataset: str
    architecture: str
    seeds: tuple = (0, 1, 2, 3, 4)
    epochs: int = 10
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 1e-4
    neb_batch_size: int = 512
    cycle_scale: float = 0.05  # AutoNEB steps are the paper's times this factor
    n_initial: int = 3
    max_insert: int = 2  # pivots inserted per cycle at most (paper: as many as qualify; we cap)
    max_paths: int = 8
    eval_subset: int = 2000  # training examples for dense path evaluation and Hessians
    max_epochs: int = 0  # > epochs: a minimum not certified after `epochs` goes on at the last rate up to this
    max_extra_cycles: int = 0  # AutoNEB cycles added until the path-convergence rule holds
    pairs: str = "tree"  # "tree": the paper's MST heuristic picks the pairs; "all": every pair of minima
    spectrum_max_params: int = 8000  # the exact Hessian off the trivial symmetries up to this many parameters
    finish_rounds: int = 40  # a minimum SGD leaves uncertified is finished by full-batch L-BFGS, this many rounds at most
    finish_iterations: int = 25  # L-BFGS iterations per round


@dataclass(frozen=True)
class DataRef:
    """A dataset of the registry as a worker loads it (:func:`minima.data.train_test`), with the
    digest of the driver's tensors: a worker with other files refuses, and the data's content
    is part of every run's cache key."""

    dataset: str
    digest: str

    @classmethod
    def of(cls, dataset: str) -> "DataRef":
        return cls(dataset, _load(dataset).digest())

    def load(self) -> TrainTest:
        data = _load(self.dataset)
        if data.digest() != self.digest:
            raise RuntimeError(f"{self.dataset} here differs from the driver's (data digest); point MINIMA_DATA "
                               "at the same files on every machine")
        return data


@functools.lru_cache(maxsize=4)
def _load(dataset: str) -> TrainTest:
    """Each worker process loads a dataset once."""
    return train_test(dataset)


def _loaded(data: "DataRef | TrainTest") -> TrainTest:
    """A spec's data: loaded by reference, or a :class:`TrainTest` carried whole (small or
    synthetic data)."""
    return data.load() if isinstance(data, DataRef) else data


def _name(data: "DataRef | TrainTest") -> str:
    return data.dataset if isinstance(data, DataRef) else (data.name or "data")


RECIPE_KEYS = ("epochs", "lr", "batch_size", "max_epochs")


def recipe(architecture_name: str, defaults: dict, overrides: dict[str, dict], dataset: str = "") -> dict:
    """The training recipe of one architecture on one dataset: ``defaults`` (keys
    :data:`RECIPE_KEYS`) updated, in the order given, by every entry of ``overrides`` whose key
    names it: the architecture (``"mlp-8"``), a family of it (``"densenet"`` names
    ``densenet-40-12``, ``"mlp"`` every width; ``"mlp-1"`` names no width), the dataset
    (``"fashion-10k"``) or both (``"fashion-10k mlp-4"``). The paper trains its ResNets as He et
    al. (164 epochs, batch 128) and its DenseNets as Huang et al. (300 epochs, batch 64)."""
    merged = dict(defaults)
    for key, values in overrides.items():
        unknown = set(values) - set(RECIPE_KEYS)
        if unknown:
            raise ValueError(f"recipes[{key!r}] has unknown keys {sorted(unknown)}; use {', '.join(RECIPE_KEYS)}")
        if key in (architecture_name, dataset, f"{dataset} {architecture_name}") or \
                architecture_name.startswith(key + "-"):
            merged.update(values)
    return merged


def plan(datasets, architectures: "list[str] | dict[str, list[str]]", defaults: dict, recipes: dict[str, dict],
         **common) -> dict[tuple[str, str], "Settings"]:
    """The explorations of a page: ``{(dataset, architecture): Settings}`` for every dataset of
    ``datasets`` and every architecture of ``architectures`` (one list for all, or a list per
    dataset), each with its :func:`recipe` and the ``common`` :class:`Settings` fields."""
    grid = {}
    for dataset in datasets:
        names = architectures[dataset] if isinstance(architectures, dict) else architectures
        for name in names:
            grid[(dataset, name)] = Settings(dataset, name, **recipe(name, defaults, recipes, dataset), **common)
    return grid


def make_model(architecture_name: str, data: TrainTest) -> nn.Module:
    shape = data.x_train.shape[1:]
    return architecture(architecture_name, data.n_classes, in_channels=shape[0], n_inputs=int(np.prod(shape)))


def error_rate(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs.argmax(-1) != targets).to(outputs.dtype).mean()


# ----------------------------------------------------------------------------- minima

@dataclass(frozen=True)
class MinimumRecord:
    """A trained minimum: its flat parameters ``point`` ``(D,)``, the full training loss after
    every epoch (``curve``, for the first-passage plot), its certificate
    (:meth:`~minima.geometry.certificate.Certificate.as_row`), its training loss on the
    evaluation subset (the graph's node energy, as paths are evaluated), the same loss at its
    initialisation (``init_energy``: the paper compares saddles with it) and its test loss and
    error (fraction) on the whole test split, and ``symmetry``: the Hessian of the data loss
    off the trivial symmetries (:func:`symmetry_spectrum`; empty when not computed).

    ``finish``: how SGD's end point was finished (``"none"``, or the L-BFGS rounds run, whose
    training losses are ``finish_losses``); ``dead_units``: hidden units that never fire on the
    training set (``-1``: not a ReLU MLP); ``collapsed``: every hidden unit dead, or one class
    predicted for every training example (the constant predictor's basin, not a fit)."""

    point: torch.Tensor
    curve: tuple
    certificate: dict
    train_energy: float
    test_loss: float
    test_error: float
    init_energy: float
    symmetry: dict = field(default_factory=dict)
    finish: str = "none"
    finish_losses: tuple = ()
    dead_units: int = -1
    collapsed: bool = False


@dataclass(frozen=True)
class MinimumRun(Spec):
    """Train one minimum (:func:`train_minimum`) and evaluate it as the paths are evaluated."""

    data: "DataRef | TrainTest"
    architecture: str
    seed: int
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    max_epochs: int
    eval_subset: int
    neb_batch_size: int
    spectrum_max_params: int = 0
    finish_rounds: int = 0
    finish_iterations: int = 25

    def label(self) -> str:
        return f"{_name(self.data)} {self.architecture} minimum {self.seed}"

    def resources(self) -> Resources:
        return Resources(cpus=1, gpus=0.0 if self.architecture.startswith("mlp") else 0.25,
                         estimate_s=max(self.epochs, self.max_epochs) * 0.5)

    def run(self) -> MinimumRecord:
        data = _loaded(self.data)
        model, curve, certificate, initial, finish = train_minimum(self, data, self.seed)
        point = FlatView(model).point()
        energy, metrics = _energy(self.architecture, data, self.neb_batch_size, self.eval_subset)
        dead, collapsed = collapse(model, data)
        return MinimumRecord(point, tuple(curve), certificate, float(energy.data_mean(point[None])[0]),
                             float(metrics["test loss"](point[None])[0]), float(metrics["test error"](point[None])[0]),
                             float(energy.data_mean(initial[None])[0]),
                             symmetry_spectrum(model, data, self.weight_decay, self.spectrum_max_params),
                             finish["finish"], tuple(finish["losses"]), dead, collapsed)


def collapse(model: nn.Module, data: TrainTest) -> tuple[int, bool]:
    """``(dead units, collapsed)`` of a trained ``model`` on the training set (see
    :class:`MinimumRecord`); ``dead units`` is -1 for a network that is not a ReLU MLP."""
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(x).argmax(-1) for x, _ in batches(data.x_train, data.y_train, 2000)])
    constant = bool((predictions == predictions[0]).all())
    try:
        dead = len(dead_units(model, data.x_train))
    except SymmetryError:
        return -1, constant
    hidden = sum(layer.out_features for layer in model.modules() if isinstance(layer, nn.Linear)) - data.n_classes
    return dead, constant or dead == hidden


def train_minimum(run: MinimumRun, data: TrainTest,
                  seed: int) -> tuple[nn.Module, list[float], dict, torch.Tensor, dict]:
    """SGD with momentum 0.9 and weight decay, learning rate divided by 10 at 50 % and 75 % of
    ``run.epochs`` (He et al.'s recipe, scaled). When the convergence certificate (on the
    whole training set) is not ``minimum`` by then, training goes on at the
    last rate, 5 epochs at a time, until it is or ``run.max_epochs`` epochs in all; a point
    still not certified then is finished by full-batch L-BFGS (:func:`finish_minimum`, at most
    ``run.finish_rounds`` rounds). The certificate is of the objective SGD minimised, the loss
    plus the weight-decay term.
    Returns the model (eval mode), the full training loss after every SGD epoch (for the
    first-passage plot), the certificate (:meth:`Certificate.as_row`), the flat point at
    initialisation ``(D,)`` and the finish: ``{"finish": "none" | "L-BFGS, k rounds of n
    iterations", "losses": the training loss after each round}``."""
    torch.manual_seed(seed)
    model = make_model(run.architecture, data)
    initial = FlatView(model).point().clone()
    trainer = Trainer(model, tensor_loss(model, data.x_train, data.y_train), len(data.y_train), lr=run.lr,
                      batch_size=run.batch_size, generator=torch.Generator().manual_seed(seed), momentum=0.9,
                      weight_decay=run.weight_decay, milestones=[int(run.epochs * 0.5), int(run.epochs * 0.75)])
    curve, certificate = [], None
    while certificate is None or (certificate.verdict != "minimum" and len(curve) < run.max_epochs):
        for _ in range(run.epochs if not curve else min(5, run.max_epochs - len(curve))):
            trainer.epoch()
            curve.append(loss_and_accuracy(model, data.x_train, data.y_train, batch_size=1000)[0])
        certificate = _certify(model, run.weight_decay, data, seed, loss_history=curve)
    finish = {"finish": "none", "losses": []}
    if certificate.verdict != "minimum" and run.finish_rounds:
        certificate, losses = finish_minimum(model, run, data, seed)
        finish = {"finish": f"L-BFGS, {len(losses)} rounds of at most {run.finish_iterations} iterations",
                  "losses": losses}
    return model, curve, certificate.as_row(), initial, finish


def finish_minimum(model: nn.Module, run: MinimumRun, data: TrainTest, seed: int):
    """Full-batch L-BFGS (:func:`minima.train.lbfgs_rounds`) from SGD's end point on the
    objective SGD minimised: the mean cross-entropy over the whole training set (eval mode, as
    certified; accumulated over batches of 2,000) plus ``weight_decay / 2 * |theta|^2``. The
    plateau test reads the objective after each round (SGD's per-epoch data losses are
    another quantity: along the valley the data loss can rise while the objective falls);
    once the fit criterion holds, the certificate is asked, and the rounds stop at the first
    ``minimum``. Returns the last certificate and the rounds' training (data) losses."""
    model.eval()
    parameters = [p for p in model.parameters() if p.requires_grad]
    parts = batches(data.x_train, data.y_train, 2000)
    count = len(data.y_train)

    def objective():
        total = 0.0
        for x, y in parts:
            loss = F.cross_entropy(model(x), y, reduction="sum") / count
            loss.backward()
            total += loss.item()
        penalty = run.weight_decay / 2 * sum((p * p).sum() for p in parameters)
        penalty.backward()
        return total + penalty.item()

    objectives, losses, certificate = [], [], None
    for _ in lbfgs_rounds(parameters, objective, run.finish_rounds, run.finish_iterations):
        loss, accuracy = loss_and_accuracy(model, data.x_train, data.y_train, batch_size=2000)
        if not np.isfinite(loss):
            break
        with torch.no_grad():
            objectives.append(loss + run.weight_decay / 2 * float(sum((p * p).sum() for p in parameters)))
        losses.append(loss)
        if fits(accuracy, objectives):
            certificate = _certify(model, run.weight_decay, data, seed, loss_history=objectives)
            if certificate.verdict == "minimum":
                break
    if certificate is None:
        certificate = _certify(model, run.weight_decay, data, seed, loss_history=objectives)
    return certificate, losses


def _certify(model: nn.Module, weight_decay: float, data: TrainTest, seed: int, loss_history=None):
    """The certificate of ``model`` (put in eval mode) for the objective SGD minimised: the mean
    loss over the whole training set plus the weight-decay term."""
    model.eval()
    return certify(HessianOperator(model, F.cross_entropy, batches(data.x_train, data.y_train, 2000)),
                   loss_history=loss_history, seed=seed, weight_decay=weight_decay)


NUMERICAL_ZERO = 1e-6  # |eigenvalue| / lambda_max below which single-precision Hessian products cannot tell it from 0


def symmetry_spectrum(model: nn.Module, data: TrainTest, weight_decay: float, max_params: int) -> dict:
    """The Hessian of the mean training loss (whole training set, no weight decay) at ``model``,
    restricted to the orthogonal complement of the trivial directions (the rescaling of each
    hidden unit and the logit shifts, :func:`minima.geometry.symmetries.trivial_basis`) and of
    the data-null ones (changes of weights that leave the outputs on the training set unchanged:
    inputs zero wherever a unit fires, units that never fire, and more;
    :func:`~minima.geometry.symmetries.data_null_directions`). Exact
    (every eigenvalue) for networks of at most ``max_params`` parameters, else ``{}`` (not
    computed).

    Returns ``n_params``, ``n_trivial`` (symmetry directions), ``n_null`` (data-null ones, some of
    which may lie in the trivial span), ``dead_units`` (hidden units that never fire), ``n_complement`` (the
    dimension left), ``lambda_max_data``, ``smallest_nontrivial`` (the smallest |eigenvalue|
    left, relative to ``lambda_max_data``) and ``nontrivial_vanishing``: how many have
    |eigenvalue| at most ``vanishing_threshold`` = ``weight_decay``, the curvature that the
    training objective adds to every direction (a curvature below it is invisible at the minimum
    SGD found), and ``nontrivial_zero``: how many are at most :data:`NUMERICAL_ZERO` times
    ``lambda_max_data``."""
    params = sum(p.numel() for p in model.parameters())
    if params > max_params:
        return {}
    try:
        symmetric = trivial_basis(model)
    except SymmetryError:  # not a ReLU MLP: its trivial directions are not known here
        return {}
    model.eval()
    operator = HessianOperator(model, F.cross_entropy, batches(data.x_train, data.y_train, 2000))
    null = data_null_directions(model, data.x_train)
    basis = orthonormal_span(torch.cat([symmetric, null], dim=1))
    eigenvalues = complement_eigenvalues(operator, basis, max_dim=max_params).abs()
    lambda_max = float(eigenvalues.max())
    return {"n_params": params, "n_trivial": int(symmetric.shape[1]), "n_null": int(null.shape[1]),
            "dead_units": len(dead_units(model, data.x_train)),
            "n_complement": int(len(eigenvalues)), "lambda_max_data": lambda_max,
            "smallest_nontrivial": float(eigenvalues.min()) / lambda_max,
            "nontrivial_vanishing": int((eigenvalues <= weight_decay).sum()), "vanishing_threshold": weight_decay,
            "nontrivial_zero": int((eigenvalues <= NUMERICAL_ZERO * lambda_max).sum())}


def _energy(architecture_name: str, data: TrainTest, neb_batch_size: int, eval_subset: int):
    """The AutoNEB energy of the architecture on ``data`` (training batches of ``neb_batch_size``,
    dense evaluation on the first ``eval_subset`` training examples) and the test metrics."""
    template = make_model(architecture_name, data)
    train_batches = batches(data.x_train, data.y_train, neb_batch_size)
    eval_batches = batches(data.x_train[:eval_subset], data.y_train[:eval_subset], 1000)
    test_batches = batches(data.x_test, data.y_test, 1000)
    energy = ModelEnergy(template, F.cross_entropy, train_batches, eval_batches=eval_batches, seed=0)
    metrics = {"test loss": lambda pts: energy.data_mean(pts, batches=test_batches),
               "test error": lambda pts: energy.data_mean(pts, metric=error_rate, batches=test_batches)}
    return energy, metrics


# ----------------------------------------------------------------------------- paths

@dataclass(frozen=True)
class PathRun(Spec):
    """One AutoNEB path between the minima ``a`` and ``b`` (flat points ``start``, ``end``), with
    the straight line between them, the path-convergence rule and the saddle's certificate.
    Returns the path's summary (:meth:`minima.paths.neb.EnergyPath.summary` with ``straight``,
    ``converged`` and ``certificate_saddle``)."""

    data: "DataRef | TrainTest"
    architecture: str
    a: str
    b: str
    start: torch.Tensor
    end: torch.Tensor
    neb_batch_size: int
    cycle_scale: float
    n_initial: int
    max_insert: int
    eval_subset: int
    max_extra_cycles: int
    weight_decay: float

    def label(self) -> str:
        return f"{_name(self.data)} {self.architecture} path {self.a}-{self.b}"

    def resources(self) -> Resources:
        return self.resources_of(self)

    @staticmethod
    def resources_of(settings) -> Resources:
        """The resources of a path of ``settings`` (anything with ``architecture`` and
        ``cycle_scale``): known before its pair is."""
        return Resources(cpus=1, gpus=0.0 if settings.architecture.startswith("mlp") else 0.5,
                         estimate_s=sum(c["steps"] for c in scaled_cycles(settings.cycle_scale)) * 0.02)

    def run(self) -> dict:
        data = _loaded(self.data)
        energy, metrics = _energy(self.architecture, data, self.neb_batch_size, self.eval_subset)
        path = auto_neb(energy, self.start, self.end, cycles=scaled_cycles(self.cycle_scale), n_initial=self.n_initial,
                        max_insert=self.max_insert, metrics=metrics, max_extra_cycles=self.max_extra_cycles)
        straight = linear_path(energy, self.start, self.end, n=len(path.pivots), metrics=metrics)
        saddle = FlatView(energy.model).load(path.dense_point(path.saddle_index))
        return {**path.summary(), "straight": straight.summary(), "converged": is_converged(path),
                "certificate_saddle": _certify(saddle, self.weight_decay, data, 0).as_row()}


@dataclass
class Exploration:
    """The outcome of :func:`explore`: the settings, the graph of minima and paths, the minima's
    records by key (``str(seed)``) and the runs that failed (shown on the page)."""

    settings: Settings
    graph: MinimaGraph
    minima: dict[str, MinimumRecord]
    failures: list = field(default_factory=list)

    @property
    def test_at_minima(self) -> dict[str, tuple[float, float]]:
        """``{minimum: (test loss, test error)}``."""
        return {key: (m.test_loss, m.test_error) for key, m in self.minima.items()}


def minimum_runs(settings: Settings, data: DataRef) -> list[MinimumRun]:
    return [MinimumRun(data, settings.architecture, seed, settings.epochs, settings.lr, settings.batch_size,
                       settings.weight_decay, settings.max_epochs, settings.eval_subset, settings.neb_batch_size,
                       settings.spectrum_max_params, settings.finish_rounds, settings.finish_iterations)
            for seed in settings.seeds]


def path_run(settings: Settings, data: DataRef, a: str, b: str, found: dict[str, MinimumRecord]) -> PathRun:
    return PathRun(data, settings.architecture, a, b, found[a].point, found[b].point, settings.neb_batch_size,
                   settings.cycle_scale, settings.n_initial, settings.max_insert, settings.eval_subset,
                   settings.max_extra_cycles, settings.weight_decay)


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
    :func:`minima.runs.run_all`. Returns the explorations in the order of ``settings``."""
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


# ----------------------------------------------------------------------------- the summary table

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
                "lambda_max_saddle", "grad_norm_saddle", "cycles", "saddle_change_last_cycles")


def path_rows(exploration: Exploration) -> list[dict]:
    """One row per path (:data:`PATH_COLUMNS` and a few more; ``in_tree``: an edge of the MST): the two minima's losses and
    certificates, the saddle (training loss, position along the path, test error there, the
    extreme Hessian eigenvalues and gradient norm of its certificate), the
    straight-line barrier, and the path's convergence (cycles run, saddle change over the last
    two cycles, whether that is within 5 % of the saddle-minus-minimum gap). Test errors in %."""
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
                     "in_tree": (a, b) in tree, "hidden": _width(exploration.settings.architecture)})
    return rows


def network_name(architecture_name: str) -> str:
    """How a page names an architecture: ``"width 8"`` for ``mlp-8`` (one hidden layer of 8
    units), else the name itself (``resnet-20``)."""
    return f"width {architecture_name.split('-')[1]}" if architecture_name.startswith("mlp-") else architecture_name


def _width(architecture_name: str) -> float:
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
             "hidden": _width(exploration.settings.architecture), **record.symmetry,
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
                     "saddle excess (median)": part.excess.median(), "excess q25": part.excess.quantile(0.25),
                     "excess q75": part.excess.quantile(0.75), "saddle / higher minimum": part.ratio.median(),
                     "straight-line barrier": part.straight_barrier.median(),
                     "share of the way to initialisation": part.share.median(),
                     "test error minima %": part.test_error_minima.median(),
                     "test error saddles %": part.test_error_saddle.median(), "error rise (points)": part.rise.median(),
                     "vanishing non-trivial eigenvalues": counted.median() if len(counted) else float("nan")})
    return pd.DataFrame(rows)
