"""Data-set means taken batch by batch."""
from __future__ import annotations


def batch_shares(batches) -> list[float]:
    """Each ``(inputs, targets)`` batch's share of the examples, ``n_b / N``: the weights of a
    data-set mean taken batch by batch (so an uneven last batch is exact)."""
    total = sum(len(y) for _, y in batches)
    return [len(y) / total for _, y in batches]
