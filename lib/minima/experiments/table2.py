"""Table 2 of the growing-network paper: growing the classification head of a pretrained
transformer on CoLA, against the model's own (reference) head of the same size.

Three ways to train, by how much of the encoder learns with the head:

- :func:`fine_tune` trains the whole model with the head installed, as the paper does (a GPU
  for RoBERTa-large);
- :func:`fine_tune_top` trains the encoder's top layers with the head on the cached output of
  the frozen layers below (:func:`minima.experiments.heads.lower_states`): the CPU default;
- :func:`run_head` trains the head alone on first-token features computed once
  (:func:`minima.experiments.heads.first_token_features`), the encoder frozen.

Every row is measured by :func:`head_row`: test accuracy and Matthews correlation, and the
head's convergence certificate and flatness on the final features. :class:`Settings` holds a
table's parameters (notebook 60's), :func:`plan` its runs.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import matthews_corrcoef

from ..core.device import resolve
from ..core.io import atomic_write
from ..core.progress import progress
from ..core.hessian import HessianOperator
from ..data import TrainTest, batches, load
from ..geometry.certificate import Certificate, certify, fits
from ..geometry.flatness import measure
from ..growing import GrowthPlan, GrowthSchedule
from ..runs import Resources, RunCache, Spec, run_all, spec_key
from ..runs.batch import missing
from .heads import EncoderTop, GrowingHead, LowerStates, ReferenceHead, encoder_layers, first_token_features, \
    growth_plan, install_head, load_encoder, lower_states, reference_parameters
from ..train import Trainer, fit, lbfgs_rounds

RESULT_COLUMNS = ("protocol", "head", "seed", "accuracy", "mcc", "rsi", "elementwise", "plain", "lambda_min", "lambda_max",
                  "verdict", "finish", "parameters", "train_seconds")


@dataclass(frozen=True)
class HeadTraining:
    """How every head of Table 2 trains and is measured: ``epochs`` of AdamW (weight decay 0.01,
    constant ``lr``) in batches of ``batch_size``, the grown head grown at the start of the epochs
    in ``phases``; then, the encoder fixed, at most ``finish_rounds`` rounds of full-batch L-BFGS
    on the head's own problem (cross-entropy plus ``finish_weight_decay / 2 * |theta|^2``) until
    its certificate says ``minimum`` (:func:`finish_head`; 0: no finish); the Hessian on the
    first ``hessian_subset`` training sentences."""

    epochs: int
    batch_size: int
    lr: float
    phases: tuple
    hessian_subset: int
    finish_rounds: int = 0
    finish_iterations: int = 25
    finish_weight_decay: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "phases", tuple(self.phases))


@dataclass
class Head:
    """A head as :func:`make_head` builds it: ``module`` (what is installed on the encoder),
    ``net`` (the part whose Hessian is measured) and, for the grown head, its
    :class:`~minima.growing.GrowthPlan` (``None`` for the reference head)."""

    kind: str
    module: torch.nn.Module
    net: torch.nn.Module
    growth: GrowthPlan | None

    @property
    def parameters(self) -> int:
        return self.growth.net.num_parameters() if self.growth else sum(p.numel() for p in self.module.parameters())


def make_head(kind: str, hidden: int, labels: int, seed: int, phases: tuple) -> Head:
    """The ``"growing"`` head (grown to the reference head's size after each epoch of ``phases``)
    or the ``"reference"`` head, for features of size ``hidden``."""
    if kind == "growing":
        head = GrowingHead(hidden, labels, seed=seed)
        return Head(kind, head, head.net, GrowthPlan(head.net, GrowthSchedule.phases(hidden, tuple(phases)),
                                                     growth_plan(hidden, labels)))
    if kind == "reference":
        head = ReferenceHead(hidden, labels, seed=seed)
        return Head(kind, head, head, None)
    raise ValueError(f"unknown head {kind!r}; choose growing or reference")


@dataclass(frozen=True)
class HeadRecord:
    """One trained head of Table 2: its kind and seed, the ``protocol`` (``"frozen"`` encoder or
    ``"fine-tuned"`` with the head), how it was finished (``finish``, the rounds' training
    losses ``finish_losses``), sizes (``parameters`` and the reference
    head's), test ``accuracy`` and ``mcc``, the last epoch's running training loss and accuracy,
    the training seconds, the flatness ``measures`` and certificate at the end point, the
    training ``curve`` and, for the grown head, hidden neurons per depth. :meth:`as_row` is its
    row of the results file."""

    head: str
    seed: int
    parameters: int
    reference_parameters: int
    accuracy: float
    mcc: float
    train_accuracy: float
    train_loss: float
    train_seconds: float
    measures: dict
    certificate: Certificate
    curve: list
    depth_histogram: list | None
    protocol: str = "fine-tuned"
    finish: str = "none"
    finish_losses: tuple = ()

    def as_row(self) -> dict:
        """The results file's columns (:data:`RESULT_COLUMNS` among them, names as the file has
        them); the certificate's loss and accuracy are on the Hessian subset, in eval mode."""
        cert = self.certificate
        return {"protocol": self.protocol, "head": self.head, "seed": self.seed, "finish": self.finish,
                "finish losses": list(self.finish_losses), "parameters": self.parameters,
                "reference parameters": self.reference_parameters, "accuracy": self.accuracy, "mcc": self.mcc,
                "train accuracy": self.train_accuracy, "train loss": self.train_loss,
                "train_seconds": self.train_seconds, **self.measures,
                **{k: v for k, v in cert.as_row().items() if k not in ("train_loss", "train_accuracy")},
                "certificate train loss": cert.train_loss, "certificate train accuracy": cert.train_accuracy,
                "curve": self.curve, "depth histogram": self.depth_histogram}


def head_row(head: Head, seed: int, train_features: torch.Tensor, y_train: torch.Tensor, test_features: torch.Tensor,
             y_test: torch.Tensor, history: list[dict], seconds: float, training: HeadTraining,
             protocol: str) -> HeadRecord:
    """One row of Table 2 for a trained ``head`` on fixed features ``(N, H)`` of every training
    and test sentence: the head finished to a minimum of its own problem when
    ``training.finish_rounds`` (:func:`finish_head`), then the accuracy and Matthews correlation
    of its test predictions, its convergence certificate and flatness (Hessian with respect to
    the head's parameters on the first ``training.hessian_subset`` training sentences), sizes.
    ``history``: one record per training epoch."""
    hidden, labels = train_features.shape[1], int(y_train.max()) + 1
    subset = training.hessian_subset
    head.module.eval()  # dropout off: the head's loss as the Hessian measures it
    hessian = HessianOperator(head.net, F.cross_entropy, batches(train_features[:subset], y_train[:subset], 1000))
    finish, finish_losses, certificate = "none", [], None
    if training.finish_rounds:
        start = time.perf_counter()
        certificate, finish_losses = finish_head(head, hessian, train_features, y_train, training, seed)
        seconds += time.perf_counter() - start
        finish = f"L-BFGS, {len(finish_losses)} rounds of at most {training.finish_iterations} iterations"
    with torch.no_grad():
        predictions = head.module(test_features).argmax(1)
    if certificate is None:
        certificate = certify(hessian, loss_history=[e["loss"] for e in history], seed=seed)
    values = measure(hessian, seed=seed, blocks="depth", certificate=certificate)
    growing = head.growth.net if head.growth else None
    return HeadRecord(head.kind, seed, head.parameters, reference_parameters(hidden, labels),
                      float((predictions == y_test).double().mean()),
                      float(matthews_corrcoef(y_test.numpy(), predictions.numpy())),
                      history[-1]["accuracy"], history[-1]["loss"], seconds, values, certificate, history,
                      torch.bincount(torch.as_tensor(growing.depth[growing.hidden_ids])).tolist()
                      if growing is not None else None, protocol, finish, tuple(finish_losses))


def finish_head(head: Head, hessian: HessianOperator, train_features: torch.Tensor, y_train: torch.Tensor,
                training: HeadTraining, seed: int) -> tuple[Certificate, list[float]]:
    """The head's own problem solved from where training left it: the encoder fixed (its
    features ``train_features`` of every training sentence), full-batch L-BFGS
    (:func:`minima.train.lbfgs_rounds`) on the head's mean cross-entropy in eval mode (no
    dropout: the loss the Hessian measures) plus ``training.finish_weight_decay / 2 *
    |theta|^2`` (default 0: the paper's loss; measured on MiniLM, the minimum then nearly
    interpolates the training sentences, and with AdamW's 0.01 the heads fall to the majority
    class), in rounds of ``training.finish_iterations`` iterations.
    After each round the objective joins the history; once the fit criterion holds (100 %
    training accuracy, or a plateau of the objective), ``hessian``'s point is certified for
    that objective, and the rounds stop at the first ``minimum``. Returns the last certificate
    and the rounds' training losses."""
    head.module.eval()
    parameters = [p for p in head.net.parameters() if p.requires_grad]
    decay = training.finish_weight_decay

    def objective():
        value = F.cross_entropy(head.net(train_features), y_train) + decay / 2 * sum((p * p).sum() for p in parameters)
        value.backward()
        return value

    losses, objectives, certificate = [], [], None
    for _ in lbfgs_rounds(parameters, objective, training.finish_rounds, training.finish_iterations):
        with torch.no_grad():
            out = head.net(train_features)
            loss = float(F.cross_entropy(out, y_train))
            accuracy = float((out.argmax(1) == y_train).double().mean())
            objectives.append(loss + decay / 2 * float(sum((p * p).sum() for p in parameters)))
        if not math.isfinite(loss):
            break
        losses.append(loss)
        if fits(accuracy, objectives):
            certificate = certify(hessian, loss_history=objectives, seed=seed, weight_decay=decay)
            if certificate.verdict == "minimum":
                break
    return certificate or certify(hessian, loss_history=objectives, seed=seed, weight_decay=decay), losses


def results_table(records) -> "pd.DataFrame":
    """The per-run results table (one row per head and seed) of the successful records, in spec
    order; failures are left out (:func:`minima.runs.failures` lists them)."""
    import pandas as pd

    return pd.DataFrame([record.as_row() for record in records if isinstance(record, HeadRecord)])


def run_head(kind: str, features: TrainTest, seed: int, training: HeadTraining) -> HeadRecord:
    """Train one head on frozen encoder features (``x_*``: ``(N, H)``) and measure it."""
    x_train, y_train, x_test, y_test = features.x_train, features.y_train, features.x_test, features.y_test
    torch.manual_seed(seed)
    head = make_head(kind, x_train.shape[1], features.n_classes, seed, training.phases)
    start = time.perf_counter()
    result = fit(head.module, x_train, y_train, lr=training.lr, batch_size=training.batch_size,
                 max_epochs=training.epochs, target_accuracy=None, generator=torch.Generator().manual_seed(seed),
                 growth=head.growth, optimizer="adamw")
    seconds = time.perf_counter() - start
    return head_row(head, seed, x_train, y_train, x_test, y_test, result.epochs, seconds, training, "frozen")


def fine_tune(kind: str, model_name: str, texts: list[str], y_train: torch.Tensor, test_texts: list[str],
              y_test: torch.Tensor, seed: int, training: HeadTraining, *, max_length: int = 128, device="auto",
              progress=None) -> HeadRecord:
    """The paper's setting: the whole model trained with the head installed (AdamW, constant
    learning rate), the head grown after the given epochs; then measured like :func:`run_head`
    on the fine-tuned encoder's features."""
    device = resolve(device)
    torch.manual_seed(seed)
    model, tokenizer, _ = load_encoder(model_name, labels=int(y_train.max()) + 1, seed=seed)
    hidden = model.config.hidden_size
    head = make_head(kind, hidden, int(y_train.max()) + 1, seed, training.phases)
    install_head(model, head.module)
    model.to(device)

    def step(index):
        enc = tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt").to(device)
        out = model(**enc, labels=y_train[index].to(device))
        return out.loss, int((out.logits.argmax(1).cpu() == y_train[index]).sum())

    history, seconds = _train(model, head, step, len(texts), seed, training, progress)
    model.eval()
    limit = len(texts) if training.finish_rounds else training.hessian_subset  # the finish needs every sentence
    train_features = first_token_features(model, tokenizer, texts[:limit], max_length=max_length).cpu()
    test_features = first_token_features(model, tokenizer, test_texts, max_length=max_length).cpu()
    head.module.cpu().eval()
    return head_row(head, seed, train_features, y_train[:limit], test_features, y_test, history, seconds, training,
                    "fine-tuned")


def fine_tune_top(kind: str, encoder, lower_train: LowerStates, y_train: torch.Tensor, lower_test: LowerStates,
                  y_test: torch.Tensor, seed: int, training: HeadTraining, *, top_layers: int, device="auto",
                  progress=None) -> HeadRecord:
    """The paper's setting on a CPU budget: the encoder's top ``top_layers`` layers are
    fine-tuned with the head installed (AdamW, weight decay 0.01, constant learning rate,
    dropout on), the head grown after the given epochs; the layers below stay pretrained and
    their output (``lower_train``, ``lower_test``: :func:`minima.experiments.heads.lower_states` of
    ``encoder``, kept on the CPU) is reused, each batch moved to ``device``. Measured like
    :func:`run_head` on the fine-tuned features."""
    device = resolve(device)
    torch.manual_seed(seed)
    hidden, labels = encoder.config.hidden_size, int(y_train.max()) + 1
    head = make_head(kind, hidden, labels, seed, training.phases)
    model = EncoderTop(encoder, top_layers, head.module).to(device)

    def step(index):
        states, mask = lower_train.batch(index)
        logits = model(states.to(device), mask.to(device))
        targets = y_train[index].to(device)
        return F.cross_entropy(logits, targets), int((logits.argmax(1) == targets).sum())

    history, seconds = _train(model, head, step, len(y_train), seed, training, progress)
    model.eval()
    limit = len(y_train) if training.finish_rounds else training.hessian_subset  # the finish needs every sentence
    with torch.no_grad():
        train_features = _features(model, lower_train, limit, device)
        test_features = _features(model, lower_test, len(lower_test), device)
    head.module.cpu()
    return head_row(head, seed, train_features, y_train[:limit], test_features, y_test, history, seconds, training,
                    "fine-tuned")


def _train(model, head: Head, step, n: int, seed: int, training: HeadTraining, progress=None) -> tuple[list[dict], float]:
    """The paper's fine-tuning loop: AdamW (weight decay 0.01, constant ``lr``) over ``n`` examples
    in batches shuffled with ``seed``, dropout on, the grown head (if any) grown at the start of
    the epochs in ``phases``. ``step(index) -> (batch mean loss, correct predictions)``.
    Returns one record per epoch (running loss and accuracy over its batches) and the seconds."""
    trainer = Trainer(model, step, n, lr=training.lr, batch_size=training.batch_size,
                      generator=torch.Generator().manual_seed(seed), optimizer="adamw", growth=head.growth)
    history, start = [], time.perf_counter()
    for _ in range(training.epochs):
        history.append({key: value for key, value in trainer.epoch().items() if key != "seconds"})
        if progress:
            progress(history[-1])
    return history, time.perf_counter() - start


def _features(model: EncoderTop, lower: LowerStates, count: int, device, batch_size: int = 256) -> torch.Tensor:
    """First-token features ``(count, H)`` on the CPU of the first ``count`` sentences through the
    trained top layers (run on ``device``)."""
    index = torch.arange(min(count, len(lower)))
    return torch.cat([model.features(*(t.to(device) for t in lower.batch(part))).cpu() for part in index.split(batch_size)])


# ----------------------------------------------------------------------------- runs

@dataclass(frozen=True)
class Table2Setup:
    """What every head run of one table shares: the encoder (``model``), how much of it trains
    with the head (``trainable_layers``: 0 frozen, ``k`` the top ``k`` layers, -1 or all: the
    whole model), the tokenizer's ``max_length``, the first ``train_limit`` training sentences
    (0: all) and the digest of CoLA's sentences and labels as the driver read them.

    The frozen part's output (first-token features, or the input of the top layers) is the same
    for every head and seed: the driver computes it once per setup (:func:`frozen_inputs`) and
    the runs read it from a file beside the run cache."""

    model: str
    trainable_layers: int
    max_length: int
    train_limit: int
    layers: int
    data_digest: str

    @property
    def mode(self) -> str:
        if self.trainable_layers == 0:
            return "frozen"
        return "whole" if self.trainable_layers < 0 or self.trainable_layers >= self.layers else "top"

    def inputs_file(self, cache: RunCache) -> Path:
        return cache.root / "inputs" / f"{spec_key(self)}.pt"


def cola(train_limit: int = 0):
    """``(train texts, train labels, test texts, test labels, classes, description, digest)`` of CoLA."""
    train, test = load("cola", "train"), load("cola", "test")
    texts, labels = (train.inputs[:train_limit], train.targets[:train_limit]) if train_limit else \
        (list(train.inputs), train.targets)
    digest = hashlib.sha256(json.dumps([list(texts), list(test.inputs)]).encode())
    digest.update(labels.numpy().tobytes() + test.targets.numpy().tobytes())
    return list(texts), labels, list(test.inputs), test.targets, len(train.classes), train.description, \
        digest.hexdigest()


@dataclass(frozen=True)
class Settings:
    """Table 2 as notebook 60's parameters set it: the encoder ``model`` with its top
    ``trainable_layers`` fine-tuned with the head (:class:`Table2Setup`), sentences of at most
    ``max_length`` tokens, the first ``train_limit`` training sentences (0: all), one run per
    seed and head, each trained as ``training`` says."""

    model: str
    trainable_layers: int
    max_length: int
    train_limit: int
    seeds: tuple
    training: HeadTraining

    @classmethod
    def from_parameters(cls, p: dict) -> "Settings":
        """The settings among a notebook's parameters ``p`` (other names are ignored)."""
        return cls(p["model"], p["trainable_layers"], p["max_length"], p["train_limit"], tuple(p["seeds"]),
                   HeadTraining(p["epochs"], p["batch_size"], p["lr"], tuple(p["phases"]), p["hessian_subset"],
                                p.get("finish_rounds", 0), finish_weight_decay=p.get("finish_weight_decay", 0.0)))


def setup_for(settings: Settings):
    """``(Table2Setup, encoder, tokenizer, description)``: the setup of a table and its loaded encoder."""
    encoder, tokenizer, description = _encoder(settings.model)
    digest = cola(settings.train_limit)[-1]
    layers = len(encoder_layers(encoder))
    setup = Table2Setup(settings.model, settings.trainable_layers, settings.max_length, settings.train_limit, layers,
                        digest)
    return setup, encoder, tokenizer, description


@functools.lru_cache(maxsize=2)
def _encoder(model: str):
    """Each process loads an encoder once (seeded: a random test encoder is the same everywhere)."""
    return load_encoder(model)


def frozen_inputs(setup: Table2Setup, cache: RunCache | None = None) -> dict:
    """The frozen part's output for ``setup``, computed once and kept in a file beside the run
    cache (written atomically): ``{"x_train", "x_test"}`` first-token features ``(N, H)`` for a
    frozen encoder, ``{"lower_train", "lower_test"}`` :class:`LowerStates` for the top layers,
    ``{}`` for the whole model."""
    if setup.mode == "whole":
        return {}
    cache = cache or RunCache()
    path = setup.inputs_file(cache)
    if path.exists():
        return torch.load(path, weights_only=False)
    texts, _, test_texts, _, _, _, digest = cola(setup.train_limit)
    if digest != setup.data_digest:
        raise RuntimeError("CoLA here differs from the driver's (data digest); point MINIMA_DATA at the same files")
    encoder, tokenizer, _ = _encoder(setup.model)
    if setup.mode == "frozen":
        inputs = {"x_train": first_token_features(encoder, tokenizer, texts, max_length=setup.max_length),
                  "x_test": first_token_features(encoder, tokenizer, test_texts, max_length=setup.max_length)}
    else:
        inputs = {"lower_train": lower_states(encoder, tokenizer, texts, setup.trainable_layers,
                                              max_length=setup.max_length),
                  "lower_test": lower_states(encoder, tokenizer, test_texts, setup.trainable_layers,
                                             max_length=setup.max_length)}
    atomic_write(path, lambda handle: torch.save(inputs, handle))
    return inputs


@dataclass(frozen=True)
class HeadRun(Spec):
    """One head (``"growing"`` or ``"reference"``) and seed of Table 2, trained as ``setup`` and
    ``training`` say; returns the table's row (:func:`head_row`)."""

    setup: Table2Setup
    kind: str
    seed: int
    training: HeadTraining
    # where frozen_inputs() left the frozen part's output (the run cache's root): a location,
    # not an input, so it is not part of the run's key
    inputs_dir: str = field(default="", metadata={"key": False})

    def label(self) -> str:
        return f"CoLA {self.kind} head seed {self.seed}"

    def resources(self) -> Resources:
        per_epoch = {"frozen": 2.0, "top": 150.0, "whole": 3600.0}[self.setup.mode]
        return Resources(cpus=1, gpus=0.0 if self.setup.mode != "whole" else 1.0,
                         estimate_s=per_epoch * self.training.epochs)

    def run(self) -> HeadRecord:
        setup = self.setup
        texts, y_train, test_texts, y_test, classes, _, digest = cola(setup.train_limit)
        if digest != setup.data_digest:
            raise RuntimeError("CoLA here differs from the driver's (data digest); point MINIMA_DATA at the same files")
        if setup.mode == "whole":
            return fine_tune(self.kind, setup.model, texts, y_train, test_texts, y_test, self.seed, self.training,
                             max_length=setup.max_length, progress=_epochs_bar(self))
        inputs = frozen_inputs(setup, RunCache(self.inputs_dir) if self.inputs_dir else None)
        if setup.mode == "frozen":
            features = TrainTest(inputs["x_train"], y_train, inputs["x_test"], y_test, classes)
            return run_head(self.kind, features, self.seed, self.training)
        encoder, _, _ = _encoder(setup.model)
        return fine_tune_top(self.kind, encoder, inputs["lower_train"], y_train, inputs["lower_test"], y_test, self.seed,
                             self.training, top_layers=setup.trainable_layers, progress=_epochs_bar(self))


def _epochs_bar(run: HeadRun):
    """A terminal bar over the run's epochs (a fine-tuning takes minutes)."""
    bar = progress(total=run.training.epochs, desc=run.label(), mininterval=1, leave=False)

    def report(epoch: dict) -> None:
        bar.set_postfix_str(f"loss {epoch['loss']:.3f}", refresh=False)  # one draw per epoch
        bar.update()
        if bar.n >= run.training.epochs:
            bar.close()
    return report


def plan(setup: Table2Setup, settings: Settings, cache: RunCache | None = None) -> list[HeadRun]:
    """The head runs of Table 2: the grown and the reference head for every seed."""
    root = str((cache or RunCache()).root)
    return [HeadRun(setup, kind, seed, settings.training, root)
            for seed in settings.seeds for kind in ("growing", "reference")]


def run_heads(specs: list[HeadRun], executor=None, cache: RunCache | None = None) -> list:
    """Execute the head runs: the frozen part's output of each setup among them is computed once
    here (unless every run of that setup is cached already), then all the runs go to the
    executor together (:func:`minima.runs.run_all`)."""
    cache = cache or RunCache()
    todo = missing(specs, executor, cache) if specs else []
    for setup in dict.fromkeys(spec.setup for spec in todo):
        frozen_inputs(setup, cache)
    return run_all(specs, executor, cache=cache, desc="Table 2 heads")


PROTOCOLS = ("frozen", "fine-tuned")


def protocol_settings(p: dict) -> dict[str, Settings]:
    """Notebook 60's parameters ``p`` as one :class:`Settings` per protocol of ``p["protocols"]``:
    ``"frozen"`` (the encoder frozen, heads on its features computed once: ``frozen_seeds``,
    ``frozen_epochs``, ``frozen_lr``, ``frozen_phases``) and ``"fine-tuned"`` (the top
    ``trainable_layers`` layers fine-tuned with the head: ``seeds``, ``epochs``, ``lr``,
    ``phases``); both with ``batch_size``, ``hessian_subset`` and ``finish_rounds``."""
    unknown = set(p["protocols"]) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}; choose among {', '.join(PROTOCOLS)}")
    chosen = {}
    if "frozen" in p["protocols"]:
        chosen["frozen"] = Settings(p["model"], 0, p["max_length"], p["train_limit"], tuple(p["frozen_seeds"]),
                                    HeadTraining(p["frozen_epochs"], p["batch_size"], p["frozen_lr"],
                                                 tuple(p["frozen_phases"]), p["hessian_subset"], p["finish_rounds"],
                                                 finish_weight_decay=p.get("finish_weight_decay", 0.0)))
    if "fine-tuned" in p["protocols"]:
        if p["trainable_layers"] == 0:
            raise ValueError("the fine-tuned protocol needs trainable_layers > 0 (or -1: the whole model); "
                             "the frozen encoder is the 'frozen' protocol")
        chosen["fine-tuned"] = Settings.from_parameters(p)
    return chosen
