"""CSV import and export of the card registry (the `csv` module does the format).

Two formats are read:

- **ours** (what `export_csv` writes): a header with every column of `COLUMNS`; booleans as
  `true`/`false`; `zones` as zone names separated by `|`, empty for every zone; times in ISO
  8601; empty cells for unknown values.
- **charger** (a list a charger exports, the guide's second format): one idTag per line, or a
  header with an `idTag` (or `id_tag`) column whose other columns are ignored. Its cards are
  authorized, for every zone.

A file is validated whole before anything changes: any bad line refuses the file, and the error
names the line and the field (up to `MAX_REPORTED` problems). Duplicate idTags (compared as the
registry compares them) are refused with the lines they are on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
import io
import itertools
from typing import TYPE_CHECKING

from ..clock import parse_timestamp
from ..errors import ConfigError
from .cards import MAX_CARDS, Card, CardError, check_comment, check_id_tag

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

COLUMNS = (
    "id_tag",
    "authorized",
    "vip",
    "comment",
    "zones",
    "expires_at",
    "parent_id_tag",
    "registered_at",
    "last_seen_at",
    "last_seen_station",
)
REQUIRED = ("id_tag", "authorized", "vip", "comment", "zones")
"""Columns our format must have (the others may be left out)."""
MAX_IMPORT_BYTES = 20 * 1024 * 1024
"""A 100,000-card file in our format is about 10 MB."""
MAX_REPORTED = 10
ZONE_SEPARATOR = "|"
_TRUE = frozenset({"true", "yes", "1", "y", "x"})
_FALSE = frozenset({"false", "no", "0", "n", ""})
_ID_TAG_HEADERS = frozenset({"idtag", "id_tag", "id tag"})


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One refused line: which line (1 = the first line of the file), which field, why."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


class CardImportError(ConfigError):
    """The file was refused; nothing changed. `problems` says where and why."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        shown = "; ".join(str(p) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""  # noqa: PLR2004
        super().__init__(f"{shown}{more}")
        self.problems = problems


def _decode(data: bytes | str) -> str:
    size = len(data)
    if size > MAX_IMPORT_BYTES:
        raise CardImportError(
            [ImportProblem(0, "file", f"{size} bytes: at most {MAX_IMPORT_BYTES} are read")]
        )
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CardImportError(
            [ImportProblem(0, "file", f"not UTF-8 text (byte {err.start} is {data[err.start]:#x})")]
        ) from None


def parse_csv(  # noqa: C901, PLR0912  # format detection, then one pass with every check
    data: bytes | str, zones: Mapping[str, str], *, file_format: str = "auto"
) -> list[Card]:
    """Every card of a CSV file, or CardImportError; `zones` maps zone names to ids.

    `file_format`: "ours", "charger" or "auto" (ours when the header has our columns).
    """
    text = _decode(data)
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        first = next(rows, None)
    except csv.Error as err:
        raise CardImportError([ImportProblem(1, "file", str(err))]) from None
    if first is None:
        return []
    header = [h.strip().casefold() for h in first]
    ours = all(c in header for c in REQUIRED)
    if file_format == "ours" and not ours:
        missing = next(c for c in REQUIRED if c not in header)
        raise CardImportError([ImportProblem(1, missing, "missing column")])
    if file_format == "auto":
        file_format = "ours" if ours else "charger"
    problems: list[ImportProblem] = []
    cards: list[Card] = []
    lines: dict[str, list[int]] = {}
    if file_format == "ours":
        parsed = _parse_ours(rows, header, zones, problems)
    else:
        parsed = _parse_charger(rows, first, header, problems)
    try:
        for line, card in parsed:
            lines.setdefault(card.key, []).append(line)
            if len(lines[card.key]) == 1:
                cards.append(card)
            if len(cards) > MAX_CARDS:
                problems.append(ImportProblem(line, "file", f"more than {MAX_CARDS} cards"))
                break
            if len(problems) >= MAX_REPORTED:
                break
    except csv.Error as err:
        problems.append(ImportProblem(rows.line_num, "file", str(err)))
    for at in lines.values():
        if len(at) > 1 and len(problems) < MAX_REPORTED:
            listed = ", ".join(str(n) for n in at[:10])
            problems.append(ImportProblem(at[1], "id_tag", f"duplicate idTag (lines {listed})"))
    if problems:
        raise CardImportError(sorted(problems, key=lambda p: p.line))
    return cards


