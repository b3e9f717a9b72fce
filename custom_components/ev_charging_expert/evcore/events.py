"""The one event stream: typed, frozen events that the Controller delivers to subscribers.

Site (stations, sessions, cards), load management (allocations, zones, degraded currents) and
meters all emit here; HA, exporters and tests subscribe through `Controller.subscribe`, with an
optional filter on the event classes. Every event has `to_dict()` (JSON-friendly) for HA bus
events, MQTT and diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from .keys import ConnectorKey

if TYPE_CHECKING:
    from .model import Transaction


def jsonable(value: Any) -> Any:  # noqa: PLR0911  # one return per kind of value
    """A JSON-friendly copy of an event field (keys, times, sets, dataclasses)."""
    match value:
        case ConnectorKey():
            return {"station_id": value.station_id, "connector_id": value.connector_id}
        case datetime():
            return value.isoformat()
        case Enum():
            return value.value
        case frozenset() | set():
            return sorted((jsonable(v) for v in value), key=repr)
        case list() | tuple():
            return [jsonable(v) for v in value]
        case dict():
            return {str(k): jsonable(v) for k, v in value.items()}
        case _ if hasattr(value, "__dataclass_fields__"):
            return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
        case _:
            return value


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-friendly data, with its `kind`."""
        data: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            data[f.name] = jsonable(getattr(self, f.name))
        return data


# ---------------------------------------------------------------------- stations
@dataclass(frozen=True, slots=True)
class StationAdded(Event):
    """A station joined the registry (accepted, or removed while it was pending)."""

    kind: ClassVar[str] = "station_added"
    station_id: str


@dataclass(frozen=True, slots=True)
class StationUpdated(Event):
    """Something about a station changed; `connector_id` narrows it when known.

    A connector's status or measurements, a connection or disconnection, a heartbeat, a
    configuration key, a firmware or diagnostics status.
    """

    kind: ClassVar[str] = "station_updated"
    station_id: str
    connector_id: int | None = None


@dataclass(frozen=True, slots=True)
class StationBooted(Event):
    """A charger booted (it may have lost its charging limits)."""

    kind: ClassVar[str] = "station_booted"
    station_id: str


@dataclass(frozen=True, slots=True)
class StationUncontrollable(Event):
    """A charger cannot be held to a setpoint (no Smart Charging, or it refused a limit)."""

    kind: ClassVar[str] = "station_uncontrollable"
    station_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class StationConfigured(Event):
    """The installer changed a station's zone, VIP flag, wiring or ratings."""

    kind: ClassVar[str] = "station_configured"
    station_id: str


@dataclass(frozen=True, slots=True)
class StationPending(Event):
    """A new charger waits for the user to accept it."""

    kind: ClassVar[str] = "station_pending"
    station_id: str


@dataclass(frozen=True, slots=True)
class PendingDropped(Event):
    """A waiting unknown charger was forgotten to make room for a newer one."""

    kind: ClassVar[str] = "pending_dropped"
    station_id: str


@dataclass(frozen=True, slots=True)
class PendingListFull(Event):
    """The list of waiting unknown chargers is full: the oldest go for the newest."""

    kind: ClassVar[str] = "pending_list_full"
    limit: int


@dataclass(frozen=True, slots=True)
class StationAuthFailing(Event):
    """A known charger presented wrong passwords until its back-off started."""

    kind: ClassVar[str] = "station_auth_failing"
    station_id: str


@dataclass(frozen=True, slots=True)
class StationAuthRecovered(Event):
    """A charger whose passwords were failing presented the right one."""

    kind: ClassVar[str] = "station_auth_recovered"
    station_id: str


@dataclass(frozen=True, slots=True)
class StationAccepted(Event):
    """The user accepted a pending (or removed) charger."""

    kind: ClassVar[str] = "station_accepted"
    station_id: str


@dataclass(frozen=True, slots=True)
class StationRemoved(Event):
    """The user removed a station; it is refused from now on."""

    kind: ClassVar[str] = "station_removed"
    station_id: str


# ---------------------------------------------------------------------- cards and sessions
@dataclass(frozen=True, slots=True)
class CardPresented(Event):
    """A charger asked whether an idTag may charge (Authorize or a session start)."""

    kind: ClassVar[str] = "card_presented"
    station_id: str
    connector_id: int | None
    id_tag: str
    accepted: bool


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    """A session started."""

    kind: ClassVar[str] = "session_started"
    station_id: str
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """A session ended; the transaction carries meter stop, reason and transaction data."""

    kind: ClassVar[str] = "session_ended"
    station_id: str
    transaction: Transaction


# ---------------------------------------------------------------------- load management
@dataclass(frozen=True, slots=True)
class AllocationUpdated(Event):
    """An allocation run changed setpoints, zone totals or degraded currents."""

    kind: ClassVar[str] = "allocation_updated"
    connectors: frozenset[ConnectorKey]
    """Connectors whose setpoint or reason changed."""
    zones: frozenset[str]
    """Zones whose status (budget, totals, EV counts) changed."""
    stations: frozenset[str] = frozenset()
    """Stations whose degraded current changed."""
    degraded_problems_changed: bool = False
    """The zones whose stations get 0 A in degraded mode (and why) changed."""
    building_warnings_changed: bool = False
    """The dynamic zones whose building load stays clearly negative (wrong meter) changed."""


# ---------------------------------------------------------------------- meters
@dataclass(frozen=True, slots=True)
class MeterUpdated(Event):
    """A power meter read something, or its state changed (`state_changed`)."""

    kind: ClassVar[str] = "meter_updated"
    meter_id: str
    state_changed: bool = False


# ---------------------------------------------------------------------- operating rules
@dataclass(frozen=True, slots=True)
class TouPeriodChanged(Event):
    """The active time-of-use period changed (None: outside every period, or TOU off)."""

    kind: ClassVar[str] = "tou_period_changed"
    period: str | None
    previous: str | None


@dataclass(frozen=True, slots=True)
class RemoteSetpointLapsed(Event):
    """The controlling source's heartbeat lapsed: remote setpoints fell back."""

    kind: ClassVar[str] = "remote_setpoint_lapsed"
    source: str


@dataclass(frozen=True, slots=True)
class RulesChanged(Event):
    """The operating rules' settings or state changed (inputs, period, setpoints)."""

    kind: ClassVar[str] = "rules_changed"


type SiteEvent = (
    StationAdded
    | StationUpdated
    | StationConfigured
    | StationBooted
    | StationUncontrollable
    | StationPending
    | PendingDropped
    | PendingListFull
    | StationAuthFailing
    | StationAuthRecovered
    | StationAccepted
    | StationRemoved
    | CardPresented
    | SessionStarted
    | SessionEnded
)
"""What `Site` emits."""

type ControllerEvent = (
    SiteEvent
    | AllocationUpdated
    | MeterUpdated
    | TouPeriodChanged
    | RemoteSetpointLapsed
    | RulesChanged
)
"""Everything `Controller.subscribe` delivers."""
