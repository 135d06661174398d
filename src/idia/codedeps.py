"""Which idia modules a workflow script runs, read from its import statements.

A rule declares the package modules its script runs as inputs, so that changing a module reruns
exactly the jobs that use it. A hand-kept list drifts as scripts and modules change their
imports; deriving the list from the code cannot. Standard library only: the workflow calls this
at parse time, for every rule.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "idia"
PACKAGE_DIR = Path(__file__).resolve().parent


def imported_modules(path: str | Path, package_dir: str | Path = PACKAGE_DIR) -> list[str]:
    """The package modules one file imports itself (not those they import), by short name.

    Imports inside functions count (they run when the function does); imports under
    ``if TYPE_CHECKING:`` do not. The package's ``__init__`` is not listed.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: cannot read which modules it imports")
    stat = path.stat()
    package_dir = Path(package_dir).resolve()
    return sorted(_direct_imports(path, stat.st_mtime_ns, stat.st_size, package_dir))


def script_modules(script: str | Path, package_dir: str | Path = PACKAGE_DIR) -> list[str]:
    """Every package module that running ``script`` imports, directly or through other package
    modules, sorted by short name (``["attack", "compat", "models"]``).

    ``package_dir`` is the package's source folder (``src/idia``); the workflow passes its own
    checkout's, so that the modules read are the ones its jobs run.
    """
    package_dir = Path(package_dir).resolve()
    seen: set[str] = set()
    todo = imported_modules(script, package_dir)
    if todo and (package_dir / "__init__.py").is_file():
        # importing any module of the package runs its __init__ first
        todo += imported_modules(package_dir / "__init__.py", package_dir)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += imported_modules(package_dir / f"{module}.py", package_dir)
    return sorted(seen)


@lru_cache(maxsize=1024)
def _direct_imports(path: Path, mtime_ns: int, size: int, package_dir: Path) -> frozenset[str]:
    # mtime_ns and size are part of the cache key only: an edited file is read again
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    inside_package = path.parent == package_dir
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_module_of(alias.name, (), path, package_dir))
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            if node.level == 0 and node.module:
                found.update(_module_of(node.module, names, path, package_dir))
            elif node.level > 0 and inside_package:  # `from . import x`, `from .x import y`
                dotted = PACKAGE + (f".{node.module}" if node.module else "")
                found.update(_module_of(dotted, names, path, package_dir))
    return frozenset(found)


def _runtime_nodes(tree: ast.AST):
    """Every node of the tree except those under ``if TYPE_CHECKING:`` (never run)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_of(dotted: str, names: tuple[str, ...], path: Path, package_dir: Path) -> set[str]:
    """The package modules an ``import dotted`` / ``from dotted import names`` loads."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return set()
    if len(parts) == 1:  # `from idia import x`: x is a module, or a name of __init__
        return {n for n in names if (package_dir / f"{n}.py").is_file()}
    module = parts[1]
    if len(parts) > 2 or not (package_dir / f"{module}.py").is_file():
        raise ValueError(
            f"{path} imports {dotted}, but {package_dir} has no module {module}.py (idia is a "
            f"flat package): fix the import, or teach idia.codedeps about subpackages"
        )
    return {module}
