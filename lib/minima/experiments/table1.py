"""Table 1 of the growing-network paper: grown versus fully connected networks.

One *run* of the table is (task, size, model, batch size, seed), a :class:`Table1Run` spec
executed by :func:`minima.runs.run_all`: build the model (:func:`build`), train it with
:func:`minima.train.fit`, then certify the final point (:mod:`minima.geometry.certificate`)
and measure test accuracy and the three flatness measures there, on one fixed subset of
the training set. The ``converged`` protocol (:class:`GoOn`) continues a run that the
certificate does not call a minimum. :func:`plan` lists every run of the table from its
:class:`Settings` (notebook 40's parameters); :func:`results_table` turns the records into
the results file.

Architectures are given as fractions of the hidden budget ``H``, as in the paper:
``a`` one layer of ``H``, ``b`` ``0.8H`` then ``0.2H``, ``c`` ``0.6H, 0.3H, 0.1H``
(500 -> 400+100 and 300+150+50 for MNIST; 100 -> 80+20 and 60+30+10 for AG News).
The grown network ends with exactly the parameter count of architecture ``a``.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry.certificate import Certificate, Rule, certify, fits
from ..data import TrainTest, batches, load, load_each, train_test
from ..geometry.flatness import MEASURES, measure
from ..growing import GrowingNet, GrowthPlan, GrowthSchedule, fan_in_for_budget, fully_connected_parameters
from ..models import mlp
from ..data.text import Vocabulary
from .papers import GROWING_INSERTIONS
from ..core.hessian import HessianOperator
from ..core.spectrum import spectral_density
from ..runs import Resources, Spec
from ..train import fit, lbfgs_rounds, loss_and_accuracy

ARCHITECTURES = {"a": (1.0,), "b": (0.8, 0.2), "c": (0.6, 0.3, 0.1)}


def image_task(dataset: str, name: str = "MNIST") -> TrainTest:
    """Flat images ``(N, pixels)``."""
    images = train_test(dataset)
    return replace(images, x_train=images.x_train.flatten(1), x_test=images.x_test.flatten(1), name=name,
                   comparable=dataset.startswith("mnist"))


def text_task(dataset: str, embedding_dim: int, max_tokens: int = 64, name: str = "AG News") -> TrainTest:
    """Token ids padded with 0 to ``max_tokens``; the vocabulary comes from the training split."""
    train, test = load(dataset, "train"), load(dataset, "test")
    vocab = Vocabulary.build(train.inputs)

    def encode(texts):
        rows = [(vocab.encode(t) or [1])[:max_tokens] for t in texts]
        out = torch.zeros(len(rows), max_tokens, dtype=torch.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.as_tensor(row)
        return out

    return TrainTest(encode(train.inputs), train.targets, encode(test.inputs), test.targets, len(train.classes),
                     name, train.description, n_features=embedding_dim, vocabulary=len(vocab))


def paper_schedule(task: str, hidden: int, small: bool) -> GrowthSchedule:
    """The paper's insertion scheme for ``hidden`` final units: 10 steps of ``hidden / 10`` units
    (1 unit every 10 epochs from 5 for the 10-unit nets; every 5 from 10 for MNIST-500,
    see the Reproduction notes; every 10 from 5 for AG News-100)."""
    # two schemes in the paper: the large MNIST network's, and every other network's
    every, start = GROWING_INSERTIONS.loc[("MNIST", 500) if task == "MNIST" and not small else ("MNIST", 10)]
    return GrowthSchedule.regular(units=max(1, hidden // 10), every=int(every), start=int(start), total=hidden)


def _embedding(task: TrainTest, seed: int) -> nn.EmbeddingBag:
    # Sum, not mean: with U(-0.5, 0.5) vectors the mean of ~40 words is ~0.05 in size and SGD at
    # the paper's learning rate barely moves (training accuracy 26 -> 28 % in 8 epochs on
    # ag_news-7600, against 36 -> 45 % in 3 epochs with the sum).
    bag = nn.EmbeddingBag(task.vocabulary, task.n_features, mode="sum", padding_idx=0, sparse=True)
    with torch.no_grad():
        g = torch.Generator().manual_seed(10_000 + seed)
        bag.weight.copy_(torch.rand(bag.weight.shape, generator=g) - 0.5)
        bag.weight[0] = 0
    return bag


@dataclass
class Network:
    """A model of Table 1 as :func:`build` makes it: ``full`` is what trains (for text, the
    embedding followed by ``net``), ``net`` the network part whose Hessian is measured, and
    ``growth`` the :class:`~minima.growing.GrowthPlan` of a grown ``net`` (``None`` for a fully
    connected one)."""

    full: nn.Module
    net: nn.Module
    growth: GrowthPlan | None

    @property
    def parameters(self) -> int:
        """The network part's real parameters (a grown net's absent edges are not counted)."""
        return self.growth.net.num_parameters() if self.growth else sum(p.numel() for p in self.net.parameters())

    @property
    def depth(self) -> int:
        """Layers of weights on the longest input-output path."""
        return int(self.growth.net.depth.max()) if self.growth else sum(isinstance(m, nn.Linear) for m in self.net.modules())


def build(task: TrainTest, model: str, hidden: int, seed: int, small: bool) -> Network:
    """``model`` (``"growing"`` or an architecture of :data:`ARCHITECTURES`) with ``hidden``
    units for ``task``, initialised from ``seed``; the grown network with the paper's schedule
    (:func:`paper_schedule`) and fan-ins that end at the parameter count of architecture ``a``."""
    if model == "growing":
        net = GrowingNet(task.n_features, task.n_classes, seed=seed, device="cpu")
        budget = fully_connected_parameters(task.n_features, [hidden], task.n_classes)
        growth = GrowthPlan(net, paper_schedule(task.name, hidden, small),
                            fan_in_for_budget(task.n_features, task.n_classes, hidden, budget))
    else:
        widths = [max(1, round(f * hidden)) for f in ARCHITECTURES[model]]
        net, growth = mlp(task.n_features, widths, task.n_classes, seed=seed), None
    full = nn.Sequential(_embedding(task, seed), net) if task.vocabulary else net
    return Network(full, net, growth)


@dataclass(frozen=True)
class GoOn:
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


def per_batch(value, batch_size: int):
    """A parameter that may differ by batch size: ``value[batch_size]`` when ``value`` is a dict
    keyed by batch size, else ``value`` itself."""
    if isinstance(value, dict):
        if batch_size not in value:
            raise ValueError(f"no value for batch size {batch_size} in {value}; give one per batch size")
        return value[batch_size]
    return value


@dataclass(frozen=True)
class TaskRef:
    """The data of a run, as a worker loads it: ``kind`` ``"image"`` (:func:`image_task`) or
    ``"text"`` (:func:`text_task` with ``embedding_dim``) of the registry's ``dataset``, and the
    :meth:`~minima.data.TrainTest.digest` of the tensors the driver loaded: a worker whose
    files give other tensors refuses to run (a cluster node with other data under
    ``MINIMA_DATA``), and the digest puts the data's content in the run's cache key."""

    kind: str
    dataset: str
    embedding_dim: int = 0
    digest: str = ""

    @classmethod
    def of(cls, task: TrainTest, kind: str, dataset: str, embedding_dim: int = 0) -> "TaskRef":
        return cls(kind, dataset, embedding_dim, task.digest())

    def load(self) -> TrainTest:
        task = _load_task(self.kind, self.dataset, self.embedding_dim)
        if self.digest and task.digest() != self.digest:
            raise RuntimeError(f"{self.dataset} here differs from the driver's (data digest); point MINIMA_DATA "
                               "at the same files on every machine")
        return task


@functools.lru_cache(maxsize=4)
def _load_task(kind: str, dataset: str, embedding_dim: int) -> TrainTest:
    """Each worker process loads a dataset once, however many runs it executes."""
    return image_task(dataset) if kind == "image" else text_task(dataset, embedding_dim)


@dataclass(frozen=True)
class Table1Row:
    """One end point of a run under one protocol (``"paper"`` or ``"converged"``): the run's
    identity and sizes, how training stopped and took (``train_seconds``, ``samples_per_second``
    of the SGD passes), the point's certificate, flatness ``measures`` (``{name: value}``) and
    test accuracy, the seconds its Hessians took and the training ``curve`` (one dict per
    epoch). :meth:`as_row` is its row of the results file."""

    task: str
    hidden: int
    model: str
    batch: int
    seed: int
    parameters: int
    depth: int
    samples_per_second: float
    threads: int
    kernel: str
    protocol: str
    stopped: str
    finish: str
    train_seconds: float
    epochs: int
    certificate: Certificate
    measures: dict
    test_accuracy: float
    hessian_seconds: float
    curve: list
    finish_losses: tuple = ()
    train_examples: int = 0  # the training examples the run saw (the trim applied)

    def as_row(self) -> dict:
        """The results file's columns (:data:`RESULT_COLUMNS` among them, names as the file has
        them) and the curve, which stays on the page."""
        return {"task": self.task, "hidden": self.hidden, "model": self.model, "batch": self.batch, "seed": self.seed,
                "parameters": self.parameters, "depth": self.depth, "samples/s": self.samples_per_second,
                "threads": self.threads, "kernel": self.kernel, "protocol": self.protocol, "stopped": self.stopped,
                "finish": self.finish,
                "train s": self.train_seconds, "epochs": self.epochs, **self.certificate.as_row(), **self.measures,
                "test_accuracy": self.test_accuracy, "hessian s": self.hessian_seconds, "curve": list(self.curve),
                "finish losses": list(self.finish_losses), "train examples": self.train_examples}


@dataclass(frozen=True)
class Table1Record:
    """What one :class:`Table1Run` produced: its :class:`Table1Row` per protocol (``paper``, then
    ``converged`` when that protocol ran) and, when asked, the spectral density of the network
    part's Hessian at the last end point (``(nodes, weights)``,
    :func:`minima.core.spectrum.spectral_density`)."""

    rows: tuple
    density: tuple | None = None


@dataclass(frozen=True)
class Table1Run(Spec):
    """One run of Table 1: build ``model`` (``"growing"`` or an architecture of
    :data:`ARCHITECTURES`) with ``hidden`` units for ``seed``, train it by the paper's protocol on
    the first ``train_limit`` training examples (0: all), certify and measure its end point;
    with ``go_on`` continue it by the ``converged`` protocol (:class:`GoOn`). Every run trains
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
    go_on: GoOn | None = None
    rule: Rule = Rule()
    measures: tuple = tuple(MEASURES)
    density: bool = False
    kernel: str = "auto"

    def label(self) -> str:
        name = self.task.dataset if isinstance(self.task, TaskRef) else self.task.name
        return f"{name} {self.hidden} {self.model} batch {self.batch} seed {self.seed}"

    def resources(self) -> Resources:
        # one SGD step costs about (batch-independent dispatch + batch x hidden work); a rough
        # CPU-second estimate for --plan, not a measurement
        steps = (self.train_limit or 10_000) / self.batch * (self.go_on.max_epochs if self.go_on else self.max_epochs)
        return Resources(cpus=1, estimate_s=steps * (2e-4 + 2e-6 * self.batch * self.hidden / 100))

    def run(self) -> Table1Record:
        return train_run(self).record


