"""CSV export of charge data records: streamed, one row at a time (constant memory).

Columns: the reference guide's, then ours, then one per time-of-use period and "NoPeriod".
Energies in kWh with a dot and three decimals; durations as H:MM:SS; times ISO 8601 in UTC
(`...Z`) unless a time zone is given.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .tou import NO_PERIOD

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

try:  # HA ships orjson: three times json's speed on a million small TOU objects
    from orjson import loads as _loads
except ImportError:  # pragma: no cover  # evcore without HA
    from json import loads as _loads  # type: ignore[assignment]

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
    "Other periods (kWh)",
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


EXPORT_COLUMNS = (
    "id",
    "transaction_id",
    "station_id",
    "connector_id",
    "id_tag",
    "started_at",
    "stopped_at",
    "energy_wh",
    "plugged_s",
    "card_comment",
    "charging_s",
    "zone_id",
    "status",
    "ended_by",
    "stop_reason",
    "meter_start_wh",
    "meter_stop_wh",
    "peak_power_w",
    "start_received_at",
    "stop_received_at",
    "flags",
    "tou_json",
)
"""The database columns an export reads, in the order `SessionStore.iter_export` yields them."""


def write_csv(
    path: str | Path,
    rows: Iterable[Sequence[Any]],
    *,
    periods: Iterable[str] = (),
    tz: tzinfo | None = None,
    stations: Mapping[str, StationInfo] | Callable[[str], StationInfo | None] | None = None,
) -> int:
    """Write the rows of `SessionStore.iter_export` to `path` (replaced atomically).

    Returns how many sessions were written. Rows are raw database values (times as SQLite's
    text or the driver's naive UTC datetimes): no record object per row, so a million
    sessions take seconds, not minutes.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    period_list = [p for p in periods if p != NO_PERIOD]
    lookup = _lookup(stations)
    infos: dict[str, StationInfo] = {}
    known = {*period_list, NO_PERIOD}
    when = _utc_text if tz is None else partial(_local_text, tz=tz)
    count = 0
    with tmp.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns(period_list))
        for row in rows:
            (
                session_id,
                transaction_id,
                station_id,
                connector_id,
                id_tag,
                started_at,
                stopped_at,
                energy_wh,
                plugged_s,
                comment,
                charging_s,
                zone_id,
                status,
                ended_by,
                stop_reason,
                meter_start,
                meter_stop,
                peak_w,
                start_received,
                stop_received,
                flags,
                tou_json,
            ) = row
            info = infos.get(station_id)
            if info is None:
                info = infos[station_id] = lookup(station_id)
            tou = _loads(tou_json) if tou_json else {}
            writer.writerow(
                (
                    transaction_id,
                    station_id,
                    connector_id,
                    id_tag,
                    info.charge_type or "",
                    when(started_at),
                    when(stopped_at),
                    kwh(energy_wh),
                    info.socket_type or "",
                    duration_text(plugged_s),
                    comment or "",
                    station_id,
                    info.name or "",
                    duration_text(charging_s if stopped_at is not None else None),
                    session_id,
                    zone_id or "",
                    status,
                    ended_by or "",
                    stop_reason or "",
                    _number(meter_start),
                    _number(meter_stop),
                    kwh(peak_w),
                    when(start_received),
                    when(stop_received),
                    flags.replace(",", " ") if flags else "",
                    _other(tou, known),
                    *[f"{tou.get(p, 0.0) / 1000.0:.3f}" for p in period_list],
                    f"{tou.get(NO_PERIOD, 0.0) / 1000.0:.3f}",
                )
            )
            count += 1
    tmp.replace(target)
    return count


def _other(tou: dict[str, float], known: set[str]) -> str:
    """Energy of periods the calendar no longer has (renamed or removed since the session)."""
    if tou.keys() <= known:
        return "0.000"
    return f"{sum(wh for p, wh in tou.items() if p not in known) / 1000.0:.3f}"


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


def _utc_text(value: datetime | str | None) -> str:
    """A database time as ISO 8601 UTC to the second (`...Z`)."""
    if value is None:
        return ""
    if isinstance(value, str):  # SQLite: "YYYY-MM-DD HH:MM:SS[.ffffff]", UTC
        return f"{value[:10]}T{value[11:19]}Z"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"{value.isoformat(timespec='seconds')}Z"


def _local_text(value: datetime | str | None, *, tz: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(tz).isoformat(timespec="seconds")


def kwh(wh: float | None) -> str:
    """Wh (or W) as k-units with three decimals; empty when unknown."""
    return "" if wh is None else f"{wh / 1000.0:.3f}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def time_text(value: datetime | None, tz: tzinfo | None) -> str:
    """ISO 8601 to the second: UTC as `Z`, or in `tz` with its offset."""
    return _utc_text(value) if tz is None else _local_text(value, tz=tz)


def duration_text(seconds: float | None) -> str:
    """H:MM:SS (hours may exceed 24); empty when unknown."""
    if seconds is None:
        return ""
    total = int(seconds + 0.5) if seconds > 0 else 0
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"
