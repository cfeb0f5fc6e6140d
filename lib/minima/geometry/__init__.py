"""The geometry of a trained point: its convergence certificate (is it a minimum?), its
flatness under the three measures (plain, rsi, elementwise), and the rescalings that keep a
network's function and show which measures are invariant.

The measure itself is :func:`minima.geometry.flatness.flatness` (the module keeps its name).
"""
from .certificate import Certificate, Rule, certificate_of, certify, fits
from .flatness import MEASURES, all_measures, certified_measures, flatness_of
from .rescaling import demonstration, rescale_depths, rescale_neurons

__all__ = ["MEASURES", "Certificate", "Rule", "all_measures", "certificate_of", "certified_measures", "certify",
           "demonstration", "fits", "flatness_of", "rescale_depths", "rescale_neurons"]
