"""The papers' experiments, the only code that knows the papers: their numbers
(:mod:`~minima.experiments.papers`), Table 1 (:mod:`~minima.experiments.table1`), Table 2 with
its heads on a pretrained encoder (:mod:`~minima.experiments.table2`,
:mod:`~minima.experiments.heads`) and the no-barriers exploration
(:mod:`~minima.experiments.barriers`). Notebooks import these modules by name."""
from . import barriers, heads, papers, table1, table2

__all__ = ["barriers", "heads", "papers", "table1", "table2"]