def _parse_ours(
    rows: Iterable[list[str]],
    header: list[str],
    zones: Mapping[str, str],
    problems: list[ImportProblem],
) -> Iterable[tuple[int, Card]]:
    index = {name: header.index(name) for name in COLUMNS if name in header}
    reader = rows
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            problems.append(
                ImportProblem(line, header[len(row)], f"missing ({len(row)} of {len(header)})")
            )
            continue

        def cell(name: str, row: list[str] = row) -> str:
            return row[index[name]].strip() if name in index else ""

        try:
            card = Card(
                id_tag=check_id_tag(cell("id_tag")),
                authorized=_bool(cell("authorized"), "authorized"),
                vip=_bool(cell("vip"), "vip"),
                comment=check_comment(row[index["comment"]]),
                zones=_zones(cell("zones"), zones),
                expires_at=_time(cell("expires_at"), "expires_at"),
                parent_id_tag=check_id_tag(p, "parent_id_tag")
                if (p := cell("parent_id_tag"))
                else None,
                registered_at=_time(cell("registered_at"), "registered_at"),
                last_seen_at=_time(cell("last_seen_at"), "last_seen_at"),
                last_seen_station=cell("last_seen_station") or None,
            )
        except CardError as err:
            problems.append(ImportProblem(line, err.field, err.message))
            continue
        yield line, card


def _parse_charger(
    rows: Iterable[list[str]],
    first: list[str],
    header: list[str],
    problems: list[ImportProblem],
) -> Iterable[tuple[int, Card]]:
    column = next((i for i, h in enumerate(header) if h in _ID_TAG_HEADERS), None)
    if column is None:
        if len(first) > 1:
            problems.append(ImportProblem(1, "id_tag", "no idTag column (and not one per line)"))
            return
        column, start = 0, 1
        body: Iterable[list[str]] = itertools.chain([first], rows)
    else:
        start, body = 2, rows
    for line, row in enumerate(body, start=start):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= column:
            problems.append(ImportProblem(line, "id_tag", "missing"))
            continue
        try:
            yield line, Card(id_tag=check_id_tag(row[column]))
        except CardError as err:
            problems.append(ImportProblem(line, err.field, err.message))


def _bool(value: str, field: str) -> bool:
    folded = value.casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise CardError(field, f"{value[:20]!r} is not true or false")


def _zones(value: str, zones: Mapping[str, str]) -> frozenset[str] | None:
    if not value:
        return None
    ids = set()
    known = {name.casefold(): zone_id for name, zone_id in zones.items()}
    known_ids = set(zones.values())
    for name in value.split(ZONE_SEPARATOR):
        name = name.strip()  # noqa: PLW2901
        zone_id = known.get(name.casefold()) or (name if name in known_ids else None)
        if zone_id is None:
            raise CardError("zones", f"unknown zone {name[:40]!r}")
        ids.add(zone_id)
    return frozenset(ids)


def _time(value: str, field: str) -> datetime | None:
    if not value:
        return None
    parsed = parse_timestamp(value, None)  # type: ignore[arg-type]
    if parsed is None:
        raise CardError(field, f"{value[:30]!r} is not an ISO 8601 time")
    return parsed


def export_csv(cards: Iterable[Card], zone_names: Mapping[str, str]) -> str:
    """The registry in our format; `zone_names` maps zone ids to names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for card in cards:
        if card.pending:
            continue  # seen, never approved: not part of the registry yet
        zones = (
            ""
            if card.zones is None
            else ZONE_SEPARATOR.join(sorted(zone_names.get(z, z) for z in card.zones))
        )
        writer.writerow(
            (
                card.id_tag,
                "true" if card.authorized else "false",
                "true" if card.vip else "false",
                card.comment,
                zones,
                _iso(card.expires_at),
                card.parent_id_tag or "",
                _iso(card.registered_at),
                _iso(card.last_seen_at),
                card.last_seen_station or "",
            )
        )
    return out.getvalue()


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()
