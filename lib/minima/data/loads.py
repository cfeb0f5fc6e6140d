"""The log of dataset loads that a page's provenance is built from.

The batch runner (:mod:`minima.book.runner`) executes a notebook in a kernel of its own and
names a log file in the environment variable :data:`ENV` for it
(:func:`minima.book.provenance.collecting`); every :func:`minima.data.load` in that kernel
calls :func:`record_load`, which appends the dataset's metadata there.
"""
from __future__ import annotations

import json
import os

ENV = "MINIMA_PROVENANCE"


def record_load(metadata: dict) -> None:
    """Append one dataset load to the log the runner asked for (nothing outside a run)."""
    target = os.environ.get(ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(metadata) + "\n")
