"""The switch to plain autograd for second derivatives.

Models with custom first-order kernels (the grown network's fused pass,
:mod:`minima.growing.kernel`) read :func:`double_backward_active` and fall back to plain
differentiable ops inside :func:`double_backward`, which the Hessian operator enters for every
Hessian-vector product. The flag lives in the core so that the operator needs no knowledge of
the models that honour it.
"""
from __future__ import annotations

import contextlib
import threading


class _DoubleBackward(threading.local):
    active = False


_double_backward = _DoubleBackward()


@contextlib.contextmanager
def double_backward():
    """Within this context every model with a custom kernel (a GrowingNet) runs on plain autograd ops, so that second
    derivatives (Hessian-vector products) and ``torch.func`` transforms work."""
    previous, _double_backward.active = _double_backward.active, True
    try:
        yield
    finally:
        _double_backward.active = previous


def double_backward_active() -> bool:
    """Whether this thread is inside :func:`double_backward`."""
    return _double_backward.active
