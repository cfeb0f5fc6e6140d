"""Atomic file writes: the one way the library writes a file that a reader or a later run
trusts (pages, provenance, caches, results): into a temporary file in the same folder, then
``os.replace``, so an interrupted run leaves the old file or none, never half a file.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[io.IOBase], None] | str | bytes) -> Path:
    """Write ``path`` atomically; ``write`` is the text or bytes, or a function given the open
    binary handle (``torch.save(obj, handle)``). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as handle:
        try:
            if callable(write):
                write(handle)
            else:
                handle.write(write.encode("utf-8") if isinstance(write, str) else write)
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
    os.replace(handle.name, path)
    return path
