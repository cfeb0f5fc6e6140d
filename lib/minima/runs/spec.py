"""A run is a value: a frozen, picklable spec whose :meth:`Spec.run` returns its record.

Experiments describe each independent unit of work (a Table 1 training, a no-barriers minimum
or path, a Table 2 head) as a frozen dataclass deriving from :class:`Spec`; the executors
(:mod:`minima.runs.executors`) only ever call :meth:`Spec.run`. A spec names everything its
result depends on, so that :func:`spec_key` (its fields, tensors by content) identifies the
result: two equal specs give the same record whichever executor ran them and whatever else
was in the batch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import traceback
from dataclasses import dataclass


class SpecError(ValueError):
    """A spec that cannot be dispatched (not a frozen dataclass, not picklable); one line."""


@dataclass(frozen=True)
class Resources:
    """What one run needs from the executor: CPU cores (threads), GPUs (a fraction lets several
    small runs share one) and an estimate of its cost in seconds on one CPU core, used by
    ``--plan`` and the cluster recipe (an estimate, never a measurement)."""

    cpus: int = 1
    gpus: float = 0.0
    estimate_s: float = 0.0


class Spec:
    """Base of every run spec. Subclasses are ``@dataclass(frozen=True)`` and implement
    :meth:`run`; :meth:`resources` and :meth:`label` have defaults."""

    def run(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def resources(self) -> Resources:
        return Resources()

    def label(self) -> str:
        """A short name for progress bars and failure lists."""
        return type(self).__name__


@dataclass(frozen=True)
class Failure:
    """A run that raised: its spec, the error in one line, the traceback. Failures are never
    cached, so a re-run executes exactly them again."""

    spec: Spec
    error: str
    traceback: str

    @classmethod
    def of(cls, spec: Spec, error: BaseException) -> "Failure":
        return cls(spec, f"{type(error).__name__}: {error}".splitlines()[0],
                   "".join(traceback.format_exception(type(error), error, error.__traceback__)))


def _canonical(value):
    """A JSON-able form of a spec field: dataclasses by fields, tensors and arrays by content."""
    import numpy as np

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": f"{type(value).__module__}.{type(value).__qualname__}",
                **{f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                   if f.metadata.get("key", True)}}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return repr(value)  # exact: 0.1 and 0.1000000001 differ
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    try:
        import torch

        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            return {"tensor": str(tensor.dtype), "shape": list(tensor.shape),
                    "sha256": hashlib.sha256(tensor.view(-1).view(torch.uint8).numpy().tobytes()
                                             if tensor.numel() else b"").hexdigest()}
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, np.ndarray):
        return {"array": str(value.dtype), "shape": list(value.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}
    raise SpecError(f"spec field of type {type(value).__name__} has no canonical form; use numbers, strings, "
                    "tuples, dicts, tensors or frozen dataclasses of them")


def spec_key(spec: Spec) -> str:
    """sha256 (hex) of the spec's type and fields, tensors by content. A field declared with
    ``field(metadata={"key": False})`` (where to find a file, not what it holds) is left out."""
    return hashlib.sha256(json.dumps(_canonical(spec), sort_keys=True).encode()).hexdigest()


def check(spec) -> None:
    """Raise :class:`SpecError` (one line) unless ``spec`` is a frozen dataclass :class:`Spec`
    that pickles: checked for every spec before any run of a batch starts."""
    if not isinstance(spec, Spec) or not dataclasses.is_dataclass(spec) or \
            not type(spec).__dataclass_params__.frozen:
        raise SpecError(f"{type(spec).__name__} is not a frozen dataclass deriving from minima.runs.Spec; "
                        "declare it with @dataclass(frozen=True)")
    try:
        pickle.dumps(spec)
    except Exception as error:
        raise SpecError(f"{spec.label()} cannot be pickled ({type(error).__name__}: {error}); "
                        "keep specs to numbers, strings, tensors and frozen dataclasses") from None
    spec_key(spec)
