"""The run cache: one file per run, content-addressed, under ``.cache/runs/`` by default.

A run's key (:func:`run_key`) hashes its spec (fields, tensors by content: data digests are
spec fields), the source of the library modules that compute it (the spec's module and every
``minima`` module it imports, :func:`minima.core.source.import_closure`: editing the
no-barriers code or a figure leaves Table 1's runs cached; a spec defined outside the package
depends on every module below the book), the torch version and the threads per run. The driver writes each record atomically as it
arrives, so an interrupted batch keeps every finished run and resumes with the missing ones.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

from ..core.io import atomic_write
from ..core.source import closure_digest, library_digest
from .spec import Spec, spec_key

ENV_DIR = "MINIMA_RUNS_CACHE"
#: parts of the package that never change a run's numbers
NOT_IN_KEY = ("book", "bench", "__main__.py")


def default_dir() -> Path:
    """``$MINIMA_RUNS_CACHE``, else ``.cache/runs`` under the working directory (the project
    root when the batch runner executes a notebook)."""
    return Path(os.environ.get(ENV_DIR) or Path.cwd() / ".cache" / "runs")


_SOURCES: dict[str, bytes] = {}


def source_digest(module: str) -> bytes:
    """The digest of the library source that computes the runs of specs defined in ``module``
    (read once per process and module)."""
    if module not in _SOURCES:
        inside = module.split(".")[0] == "minima"
        _SOURCES[module] = closure_digest(module) if inside else library_digest(exclude=NOT_IN_KEY)
    return _SOURCES[module]


def run_key(spec: Spec, threads: int) -> str:
    import hashlib

    import torch

    digest = hashlib.sha256(spec_key(spec).encode())
    digest.update(source_digest(type(spec).__module__))
    digest.update(f"torch {torch.__version__}; threads {threads}".encode())
    return digest.hexdigest()


class RunCache:
    """Records by run key, one pickle per run (``<dir>/<key[:2]>/<key>.pkl``)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pkl"

    def get(self, key: str):
        """The cached record, or ``None`` (a missing or unreadable file is a miss)."""
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            return None

    def put(self, key: str, record) -> None:
        atomic_write(self.path(key), pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
