"""Table 2 of the growing-network paper: growing the classification head of a pretrained
transformer on CoLA, against the model's own (reference) head of the same size.

The package, one concept a file: :mod:`.records` (heads, how a trained head is finished and
measured, its record), :mod:`.protocols` (frozen encoder, top layers fine-tuned, whole model)
and :mod:`.plan` (the setup shared by a table's runs, :class:`Settings`, the :class:`HeadRun`
spec, :func:`plan`), :mod:`.regularisation` (choosing the head objective's ``lambda``); the
encoder and its heads are :mod:`minima.experiments.heads`.
"""
from . import regularisation
from .plan import (HeadRun, Settings, Table2Setup, cola, frozen_inputs, frozen_settings, plan, protocol_settings,
                   run_heads, setup_for)
from .protocols import PROTOCOLS, fine_tune, fine_tune_top, run_head
from .records import (END_POINTS, REGULARISED, RESULT_COLUMNS, Head, HeadRecord, HeadTraining, finish_head, head_rows,
                      make_head, mcc_interval, results_table)

__all__ = ["END_POINTS", "Head", "HeadRecord", "HeadRun", "HeadTraining", "PROTOCOLS", "REGULARISED", "RESULT_COLUMNS",
           "Settings", "Table2Setup", "cola", "fine_tune", "fine_tune_top", "finish_head", "frozen_inputs",
           "frozen_settings", "head_rows", "make_head", "mcc_interval", "plan", "protocol_settings", "regularisation",
           "results_table", "run_head", "run_heads", "setup_for"]
