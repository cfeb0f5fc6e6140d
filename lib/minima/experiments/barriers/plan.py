"""The explorations of a page: :class:`Settings` (everything that determines one
architecture's minima and paths), each architecture's training :func:`recipe`, and
:func:`plan`, the grid of datasets and architectures."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Everything that determines the minima and the paths of one exploration."""

    dataset: str
    architecture: str
    seeds: tuple = (0, 1, 2, 3, 4)
    epochs: int = 10
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 1e-4
    neb_batch_size: int = 512
    cycle_scale: float = 0.05  # AutoNEB steps are the paper's times this factor
    n_initial: int = 3
    max_insert: int = 2  # pivots inserted per cycle at most (paper: as many as qualify; we cap)
    max_paths: int = 8
    eval_subset: int = 2000  # training examples for dense path evaluation and Hessians
    max_epochs: int = 0  # > epochs: a minimum not certified after `epochs` goes on at the last rate up to this
    max_extra_cycles: int = 0  # AutoNEB cycles added until the path-convergence rule holds
    max_doublings: int = 0  # the saddle's certificate: the schedule re-run with cycles 2x, 4x, ... as long, at most this often
    pairs: str = "tree"  # "tree": the paper's MST heuristic picks the pairs; "all": every pair of minima
    spectrum_max_params: int = 8000  # the exact Hessian off the trivial symmetries up to this many parameters
    finish_rounds: int = 40  # a minimum SGD leaves uncertified is finished by full-batch L-BFGS, this many rounds at most
    finish_iterations: int = 25  # L-BFGS iterations per round
    aligned_autoneb: bool = False  # AutoNEB again from weight-aligned ends where the aligned straight line is below the saddle


RECIPE_KEYS = ("epochs", "lr", "batch_size", "max_epochs")


def recipe(architecture_name: str, defaults: dict, overrides: dict[str, dict], dataset: str = "") -> dict:
    """The training recipe of one architecture on one dataset: ``defaults`` (keys
    :data:`RECIPE_KEYS`) updated, in the order given, by every entry of ``overrides`` whose key
    names it: the architecture (``"mlp-8"``), a family of it (``"densenet"`` names
    ``densenet-40-12``, ``"mlp"`` every width; ``"mlp-1"`` names no width), the dataset
    (``"fashion-10k"``) or both (``"fashion-10k mlp-4"``). The paper trains its ResNets as He et
    al. (164 epochs, batch 128) and its DenseNets as Huang et al. (300 epochs, batch 64)."""
    merged = dict(defaults)
    for key, values in overrides.items():
        unknown = set(values) - set(RECIPE_KEYS)
        if unknown:
            raise ValueError(f"recipes[{key!r}] has unknown keys {sorted(unknown)}; use {', '.join(RECIPE_KEYS)}")
        if key in (architecture_name, dataset, f"{dataset} {architecture_name}") or \
                architecture_name.startswith(key + "-"):
            merged.update(values)
    return merged


ALIGNED_AUTONEB = ("none", "widest", "all")


def plan(datasets, architectures: "list[str] | dict[str, list[str]]", defaults: dict, recipes: dict[str, dict],
         aligned_autoneb: str = "none", **common) -> dict[tuple[str, str], "Settings"]:
    """The explorations of a page: ``{(dataset, architecture): Settings}`` for every dataset of
    ``datasets`` and every architecture of ``architectures`` (one list for all, or a list per
    dataset), each with its :func:`recipe` and the ``common`` :class:`Settings` fields.
    ``aligned_autoneb``: which architectures run AutoNEB again from weight-aligned ends
    (``"widest"``: the two widest MLPs of each dataset; ``"all"``; ``"none"``)."""
    if aligned_autoneb not in ALIGNED_AUTONEB:
        raise ValueError(f"aligned_autoneb={aligned_autoneb!r}: choose one of {', '.join(ALIGNED_AUTONEB)}")
    grid = {}
    for dataset in datasets:
        names = architectures[dataset] if isinstance(architectures, dict) else architectures
        mlps = sorted((n for n in names if n.startswith("mlp-")), key=lambda n: int(n.split("-")[1]))
        chosen = {"none": [], "widest": mlps[-2:], "all": mlps}[aligned_autoneb]
        for name in names:
            grid[(dataset, name)] = Settings(dataset, name, **recipe(name, defaults, recipes, dataset),
                                             aligned_autoneb=name in chosen, **common)
    return grid
