"""What every run of a no-barriers exploration shares: the dataset by reference
(:class:`DataRef`, checked by digest on every worker), the architecture's model, its error
rate, and the AutoNEB energy over its flat parameters with the test metrics."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data import TrainTest, batches, train_test
from ...models import architecture
from ...paths.energy import DataMetric, ModelEnergy, error_rate


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


def loaded(data: "DataRef | TrainTest") -> TrainTest:
    """A spec's data: loaded by reference, or a :class:`TrainTest` carried whole (small or
    synthetic data)."""
    return data.load() if isinstance(data, DataRef) else data


def name_of(data: "DataRef | TrainTest") -> str:
    return data.dataset if isinstance(data, DataRef) else (data.name or "data")


def make_model(architecture_name: str, data: TrainTest) -> nn.Module:
    shape = data.x_train.shape[1:]
    return architecture(architecture_name, data.n_classes, in_channels=shape[0], n_inputs=int(np.prod(shape)))


def energy_of(architecture_name: str, data: TrainTest, neb_batch_size: int, eval_subset: int):
    """The AutoNEB energy of the architecture on ``data`` (training batches of ``neb_batch_size``,
    dense evaluation on the first ``eval_subset`` training examples) and the test metrics."""
    template = make_model(architecture_name, data)
    train_batches = batches(data.x_train, data.y_train, neb_batch_size)
    eval_batches = batches(data.x_train[:eval_subset], data.y_train[:eval_subset], 1000)
    test_batches = batches(data.x_test, data.y_test, 1000)
    energy = ModelEnergy(template, F.cross_entropy, train_batches, eval_batches=eval_batches, seed=0)
    metrics = {"test loss": DataMetric(energy, test_batches), "test error": DataMetric(energy, test_batches, error_rate)}
    return energy, metrics
