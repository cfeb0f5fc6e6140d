"""Paths between minima: energies over flat parameters (a network's loss, analytic surfaces),
NEB and AutoNEB, and the graph of minima and saddles with its minimum spanning tree."""
from .energy import ModelEnergy
from .landscape import MinimaGraph
from .neb import AUTONEB_CYCLES, EnergyPath, NEBError, auto_neb, linear_path, relax, scaled_cycles
from .surfaces import mueller_brown

__all__ = ["AUTONEB_CYCLES", "EnergyPath", "MinimaGraph", "ModelEnergy", "NEBError", "auto_neb", "linear_path",
           "mueller_brown", "relax", "scaled_cycles"]