@dataclass
class TrainedRun:
    """A run's record with the trained model (``full``), its network part (``net``: the Hessian's
    parameters) and the Hessian data at the last end point, for callers that inspect them."""

    record: Table1Record
    full: nn.Module
    net: nn.Module
    hessian_data: list


@dataclass
class _Training:
    """One run in progress: its spec, task and network, the training examples it uses, the
    generator that orders its batches (shared by both protocols) and the Hessian data at the
    current point (the network part's inputs on the first ``spec.hessian_subset`` examples)."""

    spec: Table1Run
    task: TrainTest
    network: Network
    x_train: torch.Tensor
    y_train: torch.Tensor
    generator: torch.Generator
    hessian_data: list = None

    def refresh_hessian_data(self) -> None:
        """Recompute the Hessian data at the current point: for text the embedding is held fixed
        and its output is the network's input."""
        full = self.network.full
        full.eval()
        x = self.x_train[:self.spec.hessian_subset]
        with torch.no_grad():
            features = full[0](x) if self.task.vocabulary else x
        self.hessian_data = batches(features.detach(), self.y_train[:self.spec.hessian_subset], 1000)

    def hessian(self) -> HessianOperator:
        return HessianOperator(self.network.net, F.cross_entropy, self.hessian_data)

    def measure(self, epochs: list[dict], certificate: Certificate | None = None) -> dict:
        """The end-point fields of a :class:`Table1Row` at the current point after ``epochs``:
        test accuracy, the convergence certificate and the flatness measures (Hessians of the
        network part on the Hessian data); ``certificate``: one already made here (reused)."""
        spec, full = self.spec, self.network.full
        _, test_accuracy = loss_and_accuracy(full, self.task.x_test, self.task.y_test)
        full.eval()
        start = time.perf_counter()
        hessian = self.hessian()
        certificate = certificate or certify(hessian, loss_history=[e["loss"] for e in epochs], rule=spec.rule,
                                             seed=spec.seed)
        values = measure(hessian, spec.measures, seed=spec.seed, blocks="depth", certificate=certificate)
        return {"epochs": epochs[-1]["epoch"], "certificate": certificate, "measures": values,
                "test_accuracy": test_accuracy, "hessian_seconds": time.perf_counter() - start, "curve": list(epochs)}


