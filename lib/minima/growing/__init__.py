"""The growing network of Caillon & Cerisara (2021), read in this order:

- :mod:`~minima.growing.dag`: the graph and Algorithm 1 in plain arrays (insertion, depths, pi0);
- :mod:`~minima.growing.network`: :class:`GrowingNet`, the ``nn.Module`` (weights in depth
  order, growth carried into the weights and into adopted optimizers);
- :mod:`~minima.growing.kernel`: the fused level-by-level forward and backward passes;
- :mod:`~minima.growing.schedules`: when to grow, fan-ins for a parameter budget, counts;
- :mod:`~minima.growing.direct`: the direct input-output map, and collapse onto it.
"""
from .dag import Dag, GrowthError, Insertion
from ..core.autograd import double_backward
from .direct import COLLAPSE_TOLERANCE, collapsed, direct_mask, direct_share, hidden_part
from .network import ACTIVATIONS, GrowingNet
from .schedules import GrowthPlan, GrowthSchedule, fan_in_for_budget, fully_connected_parameters

__all__ = ["ACTIVATIONS", "COLLAPSE_TOLERANCE", "Dag", "GrowingNet", "GrowthError", "GrowthPlan", "GrowthSchedule", "Insertion",
           "collapsed", "direct_mask", "direct_share", "double_backward", "fan_in_for_budget",
           "fully_connected_parameters", "hidden_part"]
