"""Stratified subsets of a labelled split: the re-splits of the registry and the trims of the
experiments, both deterministic."""
from __future__ import annotations

import numpy as np

RESPLIT_SEED = 0
RESPLIT_TRAIN_FRACTION = 0.8


def stratified_split(targets: np.ndarray, train_fraction: float = RESPLIT_TRAIN_FRACTION,
                     seed: int = RESPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split of indices ``0..N-1`` into (train, test), each sorted."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == label))
        cut = int(round(train_fraction * len(members)))
        train.append(members[:cut])
        test.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_subset(targets: np.ndarray, n: int) -> np.ndarray:
    """The indices ``(n,)``, sorted, of the first examples of each class in file order, as many of
    each as its share of ``targets`` gives (largest remainders round): a trim that keeps the class
    balance and needs no seed. ``n`` at least ``len(targets)`` gives every index."""
    targets = np.asarray(targets)
    if n >= len(targets):
        return np.arange(len(targets))
    labels, counts = np.unique(targets, return_counts=True)
    exact = counts * n / len(targets)
    take = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[k] += 1
    chosen = [np.flatnonzero(targets == label)[:k] for label, k in zip(labels, take)]
    return np.sort(np.concatenate(chosen))