def train_run(spec: Table1Run) -> TrainedRun:
    """Execute ``spec`` (what :meth:`Table1Run.run` does) and keep the trained model."""
    task = spec.task.load() if isinstance(spec.task, TaskRef) else spec.task
    x_train, y_train = (task.x_train[:spec.train_limit], task.y_train[:spec.train_limit]) if spec.train_limit else \
        (task.x_train, task.y_train)
    torch.manual_seed(spec.seed)
    network = build(task, spec.model, spec.hidden, spec.seed, spec.small)
    if network.growth is not None:
        network.growth = network.growth.scaled(spec.schedule_scale)
    run = _Training(spec, task, network, x_train, y_train, torch.Generator().manual_seed(spec.seed))
    start = time.perf_counter()
    result = fit(network.full, x_train, y_train, lr=spec.lr, batch_size=spec.batch, max_epochs=spec.max_epochs,
                 generator=run.generator, growth=network.growth, kernel=spec.kernel)
    train_seconds = time.perf_counter() - start
    run.refresh_hessian_data()
    paper = Table1Row(task.name, spec.hidden, spec.model, spec.batch, spec.seed, network.parameters, network.depth,
                      result.samples_per_second, torch.get_num_threads(), result.kernel, "paper", result.stopped,
                      "none", train_seconds, **run.measure(result.epochs), train_examples=len(y_train))
    rows = [paper]
    if spec.go_on is not None:
        rows.append(_go_on(run, result.epochs, paper))
    density = None
    if spec.density:
        density = spectral_density(run.hessian(), n_vectors=2, n_steps=30, generator=torch.Generator().manual_seed(0))
    return TrainedRun(Table1Record(tuple(rows), density), network.full, network.net, run.hessian_data)


