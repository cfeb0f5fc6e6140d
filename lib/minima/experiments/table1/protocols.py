"""Table 1's protocols after the paper's own: how a run in progress (:class:`Training`) is
taken from the paper protocol's end point to another end-point row.

Every run first trains by the paper's protocol (its schedule, stopped at 100 % training
accuracy or its epoch cap: the ``paper`` row that :func:`~.run.train_run` makes). Each protocol
of the run's ``protocols`` then starts from that end point: a small frozen dataclass with a
``name`` and ``end_point(run, paper_epochs, paper_row) -> Table1Row``, listed in
:data:`PROTOCOLS`.

- ``converged`` (:class:`Converged`): SGD goes on, then the one finish on the plain cross-entropy
  (which has no finite minimum on separable data: its flatness falls with its loss);
- ``regularised`` (:class:`Regularised`): the one finish, in float64, to a certified minimum of
  the cross-entropy plus ``lambda / 2 * |theta|^2``, one ``lambda`` per task: a point that
  exists and is the same objective for every arm.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from ...geometry.certificate import Certificate, Rule, certify, fits
from ...geometry.finish import Objective, finish, stability
from ...geometry.flatness import measure
from ...train import fit
from .records import Table1Row
from .training import Training


@dataclass(frozen=True)
class Converged:
    """The ``converged`` protocol: a run whose certificate is not ``minimum`` after the paper's
    protocol goes on with plain SGD at ``lr`` (one rate per task), same batch, ``chunk`` epochs
    at a time, until its certificate says ``minimum`` or ``max_epochs`` epochs in all. A run
    still not certified then is finished by full-batch L-BFGS on the certificate's own problem
    (the network part on the whole training set; for text the embedding held at its trained
    value, as the Hessian holds it), ``finish_rounds`` rounds of ``finish_iterations``
    iterations at most, each round's loss joining the loss history (a round counts as an epoch
    of the plateau rule), the certificate asked whenever the fit criterion holds:
    SGD at a constant rate ends in a noise ball whose loss never plateaus by the rule
    (``finish_rounds=0``: no finish)."""

    lr: float
    max_epochs: int
    chunk: int = 10
    finish_rounds: int = 40
    finish_iterations: int = 25
    name: ClassVar[str] = "converged"

    def end_point(self, run: Training, paper_epochs: list[dict], paper: Table1Row) -> Table1Row:
        return converge(run, self, paper_epochs, paper)


def per_batch(value, batch_size: int):
    """A parameter that may differ by batch size: ``value[batch_size]`` when ``value`` is a dict
    keyed by batch size, else ``value`` itself."""
    if isinstance(value, dict):
        if batch_size not in value:
            raise ValueError(f"no value for batch size {batch_size} in {value}; give one per batch size")
        return value[batch_size]
    return value


def converge(run: Training, go_on: Converged, paper_epochs: list[dict], paper: Table1Row) -> Table1Row:
    """The ``converged`` row: continue the run from the paper protocol's end point (see
    :class:`Converged`), leaving ``run``'s Hessian data at the final point. For text the Hessian data
    is recomputed after training: the embedding that feeds the network part trains too."""
    if paper.certificate.verdict == "minimum":
        return replace(paper, protocol="converged", stopped="certified minimum (paper protocol)")
    spec = run.spec
    epochs, seconds, verdict = list(paper_epochs), paper.train_seconds, paper.certificate.verdict
    stale = False  # True once the text model's embedding has trained past the Hessian data
    certificate = None  # the last one, while it is of the current point
    while verdict != "minimum" and epochs[-1]["epoch"] < go_on.max_epochs:
        certificate = None
        start = time.perf_counter()
        more = fit(run.network.full, run.x_train, run.y_train, lr=go_on.lr, batch_size=spec.batch,
                   generator=run.generator, max_epochs=min(go_on.chunk, go_on.max_epochs - epochs[-1]["epoch"]),
                   target_accuracy=math.inf, kernel=spec.kernel)
        seconds += time.perf_counter() - start
        epochs += [{**e, "epoch": e["epoch"] + epochs[-1]["epoch"]} for e in more.epochs]
        losses = [e["loss"] for e in epochs]
        stale = stale or bool(run.task.vocabulary)
        if fits(epochs[-1]["accuracy"], losses, spec.rule):  # the Hessian only when the certificate can pass
            if stale:  # refreshed only when read: most chunks of a long run end without a certificate
                run.refresh_hessian_data()
                stale = False
            certificate = certify(run.hessian(), loss_history=losses, rule=spec.rule, seed=spec.seed)
            verdict = certificate.verdict
    if stale:
        run.refresh_hessian_data()
    finish, finish_losses = "none", []
    if verdict != "minimum" and go_on.finish_rounds:
        start = time.perf_counter()
        certificate, finish_losses = _finish(run, go_on, [e["loss"] for e in epochs])
        seconds += time.perf_counter() - start
        finish = f"L-BFGS, {len(finish_losses)} rounds of {go_on.finish_iterations} iterations"
    point = run.measure(epochs, certificate)
    stopped = "certified minimum" if point["certificate"].verdict == "minimum" else \
        f"cap of {go_on.max_epochs} epochs" + (" and the L-BFGS finish" if finish != "none" else "")
    return replace(paper, protocol="converged", stopped=stopped, finish=finish, train_seconds=seconds,
                   finish_losses=tuple(finish_losses), **point)


def _finish(run: Training, go_on: Converged, losses: list[float]) -> tuple[Certificate, list[float]]:
    """The ``converged`` protocol's finish (:func:`minima.geometry.finish.finish`) on the network
    part's mean cross-entropy over the whole training set, inputs fixed (for text, the trained
    embedding's output), the certificate on the Hessian data. Returns the last certificate and
    the rounds' losses. ``run``'s Hessian data must be current on entry; the finish leaves the
    inputs, and so the data, unchanged."""
    spec = run.spec
    objective = Objective(run.network.net, run.features(run.x_train), run.y_train, hessian_data=run.hessian_data)
    done = finish(objective, go_on.finish_rounds, go_on.finish_iterations, rule=spec.rule, seed=spec.seed,
                  history=losses)
    return done.certificate, done.losses


# the fit criterion of the regularised finish: the objective's plateau alone (100 % training
# accuracy says nothing about a minimum of a penalised loss), in float64, over 3 rounds
REGULARISED_RULE = Rule(accuracy=math.inf, plateau_rtol=1e-5, plateau_epochs=3)


@dataclass(frozen=True)
class Regularised:
    """The ``regularised`` protocol: from the paper protocol's end point, the network part (for
    text behind the embedding held at its trained value, as the Hessian holds it) is copied to
    float64 and finished (:func:`minima.geometry.finish.finish`) on the mean cross-entropy over
    the whole training set plus ``weight_decay / 2 * |theta|^2``, at most ``rounds`` rounds of
    ``iterations`` L-BFGS iterations, the certificate on that objective (its Hessian is the
    cross-entropy's shifted by ``weight_decay``) with :data:`REGULARISED_RULE`. The flatness
    measures are the cross-entropy's Hessian on the same data there. A certified point must
    also pass :func:`~minima.geometry.finish.stability`: one more round moves no measure by
    ``stability_tolerance`` or more, else its verdict is ``not converged``. The run's own model
    is left at the paper protocol's end point."""

    weight_decay: float
    rounds: int = 200
    iterations: int = 25
    stability_tolerance: float = 0.01
    chunk: int = 2000
    name: ClassVar[str] = "regularised"

    def end_point(self, run: Training, paper_epochs: list[dict], paper: Table1Row) -> Table1Row:
        spec, start = run.spec, time.perf_counter()
        net = copy.deepcopy(run.network.net).double()
        features = run.features(run.x_train).double()
        objective = Objective(net, features, run.y_train, weight_decay=self.weight_decay, chunk=self.chunk)
        done = finish(objective, self.rounds, self.iterations, rule=REGULARISED_RULE, seed=spec.seed)
        finish_seconds = time.perf_counter() - start
        start = time.perf_counter()
        certificate = done.certificate
        hessian = objective.hessian()
        # the certificate's lambda_max is H + lambda I's: the cross-entropy's is lambda less (the
        # same Lanczos run, every eigenvalue shifted exactly), so "plain" is not computed twice
        plain = replace(certificate, lambda_max=certificate.lambda_max - self.weight_decay)
        values = measure(hessian, spec.measures, seed=spec.seed, blocks="depth", certificate=plain)
        theta = float(hessian.parameters_vector().norm())
        collapse = run.direct_map(net, objective.hessian_data)
        change = float("nan")
        if certificate.verdict == "minimum":
            change = stability(objective, values, lambda: measure(objective.hessian(), spec.measures, seed=spec.seed,
                                                                  blocks="depth"), self.iterations)
            if not change < self.stability_tolerance:
                certificate = replace(certificate, verdict="not converged")
        with torch.no_grad():
            net.eval()
            test_features = run.features(run.task.x_test).double()
            test_accuracy = float((net(test_features).argmax(1) == run.task.y_test).double().mean())
        stopped = "certified minimum of the regularised objective" if certificate.verdict == "minimum" else \
            (f"stability test failed ({change:.1%} change)" if done.certificate.verdict == "minimum"
             else f"cap of {self.rounds} L-BFGS rounds")
        return replace(paper, protocol=self.name, stopped=stopped, finish=done.describe() + " (float64)",
                       train_seconds=paper.train_seconds + finish_seconds, certificate=certificate, measures=values,
                       test_accuracy=test_accuracy, hessian_seconds=time.perf_counter() - start,
                       finish_losses=tuple(done.losses), weight_decay=self.weight_decay,
                       objective=done.objectives[-1] if done.objectives else float("nan"), theta_norm=theta,
                       stability=change, **collapse)


# every protocol a run can take after the paper's: name -> class
PROTOCOLS = {protocol.name: protocol for protocol in (Converged, Regularised)}
