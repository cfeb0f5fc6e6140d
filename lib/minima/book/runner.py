"""The papermill batch runner and provenance.

``python -m minima run --profile NAME [--only NB ...] [-p key=value ...]`` executes the
source notebooks in ``notebooks/`` one after another into ``book/generated/``:

1. the plan (profile, notebooks, parameters) is validated before anything runs: unknown
   profile, notebook or parameter names and values of the wrong type are refused with
   the valid choices listed;
2. each notebook runs under papermill with an explicit kernel and a per-cell timeout,
   writing into a scratch folder (``.runs/``); a failing cell stops the batch, prints the
   notebook, cell and error, and removes any earlier page of that notebook, so a
   failure never reaches the site;
3. on success the runner hides the parameter cells, puts a provenance box under the
   page title, records the provenance in the notebook metadata and in
   ``book/generated/provenance/NAME.json``, and moves the notebook into place atomically;
4. a notebook whose data is missing (a cell raised :class:`minima.data.DataError`) still gets
   a page: its introduction and a box saying what is missing and how to provide it; the
   batch goes on (status ``skipped: data``);
5. a notebook whose inputs are unchanged since its page was made is not executed again
   (status ``up to date``): the inputs are the notebook source, its parameters, the
   ``minima`` package's source, the data folder and the checksums of the data files the
   last run read (:func:`input_hash`). ``force=True`` (``--force``) re-executes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from ..runs.batch import ENV_FORCE as FORCE_ENV
from ..runs.executors import ENV as EXECUTOR_ENV, ExecutorConfig, ExecutorError
from .jobs import Job, PlanError, Project, executor_config, load_profiles, plan
from .provenance import box, collecting, library_digest, record
from .results import atomic_write

KERNEL_NAME = "minima"
HIDDEN_TAGS = ("parameters", "injected-parameters")


class NotebookFailed(RuntimeError):
    """A cell raised; the message names notebook, cell and error."""


# ------------------------------------------------------------------ planning


# ------------------------------------------------------------------ provenance

def provenance(project: Project, job: Job, profile: str, datasets: list[dict], wall_s: float,
               status: str = "ok", executor: ExecutorConfig | None = None) -> dict:
    """The provenance record of one executed job (:func:`minima.book.provenance.record`)."""
    executor = executor or ExecutorConfig()
    return record(project.root, job.name, profile, job.parameters, datasets, wall_s, status,
                  input_hash(project, job, datasets, executor.threads), executor.describe())


def _data_files(datasets: list[dict]) -> list[str]:
    return sorted({path for d in datasets for path in d.get("files", {})})


def input_hash(project: Project, job: Job, datasets: list[dict], threads: int = 1) -> str:
    """sha256 of everything a page depends on, as hex.

    Notebook source, parameters, the torch threads per run (they change float rounding), every
    ``.py`` file of the ``minima`` package, the data folder in use and the *current* md5 of each
    file in ``datasets`` (the files the run read; a file since changed or removed changes the
    hash). Which executor ran the runs is not an input: a run's record does not depend on it.
    """
    from .. import data

    digest = hashlib.sha256()
    digest.update(job.source.read_bytes())
    digest.update(json.dumps(job.parameters, sort_keys=True, default=repr).encode())
    digest.update(f"threads per run {threads}".encode())
    digest.update(library_digest())
    digest.update(str(data.data_root().resolve()).encode())
    for path in _data_files(datasets):
        digest.update(path.encode())
        digest.update((data.md5sum(Path(path)) if Path(path).is_file() else "missing").encode())
    return digest.hexdigest()


def up_to_date(project: Project, job: Job, threads: int = 1) -> bool:
    """True when ``job``'s page exists, was computed (not skipped) and its inputs are unchanged."""
    target = project.generated / f"{job.name}.ipynb"
    record_file = project.generated / "provenance" / f"{job.name}.json"
    if not (target.exists() and record_file.exists()):
        return False
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        return False
    if record.get("status") != "ok" or "input_hash" not in record:
        return False
    return record["input_hash"] == input_hash(project, job, record.get("datasets", []), threads)


def missing_data_page(executed: Path, message: str):
    """The page of a notebook that stopped on missing data: its opening text, then a box with
    ``message`` (what is missing, how to provide it). Later cells never ran and are dropped."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    kept = [c for c in nb.cells[:first_code]] + \
        [c for c in nb.cells[first_code:] if any(t in c.metadata.get("tags", []) for t in HIDDEN_TAGS)]
    for cell in kept:
        if cell.cell_type == "code":
            cell.outputs = []
    kept.append(nbformat.v4.new_markdown_cell("\n".join([
        "```{warning} This page was not computed: its data is missing",
        message.replace("`", "'"),
        "",
        "Provide the files named above (or point `MINIMA_DATA` at a folder that holds them) "
        "and run `python -m minima run` again.",
        "```"]), metadata={"tags": ["missing-data"]}))
    nb.cells = kept
    return nb


def finalise(executed, target: Path, record: dict) -> None:
    """Hide parameter cells, add the provenance box (folded, at the end: a reader comes for the
    results) and metadata (the provenance record; no page-contents sidebar), move into ``target``
    atomically.

    ``executed`` is the path of the executed notebook, or the notebook itself.
    """
    import nbformat

    nb = executed if isinstance(executed, nbformat.NotebookNode) else nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if any(t in tags for t in HIDDEN_TAGS) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nb.cells.append(nbformat.v4.new_markdown_cell(box(record), metadata={"tags": ["provenance"]}))
    nb.metadata["minima"] = {"provenance": record}
    # a results page is read for its tables: it gives them the page-contents sidebar's width
    # (the theme's file-wide option, which MyST-NB reads from the notebook's metadata)
    nb.metadata["html_theme.sidebar_secondary.remove"] = True
    atomic_write(target, nbformat.writes(nb))


# ------------------------------------------------------------------ execution

@contextlib.contextmanager
def _environment(values: dict):
    """Set (or, for ``None``, unset) environment variables for the kernels started inside."""
    previous = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def kernel_name() -> str:
    """The project's kernel when registered (``make venv`` does it), else this Python's own."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def ipc_kernel_manager() -> type:
    """A kernel manager whose kernels talk over local IPC sockets instead of TCP ports: nothing
    listens on the network, so there is nothing to encrypt and ipykernel has no warning to print
    for every notebook. The sockets live in a private temporary directory, not in the working
    directory (the project root), and go with it. Shutting a finished notebook's kernel down
    sends the shutdown message only: jupyter_client would first interrupt it (SIGINT), and a
    kernel that is starting or handling a message then prints ``KeyboardInterrupt caught in
    kernel`` to the terminal, which reads as a failure when nothing failed (a kernel that does not
    exit on the message is still killed by jupyter_client after its wait)."""
    import tempfile

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            self._socket_directory = tempfile.mkdtemp(prefix="minima-kernel-")
            return os.path.join(self._socket_directory, "ipc")

        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart and getattr(self, "_socket_directory", None):
                shutil.rmtree(self._socket_directory, ignore_errors=True)
    return IPCKernelManager