def _go_on(run: _Training, paper_epochs: list[dict], paper: Table1Row) -> Table1Row:
    """The ``converged`` row: continue the run from the paper protocol's end point (see
    :class:`GoOn`), leaving ``run``'s Hessian data at the final point. For text the Hessian data
    is recomputed after training: the embedding that feeds the network part trains too."""
    if paper.certificate.verdict == "minimum":
        return replace(paper, protocol="converged", stopped="certified minimum (paper protocol)")
    spec, go_on = run.spec, run.spec.go_on
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
        certificate, finish_losses = _finish(run, [e["loss"] for e in epochs])
        seconds += time.perf_counter() - start
        finish = f"L-BFGS, {len(finish_losses)} rounds of {go_on.finish_iterations} iterations"
    point = run.measure(epochs, certificate)
    stopped = "certified minimum" if point["certificate"].verdict == "minimum" else \
        f"cap of {go_on.max_epochs} epochs" + (" and the L-BFGS finish" if finish != "none" else "")
    return replace(paper, protocol="converged", stopped=stopped, finish=finish, train_seconds=seconds,
                   finish_losses=tuple(finish_losses), **point)


def _finish(run: _Training, losses: list[float]) -> tuple[Certificate, list[float]]:
    """Full-batch L-BFGS (strong Wolfe line search) on the network part's mean cross-entropy
    over the whole training set, inputs fixed (for text, the trained embedding's output), in
    rounds of :attr:`GoOn.finish_iterations` iterations; after each round the loss joins the
    history and, once it plateaus, the certificate is asked. Returns the last certificate and
    the rounds' losses. ``run``'s Hessian data (the network part's inputs) must be current on
    entry; the finish leaves the inputs, and so the data, unchanged."""
    spec, go_on, net = run.spec, run.spec.go_on, run.network.net
    full = run.network.full
    full.eval()
    with torch.no_grad():
        features = full[0](run.x_train) if run.task.vocabulary else run.x_train
    parameters = [p for p in net.parameters() if p.requires_grad]

    def cross_entropy():
        loss = F.cross_entropy(net(features), run.y_train)
        loss.backward()
        return loss

    history, certificate = list(losses), None
    for _ in lbfgs_rounds(parameters, cross_entropy, go_on.finish_rounds, go_on.finish_iterations):
        with torch.no_grad():
            out = net(features)
            loss = float(F.cross_entropy(out, run.y_train))
            accuracy = float((out.argmax(1) == run.y_train).double().mean())
        if not math.isfinite(loss):
            break
        history.append(loss)
        if fits(accuracy, history, spec.rule):
            certificate = certify(run.hessian(), loss_history=history, rule=spec.rule, seed=spec.seed)
            if certificate.verdict == "minimum":
                return certificate, history[len(losses):]
    return (certificate or certify(run.hessian(), loss_history=history, rule=spec.rule, seed=spec.seed),
            history[len(losses):])


