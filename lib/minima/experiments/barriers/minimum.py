"""The minima of a no-barriers exploration: one :class:`MinimumRun` per seed, trained by SGD
with momentum and weight decay, finished to a certified minimum of that same objective
(:func:`minima.geometry.finish.finish`), checked for collapse, and its Hessian seen off the
trivial symmetries."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ...core.hessian import HessianOperator
from ...core.parameters import FlatView
from ...data import TrainTest, batches
from ...geometry.certificate import certify
from ...geometry.finish import Objective, finish
from ...geometry.symmetries import (SymmetryError, complement_eigenvalues, data_null_directions, dead_units,
                                    orthonormal_span, trivial_basis)
from ...runs import Resources, Spec
from ...train import Trainer, loss_and_accuracy, tensor_loss
from .data import DataRef, energy_of, loaded, make_model, name_of


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
        return f"{name_of(self.data)} {self.architecture} minimum {self.seed}"

    def resources(self) -> Resources:
        return Resources(cpus=1, gpus=0.0 if self.architecture.startswith("mlp") else 0.25,
                         estimate_s=max(self.epochs, self.max_epochs) * 0.5)

    def run(self) -> MinimumRecord:
        data = loaded(self.data)
        model, curve, certificate, initial, finish = train_minimum(self, data, self.seed)
        point = FlatView(model).point()
        energy, metrics = energy_of(self.architecture, data, self.neb_batch_size, self.eval_subset)
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
        certificate = certify_minimum(model, run.weight_decay, data, seed, loss_history=curve)
    finish = {"finish": "none", "losses": []}
    if certificate.verdict != "minimum" and run.finish_rounds:
        certificate, losses = finish_minimum(model, run, data, seed)
        finish = {"finish": f"L-BFGS, {len(losses)} rounds of at most {run.finish_iterations} iterations",
                  "losses": losses}
    return model, curve, certificate.as_row(), initial, finish


def finish_minimum(model: nn.Module, run: MinimumRun, data: TrainTest, seed: int):
    """The one finish (:func:`minima.geometry.finish.finish`) from SGD's end point on the
    objective SGD minimised: the mean cross-entropy over the whole training set (eval mode, as
    certified; accumulated over batches of 2,000) plus ``weight_decay / 2 * |theta|^2``. The
    plateau test reads the objective after each round (SGD's per-epoch data losses are
    another quantity: along the valley the data loss can rise while the objective falls).
    Returns the certificate and the rounds' training (data) losses."""
    objective = Objective(model, data.x_train, data.y_train, weight_decay=run.weight_decay, chunk=2000)
    done = finish(objective, run.finish_rounds, run.finish_iterations, seed=seed)
    return done.certificate, done.losses


def certify_minimum(model: nn.Module, weight_decay: float, data: TrainTest, seed: int, loss_history=None):
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
