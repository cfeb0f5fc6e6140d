"""What a batch of notebooks will run, validated before anything runs: the project's
folders, its profiles (``profiles.yml``), one :class:`Job` per notebook with its parameters
(type-checked against the notebook's own defaults) and the executor its runs use. Unknown
profile, notebook or parameter names and values of the wrong type are refused with the valid
choices listed (:class:`PlanError`)."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..runs.executors import ExecutorConfig, ExecutorError

ROOT = Path(__file__).resolve().parents[3]


class PlanError(ValueError):
    """The requested run is invalid (bad profile, notebook, parameter name or type)."""


@dataclass
class Project:
    """Where things live; tests point this at a temporary copy."""

    root: Path = ROOT

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def book(self) -> Path:
        return self.root / "book"

    @property
    def generated(self) -> Path:
        return self.book / "generated"

    @property
    def site(self) -> Path:
        """Where jupyter-book writes the HTML site."""
        return self.root / "_build" / "html"

    @property
    def scratch(self) -> Path:
        return self.root / ".runs"

    @property
    def profiles_file(self) -> Path:
        return self.root / "profiles.yml"


@dataclass
class Job:
    """One notebook to execute with its final parameters."""

    name: str
    source: Path
    parameters: dict = field(default_factory=dict)


def load_profiles(project: Project) -> dict:
    with open(project.profiles_file, encoding="utf-8") as handle:
        profiles = yaml.safe_load(handle) or {}
    for name, profile in profiles.items():
        unknown = set(profile or {}) - {"description", "cell_timeout", "notebooks", "executor"}
        if unknown:
            raise PlanError(f"profiles.yml: profile {name!r} has unknown keys {sorted(unknown)}; "
                            "allowed: description, cell_timeout, executor, notebooks")
    return profiles


def discover(project: Project) -> dict[str, Path]:
    """Source notebooks by name (file stem), in execution order (sorted by file name)."""
    return {p.stem: p for p in sorted(project.notebooks.glob("*.ipynb"))}


def notebook_defaults(path: Path) -> dict:
    """``{name: default value}`` from the cell tagged ``parameters``.

    A default that is not a Python literal is returned as ``...`` (any type accepted).
    """
    import papermill

    defaults = {}
    for name, spec in papermill.inspect_notebook(str(path)).items():
        try:
            defaults[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            defaults[name] = ...
    return defaults


CHOOSE = "choose"  # a parameter's default that the page chooses itself; a number overrides it


def _type_ok(value, default) -> bool:
    if default is ... or default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if default == CHOOSE:  # a value chosen by the page (Table 2's lambda), or given as a number
        return value == CHOOSE or isinstance(value, (int, float))
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def parse_override(text: str) -> tuple[str, object]:
    """``"key=value"`` -> (key, value): a Python literal (``[0, 1]``, ``1e-3``, ``'x'``), else YAML
    (``true``, ``[a, b]``), else the plain string."""
    if "=" not in text:
        raise PlanError(f"parameter {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def plan(project: Project, profile: str, only: list[str] | None = None,
         overrides: dict | None = None) -> list[Job]:
    """Validate the request and return the jobs; raises :class:`PlanError` listing valid choices."""
    profiles = load_profiles(project)
    if profile not in profiles:
        raise PlanError(f"unknown profile {profile!r}; choose one of {', '.join(profiles)}")
    notebooks = discover(project)
    if not notebooks:
        raise PlanError(f"no notebooks in {project.notebooks}")
    unknown = [name for name in (only or []) if name not in notebooks]
    if unknown:
        raise PlanError(f"unknown notebook(s) {', '.join(unknown)}; choose from {', '.join(notebooks)}")
    per_notebook = (profiles[profile] or {}).get("notebooks") or {}
    stray = [name for name in per_notebook if name not in notebooks]
    if stray:
        raise PlanError(f"profiles.yml: profile {profile!r} names unknown notebook(s) "
                        f"{', '.join(stray)}; choose from {', '.join(notebooks)}")
    overrides = overrides or {}
    selected = [name for name in notebooks if not only or name in only]
    jobs, used = [], set()
    for name in selected:
        defaults = notebook_defaults(notebooks[name])
        params = {"profile": profile} if "profile" in defaults else {}
        requested = {**(per_notebook.get(name) or {})}
        requested.update({k: v for k, v in overrides.items() if k in defaults})
        used.update(k for k in overrides if k in defaults)
        for key, value in requested.items():
            if key not in defaults:
                raise PlanError(f"notebook {name} has no parameter {key!r}; valid: {', '.join(defaults)}")
            if not _type_ok(value, defaults[key]):
                kind = f"a number or {CHOOSE!r}" if defaults[key] == CHOOSE else type(defaults[key]).__name__
                raise PlanError(f"notebook {name}: parameter {key!r} must be {kind} (default {defaults[key]!r}), "
                                f"got {type(value).__name__} {value!r}")
        params.update(requested)
        jobs.append(Job(name, notebooks[name], params))
    unused = sorted(set(overrides) - used)
    if unused:
        valid = sorted({k for n in selected for k in notebook_defaults(notebooks[n])})
        raise PlanError(f"unknown parameter(s) {', '.join(unused)} for the selected notebooks; "
                        f"valid: {', '.join(valid)}")
    return jobs


def executor_config(project: Project, profile: str, kind: str | None = None, workers: int | None = None,
                    threads: int | None = None, address: str | None = None) -> ExecutorConfig:
    """The executor of a batch: the profile's ``executor:`` entry (``kind``, ``workers``,
    ``threads``, ``address``), each field overridden by the command line; raises
    :class:`PlanError` (one line) for a bad choice."""
    entry = dict((load_profiles(project).get(profile) or {}).get("executor") or {})
    unknown = set(entry) - {"kind", "workers", "threads", "address"}
    if unknown:
        raise PlanError(f"profiles.yml: executor of {profile!r} has unknown keys {sorted(unknown)}; "
                        "allowed: kind, workers, threads, address")
    for key, value in (("kind", kind), ("workers", workers), ("threads", threads), ("address", address)):
        if value is not None:
            entry[key] = value
    try:
        return ExecutorConfig(**entry)
    except ExecutorError as error:
        raise PlanError(str(error)) from None
