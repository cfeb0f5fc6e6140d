"""The geometry of a trained point: its convergence certificate (is it a minimum?), its
flatness under the three measures (plain, rsi, elementwise), and the rescalings that keep a
network's function and show which measures are invariant; and the trivial symmetries of a
ReLU MLP with the Hessian seen off them.

One entry point each: :func:`certify` (is this point a minimum?) and :func:`measure` (its
flatness), both on the point's :class:`~minima.core.hessian.HessianOperator`; :func:`finish`
takes a trained point to a certified minimum of an :class:`Objective`.
"""
from .certificate import Certificate, Rule, certify, fits
from .finish import Finish, Objective, finish, lbfgs_rounds
from .flatness import MEASURES, measure, measure_operator
from .rescaling import demonstration, rescale_depths, rescale_neurons
from .symmetries import (ComplementOperator, SymmetryError, complement_eigenvalues, data_null_directions,
                         dead_units, orthonormal_span, trivial_basis, trivial_directions)

__all__ = ["MEASURES", "Certificate", "ComplementOperator", "Finish", "Objective", "Rule", "SymmetryError", "certify",
           "complement_eigenvalues", "data_null_directions", "dead_units", "demonstration", "finish", "fits", "lbfgs_rounds", "measure",
           "measure_operator", "orthonormal_span", "rescale_depths", "rescale_neurons", "trivial_basis",
           "trivial_directions"]
