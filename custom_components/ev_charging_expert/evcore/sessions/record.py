"""One charge data record: what the store keeps of a session."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
import json
from typing import Any


class SessionStatus(StrEnum):
    """Where a record is in its life."""

    OPEN = "open"
    CLOSED = "closed"
    ORPHAN = "orphan"
    """The end of a session the site never saw start (a StopTransaction for an unknown id)."""


class EndedBy(StrEnum):
    """How a session ended."""

    CHARGER = "charger"
    REMOTE = "remote"
    FORCED = "forced"
    """Closed by the user (force stop) while its station was gone."""
    LOST = "lost"
    """Its end was never reported (superseded by a new session, connector forgotten)."""


class Flag(StrEnum):
    """Why a record's figures deserve a second look (bad input, recorded, never dropped)."""

    METER_STOP_BELOW_START = "meter_stop_below_start"
    METER_STOP_IGNORED = "meter_stop_ignored"
    """The meter stop did not fit the session: the energy comes from the register samples."""
    ENERGY_JUMP = "energy_jump"
    """A register sample jumped more than any charger can deliver: that jump is not counted."""
    TIME_BEFORE_2000 = "time_before_2000"
    TIME_IN_FUTURE = "time_in_future"
    CLOSED_AFTER_RESTART = "closed_after_restart"
    """Its end came after a restart that lost the site's open session (kept in this store)."""
    START_ONLY = "start_and_stop_only"
    """No register sample during the session: its TOU split assumes a constant power."""


@dataclass(slots=True)
class SessionRecord:
    """A charging session as recorded; times are aware UTC."""

    session_id: str
    transaction_id: int
    station_id: str
    connector_id: int
    id_tag: str
    started_at: datetime
    """On the charger's clock (StartTransaction timestamp)."""
    start_received_at: datetime
    """On the site's clock, when the StartTransaction arrived."""
    meter_start_wh: float
    zone_id: str | None = None
    card_comment: str | None = None
    status: SessionStatus = SessionStatus.OPEN
    ended_by: EndedBy | None = None
    stop_reason: str | None = None
    stopped_at: datetime | None = None
    stop_received_at: datetime | None = None
    meter_stop_wh: float | None = None
    energy_wh: float | None = None
    plugged_s: float | None = None
    charging_s: float = 0.0
    peak_power_w: float | None = None
    tou_wh: dict[str, float] = field(default_factory=dict)
    flags: frozenset[Flag] = frozenset()
    updated_at: datetime | None = None
    state: dict[str, Any] | None = None
    """The recorder's working state of an open session (last register sample)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (HA events, service responses)."""
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "state":
                continue
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, dict):
                value = dict(value)
            data[f.name] = value
        return data

    def to_row(self) -> dict[str, Any]:
        """The database row (naive UTC times: SQLite keeps no time zone)."""
        return {
            "id": self.session_id,
            "transaction_id": self.transaction_id,
            "station_id": self.station_id,
            "connector_id": self.connector_id,
            "zone_id": self.zone_id,
            "id_tag": self.id_tag,
            "card_comment": self.card_comment,
            "status": self.status.value,
            "ended_by": self.ended_by.value if self.ended_by else None,
            "stop_reason": self.stop_reason,
            "started_at": naive(self.started_at),
            "start_received_at": naive(self.start_received_at),
            "stopped_at": naive(self.stopped_at),
            "stop_received_at": naive(self.stop_received_at),
            "meter_start_wh": self.meter_start_wh,
            "meter_stop_wh": self.meter_stop_wh,
            "energy_wh": self.energy_wh,
            "plugged_s": self.plugged_s,
            "charging_s": self.charging_s,
            "peak_power_w": self.peak_power_w,
            "tou_json": json.dumps(self.tou_wh, sort_keys=True),
            "flags": ",".join(sorted(self.flags)),
            "state_json": json.dumps(self.state) if self.state is not None else None,
            "updated_at": naive(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Any) -> SessionRecord:
        """A record from a database row (mapping)."""
        m = row._mapping if hasattr(row, "_mapping") else row  # noqa: SLF001  # SQLAlchemy's public row API
        return cls(
            session_id=m["id"],
            transaction_id=int(m["transaction_id"]),
            station_id=m["station_id"],
            connector_id=int(m["connector_id"]),
            id_tag=m["id_tag"],
            started_at=aware(m["started_at"]),  # type: ignore[arg-type]
            start_received_at=aware(m["start_received_at"] or m["started_at"]),  # type: ignore[arg-type]
            meter_start_wh=float(m["meter_start_wh"]),
            zone_id=m["zone_id"],
            card_comment=m["card_comment"],
            status=SessionStatus(m["status"]),
            ended_by=EndedBy(m["ended_by"]) if m["ended_by"] else None,
            stop_reason=m["stop_reason"],
            stopped_at=aware(m["stopped_at"]),
            stop_received_at=aware(m["stop_received_at"]),
            meter_stop_wh=m["meter_stop_wh"],
            energy_wh=m["energy_wh"],
            plugged_s=m["plugged_s"],
            charging_s=float(m["charging_s"] or 0.0),
            peak_power_w=m["peak_power_w"],
            tou_wh=json.loads(m["tou_json"]) if m["tou_json"] else {},
            flags=parse_flags(m["flags"]),
            updated_at=aware(m["updated_at"]),
            state=json.loads(m["state_json"]) if m["state_json"] else None,
        )

    def copy(self) -> SessionRecord:
        """A snapshot (the writer thread gets copies, never the live record)."""
        return replace(self, tou_wh=dict(self.tou_wh), state=dict(self.state or {}) or None)


def parse_flags(text: str | None) -> frozenset[Flag]:
    """Flags from their stored form; unknown ones (a newer version wrote them) are dropped."""
    known = {f.value for f in Flag}
    return frozenset(Flag(f) for f in (text or "").split(",") if f in known)


def naive(value: datetime | None) -> datetime | None:
    """An aware time as naive UTC (the database's form)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def aware(value: datetime | None) -> datetime | None:
    """A naive UTC time from the database as aware."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