@dataclass(frozen=True)
class Settings:
    """Table 1 as notebook 40's parameters set it. Every field but the last three is a dict keyed
    by task name (``"MNIST"``, ``"AG News"``); ``converged_lr`` and ``converged_max_epochs``
    values may be dicts by batch size (:func:`per_batch`).

    ``sizes``: hidden units of the small and the large network; ``batch_sizes``: the paper's two;
    ``learning_rates``, ``max_epochs``: the paper's protocol (SGD; stop at 100 % training
    accuracy or after ``max_epochs``); ``schedule_scale``: factor on the growth epochs;
    ``train_examples``: the first N training examples (0: all, the trim); ``converged_lr``,
    ``converged_max_epochs``: the ``converged`` protocol (:class:`GoOn`); ``seeds``: one run per
    seed and cell; ``hessian_subset``: the first training examples on which certificates and
    Hessians are taken; ``rule``: the certificate's thresholds."""

    sizes: dict
    batch_sizes: dict
    learning_rates: dict
    max_epochs: dict
    schedule_scale: dict
    train_examples: dict
    converged_lr: dict
    converged_max_epochs: dict
    seeds: tuple
    hessian_subset: int
    rule: Rule = Rule()

    @classmethod
    def from_parameters(cls, parameters: dict) -> "Settings":
        """The settings among a notebook's ``parameters`` (other names are ignored)."""
        import dataclasses

        names = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in parameters.items() if k in names}
        return cls(**{**chosen, "seeds": tuple(chosen["seeds"])})

    def train_count(self, name: str, task: TrainTest) -> int:
        """How many training examples task ``name`` uses (the trim, at most the split's size)."""
        return min(self.train_examples[name] or len(task.y_train), len(task.y_train))

    def rate(self, name: str, batch: int) -> float:
        """The ``converged`` protocol's learning rate for task ``name`` at ``batch``."""
        return per_batch(self.converged_lr[name], batch)

    def cap(self, name: str, batch: int) -> int:
        """The ``converged`` protocol's cap on epochs for task ``name`` at ``batch``."""
        return per_batch(self.converged_max_epochs[name], batch)


