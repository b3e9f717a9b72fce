"""Degraded currents: what each station may draw when it no longer hears from us.

It is what the station's base charging profile carries, so it must be safe with *every*
station of the site on it at once, whatever Home Assistant does.

- A station in a static zone gets its minimum (connectors x the minimum current, or the
  installer's per-station minimum) times a scale factor that spreads the zone's maximum over
  the stations: scale = zone max / sum of the minimums. When the minimums do not fit (scale
  below 1) the stations of that zone get 0 A, and the reason is reported (`DegradedShortfall`):
  that is the safe rule, but the whole zone then stops a lease after Home Assistant does.
- The same holds on every zone above: the scale of a station is the smallest over its zone and
  every ancestor (a parent is often smaller than the sum of its sub-zones).
- A dynamic zone's capacity, without its meter, is its degraded setpoint: its stations get 0 A
  unless the installer set a degraded current for them, and those must fit that setpoint.
- DC stations have no degraded mode: they keep their last setpoint (the load manager counts
  them at it) and are left out here.
- A station we cannot control (no Smart Charging, refuses our profiles) holds no base profile:
  without us it draws its rating. That load is fixed; the others share what it leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import TYPE_CHECKING

from ..config import ZoneMode

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..allocation.model import MinimumStandard
    from ..allocation.phases import Wiring
    from ..config import ZoneConfig

_STEP = 0.1


@dataclass(frozen=True, slots=True)
class StationNeeds:
    """What the degraded-mode rule needs to know of one station."""

    station_id: str
    zone_id: str
    wirings: tuple[Wiring, ...]
    """One per connector."""
    rating: float = math.inf
    """The smallest connector rating: a connector never gets more than that."""
    minimum_override: float | None = None
    """The installer's minimum for the whole station (A), instead of connectors x minimum."""
    degraded_override: float | None = None
    """Degraded current the installer chose for a station in a dynamic zone (A)."""
    dc: bool = False
    fixed: float | None = None
    """A station we cannot control: what it draws without us (the sum of its ratings, A)."""


@dataclass(frozen=True, slots=True)
class DegradedShortfall:
    """Why every station of a zone gets 0 A in degraded mode: their asks do not fit."""

    zone_id: str
    """The zone whose fallback capacity is short: the stations' own, or one above it."""
    zone_name: str
    dynamic: bool
    """A dynamic zone: its capacity is its degraded setpoint, the asks are degraded currents."""
    stations: int
    """Stations whose asks count there (theirs, and those of its other sub-zones)."""
    needed: float
    """The sum of their asks (A): their minimums, or their degraded currents (dynamic)."""
    each: float | None
    """The ask of every one of them, when they all ask the same (A)."""
    capacity: float
    """What the zone gives without us: its max, or a dynamic zone's degraded setpoint (A)."""
    uncontrolled: float
    """Of that capacity, what chargers we cannot control may draw (A)."""
    fit: int
    """How many of those stations would fit (the smallest asks first)."""

    def summary(self) -> str:
        """What the zone's status says: all its stations get 0 A, and why, with the figures."""
        count = f"{self.stations} station{'s' if self.stations != 1 else ''}"
        asks = "degraded current" if self.dynamic else "minimum current"
        if self.each is not None:
            need = f"{count} x {self.each:g} A ({asks}) = {self.needed:g} A"
        else:
            need = f"{count} need {self.needed:g} A ({asks}s)"
        source = "its degraded setpoint" if self.dynamic else "its maximum"
        taken = (
            f", {self.uncontrolled:g} A of which chargers we cannot control may draw"
            if self.uncontrolled > 0
            else ""
        )
        return (
            f"degraded: all stations 0 A because {need} > {self.capacity:g} A that zone "
            f"{self.zone_name!r} can give without Home Assistant ({source}{taken}); "
            f"{self.fit} of them would fit"
        )


@dataclass(slots=True)
class DegradedPlan:
    """Per station: its degraded current (whole station) and per connector (the base profile)."""

    station: dict[str, float] = field(default_factory=dict)
    per_connector: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    """Per zone that holds stations: the scale factor applied (0 when the minimums do not fit)."""
    problems: dict[str, str] = field(default_factory=dict)
    """Per zone: why its stations get 0 A in degraded mode (`shortfalls`, as text)."""
    shortfalls: dict[str, DegradedShortfall] = field(default_factory=dict)
    """Per zone holding stations that all get 0 A in degraded mode: why, with the figures."""


def station_minimum(needs: StationNeeds, standard: MinimumStandard) -> float:
    """The station's minimum: the override, else the sum of its connectors' minimums."""
    if needs.minimum_override is not None:
        return max(needs.minimum_override, 0.0)
    return sum(
        standard.three_phase if wiring.three_phase else standard.single_phase
        for wiring in needs.wirings
    )


