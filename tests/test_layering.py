"""The package's layers: imports point downward only, and the runtime imports no training stack.

Layers, bottom to top: errors -> shared helpers (registry, utils, face_filter) -> data -> faces, models ->
inference -> evaluation, serving, integrations -> training -> benchmarks -> cli. Every import of another ``agegender``
package is checked, wherever it sits in a module (a function-level import is still a dependency); imports
under ``if TYPE_CHECKING:`` are annotations only and are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "agegender"
RANK = {
    "errors": 0,
    "registry": 1,
    "utils": 1,
    "face_filter": 1,
    "data": 2,
    "faces": 3,
    "models": 3,
    "inference": 4,
    "evaluation": 5,
    "serving": 5,
    "integrations": 5,
    "training": 6,
    "benchmarks": 7,
    "cli": 8,
}
#: Packages that make up the lean runtime (prediction and serving): never the training stack.
RUNTIME = ("data", "faces", "models", "inference", "serving")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def agegender_imports(path: Path) -> set[str]:
    """``agegender.*`` modules a file imports anywhere except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.startswith("agegender.")}


def test_every_package_has_a_layer() -> None:
    assert {_layer(p) for p in _modules()} <= RANK.keys()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward(path: Path) -> None:
    mine = _layer(path)
    upward = [
        name for name in agegender_imports(path) if (other := name.split(".")[1]) != mine and RANK[other] >= RANK[mine]
    ]
    assert not upward, f"{path.relative_to(PACKAGE)} ({mine}) imports a layer at or above its own: {upward}"


def test_runtime_never_imports_training() -> None:
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(n for n in agegender_imports(p) if n.startswith("agegender.training"))
        for p in _modules()
        if _layer(p) in RUNTIME
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_library_code_does_not_print() -> None:
    """Library code logs (module loggers); only the CLI writes to the terminal."""
    printing = [
        f"{p.relative_to(PACKAGE)}:{node.lineno}"
        for p in _modules()
        if _layer(p) != "cli"
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]
    assert not printing


def test_modules_stay_small() -> None:
    """~400 lines at most, so each module keeps one concern."""
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 420}
    assert not long