def load_tasks(names, mnist_dataset: str, text_dataset: str, embedding_dim: int) -> dict[str, TaskRef]:
    """The references of the tasks ``names`` (``"MNIST"``, ``"AG News"``) whose data is present,
    loaded once here (a missing dataset is named on the page, :func:`minima.data.load_each`)."""
    def ref(name: str) -> TaskRef:
        kind, dataset = ("image", mnist_dataset) if name == "MNIST" else ("text", text_dataset)
        size = embedding_dim if kind == "text" else 0
        return TaskRef.of(_load_task(kind, dataset, size), kind, dataset, size)

    return load_each(names, ref)


def plan(tasks: dict[str, TaskRef], settings: Settings) -> list[Table1Run]:
    """Every run of Table 1: the small size with the grown network and architecture ``a``, the
    large one with ``a``, ``b``, ``c``, both batch sizes, every seed. The first seed's grown and
    ``a`` runs at the large size and the small batch also compute their spectral density (the
    page's figure). Refuses a growth schedule that ends after training stops, before anything
    runs."""
    specs, seeds = [], tuple(settings.seeds)
    for name, ref in tasks.items():
        task = ref.load()
        max_epochs, scale = settings.max_epochs[name], settings.schedule_scale[name]
        for k, hidden in enumerate(settings.sizes[name]):
            small = k == 0
            for model in (["growing", "a"] if small else ["growing", "a", "b", "c"]):
                if model == "growing":
                    last = paper_schedule(task.name, hidden, small).scaled(scale).last_epoch
                    if last >= max_epochs:
                        raise ValueError(f"{name}: the growth schedule ends at epoch {last} but training stops after "
                                         f"{max_epochs}; raise max_epochs or lower schedule_scale")
                for batch in settings.batch_sizes[name]:
                    for seed in seeds:
                        specs.append(Table1Run(
                            ref, hidden, model, batch, seed, lr=settings.learning_rates[name], max_epochs=max_epochs,
                            schedule_scale=scale, hessian_subset=settings.hessian_subset, small=small,
                            train_limit=settings.train_examples[name],
                            go_on=GoOn(settings.rate(name, batch), settings.cap(name, batch)), rule=settings.rule,
                            density=(not small and model in ("growing", "a") and batch == settings.batch_sizes[name][0]
                                     and seed == seeds[0])))
    return specs


def results_table(records) -> "pd.DataFrame":
    """The per-run results table (one row per run and protocol) of the successful records, in
    spec order; failures are left out (:func:`minima.runs.failures` lists them)."""
    import pandas as pd

    return pd.DataFrame([row.as_row() for record in records if isinstance(record, Table1Record) for row in record.rows])


RESULT_COLUMNS = ("task", "hidden", "model", "batch", "seed", "protocol", "epochs", "finish", "train_accuracy", "train_loss",
                  "grad_norm", "lambda_max", "lambda_min", "verdict", "rsi", "elementwise", "plain", "test_accuracy")