def execute(project: Project, job: Job, profile: str, cell_timeout: int, kernel: str,
            executor: ExecutorConfig | None = None, force: bool = False) -> dict:
    """Run one job; returns its provenance record (``status`` ``ok`` or ``skipped: data``) or
    raises :class:`NotebookFailed`."""
    import papermill

    target = project.generated / f"{job.name}.ipynb"
    record_file = project.generated / "provenance" / f"{job.name}.json"
    project.scratch.mkdir(parents=True, exist_ok=True)
    scratch = project.scratch / f"{job.name}.ipynb"
    loads = project.scratch / f"{job.name}.datasets.jsonl"
    start = time.perf_counter()
    status, page = "ok", scratch
    executor = executor or ExecutorConfig()
    with collecting(loads) as loaded, _environment({EXECUTOR_ENV: executor.to_env(), FORCE_ENV: "1" if force else None}):
        try:
            papermill.execute_notebook(str(job.source), str(scratch), parameters=job.parameters,
                                       kernel_name=kernel, execution_timeout=cell_timeout,
                                       progress_bar=False, cwd=str(project.root), log_output=False,
                                       kernel_manager_class=ipc_kernel_manager())
        except Exception as error:  # a cell raised, or kernel death, timeout, missing kernel: same contract
            missing_data = isinstance(error, papermill.PapermillExecutionError) and error.ename == "DataError"
            if missing_data:  # not a failure: the page says what is missing and the batch goes on
                status, page = "skipped: data", missing_data_page(scratch, error.evalue)
            else:
                target.unlink(missing_ok=True)
                record_file.unlink(missing_ok=True)
                if isinstance(error, papermill.PapermillExecutionError):
                    raise NotebookFailed(f"notebook {job.name} failed at cell {error.exec_count or error.cell_index}: "
                                         f"{error.ename}: {error.evalue} (executed copy: {scratch})") from None
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise NotebookFailed(f"notebook {job.name} failed: {type(error).__name__}: {message}") from None
    datasets = loaded()
    record = provenance(project, job, profile, datasets, time.perf_counter() - start, status, executor)
    finalise(page, target, record)
    atomic_write(record_file, json.dumps(record, indent=2))
    return record


def run(profile: str = "default", only: list[str] | None = None, overrides: dict | None = None,
        project: Project | None = None, out=None, force: bool = False, executor: dict | None = None) -> int:
    """Validate, then execute every job in order, skipping pages whose inputs are unchanged
    unless ``force`` (which also ignores the run cache). ``executor``: command-line choices
    (``kind``, ``workers``, ``threads``, ``address``) over the profile's. Returns a process exit
    code."""
    project, out = project or Project(), out or sys.stdout
    try:
        jobs = plan(project, profile, only, overrides)
        config = executor_config(project, profile, **(executor or {}))
        if config.kind == "ray":
            config.make()  # an unreachable cluster is refused before any notebook runs
    except (PlanError, ExecutorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cell_timeout = int((load_profiles(project)[profile] or {}).get("cell_timeout", 3600))
    kernel = kernel_name()
    print(f"profile {profile}: {len(jobs)} notebook(s), kernel {kernel}, cell timeout {cell_timeout} s; "
          f"runs: {config.describe()}", file=out, flush=True)
    for number, job in enumerate(jobs, start=1):
        tag = f"[{number}/{len(jobs)}] {job.name}"
        if not force and up_to_date(project, job, config.threads):
            print(f"{tag} up to date (inputs unchanged; --force re-executes)", file=out, flush=True)
            continue
        print(f"{tag} ...", file=out, flush=True)
        start = time.perf_counter()
        try:
            record = execute(project, job, profile, cell_timeout, kernel, config, force)
        except NotebookFailed as error:
            print(f"{tag} FAILED after {time.perf_counter() - start:.1f} s", file=out, flush=True)
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{tag} {record['status']} ({time.perf_counter() - start:.1f} s)", file=out, flush=True)
    return 0


def clean(project: Project | None = None) -> None:
    """Remove every generated page and the scratch folder (a clean state for a full rebuild)."""
    project = project or Project()
    shutil.rmtree(project.generated, ignore_errors=True)
    shutil.rmtree(project.scratch, ignore_errors=True)
