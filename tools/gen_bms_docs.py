"""Generate the BMS register map docs from the register table (evcore/bms/registers.py).

    python -m tools.gen_bms_docs          # rewrite docs/bms-modbus.md (generated part) and
                                          # docs/bms-register-map.csv
    python -m tools.gen_bms_docs --check  # exit 1 when they are not up to date (CI, tests)

Only the part of `docs/bms-modbus.md` between the BEGIN/END GENERATED markers is written; the
rest of the page is prose kept by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from custom_components.ev_charging_expert.evcore.bms.pointlist import (
    block_table,
    blocks_table,
    code_tables,
    map_csv,
)
from custom_components.ev_charging_expert.evcore.bms.registers import BLOCKS, MAP_VERSION

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "bms-modbus.md"
CSV = ROOT / "docs" / "bms-register-map.csv"
BEGIN = "<!-- BEGIN GENERATED: python -m tools.gen_bms_docs -->"
END = "<!-- END GENERATED -->"


def generated_section() -> str:
    """The register map as markdown."""
    parts = [
        BEGIN,
        "",
        (
            f"Map version {MAP_VERSION}. Addresses are 0-based PDU addresses; the reference in "
            "brackets is the 6-digit holding-register reference (address + 400001)."
        ),
        "",
        "### Blocks",
        "",
        blocks_table(),
    ]
    for block in BLOCKS:
        parts += ["", f"### Block `{block.name}`", "", block.description, "", block_table(block)]
    parts += ["", "### Codes", "", code_tables(), "", END]
    return "\n".join(parts)


def render_doc(current: str) -> str:
    """`current` with its generated section replaced (appended when it has none)."""
    if BEGIN in current and END in current:
        head, _, rest = current.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + generated_section() + tail
    return current.rstrip("\n") + "\n\n" + generated_section() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or check) the generated files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check they are up to date")
    args = parser.parse_args(argv)
    current = DOC.read_bytes().decode("utf-8") if DOC.exists() else ""
    wanted = {DOC: render_doc(current), CSV: map_csv()}
    stale = [
        path
        for path, text in wanted.items()
        if not path.exists() or path.read_bytes().decode("utf-8") != text
    ]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python -m tools.gen_bms_docs")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8", newline="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
