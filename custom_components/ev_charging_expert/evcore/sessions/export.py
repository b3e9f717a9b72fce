"""CSV export of charge data records: streamed, one row at a time (constant memory).

Columns: the reference guide's, then ours, then one per time-of-use period and "NoPeriod".
Energies in kWh with a dot and three decimals; durations as H:MM:SS; times ISO 8601 in UTC
(`...Z`) unless a time zone is given.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from .tou import NO_PERIOD

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from .record import SessionRecord

GUIDE_COLUMNS = (
    "Transaction number",
    "Charging station ID",
    "Socket outlet",
    "User ID",
    "Type of charge",
    "Start datetime",
    "End datetime",
    "Energy consumed (kWh)",
    "Socket type",
    "Transaction duration",
    "Comment",
    "Charge box identity",
    "Station name",
    "Effective charge duration",
)
OUR_COLUMNS = (
    "Session ID",
    "Zone",
    "Status",
    "Ended by",
    "Stop reason",
    "Meter start (Wh)",
    "Meter stop (Wh)",
    "Peak power (kW)",
    "Start received",
    "End received",
    "Flags",
)


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What the export shows of a station beyond its records."""

    name: str | None = None
    charge_type: str | None = None
    """"AC" or "DC"."""
    socket_type: str | None = None


def columns(periods: Iterable[str]) -> list[str]:
    """The header: guide columns, ours, one per TOU period, then NoPeriod."""
    return [*GUIDE_COLUMNS, *OUR_COLUMNS, *(p for p in periods if p != NO_PERIOD), NO_PERIOD]


def write_csv(
    path: str | Path,
    records: Iterable[SessionRecord],
    *,
    periods: Iterable[str] = (),
    tz: tzinfo | None = None,
    stations: Mapping[str, StationInfo] | Callable[[str], StationInfo | None] | None = None,
) -> int:
    """Write `records` to `path` (replaced atomically); return how many rows were written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    period_list = [p for p in periods if p != NO_PERIOD]
    lookup = _lookup(stations)
    rows = 0
    with tmp.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns(period_list))
        for record in records:
            writer.writerow(_row(record, period_list, tz, lookup(record.station_id)))
            rows += 1
    tmp.replace(target)
    return rows


def _lookup(
    stations: Mapping[str, StationInfo] | Callable[[str], StationInfo | None] | None,
) -> Callable[[str], StationInfo]:
    empty = StationInfo()
    if stations is None:
        return lambda _sid: empty
    if callable(stations):
        function = stations
        return lambda sid: function(sid) or empty
    mapping = stations
    return lambda sid: mapping.get(sid, empty)


def _row(r: SessionRecord, periods: list[str], tz: tzinfo | None, info: StationInfo) -> list[str]:
    return [
        str(r.transaction_id),
        r.station_id,
        str(r.connector_id),
        r.id_tag,
        info.charge_type or "",
        time_text(r.started_at, tz),
        time_text(r.stopped_at, tz),
        kwh(r.energy_wh),
        info.socket_type or "",
        duration_text(r.plugged_s),
        r.card_comment or "",
        r.station_id,
        info.name or "",
        duration_text(r.charging_s if r.stopped_at else None),
        r.session_id,
        r.zone_id or "",
        r.status.value,
        r.ended_by.value if r.ended_by else "",
        r.stop_reason or "",
        _number(r.meter_start_wh),
        _number(r.meter_stop_wh),
        kwh(r.peak_power_w),
        time_text(r.start_received_at, tz),
        time_text(r.stop_received_at, tz),
        " ".join(sorted(r.flags)),
        *(kwh(r.tou_wh.get(p, 0.0)) for p in periods),
        kwh(r.tou_wh.get(NO_PERIOD, 0.0)),
    ]


def kwh(wh: float | None) -> str:
    """Wh (or W) as k-units with three decimals; empty when unknown."""
    return "" if wh is None else f"{wh / 1000.0:.3f}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def time_text(value: datetime | None, tz: tzinfo | None) -> str:
    """ISO 8601 to the second: UTC as `Z`, or in `tz` with its offset."""
    if value is None:
        return ""
    if tz is None:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.astimezone(tz).replace(microsecond=0).isoformat()


def duration_text(seconds: float | None) -> str:
    """H:MM:SS (hours may exceed 24); empty when unknown."""
    if seconds is None:
        return ""
    total = max(round(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
