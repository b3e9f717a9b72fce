"""Load-management configuration: zones (switchboards), and where each station sits in them.

Validation lives here, next to the types, so the HA flows and the core refuse the same things
with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
import math
from typing import TYPE_CHECKING, Any

from .allocation.model import AllocationSettings, MinimumStandard, ShedPriority
from .allocation.phases import Wiring
from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MAX_ZONE_DEPTH = 3
MAX_CURRENT = 10_000.0  # A; a bigger switchboard is a typo


class ZoneMode(StrEnum):
    """How a zone's budget is found."""

    STATIC = "static"  # fixed: the zone's max current
    DYNAMIC = "dynamic"  # max current minus the measured non-EV load (from a meter)


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    """A switchboard: max current per phase, its parent, static or dynamic."""

    zone_id: str
    name: str
    max_current: float
    parent_id: str | None = None
    mode: ZoneMode = ZoneMode.STATIC
    degraded_setpoint: float = 0.0
    """Budget (A per phase) of a dynamic zone whose meter is lost."""

    @classmethod
    def from_dict(cls, zone_id: str, data: Mapping[str, Any]) -> ZoneConfig:
        """Build from stored data (a config subentry's data)."""
        return cls(
            zone_id=zone_id,
            name=str(data["name"]),
            max_current=float(data["max_current"]),
            parent_id=data.get("parent_id") or None,
            mode=ZoneMode(data.get("mode", ZoneMode.STATIC)),
            degraded_setpoint=float(data.get("degraded_setpoint", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """How a connector is wired and what it may deliver."""

    wiring: Wiring = Wiring.TRI123
    rating: float = 32.0
    """The connector's maximum current (A per phase)."""
    user_limit: float | None = None
    """A cap the user set (A per phase), on top of the rating."""
    paused: bool = False
    """Paused by the user: gets no current."""


@dataclass(frozen=True, slots=True)
class StationConfig:
    """The installer's description of a station; `zone_id` None = unassigned (no current)."""

    zone_id: str | None = None
    vip: bool = False
    display_name: str | None = None
    connectors: dict[int, ConnectorConfig] = field(default_factory=dict)
    minimum_override: float | None = None
    """The station's minimum for degraded mode (A), instead of connectors x minimum current."""
    degraded_override: float | None = None
    """Degraded current in a dynamic zone (A); 0 A when unset."""
    dc: bool = False
    """A DC station: no degraded mode; it keeps its last setpoint when it loses us."""

    def connector(self, connector_id: int) -> ConnectorConfig:
        """The connector's config (defaults for a connector not configured yet)."""
        return self.connectors.get(connector_id, ConnectorConfig())

    def with_connector(self, connector_id: int, **changes: Any) -> StationConfig:
        """Return a copy with one connector changed."""
        connectors = dict(self.connectors)
        connectors[connector_id] = replace(self.connector(connector_id), **changes)
        return replace(self, connectors=connectors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the station registry."""
        return {
            "zone_id": self.zone_id,
            "vip": self.vip,
            "display_name": self.display_name,
            "minimum_override": self.minimum_override,
            "degraded_override": self.degraded_override,
            "dc": self.dc,
            "connectors": {
                str(cid): {
                    "wiring": c.wiring.value,
                    "rating": c.rating,
                    "user_limit": c.user_limit,
                    "paused": c.paused,
                }
                for cid, c in sorted(self.connectors.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> StationConfig:
        """Inverse of `to_dict`; tolerant of missing keys (older registries)."""
        if not data:
            return cls()
        return cls(
            zone_id=data.get("zone_id"),
            vip=bool(data.get("vip", False)),
            display_name=data.get("display_name"),
            minimum_override=_optional_float(data.get("minimum_override")),
            degraded_override=_optional_float(data.get("degraded_override")),
            dc=bool(data.get("dc", False)),
            connectors={
                int(cid): ConnectorConfig(
                    wiring=Wiring(c.get("wiring", Wiring.TRI123)),
                    rating=float(c.get("rating", 32.0)),
                    user_limit=None if c.get("user_limit") is None else float(c["user_limit"]),
                    paused=bool(c.get("paused", False)),
                )
                for cid, c in (data.get("connectors") or {}).items()
            },
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """Site-wide load-management settings."""

    minimum_standard: MinimumStandard = MinimumStandard.IEC_61851
    shed_priority: ShedPriority = ShedPriority.ENERGY
    reevaluation_period: float = 900.0
    nominal_voltage: float = 230.0
    """Used to express a limit in W for chargers that only take W."""
    safety_margin: float = 1.0
    """Subtracted from a dynamic zone's budget on each phase (A): meter noise and lag."""
    consumption_optimisation: bool = False
    """Lower the limit of an EV that draws clearly less, for the others (see load/optimise.py)."""

    def allocation_settings(self) -> AllocationSettings:
        """The allocator's part of the settings."""
        return AllocationSettings(
            minimum_standard=self.minimum_standard,
            shed_priority=self.shed_priority,
            reevaluation_period=self.reevaluation_period,
        )


def _check_current(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= MAX_CURRENT):
        raise ConfigError(f"{name} must be between 0 and {MAX_CURRENT:g} A, got {value}")


def validate_zones(zones: Iterable[ZoneConfig]) -> dict[str, ZoneConfig]:
    """Check a zone tree; return it by id or raise ConfigError saying what is wrong.

    Rules: unique names, known parents, no cycles, at most MAX_ZONE_DEPTH levels, a sub-zone's
    max current at most its parent's, currents in range, a degraded setpoint at most the max.
    """
    by_id: dict[str, ZoneConfig] = {}
    names: set[str] = set()
    for zone in zones:
        key = zone.name.strip().casefold()
        if not key:
            raise ConfigError("a zone needs a name")
        if key in names:
            raise ConfigError(f"two zones are called {zone.name!r}")
        names.add(key)
        _check_current(f"zone {zone.name!r} max current", zone.max_current)
        _check_current(f"zone {zone.name!r} degraded setpoint", zone.degraded_setpoint)
        if zone.degraded_setpoint > zone.max_current:
            raise ConfigError(
                f"zone {zone.name!r}: the degraded setpoint ({zone.degraded_setpoint:g} A) "
                f"exceeds its max current ({zone.max_current:g} A)"
            )
        by_id[zone.zone_id] = zone
    for zone in by_id.values():
        _check_ancestry(zone, by_id)
    return by_id


def _check_ancestry(zone: ZoneConfig, by_id: Mapping[str, ZoneConfig]) -> None:
    depth = 1
    seen = {zone.zone_id}
    child = zone
    while child.parent_id is not None:
        parent = by_id.get(child.parent_id)
        if parent is None:
            raise ConfigError(f"zone {child.name!r} has an unknown parent zone")
        if parent.zone_id in seen:
            raise ConfigError(f"zone {zone.name!r} is its own ancestor (a cycle)")
        if child.max_current > parent.max_current:
            raise ConfigError(
                f"sub-zone {child.name!r} ({child.max_current:g} A) exceeds its parent "
                f"{parent.name!r} ({parent.max_current:g} A)"
            )
        seen.add(parent.zone_id)
        depth += 1
        if depth > MAX_ZONE_DEPTH:
            raise ConfigError(f"zone {zone.name!r} is more than {MAX_ZONE_DEPTH} levels deep")
        child = parent


def terminal_zones(zones: Mapping[str, ZoneConfig]) -> set[str]:
    """Zones without sub-zones: the only ones stations may be assigned to."""
    parents = {z.parent_id for z in zones.values() if z.parent_id is not None}
    return set(zones) - parents


def validate_assignment(
    zones: Mapping[str, ZoneConfig], stations: Mapping[str, StationConfig]
) -> None:
    """Raise ConfigError when a station sits in a zone that has sub-zones or does not exist."""
    terminal = terminal_zones(zones)
    for station_id, station in stations.items():
        if station.zone_id is None:
            continue
        if station.zone_id not in zones:
            raise ConfigError(f"station {station_id} is assigned to an unknown zone")
        if station.zone_id not in terminal:
            raise ConfigError(
                f"station {station_id} is in zone {zones[station.zone_id].name!r}, which has "
                "sub-zones: stations go in zones without sub-zones"
            )
        for connector_id, connector in station.connectors.items():
            _check_current(
                f"station {station_id} connector {connector_id} rating", connector.rating
            )
