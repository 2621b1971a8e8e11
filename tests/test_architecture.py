"""The import rules of ARCHITECTURE.md §A, checked by walking every module's imports (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "genemill"

PURE = {"errors"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "accessions": PURE,
    "formats": PURE | {"formats"},
    "numerics": PURE | {"numerics"},
    "genes": PURE | {"genes"},
    "harmonize": PURE,
    "platforms": PURE | {"data"},
    "config": PURE,
    "sources": PURE | {"config", "accessions", "sources"},
    "store": PURE | {"config", "store", "harmonize"},
    "datasets": PURE | {"numerics", "genes", "store", "datasets", "config"},
    "affy": PURE | {"formats", "numerics"},
    "rnaseq": PURE | {"formats", "numerics"},
    "client": PURE,
}
SHELLS = {"api", "web", "server", "cli", "pipeline", "__init__", "__main__"}


def _room(module: Path) -> str:
    parts = module.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name == "genemill":
                found.add("__init__")
            elif name.startswith("genemill."):
                found.add(name.split(".")[1])
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("module", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_follow_the_room_rules(module: Path) -> None:
    room = _room(module)
    if room in SHELLS or room not in ALLOWED:
        assert room in SHELLS, f"{room} has no import rule: add it to ALLOWED or SHELLS"
        return
    bad = _imports(module) - ALLOWED[room] - {room}
    if room not in {"errors", "accessions", "formats", "numerics", "genes", "harmonize"}:
        bad.discard("__init__")  # ``genemill.__version__`` for provenance
    assert not bad, f"{module.relative_to(SRC)} ({room}) imports {sorted(bad)}; allowed: {sorted(ALLOWED[room])}"


def test_pure_rooms_never_touch_network_database_or_settings() -> None:
    forbidden = {"httpx", "sqlalchemy", "socket", "requests", "urllib.request"}
    for module in MODULES:
        if _room(module) not in {"formats", "numerics", "genes", "harmonize", "accessions"}:
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & forbidden, module
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.module not in forbidden, module
