"""One run of Table 1 (task, size, model, batch size, seed): the :class:`Table1Run` spec that
:func:`minima.runs.run_all` executes, and :func:`train_run`, which builds the model
(:func:`~.arms.build`), trains it with :func:`minima.train.fit`, certifies and measures the
paper protocol's end point, then takes it through the run's other protocols."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch

from ...core.spectrum import spectral_density
from ...data import TrainTest, stratified_split, stratified_subset
from ...geometry.certificate import Rule
from ...geometry.flatness import MEASURES
from ...runs import Resources, Spec
from ...train import fit
from .arms import build
from .protocols import PROTOCOLS
from .training import Training
from .records import Table1Record, Table1Row, TrainedRun
from .tasks import TaskRef


@dataclass(frozen=True)
class Table1Run(Spec):
    """One run of Table 1: build ``model`` (an arm of :data:`~.arms.ARMS`) with ``hidden`` units
    for ``seed``, train it by the paper's protocol on the first ``train_limit`` training examples
    (0: all; a stratified trim, :func:`minima.data.stratified_subset`), certify and measure its
    end point; then take each protocol of ``protocols`` (:mod:`.protocols`) from that end point.
    ``validation``: train on 80 % of those examples and take the other 20 % (stratified, seed
    0) as the test set (choosing ``lambda`` never sees the test set). Every run trains
    alone (one model per process), so its numbers do not depend on the other runs. ``kernel``
    is what runs the SGD epochs (:func:`minima.train.choose_kernel`: ``"auto"`` takes the
    compiled kernel for every network of the table); it is part of the spec, so of the cache key."""

    task: "TaskRef | TrainTest"  # a TrainTest is carried whole (small or synthetic data)
    hidden: int
    model: str
    batch: int
    seed: int
    lr: float
    max_epochs: int
    schedule_scale: float
    hessian_subset: int
    small: bool
    train_limit: int = 0
    validation: bool = False
    protocols: tuple = ()
    rule: Rule = Rule()
    measures: tuple = tuple(MEASURES)
    density: bool = False
    kernel: str = "auto"

    def __post_init__(self):
        # the protocols' module is imported here, so that it is part of every run's cache key
        unknown = [p for p in self.protocols if getattr(p, "name", None) not in PROTOCOLS]
        if unknown:
            raise ValueError(f"unknown protocols {unknown}; use the classes of {', '.join(PROTOCOLS)}")

    def label(self) -> str:
        name = self.task.dataset if isinstance(self.task, TaskRef) else self.task.name
        return f"{name} {self.hidden} {self.model} batch {self.batch} seed {self.seed}"

    def resources(self) -> Resources:
        # one SGD step costs about (batch-independent dispatch + batch x hidden work); a rough
        # CPU-second estimate for --plan, not a measurement
        epochs = max([self.max_epochs] + [getattr(p, 'max_epochs', 0) for p in self.protocols])
        steps = (self.train_limit or 10_000) / self.batch * epochs
        return Resources(cpus=1, estimate_s=steps * (2e-4 + 2e-6 * self.batch * self.hidden / 100))

    def run(self) -> Table1Record:
        return train_run(self).record


def training_data(task: TrainTest, limit: int, validation: bool) -> tuple[TrainTest, torch.Tensor, torch.Tensor]:
    """``(task, x_train, y_train)``: the first ``limit`` training examples of each class in
    their share (0: all of them); with ``validation``, 80 % of those to train on and the task's
    test set replaced by the other 20 %."""
    index = torch.from_numpy(stratified_subset(task.y_train.numpy(), limit or len(task.y_train)))
    if validation:
        train, held_out = stratified_split(task.y_train[index].numpy())
        task = replace(task, x_test=task.x_train[index[held_out]], y_test=task.y_train[index[held_out]])
        index = index[train]
    return task, task.x_train[index], task.y_train[index]


def prepare(spec: Table1Run) -> Training:
    """The run of ``spec`` before its first epoch: task (trimmed), network built for the seed with
    its growth schedule scaled, and the batch generator."""
    task = spec.task.load() if isinstance(spec.task, TaskRef) else spec.task
    task, x_train, y_train = training_data(task, spec.train_limit, spec.validation)
    torch.manual_seed(spec.seed)
    network = build(task, spec.model, spec.hidden, spec.seed, spec.small)
    if network.growth is not None:
        network.growth = network.growth.scaled(spec.schedule_scale)
    return Training(spec, task, network, x_train, y_train, torch.Generator().manual_seed(spec.seed))


def paper_schedule_row(run: Training, protocol: str, target_loss: float | None = None) -> Table1Row:
    """Train ``run`` from its start by the paper's schedule (SGD at its rate and batch, growth),
    until 100 % training accuracy after growth or, with ``target_loss``, the first epoch after
    growth whose training loss is at most that; then the row of ``protocol`` at that end point
    (certificate and measures on the refreshed Hessian data)."""
    spec, network = run.spec, run.network
    start = time.perf_counter()
    result = fit(network.full, run.x_train, run.y_train, lr=spec.lr, batch_size=spec.batch,
                 max_epochs=spec.max_epochs, generator=run.generator, growth=network.growth, kernel=spec.kernel,
                 target_loss=target_loss)
    train_seconds = time.perf_counter() - start
    run.refresh_hessian_data()
    return Table1Row(run.task.name, spec.hidden, spec.model, spec.batch, spec.seed, network.parameters, network.depth,
                     result.samples_per_second, torch.get_num_threads(), result.kernel, protocol, result.stopped,
                     "none", train_seconds, **run.measure(result.epochs), train_examples=len(run.y_train),
                     target_loss=math.nan if target_loss is None else target_loss)


def train_run(spec: Table1Run) -> TrainedRun:
    """Execute ``spec`` (what :meth:`Table1Run.run` does) and keep the trained model."""
    run = prepare(spec)
    paper = paper_schedule_row(run, "paper")
    network = run.network
    rows, start_point = [paper], run.snapshot() if len(spec.protocols) > 1 else None
    for k, protocol in enumerate(spec.protocols):
        if k:
            run.restore(start_point)
        rows.append(protocol.end_point(run, paper.curve, paper))
    density = None
    if spec.density:
        density = spectral_density(run.hessian(), n_vectors=2, n_steps=30, generator=torch.Generator().manual_seed(0))
    return TrainedRun(Table1Record(tuple(rows), density), network.full, network.net, run.hessian_data)
