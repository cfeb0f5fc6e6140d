"""Runs on an engine: each independent unit of work is a frozen spec (:class:`Spec`), executed
by :func:`run_all` on an executor (:class:`ExecutorConfig`: ``serial``, ``local`` process pool,
``ray`` cluster) and cached by content (:class:`RunCache`), so that a record is the same
whichever executor ran it and a page whose prose changed re-executes from the cache."""
from .batch import failure_table, failures, missing, run_all, successes
from .cache import RunCache, run_key
from .executors import KINDS, ExecutorConfig, ExecutorError
from .spec import Failure, Resources, Spec, SpecError, spec_key

__all__ = ["KINDS", "ExecutorConfig", "ExecutorError", "Failure", "Resources", "RunCache", "Spec", "SpecError",
           "failure_table", "failures", "missing", "run_all", "run_key", "spec_key", "successes"]
