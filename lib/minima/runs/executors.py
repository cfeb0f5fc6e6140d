"""Executors: where the runs of a batch execute. Every one calls :func:`execute` on each spec,
so a record does not depend on which executor produced it.

- :class:`Serial`: in this process, one run after another (debugging, exact reproduction);
- :class:`LocalPool`: a process pool on this machine (``spawn``, never ``fork``: a forked
  torch runtime can deadlock; each worker sets its torch threads before its first run);
- :class:`RayCluster`: Ray core tasks on an existing cluster (``address``) or on a local one
  started for this process, each task asking for its spec's CPUs and (fractional) GPUs.

Every run executes with ``threads`` torch threads whichever executor runs it (the serial one
sets and restores them around each run): float summation order depends on the thread count,
so it is part of a run's cache key and identical records need identical threads.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

from .spec import Failure, Spec

ENV = "MINIMA_EXECUTOR"
KINDS = ("serial", "local", "ray")


class ExecutorError(ValueError):
    """A bad executor choice (kind, workers, threads, Ray address); the message is one line."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Which executor, how many workers, threads per run and, for Ray, the cluster address
    (``None``: start a local cluster with ``workers`` CPUs)."""

    kind: str = "local"
    workers: int = 0  # 0: one per core divided by threads
    threads: int = 1
    address: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ExecutorError(f"unknown executor {self.kind!r}; choose one of {', '.join(KINDS)}")
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "threads" else 0):
                raise ExecutorError(f"executor {name} must be an integer >= {1 if name == 'threads' else 0}, "
                                    f"got {value!r}")

    @property
    def n_workers(self) -> int:
        return self.workers or max(1, (os.cpu_count() or 1) // self.threads)

    def describe(self) -> str:
        if self.kind == "serial":
            return f"serial (in-process), {self.threads} torch thread(s) per run"
        where = "" if self.kind == "local" else f" on {self.address or 'a local Ray cluster'}"
        return f"{self.kind}{where}: {self.n_workers} worker(s) x {self.threads} torch thread(s) per run"

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ExecutorConfig":
        """The executor the batch runner chose (``$MINIMA_EXECUTOR``), else a local pool."""
        raw = os.environ.get(ENV)
        return cls(**json.loads(raw)) if raw else cls()

    def make(self):
        return {"serial": Serial, "local": LocalPool, "ray": RayCluster}[self.kind](self)


# ----------------------------------------------------------------------------- one run

def set_threads(threads: int) -> None:
    """Torch's intra-op threads for this process (OpenMP's too, for libraries that read it)."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def execute(spec: Spec, threads: int):
    """Run one spec: ``("ok", record, seconds)`` or ``("failed", Failure, seconds)``. Never raises
    for an error of the run itself."""
    import torch

    previous = torch.get_num_threads()
    if previous != threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        return "ok", spec.run(), time.perf_counter() - start
    except Exception as error:  # the run's own failure: reported, never fatal to the batch
        return "failed", Failure.of(spec, error), time.perf_counter() - start
    finally:
        if previous != threads:
            torch.set_num_threads(previous)


def _terminal_path() -> str | None:
    """A path that reopens the driver's terminal stream (:func:`minima.core.progress.terminal`)
    in a child process (Linux ``/proc``), or ``None``."""
    from ..core.progress import terminal

    try:
        path = f"/proc/{os.getpid()}/fd/{terminal().fileno()}"
    except (AttributeError, OSError, ValueError):
        return None
    return path if os.path.exists(path) else None


def _init_worker(threads: int, terminal: str | None, log: str | None) -> None:
    """A pool worker's first act: its output (progress bars, library chatter) goes to the
    driver's terminal, or to ``log`` when that cannot be reopened, never onto a notebook page
    (a kernel captures the descriptors its children inherit); then its thread count, before
    torch is imported."""
    fd = None
    for target in (terminal, log):
        if target:
            try:
                fd = os.open(target, os.O_WRONLY | os.O_APPEND | (os.O_CREAT if target == log else 0), 0o644)
                break
            except OSError:
                continue
    if fd is not None:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    set_threads(threads)


# ----------------------------------------------------------------------------- executors

class Serial:
    def __init__(self, config: ExecutorConfig):
        self.config = config

    def map(self, specs: list[Spec], log: str | None = None) -> Iterator[tuple[int, tuple]]:
        for index, spec in enumerate(specs):
            yield index, execute(spec, self.config.threads)


class LocalPool:
    def __init__(self, config: ExecutorConfig):
        self.config = config

    def map(self, specs: list[Spec], log: str | None = None) -> Iterator[tuple[int, tuple]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        workers = min(self.config.n_workers, len(specs)) or 1
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(self.config.threads, _terminal_path(), log)) \
                as pool:
            futures = {pool.submit(execute, spec, self.config.threads): index for index, spec in enumerate(specs)}
            for future in as_completed(futures):
                index = futures[future]
                try:
                    yield index, future.result()
                except BrokenProcessPool as error:  # a worker died (killed, out of memory)
                    yield index, ("failed", Failure.of(specs[index], RuntimeError(
                        f"the worker process died ({error}); the run's memory or time may be too large")), 0.0)


class RayCluster:
    def __init__(self, config: ExecutorConfig):
        self.config = config
        self._connect()

    def _connect(self) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError("the ray executor needs Ray: pip install -e '.[ray]' (make does it)") from None
        if ray.is_initialized():
            return
        env = {"env_vars": {"OMP_NUM_THREADS": str(self.config.threads)}}
        self._reachable(self.config.address)
        try:
            if self.config.address:
                ray.init(address=self.config.address, runtime_env=env, log_to_driver=False,
                         include_dashboard=False, logging_level="ERROR")
            else:
                ray.init(num_cpus=self.config.n_workers * self.config.threads, runtime_env=env, log_to_driver=False,
                         include_dashboard=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = self.config.address or "a local cluster"
            raise ExecutorError(f"cannot reach the Ray cluster at {where} ({str(error).splitlines()[0]}); start it "
                                "with `ray start --head` or choose --executor local") from None

    @staticmethod
    def _reachable(address: str | None, timeout: float = 5.0) -> None:
        """Refuse an address whose port does not answer within ``timeout`` seconds (``ray.init``
        itself retries for minutes); ``None`` and ``"auto"`` (a cluster on this machine) pass."""
        if not address or address == "auto":
            return
        host, _, port = address.split("://")[-1].rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
        except (OSError, ValueError) as error:
            raise ExecutorError(f"cannot reach the Ray cluster at {address} ({error}); start it with "
                                "`ray start --head` or choose --executor local") from None

    def map(self, specs: list[Spec], log: str | None = None) -> Iterator[tuple[int, tuple]]:
        import ray

        remote = ray.remote(execute)
        pending = {}
        for index, spec in enumerate(specs):
            resources = spec.resources()
            ref = remote.options(num_cpus=resources.cpus * self.config.threads, num_gpus=resources.gpus,
                                 max_retries=0).remote(spec, self.config.threads)
            pending[ref] = index
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                yield index, ray.get(done[0])
            except Exception as error:  # the worker died or the task could not run
                yield index, ("failed", Failure.of(specs[index], error), 0.0)
