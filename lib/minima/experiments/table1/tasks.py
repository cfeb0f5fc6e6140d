"""Table 1's tasks: MNIST images as flat vectors and AG News texts as padded token ids, and
:class:`TaskRef`, the reference by which a run's worker loads its task (checked by digest)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import torch

from ...data import TrainTest, load, load_each, train_test
from ...data.text import Vocabulary


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


def load_tasks(names, mnist_dataset: str, text_dataset: str, embedding_dim: int) -> dict[str, TaskRef]:
    """The references of the tasks ``names`` (``"MNIST"``, ``"AG News"``) whose data is present,
    loaded once here (a missing dataset is named on the page, :func:`minima.data.load_each`)."""
    def ref(name: str) -> TaskRef:
        kind, dataset = ("image", mnist_dataset) if name == "MNIST" else ("text", text_dataset)
        size = embedding_dim if kind == "text" else 0
        return TaskRef.of(_load_task(kind, dataset, size), kind, dataset, size)

    return load_each(names, ref)
