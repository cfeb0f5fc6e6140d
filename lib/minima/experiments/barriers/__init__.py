"""The "no barriers" experiment (Draxler et al. 2018, section 4): minima, AutoNEB paths, summary.

For one or several architectures on one dataset: train several minima from different seeds
(:class:`MinimumRun`, all at once on the runs executor), connect pairs chosen by the MST
heuristic (:class:`minima.paths.landscape.MinimaGraph`) with AutoNEB in rounds
(:class:`PathRun`: the heuristic decides which pairs, the executor relaxes a round's paths
side by side), evaluate every final path densely (training loss, test loss, test error)
beside the straight line between the same minima and the straight lines after aligning the
second minimum's hidden units to the first's (and, where such a line is below the saddle,
AutoNEB again from the aligned ends), and summarise the minimum spanning tree's saddles as in
the paper's table.

Every minimum and path is a run of :mod:`minima.runs`, cached by content under
``.cache/runs``. The package, one concept a file: :mod:`.data` (what every run shares),
:mod:`.minimum`, :mod:`.paths`, :mod:`.plan` (settings and recipes), :mod:`.explore` (the
rounds of runs), :mod:`.tables` (the results tables).
"""
from .data import DataRef, energy_of, error_rate, make_model
from .explore import Exploration, explore, explore_all, lower_after_alignment, minimum_runs, path_run
from .minimum import MinimumRecord, MinimumRun, NUMERICAL_ZERO, collapse, finish_minimum, symmetry_spectrum, train_minimum
from .paths import PathRun
from .plan import RECIPE_KEYS, Settings, plan, recipe
from .tables import (ALIGNMENT_BARRIERS, CURVATURE_COLUMNS, MINIMA_COLUMNS, PATH_COLUMNS, aligned_barriers,
                     alignment_table, capacity_table, certified_saddles, curvature_table,
                     minima_rows, network_name, paper_excess_fractions, path_rows, saddle_budget, summary_row,
                     transition_table)

__all__ = ["ALIGNMENT_BARRIERS", "CURVATURE_COLUMNS", "DataRef", "Exploration", "MINIMA_COLUMNS", "MinimumRecord", "MinimumRun", "NUMERICAL_ZERO",
           "PATH_COLUMNS", "PathRun", "RECIPE_KEYS", "Settings", "aligned_barriers", "alignment_table", "capacity_table", "certified_saddles", "collapse",
           "curvature_table",
           "energy_of", "error_rate", "explore", "explore_all", "lower_after_alignment", "finish_minimum", "make_model", "minima_rows",
           "minimum_runs", "network_name", "paper_excess_fractions", "path_rows", "path_run", "plan", "recipe",
           "saddle_budget", "summary_row", "symmetry_spectrum", "train_minimum", "transition_table"]