def _floor(amps: float) -> float:
    return max(round(math.floor(amps / _STEP + 1e-9) * _STEP, 1), 0.0)


def fallback_capacity(zone: ZoneConfig) -> float:
    """A zone's capacity when nobody hears from us.

    Its max, or a dynamic zone's degraded setpoint (its meter cannot be trusted then).
    """
    return zone.max_current if zone.mode is ZoneMode.STATIC else zone.degraded_setpoint


def zone_path(zone_id: str, zones: Mapping[str, ZoneConfig]) -> list[str]:
    """The zone and every zone above it."""
    path: list[str] = []
    current: str | None = zone_id
    while current is not None and current in zones and current not in path:
        path.append(current)
        current = zones[current].parent_id
    return path


def _asks(
    zones: Mapping[str, ZoneConfig],
    stations: Mapping[str, StationNeeds],
    standard: MinimumStandard,
) -> dict[str, float]:
    """What each station asks for: its minimum (static zone) or its override (dynamic)."""
    asks: dict[str, float] = {}
    for needs in stations.values():
        zone = zones.get(needs.zone_id)
        if needs.dc or zone is None or needs.fixed is not None:
            continue
        if zone.mode is ZoneMode.STATIC:
            asks[needs.station_id] = station_minimum(needs, standard)
        else:
            asks[needs.station_id] = max(needs.degraded_override or 0.0, 0.0)
    return asks


def _scale(
    path: list[str], under: Mapping[str, float], capacity: Mapping[str, float]
) -> tuple[float, str | None]:
    """The smallest capacity/asks ratio on the path, and the first zone where it is below 1."""
    scale = math.inf
    short: str | None = None
    for zone_id in path:
        if under[zone_id] <= 0:
            continue
        ratio = capacity[zone_id] / under[zone_id]
        scale = min(scale, ratio)
        if ratio < 1 and short is None:
            short = zone_id
    return scale, short


def _shortfall(zone: ZoneConfig, asks: list[float], taken: float, room: float) -> DegradedShortfall:
    fit, total = 0, 0.0
    for ask in sorted(asks):
        total += ask
        if total > room + 1e-9:
            break
        fit += 1
    return DegradedShortfall(
        zone_id=zone.zone_id,
        zone_name=zone.name,
        dynamic=zone.mode is ZoneMode.DYNAMIC,
        stations=len(asks),
        needed=round(sum(asks), 1),
        each=asks[0] if len(set(asks)) == 1 else None,
        capacity=fallback_capacity(zone),
        uncontrolled=taken,
        fit=fit,
    )


def degraded_plan(
    zones: Mapping[str, ZoneConfig],
    stations: Mapping[str, StationNeeds],
    standard: MinimumStandard,
) -> DegradedPlan:
    """Compute every station's degraded current."""
    plan = DegradedPlan()
    asks = _asks(zones, stations, standard)
    under: dict[str, float] = dict.fromkeys(zones, 0.0)
    members: dict[str, list[float]] = {zone_id: [] for zone_id in zones}
    for station_id, ask in asks.items():
        for zone_id in zone_path(stations[station_id].zone_id, zones):
            under[zone_id] += ask
            members[zone_id].append(ask)
    # What chargers we cannot control take first, whatever we do.
    taken: dict[str, float] = dict.fromkeys(zones, 0.0)
    for needs in stations.values():
        if needs.fixed is not None and needs.zone_id in zones:
            plan.station[needs.station_id] = needs.fixed
            for zone_id in zone_path(needs.zone_id, zones):
                taken[zone_id] += needs.fixed
    capacity = {
        zone_id: max(fallback_capacity(zone) - taken[zone_id], 0.0)
        for zone_id, zone in zones.items()
    }
    for station_id, ask in asks.items():
        needs = stations[station_id]
        scale, short = _scale(zone_path(needs.zone_id, zones), under, capacity)
        if short is not None:
            scale = 0.0
            shortfall = _shortfall(zones[short], members[short], taken[short], capacity[short])
            plan.shortfalls[needs.zone_id] = shortfall
            plan.problems[needs.zone_id] = shortfall.summary()
        elif zones[needs.zone_id].mode is ZoneMode.DYNAMIC or not math.isfinite(scale):
            scale = 1.0  # an override is what the installer asked for, not scaled up
        plan.scale[needs.zone_id] = min(plan.scale.get(needs.zone_id, scale), scale)
        total = _floor(ask * scale)
        plan.station[station_id] = total
        plan.per_connector[station_id] = _floor(
            min(total / max(len(needs.wirings), 1), needs.rating)
        )
    return plan
