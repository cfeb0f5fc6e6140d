"""Table 1 of the growing-network paper: grown versus fully connected networks.

One *run* of the table is (task, size, model, batch size, seed), a :class:`Table1Run` spec
executed by :func:`minima.runs.run_all`. The package, one concept a file:

- :mod:`.tasks`: the image and text tasks and :class:`TaskRef`, how a worker loads them;
- :mod:`.arms`: the networks (``growing``, ``a``, ``b``, ``c``), one builder each;
- :mod:`.training`: a run in progress and how its end point is measured;
- :mod:`.protocols`: how a run goes on from the paper protocol's end point (``converged``,
  ``regularised``);
- :mod:`.matched`: the ``matched-loss`` end points, every run of a cell at one training CE;
- :mod:`.records`: rows, records and the results table;
- :mod:`.run`: the run spec and its execution;
- :mod:`.plan`: :class:`Settings` (notebook 40's parameters) and :func:`plan`;
- :mod:`.regularisation`: how the regularised protocol's lambda is chosen.
"""
from .arms import ARCHITECTURES, ARMS, Network, build, paper_schedule
from . import matched, regularisation
from .matched import MATCHED, MatchedLossRun
from .plan import LARGE_ARMS, SMALL_ARMS, Settings, plan, plan_matched_loss
from .protocols import PROTOCOLS, Converged, Regularised, per_batch
from .records import RESULT_COLUMNS, Table1Record, Table1Row, TrainedRun, results_table
from .run import Table1Run, train_run
from .tasks import TaskRef, image_task, load_tasks, text_task
from .training import Training

__all__ = ["ARCHITECTURES", "ARMS", "Converged", "LARGE_ARMS", "MATCHED", "MatchedLossRun", "Network", "PROTOCOLS",
           "RESULT_COLUMNS", "Regularised", "SMALL_ARMS", "Settings", "Table1Record", "Table1Row", "Table1Run", "TaskRef",
           "TrainedRun", "Training", "build", "image_task", "load_tasks", "matched", "paper_schedule", "per_batch", "plan",
           "plan_matched_loss", "regularisation", "results_table", "text_task", "train_run"]
