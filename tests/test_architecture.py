"""Architecture rules that a lint rule also enforces, checked where every CI run sees them."""

from __future__ import annotations

import ast
from pathlib import Path

EVCORE = Path(__file__).parent.parent / "custom_components" / "ev_charging_expert" / "evcore"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_evcore_never_imports_homeassistant() -> None:
    files = sorted(EVCORE.rglob("*.py"))
    assert files
    offenders = {
        str(path.relative_to(EVCORE)): sorted(
            m for m in _imported_modules(path) if m.split(".")[0] == "homeassistant"
        )
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}
