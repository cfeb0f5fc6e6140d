"""minima: companion library to the growing-networks and no-barriers papers.

The layers, each importing only from the ones below it (checked by ``lint-imports``, see
``[tool.importlinter]`` in ``pyproject.toml``)::

    bench, __main__   benchmarks and the command line
    book              runner, provenance, results files, plots, the ledger's pages, site build
    claims            the papers' claims, the evidence in the results files, verdicts
    experiments       the papers' numbers, Table 1, Table 2 and heads, no barriers
    runs              run specs, executors (serial, process pool, Ray), the run cache
    geometry | paths  certificate, flatness, rescaling | energies, NEB, AutoNEB, minima graph
    train             the one training loop
    growing | models | data   the grown network | fixed architectures | datasets
    core              flat parameters, Hessian operator, spectra, atomic writes, progress

``import minima`` is cheap: the subpackages load when first used (``minima.core``, ...).
"""
import importlib

__version__ = "0.1.0"
__all__ = ["bench", "book", "claims", "core", "data", "experiments", "geometry", "growing", "models", "paths", "train"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
