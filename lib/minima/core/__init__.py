"""The numerical core: a model's parameters as flat coordinates, its Hessian as an operator,
spectra of any symmetric operator, and the process-level utilities every layer shares
(device choice, atomic writes, terminal progress bars: :func:`minima.core.progress.progress`).

Nothing here knows a paper, a dataset or a network family: :class:`FlatView` and
:class:`HessianOperator` take any ``nn.Module``; the spectral algorithms take any
:class:`LinearOperator` (the Hessian, a rescaled or shifted one, or a plain ``matvec``).
"""
from .autograd import double_backward, double_backward_active
from .batching import batch_shares
from .device import resolve
from .hessian import FlatnessError, HessianOperator
from .io import atomic_write
from .operators import LinearOperator, MatrixFree, Rescaled, Shifted, as_operator
from .parameters import FlatView
from .progress import terminal_only
from .source import library_digest
from .spectrum import density_on_grid, hutchinson_trace, lanczos, power_iteration, spectral_density

__all__ = ["FlatView", "FlatnessError", "HessianOperator", "LinearOperator", "MatrixFree", "Rescaled", "Shifted",
           "as_operator", "atomic_write", "batch_shares", "density_on_grid",
           "double_backward", "double_backward_active", "hutchinson_trace", "lanczos", "library_digest",
           "power_iteration", "resolve", "spectral_density", "terminal_only"]
