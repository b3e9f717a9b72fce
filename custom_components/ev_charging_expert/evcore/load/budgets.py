"""Zone budgets: static, dynamic (from a meter), or degraded (meter lost).

A dynamic zone's budget on each grid phase is

    max current - (measured zone current - our EVs' current in the zone) - safety margin

clamped to [0, max]. "Our EVs' current" must not be overstated, or the building's own load
would look smaller than it is. So each connector counts the *least* of what its charger last
measured (only if recent) and the lowest limit the charger may be applying right now; a
connector without a recent measurement counts 0 (all of the zone's current is then taken as
building load: less for the EVs, never more). The one thing this cannot see is an EV whose
draw fell after its last sample; the safety margin is there for that.

The building's load is clamped at 0: a meter reading less than our EVs draw must not create
room. A few amperes below 0 for a while is timing (an EV that slowed down between two
samples); clearly below 0 for minutes means the meter does not see our EVs (it is on another
feeder, its CT ratio is wrong): the zone's budget is then wrong, and `track_negative_building`
says so.

Sub-zones are further limited by their parents (the allocator applies every ancestor's
constraint); this module only computes each zone's own budget.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import TYPE_CHECKING

from ..config import ZoneMode

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ..allocation.model import Phases
    from ..config import ZoneConfig

DEFAULT_SAFETY_MARGIN = 1.0  # A per phase
NEGATIVE_BUILDING_THRESHOLD = -2.0
"""A zone's computed building load below this (A, on a phase) is clearly negative."""
NEGATIVE_BUILDING_DELAY = 300.0
"""Seconds a zone's building load must stay clearly negative before it is reported."""


@dataclass(frozen=True, slots=True)
class EvDraw:
    """One connector's contribution to its zone's measured current, per grid phase."""

    zone_id: str
    amps: Phases


@dataclass(frozen=True, slots=True)
class ZoneBudgetInfo:
    """How a zone's budget was found (shown in HA and diagnostics)."""

    budget: Phases
    degraded: bool
    """A dynamic zone without a valid reading: it runs on its degraded setpoint."""
    measured: Phases | None = None
    """The meter's current per phase, when used."""
    building: Phases | None = None
    """Measured minus our EVs: the building's own load, when known (never below 0)."""
    evs: Phases | None = None
    """Our EVs' current per phase as subtracted from the measured one, when used."""

    @property
    def computed_building(self) -> Phases | None:
        """Measured minus our EVs before the clamp at 0 (negative: the meter sees less)."""
        if self.measured is None or self.evs is None:
            return None
        m, e = self.measured, self.evs
        return (abs(m[0]) - e[0], abs(m[1]) - e[1], abs(m[2]) - e[2])


@dataclass(frozen=True, slots=True)
class NegativeBuildingLoad:
    """A dynamic zone whose meter reads clearly less than our EVs draw, since `since`."""

    zone_id: str
    since: float
    """Monotonic time its building load went clearly negative (and stayed so)."""
    measured: Phases
    """The meter's current per phase at the last reading."""
    evs: Phases
    """Our EVs' current per phase at the last reading."""
    building: Phases
    """Measured minus our EVs (negative on at least one phase)."""

    @property
    def reported_at(self) -> float:
        """Monotonic time from which it is reported (it stayed negative long enough)."""
        return self.since + NEGATIVE_BUILDING_DELAY

    def summary(self) -> str:
        """The figures, per phase, for a log line or a repair."""
        return "; ".join(
            f"L{p + 1}: measured {self.measured[p]:.1f} A, our EVs {self.evs[p]:.1f} A, "
            f"building {self.building[p]:.1f} A"
            for p in range(3)
        )


def track_negative_building(
    previous: Mapping[str, NegativeBuildingLoad],
    budgets: Mapping[str, ZoneBudgetInfo],
    now: float,
    *,
    partial: bool = False,
) -> dict[str, NegativeBuildingLoad]:
    """Update which dynamic zones have a clearly negative building load, and since when.

    With `partial`, `budgets` holds only some zones (a meter's own) and the others keep their
    state. A zone whose building load is back above the threshold, or whose meter is lost,
    starts again.
    """
    result = {z: n for z, n in previous.items() if partial and z not in budgets}
    for zone_id, info in budgets.items():
        building = info.computed_building
        if building is None or info.measured is None or info.evs is None:
            continue
        if min(building) >= NEGATIVE_BUILDING_THRESHOLD:
            continue
        before = previous.get(zone_id)
        result[zone_id] = NegativeBuildingLoad(
            zone_id,
            before.since if before is not None else now,
            info.measured,
            info.evs,
            building,
        )
    return result


def _clamp(value: float, high: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(max(value, 0.0), high)


def zone_budgets(
    zones: Mapping[str, ZoneConfig],
    readings: Mapping[str, Phases | None],
    ev_draws: Iterable[EvDraw],
    *,
    safety_margin: float = DEFAULT_SAFETY_MARGIN,
    only: set[str] | None = None,
) -> dict[str, ZoneBudgetInfo]:
    """Each zone's own budget per phase (only those in `only`, when given).

    `readings` maps a dynamic zone to its meter's current per phase, or None when the meter
    has no valid reading. `ev_draws` are the connectors' contributions (see module doc);
    a connector counts in its zone and every zone above it.
    """
    ours: dict[str, list[float]] = {z: [0.0, 0.0, 0.0] for z in zones}
    for draw in ev_draws:
        zone_id: str | None = draw.zone_id
        seen: set[str] = set()
        while zone_id is not None and zone_id in zones and zone_id not in seen:
            seen.add(zone_id)
            total = ours[zone_id]
            for p in range(3):
                total[p] += max(draw.amps[p], 0.0)
            zone_id = zones[zone_id].parent_id
    result: dict[str, ZoneBudgetInfo] = {}
    for zone_id, zone in zones.items():
        if only is not None and zone_id not in only:
            continue
        top = zone.max_current
        if zone.mode is ZoneMode.STATIC:
            result[zone_id] = ZoneBudgetInfo((top, top, top), degraded=False)
            continue
        measured = readings.get(zone_id)
        if measured is None or not all(math.isfinite(m) for m in measured):
            degraded = _clamp(zone.degraded_setpoint, top)
            result[zone_id] = ZoneBudgetInfo((degraded, degraded, degraded), degraded=True)
            continue
        evs = ours[zone_id]
        # Building load is never negative: an EV sample larger than the meter's (timing, or
        # a meter that does not see our EVs: see the module docstring) must not create room.
        building = tuple(max(abs(measured[p]) - evs[p], 0.0) for p in range(3))
        budget = tuple(_clamp(top - building[p] - safety_margin, top) for p in range(3))
        result[zone_id] = ZoneBudgetInfo(
            budget=(budget[0], budget[1], budget[2]),
            degraded=False,
            measured=(measured[0], measured[1], measured[2]),
            building=(building[0], building[1], building[2]),
            evs=(evs[0], evs[1], evs[2]),
        )
    return result
