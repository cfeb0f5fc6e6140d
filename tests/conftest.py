"""Shared fixtures: the real data folder and a throw-away copy of the project."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def real_data_root() -> Path | None:
    """``$MINIMA_DATA`` if it holds the real files, else the project's shipped ``data/``, else
    ``../shared/data`` beside the project."""
    for candidate in (os.environ.get("MINIMA_DATA"), ROOT / "data", ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "MD5SUMS").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip("real data files not found: set MINIMA_DATA to a folder holding mnist/, ag_news/, cola/")
    return root


@pytest.fixture(scope="session")
def smoke_runs_cache(tmp_path_factory) -> Path:
    """One run cache for the tests that run the whole smoke profile: a run is a value (its spec
    and data digest are its key), so the second build takes the runs the first computed and
    still executes every notebook."""
    return tmp_path_factory.mktemp("smoke-runs")


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A copy of the project's book sources, notebooks and profiles in a temporary folder."""
    for name in ("notebooks", "book", "_config.yml", "profiles.yml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name,
                            ignore=shutil.ignore_patterns("generated", "_extra", "plotly.min.js"))
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path
