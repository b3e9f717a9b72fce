"""Typed events that `Site` emits; the HA glue turns them into entity updates and HA events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .keys import ConnectorKey
    from .model import Transaction


@dataclass(frozen=True, slots=True)
class StationAdded:
    """A station was seen for the first time (accepted or pending)."""

    station_id: str


@dataclass(frozen=True, slots=True)
class StationUpdated:
    """Something about a station changed; `connector_id` narrows it when known."""

    station_id: str
    connector_id: int | None = None


@dataclass(frozen=True, slots=True)
class StationBooted:
    """A charger sent a BootNotification (it may have lost its charging profiles)."""

    station_id: str


@dataclass(frozen=True, slots=True)
class StationUncontrollable:
    """A charger cannot be held to a setpoint (no Smart Charging, or it refused a profile)."""

    station_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class StationConfigured:
    """The installer changed a station's zone, VIP flag, wiring or ratings."""

    station_id: str


@dataclass(frozen=True, slots=True)
class StationPending:
    """A new charger waits for the user to accept it."""

    station_id: str


@dataclass(frozen=True, slots=True)
class StationAccepted:
    """The user accepted a pending (or removed) charger."""

    station_id: str


@dataclass(frozen=True, slots=True)
class StationRemoved:
    """The user removed a station; it is refused from now on."""

    station_id: str


@dataclass(frozen=True, slots=True)
class CardPresented:
    """A charger asked whether an idTag may charge (Authorize or StartTransaction)."""

    station_id: str
    connector_id: int | None
    id_tag: str
    accepted: bool


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """A transaction started."""

    station_id: str
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """A transaction ended; the transaction carries meter stop, reason and transaction data."""

    station_id: str
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class AllocationUpdated:
    """An allocation run changed setpoints, zone totals or degraded currents."""

    connectors: frozenset[ConnectorKey]
    """Connectors whose setpoint or reason changed."""
    zones: frozenset[str]
    """Zones whose totals changed."""
    stations: frozenset[str] = frozenset()
    """Stations whose degraded current changed."""
    degraded_problems_changed: bool = False
    """The zones whose stations get 0 A in degraded mode (and why) changed."""
    building_warnings_changed: bool = False
    """The dynamic zones whose building load stays clearly negative (wrong meter) changed."""


type SiteEvent = (
    StationAdded
    | StationUpdated
    | StationConfigured
    | StationBooted
    | StationUncontrollable
    | StationPending
    | StationAccepted
    | StationRemoved
    | CardPresented
    | SessionStarted
    | SessionEnded
)
