"""Provenance: what each page was computed from, recorded by both sides of the runner.

The batch runner (:mod:`minima.book.runner`) executes a notebook in a kernel of its own; the dataset
loaders (:mod:`minima.data`) run inside that kernel. They meet here: the runner wraps the
execution in :func:`collecting`, which names a log file in the environment variable
:data:`ENV` for the kernel it starts, and every :func:`minima.data.load` calls
:func:`record_load`, which appends the dataset's metadata (name, split, size, files and their
checksums) to that log. The runner then builds the page's :func:`record` and its :func:`box`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

from ..core.source import library_digest  # noqa: F401 (re-exported)
from ..data.loads import ENV

@contextlib.contextmanager
def collecting(log: Path):
    """Within this context the loads of this process and of kernels it starts go to ``log``
    (emptied first); yields a function returning them as a list of dicts."""
    log = Path(log)
    log.unlink(missing_ok=True)
    previous, os.environ[ENV] = os.environ.get(ENV), str(log)
    try:
        yield lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def device_description() -> str:
    """The device a page was computed on, in words."""
    import torch

    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU"


def record(root: Path, notebook: str, profile: str, parameters: dict, datasets: list[dict], wall_s: float,
           status: str, inputs_hash: str, executor: str = "") -> dict:
    """The provenance record of one page: profile, parameters, commit, device, versions, the
    datasets its run loaded (deduplicated), wall time, date, status and the hash of its inputs."""
    import importlib.metadata as md

    versions = {}
    for package in ("torch", "numpy", "scipy", "pandas", "plotly", "papermill", "transformers"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    unique = {json.dumps(d, sort_keys=True) for d in datasets}
    return {
        "notebook": notebook,
        "profile": profile,
        "parameters": parameters,
        "git_commit": _git(root, "rev-parse", "HEAD") or "unknown",
        "git_dirty": bool(_git(root, "status", "--porcelain")),
        "device": device_description(),
        "executor": executor,
        "python": platform.python_version(),
        "versions": versions,
        "datasets": [json.loads(d) for d in sorted(unique)],
        "wall_time_s": round(wall_s, 1),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "status": status,
        "input_hash": inputs_hash,
    }


def box(record: dict) -> str:
    """MyST admonition shown under the page title."""
    sizes: dict[str, list[str]] = {}
    for d in record["datasets"]:
        sizes.setdefault(d["description"], []).append(f"{d['split']} {d['size']:,}")
    data = "; ".join(f"{description} [{', '.join(s)}]" for description, s in sizes.items()) \
        or "no dataset files (synthetic or embedded only)"
    commit = record["git_commit"][:10] + (" (with uncommitted changes)" if record["git_dirty"] else "")
    params = ", ".join(f"`{k}={v!r}`" for k, v in record["parameters"].items()) or "defaults"
    return "\n".join([
        "```{admonition} Provenance of this page",
        ":class: note dropdown",
        f"- **Profile:** `{record['profile']}`; parameters: {params}",
        f"- **Data actually used:** {data}",
        f"- **Commit:** `{commit}`; **device:** {record['device']}; torch {record['versions']['torch']}, "
        f"Python {record['python']}",
        f"- **Runs executed by:** {record.get('executor') or 'this notebook'}; cached runs are reused "
        "(`.cache/runs`, keyed by spec, library source, data, torch version and threads)",
        f"- **Executed:** {record['date']} in {record['wall_time_s']} s; inputs hash "
        f"`{record['input_hash'][:12]}` (notebook, parameters, library source, data checksums)",
        "```",
    ])
