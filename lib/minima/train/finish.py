"""The full-batch finish: L-BFGS from where SGD stopped, on the same objective.

SGD's last epochs can creep down a long valley (a loss falling 0.1 % per 10 epochs) without
ever meeting the certificate's plateau test. A quasi-Newton method on the whole training set
reaches the bottom of that valley in a few dozen iterations. Experiments use it after their
SGD protocol, and state it on their pages (a ``finish`` column): the minimum is then the one
SGD's basin holds, reached by another optimiser.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch


def lbfgs_rounds(parameters: list[torch.Tensor], objective: Callable[[], torch.Tensor], rounds: int,
                 iterations: int, history: int = 100) -> Iterator[int]:
    """Full-batch L-BFGS (strong Wolfe line search, the last ``history`` steps: a long memory
    helps in the narrow valleys SGD leaves, measured on the no-barriers minima) on the scalar that
    ``objective()`` returns: the closure computes it, back-propagates it into the ``.grad`` of
    ``parameters`` (zeroed before each call; it may accumulate over batches) and returns its
    value. Runs ``rounds`` rounds of at most ``iterations`` iterations each and yields the
    round's number (from 1) after each, so that the caller can test the point and stop."""
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=iterations, history_size=history,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        optimizer.zero_grad(set_to_none=False)
        return torch.as_tensor(objective()).detach()

    for number in range(1, rounds + 1):
        optimizer.step(closure)
        yield number
