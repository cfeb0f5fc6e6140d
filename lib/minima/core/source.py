"""The digest of the library's own source: part of every cache key and page input hash, so
that results are recomputed after any change to the code that made them."""
from __future__ import annotations

import hashlib
from pathlib import Path


def library_digest(exclude: tuple[str, ...] = ()) -> bytes:
    """sha256 of every ``.py`` file of the ``minima`` package, with its path: part of a page's
    input hash and of every run's cache key. ``exclude``: top-level entries of the package
    (``"book"``, ``"__main__.py"``) left out."""
    package, digest = Path(__file__).resolve().parents[1], hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        if source.relative_to(package).parts[0] in exclude:
            continue
        digest.update(str(source.relative_to(package)).encode())
        digest.update(source.read_bytes())
    return digest.digest()
