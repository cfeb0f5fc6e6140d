"""The "no barriers" experiment (Draxler et al. 2018, section 4): minima, AutoNEB paths, summary.

For one architecture on one dataset: train several minima from different seeds, connect
pairs chosen by the MST heuristic (:class:`minima.paths.landscape.MinimaGraph`) with AutoNEB,
evaluate every final path densely (training loss, test loss, test error) beside the
straight line between the same minima, and summarise the minimum spanning tree's
saddles as in the paper's table.

Everything expensive is cached under ``cache_dir / key`` where ``key`` hashes every setting
that affects the result and the library's source: trained minima (``minimum-<seed>.pt``) and the graph with its path
summaries (``graph.json``, rewritten atomically after every path), so a re-run with the
same settings reuses them and an interrupted run resumes at the next path.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..geometry.certificate import certify
from ..data import TrainTest, batches
from ..paths.landscape import MinimaGraph
from ..models import architecture
from ..paths.energy import ModelEnergy
from ..paths.neb import auto_neb, is_converged, linear_path, metric_at_saddle, saddle_change, scaled_cycles
from ..core.parameters import FlatView
from ..core.io import atomic_write
from ..core.source import library_digest
from ..train import Trainer, loss_and_accuracy, tensor_loss


@dataclass
class Settings:
    """Everything that determines the minima and the paths of one exploration."""

    dataset: str
    architecture: str
    seeds: list = field(default_factory=lambda: [0, 1, 2, 3, 4])
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

    def key(self) -> str:
        """The cache folder's name: a hash of these settings and of the library's source, so
        minima and paths are recomputed after any change to the code that made them."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        digest.update(library_digest())
        return digest.hexdigest()[:16]


RECIPE_KEYS = ("epochs", "lr", "batch_size", "max_epochs")


def recipe(architecture_name: str, defaults: dict, overrides: dict[str, dict]) -> dict:
    """The training recipe of one architecture: ``defaults`` (keys :data:`RECIPE_KEYS`) updated by
    every entry of ``overrides`` whose key begins ``architecture_name`` (``"densenet"`` matches
    ``densenet-40-12``), in the order given. The paper trains its ResNets as He et al. (164 epochs,
    batch 128) and its DenseNets as Huang et al. (300 epochs, batch 64)."""
    merged = dict(defaults)
    for prefix, values in overrides.items():
        unknown = set(values) - set(RECIPE_KEYS)
        if unknown:
            raise ValueError(f"recipes[{prefix!r}] has unknown keys {sorted(unknown)}; use {', '.join(RECIPE_KEYS)}")
        if architecture_name.startswith(prefix):
            merged.update(values)
    return merged


def make_model(settings: Settings, data: TrainTest) -> nn.Module:
    shape = data.x_train.shape[1:]
    return architecture(settings.architecture, data.n_classes, in_channels=shape[0], n_inputs=int(np.prod(shape)))


def error_rate(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs.argmax(-1) != targets).to(outputs.dtype).mean()


# ----------------------------------------------------------------------------- minima

def train_minimum(settings: Settings, data: TrainTest, seed: int) -> tuple[nn.Module, list[float], dict]:
    """SGD with momentum 0.9 and weight decay, learning rate divided by 10 at 50 % and 75 % of
    ``settings.epochs`` (He et al.'s recipe, scaled). When the convergence certificate (on the
    whole training set) is not ``minimum`` by then, training goes on at the
    last rate, 5 epochs at a time, until it is or ``settings.max_epochs`` epochs in all. The
    certificate is of the objective SGD minimised, the loss plus the weight-decay term.
    Returns the model (eval mode), the full training loss after every epoch (for the
    first-passage plot) and the certificate (:meth:`Certificate.as_row`)."""
    torch.manual_seed(seed)
    model = make_model(settings, data)
    trainer = Trainer(model, tensor_loss(model, data.x_train, data.y_train), len(data.y_train), lr=settings.lr,
                      batch_size=settings.batch_size, generator=torch.Generator().manual_seed(seed), momentum=0.9,
                      weight_decay=settings.weight_decay, milestones=[int(settings.epochs * 0.5), int(settings.epochs * 0.75)])
    curve, certificate = [], None
    while certificate is None or (certificate.verdict != "minimum" and len(curve) < settings.max_epochs):
        for _ in range(settings.epochs if not curve else min(5, settings.max_epochs - len(curve))):
            trainer.epoch()
            curve.append(loss_and_accuracy(model, data.x_train, data.y_train, batch_size=1000)[0])
        certificate = _certify(model, settings, data, seed, loss_history=curve)
    return model, curve, certificate.as_row()


def _certify(model: nn.Module, settings: Settings, data: TrainTest, seed: int, loss_history=None):
    """The certificate of ``model`` (put in eval mode) for the objective SGD minimised: the mean
    loss over the whole training set plus the weight-decay term."""
    model.eval()
    return certify(model, F.cross_entropy, batches(data.x_train, data.y_train, 2000), loss_history=loss_history,
                   seed=seed, weight_decay=settings.weight_decay)


class Cache:
    """Files of one exploration under ``root / settings.key()``; writes are atomic."""

    def __init__(self, root: str | os.PathLike, settings: Settings):
        self.dir = Path(root) / settings.key()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "settings.json").write_text(json.dumps(asdict(settings), indent=2))

    def minimum(self, seed: int) -> Path:
        return self.dir / f"minimum-{seed}.pt"

    @property
    def graph(self) -> Path:
        return self.dir / "graph.json"

    def save(self, path: Path, obj) -> None:
        atomic_write(path, lambda handle: torch.save(obj, handle))


