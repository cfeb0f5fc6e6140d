"""The geometry of a trained point: its convergence certificate (is it a minimum?), its
flatness under the three measures (plain, rsi, elementwise), and the rescalings that keep a
network's function and show which measures are invariant; and the trivial symmetries of a
ReLU MLP with the Hessian seen off them.

The measure itself is :func:`minima.geometry.flatness.flatness` (the module keeps its name).
"""
from .certificate import Certificate, Rule, certificate_of, certify, fits
from .flatness import MEASURES, all_measures, certified_measures, flatness_of
from .rescaling import demonstration, rescale_depths, rescale_neurons
from .symmetries import (ComplementOperator, SymmetryError, complement_eigenvalues, data_null_directions,
                         dead_units, orthonormal_span, trivial_basis, trivial_directions)

__all__ = ["MEASURES", "Certificate", "ComplementOperator", "Rule", "SymmetryError", "all_measures", "certificate_of",
           "certified_measures", "certify", "complement_eigenvalues", "data_null_directions", "dead_units", "demonstration", "fits",
           "flatness_of", "orthonormal_span", "rescale_depths", "rescale_neurons", "trivial_basis",
           "trivial_directions"]
