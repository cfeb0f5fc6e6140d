"""Plotly figure builders, one file per part of the book (:mod:`.style` holds the shared look
and the offline ``show()``); pages call them as ``plots.NAME``."""
from .dag import before_after_insertion, dag_positions, dag_traces, depth_profile, growth_animation, insertion_highlight
from .data import class_balance, image_grid
from .flatness import arms, convergence, final_rsi, head_mcc, head_ratios, selection_curve, spectral_density_figure, \
    training_curves
from .paths import aligned_barriers, energy_profile, first_passage, minima_graph, profiles_by_width, saddle_history, surface_with_paths, \
    transition
from .style import COLOURS, TEMPLATE, log_hline, log_range, show

__all__ = ["COLOURS", "TEMPLATE", "aligned_barriers", "arms", "before_after_insertion", "class_balance", "convergence", "dag_positions", "dag_traces",
           "depth_profile", "energy_profile", "final_rsi", "first_passage", "growth_animation", "head_mcc", "head_ratios",
           "image_grid", "insertion_highlight", "log_hline", "log_range", "minima_graph", "profiles_by_width",
           "saddle_history", "selection_curve", "show", "spectral_density_figure", "surface_with_paths", "training_curves", "transition"]