def minima(settings: Settings, data: TrainTest, cache: Cache, progress=None) -> dict[str, dict]:
    """``{seed: {"point": flat parameters, "curve": losses per epoch, "certificate": dict}}``,
    trained or from the cache."""
    found = {}
    for seed in settings.seeds:
        file = cache.minimum(seed)
        if file.exists():
            record = torch.load(file)
        else:
            model, curve, certificate = train_minimum(settings, data, seed)
            record = {"point": FlatView(model).point(), "curve": curve,
                      "certificate": certificate}
            cache.save(file, record)
        found[str(seed)] = record
        if progress:
            progress(f"minimum {seed}")
    return found


# ----------------------------------------------------------------------------- paths

def certificate_at(template: nn.Module, point: torch.Tensor, settings: Settings, data: TrainTest, seed: int = 0) -> dict:
    """The convergence certificate (:meth:`Certificate.as_row`) at ``point``, exactly as the
    minima are certified in :func:`train_minimum`: the whole training set, the objective with
    the weight-decay term. At a saddle its verdict is expected to be ``negative curvature``."""
    return _certify(FlatView(template).load(point), settings, data, seed).as_row()


def explore(settings: Settings, data: TrainTest, cache_dir: str | os.PathLike, progress=None) -> tuple[MinimaGraph, dict]:
    """Train (or load) the minima, then connect pairs suggested by the MST heuristic until the
    tree is stable or ``max_paths`` paths exist. Returns the graph and the minima records."""
    cache = Cache(cache_dir, settings)
    found = minima(settings, data, cache, progress)
    template = make_model(settings, data)
    train_batches = batches(data.x_train, data.y_train, settings.neb_batch_size)
    eval_batches = batches(data.x_train[: settings.eval_subset], data.y_train[: settings.eval_subset], 1000)
    test_batches = batches(data.x_test, data.y_test, 1000)
    energy = ModelEnergy(template, F.cross_entropy, train_batches, eval_batches=eval_batches, seed=0)
    metrics = {"test loss": lambda pts: energy.data_mean(pts, batches=test_batches),
               "test error": lambda pts: energy.data_mean(pts, metric=error_rate, batches=test_batches)}
    graph = MinimaGraph.load(cache.graph) if cache.graph.exists() else MinimaGraph()
    for key, record in found.items():
        if key not in graph.minima:
            graph.add_minimum(key, float(energy.data_mean(record["point"][None])[0]))
    while len(graph.paths) < settings.max_paths:
        pair = graph.suggest_pair()
        if pair is None:
            break
        a, b = pair
        start, end = found[a]["point"], found[b]["point"]
        path = auto_neb(energy, start, end, cycles=scaled_cycles(settings.cycle_scale), n_initial=settings.n_initial,
                        max_insert=settings.max_insert, metrics=metrics, max_extra_cycles=settings.max_extra_cycles)
        straight = linear_path(energy, start, end, n=len(path.pivots), metrics=metrics)
        summary = path.summary()
        summary["straight"] = straight.summary()
        summary["converged"] = is_converged(path)
        summary["certificate_saddle"] = certificate_at(template, path.dense_point(path.saddle_index), settings, data)
        graph.add_path(a, b, summary)
        graph.save(cache.graph)
        if progress:
            progress(f"path {a}-{b}: saddle {path.saddle_energy:.4g}")
    tests = graph.extra.setdefault("test_minima", {})
    for key, record in found.items():  # test metrics at the minima, kept in the graph file
        if key not in tests:
            point = record["point"][None]
            tests[key] = (float(metrics["test loss"](point)[0]), float(metrics["test error"](point)[0]))
    graph.save(cache.graph)
    return graph, found


# ----------------------------------------------------------------------------- the summary table

def summary_row(graph: MinimaGraph, test_at_minima: dict[str, tuple[float, float]]) -> dict:
    """The paper's columns for one architecture, from the MST of saddle energies.

    ``test_at_minima[key] = (test loss, test error)`` of each minimum. Minima columns average
    over all minima; saddle columns over the MST edges, at each path's saddle (the highest
    point of the training loss), with test loss and error taken at that same point.
    """
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


def path_rows(architecture_name: str, graph: MinimaGraph, found: dict, dataset: str = "") -> list[dict]:
    """One row per MST edge (:data:`PATH_COLUMNS` and a few more): the two minima's losses and
    certificates, the saddle (training loss, position along the path, test error there, the
    extreme Hessian eigenvalues and gradient norm of its certificate), the
    straight-line barrier, and the path's convergence (cycles run, saddle change over the last
    two cycles, whether that is within 5 % of the saddle-minus-minimum gap). Test errors in %."""
    rows = []
    for a, b in sorted(tuple(sorted(e)) for e in graph.mst().edges):
        path = graph.paths[(a, b)]  # keys are sorted pairs
        start, end = found[a]["certificate"], found[b]["certificate"]
        tests = graph.extra["test_minima"]
        rows.append({"dataset": dataset, "architecture": architecture_name, "pair": f"{a}-{b}",
                     "train_loss_start": graph.minima[a], "train_loss_end": graph.minima[b],
                     "train_loss_saddle": path["saddle_energy"], "saddle_position": path["saddle_position"],
                     "straight_barrier": max(path["straight"]["energies"]),
                     "test_error_minima": 100 * (tests[a][1] + tests[b][1]) / 2,
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
                     "saddle_at_an_end": path["saddle_position"] in (0.0, 1.0)})
    return rows
