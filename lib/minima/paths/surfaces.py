"""Analytic energy surfaces on which path and saddle methods are checked.

:func:`mueller_brown` is the surface of Müller & Brown (1979), the standard test for
minimum-energy-path methods: three minima (A, B, C) and two saddles between them. Its
coordinates and energies here are the ones quoted in the literature to 4-6 digits.
"""
from __future__ import annotations

import torch

# Müller & Brown (1979), Theor. Chim. Acta 53, 75: sum of four anisotropic Gaussians.
MUELLER_BROWN = dict(A=(-200.0, -100.0, -170.0, 15.0), a=(-1.0, -1.0, -6.5, 0.7), b=(0.0, 0.0, 11.0, 0.6),
                     c=(-10.0, -10.0, -6.5, 0.7), x0=(1.0, 0.0, -0.5, -1.0), y0=(0.0, 0.5, 1.5, 1.0))
MINIMA = {"A": (-0.558224, 1.441726), "B": (-0.050011, 0.466694), "C": (0.623499, 0.028038)}
MINIMA_ENERGIES = {"A": -146.6995, "B": -80.7678, "C": -108.1667}
SADDLE_AB_ENERGY = -40.6648  # the saddle between A and B, the highest point of the A-C path


def mueller_brown(points: torch.Tensor) -> torch.Tensor:
    """Energy of points ``(P, 2)`` -> ``(P,)``, differentiable, in the dtype of ``points``."""
    x, y = points[:, 0], points[:, 1]
    return sum(A * torch.exp(a * (x - x0) ** 2 + b * (x - x0) * (y - y0) + c * (y - y0) ** 2)
               for A, a, b, c, x0, y0 in zip(*MUELLER_BROWN.values()))


def minimum(name: str, dtype=torch.float64) -> torch.Tensor:
    """The coordinates of minimum ``"A"``, ``"B"`` or ``"C"`` as a tensor ``(2,)``."""
    return torch.tensor(MINIMA[name], dtype=dtype)
