"""The register map as tables: the docs' map, the CSV point list a BMS integrator imports.

`map_rows()` describes every point once (slot 1 address and the stride to the next slot);
`point_list_csv()` lists every register of the slots in use, named after what they hold.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from .registers import BLOCKS, CODE_TABLES, SITE, Block, Point, points_of

if TYPE_CHECKING:
    from collections.abc import Iterable

HOLDING_REFERENCE = 400001
"""The 6-digit Modicon reference of PDU address 0 in the holding registers (function 03); six
digits because the map goes beyond address 9998."""

MAP_COLUMNS = (
    "block",
    "offset",
    "address",
    "reference",
    "stride",
    "slots",
    "name",
    "type",
    "registers",
    "unit",
    "scale",
    "access",
    "description",
)
POINT_LIST_COLUMNS = (
    "object",
    "slot",
    "label",
    "point",
    "address",
    "reference",
    "type",
    "registers",
    "unit",
    "scale",
    "access",
    "description",
)


def map_rows() -> list[dict[str, str]]:
    """One row per point, slot 1 (add `stride` per slot)."""
    return [
        {
            "block": block.name,
            "offset": str(point.offset),
            "address": str(point.address(1)),
            "reference": str(point.address(1) + HOLDING_REFERENCE),
            "stride": str(block.stride if block.slots > 1 else 0),
            "slots": str(block.slots),
            "name": point.name,
            "type": point.type.value,
            "registers": str(point.registers),
            "unit": point.unit,
            "scale": str(point.scale),
            "access": point.access.value,
            "description": point.description,
        }
        for block in BLOCKS
        for point in points_of(block)
    ]


def to_csv(columns: Iterable[str], rows: Iterable[dict[str, str]]) -> str:
    """CSV text (comma separated, header first, CRLF as the csv module writes)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def map_csv() -> str:
    """The register map as CSV (`docs/bms-register-map.csv`)."""
    return to_csv(MAP_COLUMNS, map_rows())


def block_table(block: Block) -> str:
    """A markdown table of a block's points."""
    lines = [
        "| offset | address (ref.) | name | type | unit | scale | access | description |",
        "|---:|---:|---|---|---|---:|---|---|",
    ]
    for point in points_of(block):
        address = point.address(1)
        size = f" ({point.registers} reg.)" if point.registers > 1 else ""
        lines.append(
            f"| {point.offset} | {address} ({address + HOLDING_REFERENCE}) | `{point.name}`"
            f" | {point.type.value}{size} | {point.unit} | {point.scale} | {point.access.value}"
            f" | {point.description} |"
        )
    return "\n".join(lines)


def code_tables() -> str:
    """The enumerated codes, as markdown."""
    parts = []
    for name, codes in CODE_TABLES.items():
        cells = ", ".join(f"{code} = `{value}`" for value, code in codes.items())
        parts.append(f"- **{name}**: {cells}")
    return "\n".join(parts)


def blocks_table() -> str:
    """Where each block starts, its stride and its number of slots."""
    lines = [
        "| block | first address (ref.) | stride | slots | last address | description |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines.extend(
        f"| {b.name} | {b.start} ({b.start + HOLDING_REFERENCE}) | {b.stride} | {b.slots}"
        f" | {b.end - 1} | {b.description} |"
        for b in BLOCKS
    )
    return "\n".join(lines)


def point_list_rows(labels: dict[str, dict[int, str]]) -> list[dict[str, str]]:
    """Every point of every slot in use; `labels`: block name -> slot -> what it holds."""
    rows: list[dict[str, str]] = []
    for block in BLOCKS:
        slots = {1: "site"} if block is SITE else labels.get(block.name, {})
        for slot, label in sorted(slots.items()):
            rows.extend(_point_row(block, slot, label, point) for point in points_of(block))
    return rows


def _point_row(block: Block, slot: int, label: str, point: Point) -> dict[str, str]:
    address = point.address(slot)
    return {
        "object": block.name,
        "slot": str(slot),
        "label": label,
        "point": point.name,
        "address": str(address),
        "reference": str(address + HOLDING_REFERENCE),
        "type": point.type.value,
        "registers": str(point.registers),
        "unit": point.unit,
        "scale": str(point.scale),
        "access": point.access.value,
        "description": point.description,
    }


def point_list_csv(labels: dict[str, dict[int, str]]) -> str:
    """The point list of the slots in use, as CSV."""
    return to_csv(POINT_LIST_COLUMNS, point_list_rows(labels))
