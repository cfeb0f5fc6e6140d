"""Table 2's plan: what every head run of a table shares (:class:`Table2Setup`, with the
frozen part's output computed once, :func:`frozen_inputs`), :class:`Settings` (notebook 60's
parameters, one per protocol: :func:`protocol_settings`), the :class:`HeadRun` spec and
:func:`plan`."""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...core.io import atomic_write
from ...core.progress import progress
from ...data import TrainTest, load, stratified_split
from ...runs import Resources, RunCache, Spec, run_all, spec_key
from ...runs.batch import missing
from ..heads import encoder_layers, first_token_features, load_encoder, lower_states
from .protocols import PROTOCOLS, fine_tune, fine_tune_top, run_head
from .records import HeadRecord, HeadTraining


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
                                p.get("finish_rounds", 0), finish_weight_decay=_decay(p)))


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
    ``training`` say; returns the table's rows (:func:`~.records.head_rows`: the paper's end
    point, then the regularised minimum). ``validation`` (frozen encoder only; choosing
    ``lambda``, :mod:`.regularisation`): train on 80 % of the training sentences (stratified,
    seeded) and score on the other 20 %, without flatness measures."""

    setup: Table2Setup
    kind: str
    seed: int
    training: HeadTraining
    # where frozen_inputs() left the frozen part's output (the run cache's root): a location,
    # not an input, so it is not part of the run's key
    inputs_dir: str = field(default="", metadata={"key": False})
    validation: bool = False

    def label(self) -> str:
        held_out = f", lambda {self.training.finish_weight_decay:g} (held-out)" if self.validation else ""
        return f"CoLA {self.kind} head seed {self.seed}{held_out}"

    def resources(self) -> Resources:
        per_epoch = {"frozen": 2.0, "top": 150.0, "whole": 3600.0}[self.setup.mode]
        # the finish: about 0.6 s an L-BFGS iteration on MiniLM's 8,551 training features (0.27-0.41 s
        # an objective and gradient in float64, measured, and the line search's extra evaluations)
        finish = 0.6 * self.training.finish_rounds * self.training.finish_iterations
        return Resources(cpus=1, gpus=0.0 if self.setup.mode != "whole" else 1.0,
                         estimate_s=per_epoch * self.training.epochs + finish)

    def __post_init__(self):
        if self.validation and self.setup.mode != "frozen":
            raise ValueError("lambda is chosen on the frozen encoder's features: validation runs need trainable_layers=0")

    def run(self) -> tuple[HeadRecord, ...]:
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
            if self.validation:
                train, held_out = (torch.from_numpy(i) for i in stratified_split(y_train.numpy()))
                features = TrainTest(inputs["x_train"][train], y_train[train], inputs["x_train"][held_out],
                                     y_train[held_out], classes)
            return run_head(self.kind, features, self.seed, self.training, measured=not self.validation)
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


def frozen_settings(p: dict) -> Settings:
    """The frozen protocol's :class:`Settings` among notebook 60's parameters ``p`` (also the
    setting ``lambda`` is chosen in, whichever protocols run)."""
    return Settings(p["model"], 0, p["max_length"], p["train_limit"], tuple(p["frozen_seeds"]),
                    HeadTraining(p["frozen_epochs"], p["batch_size"], p["frozen_lr"], tuple(p["frozen_phases"]),
                                 p["hessian_subset"], p["finish_rounds"], finish_weight_decay=_decay(p)))


def _decay(p: dict) -> float:
    """The finish's ``lambda`` in ``p`` (``weight_decay``, a number once chosen)."""
    decay = p.get("weight_decay", 0.0)
    if not isinstance(decay, (int, float)):
        raise ValueError(f"weight_decay {decay!r}: choose lambda first (table2.regularisation.choose) or give a number")
    return float(decay)


def protocol_settings(p: dict) -> dict[str, Settings]:
    """Notebook 60's parameters ``p`` as one :class:`Settings` per protocol of ``p["protocols"]``:
    ``"frozen"`` (the encoder frozen, heads on its features computed once: ``frozen_seeds``,
    ``frozen_epochs``, ``frozen_lr``, ``frozen_phases``) and ``"fine-tuned"`` (the top
    ``trainable_layers`` layers fine-tuned with the head: ``seeds``, ``epochs``, ``lr``,
    ``phases``); both with ``batch_size``, ``hessian_subset``, ``finish_rounds`` and the finish's
    ``weight_decay`` (``lambda``, a number)."""
    unknown = set(p["protocols"]) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}; choose among {', '.join(PROTOCOLS)}")
    chosen = {}
    if "frozen" in p["protocols"]:
        chosen["frozen"] = frozen_settings(p)
    if "fine-tuned" in p["protocols"]:
        if p["trainable_layers"] == 0:
            raise ValueError("the fine-tuned protocol needs trainable_layers > 0 (or -1: the whole model); "
                             "the frozen encoder is the 'frozen' protocol")
        chosen["fine-tuned"] = Settings.from_parameters(p)
    return chosen
