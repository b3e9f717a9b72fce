"""Zone budgets: static, dynamic (from a meter), or degraded (meter lost).

A dynamic zone's budget on each grid phase is

    max current - (measured zone current - our EVs' current in the zone) - safety margin

clamped to [0, max]. "Our EVs' current" must not be overstated, or the building's own load
would look smaller than it is. So each connector counts the *least* of what its charger last
measured (only if recent) and the lowest limit the charger may be applying right now; a
connector without a recent measurement counts 0 (all of the zone's current is then taken as
building load: less for the EVs, never more). The one thing this cannot see is an EV whose
draw fell after its last sample; the safety margin is there for that.

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
    """Measured minus our EVs: the building's own load, when known."""


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
        # Building load is never negative: an EV sample larger than the meter's (timing)
        # must not create room.
        building = tuple(max(abs(measured[p]) - evs[p], 0.0) for p in range(3))
        budget = tuple(_clamp(top - building[p] - safety_margin, top) for p in range(3))
        result[zone_id] = ZoneBudgetInfo(
            budget=(budget[0], budget[1], budget[2]),
            degraded=False,
            measured=(measured[0], measured[1], measured[2]),
            building=(building[0], building[1], building[2]),
        )
    return result
