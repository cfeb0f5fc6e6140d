"""The digest of the library's own source: part of every cache key and page input hash, so
that results are recomputed after any change to the code that made them.

A page depends on the whole package (:func:`library_digest`); a run depends only on the
modules its spec's module imports, directly or through others (:func:`import_closure`), so
that editing the no-barriers code leaves Table 1's cached runs valid.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
NAME = PACKAGE.name


def library_digest(exclude: tuple[str, ...] = ()) -> bytes:
    """sha256 of every ``.py`` file of the ``minima`` package, with its path: part of a page's
    input hash. ``exclude``: top-level entries of the package (``"book"``, ``"__main__.py"``)
    left out."""
    digest = hashlib.sha256()
    for source in sorted(PACKAGE.rglob("*.py")):
        if source.relative_to(PACKAGE).parts[0] in exclude:
            continue
        digest.update(str(source.relative_to(PACKAGE)).encode())
        digest.update(source.read_bytes())
    return digest.digest()


def _file_of(module: str) -> Path | None:
    """The source file of ``minima.x.y`` (a module or a package's ``__init__``), or ``None``."""
    parts = module.split(".")
    if parts[0] != NAME:
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Names of the ``minima`` modules that ``module`` (at ``path``) imports anywhere in its
    source, function bodies included (lazy imports compute numbers too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import papers`
    return {name for name in found if name.split(".")[0] == NAME and _file_of(name)}


@functools.lru_cache(maxsize=None)
def import_closure(module: str) -> tuple[Path, ...]:
    """The source files of ``module`` and of every ``minima`` module it imports, transitively,
    sorted. A package's ``__init__`` counts only when it is imported by name (``from ..runs
    import run_all``), not for being a parent of an imported module."""
    seen, todo = {}, [module]
    while todo:
        name = todo.pop()
        path = _file_of(name)
        if path is None or path in seen.values() or name in seen:
            continue
        seen[name] = path
        todo.extend(_imports(name, path) - set(seen))
    return tuple(sorted(set(seen.values())))


def closure_digest(module: str) -> bytes:
    """sha256 of the files of :func:`import_closure` (paths and contents)."""
    digest = hashlib.sha256()
    for path in import_closure(module):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.digest()
