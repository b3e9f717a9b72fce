"""Architecture rules that a lint rule also enforces, checked where every CI run sees them."""

from __future__ import annotations

import ast
from pathlib import Path

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "ev_charging_expert"
EVCORE = INTEGRATION / "evcore"
OCPP = EVCORE / "ocpp"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            # Relative: resolve against the file's package, so `.ocpp.v16` is recognised.
            package = path.parent.relative_to(INTEGRATION.parent.parent).parts
            base = package[: len(package) - (node.level - 1)]
            modules.add(".".join((*base, *(node.module or "").split("."))).rstrip("."))
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


def test_only_the_ocpp_package_knows_ocpp() -> None:
    """Nothing outside evcore/ocpp/ imports the ocpp library or a version's package.

    The rest of the code speaks the charger port (evcore/charger.py); an OCPP version is
    added as a package under evcore/ocpp/ that implements it.
    """
    files = sorted(INTEGRATION.rglob("*.py"))
    offenders = {
        str(path.relative_to(INTEGRATION)): sorted(
            m for m in _imported_modules(path) if m.split(".")[0] == "ocpp" or ".evcore.ocpp.v" in m
        )
        for path in files
        if OCPP not in path.parents
    }
    assert {k: v for k, v in offenders.items() if v} == {}
