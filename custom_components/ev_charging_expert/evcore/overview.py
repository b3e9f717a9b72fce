"""The site at a glance: totals, headroom, who holds current while offline, station states.

Read-model helpers used by the Controller's views (`site_view`, the `headroom` and
`offline_reserve` of `ZoneView`) so HA, the panel and exporters show the same figures and
nobody recomputes them from private state.

A station's state is derived from its connection and its connectors, never from connector 0
alone (a charger may report connector 0 "Available" while a connector charges):

    offline      not connected (whatever it last reported)
    faulted      connector 0 faulted, or every connector faulted
    unavailable  connector 0 unavailable, or every connector unavailable
    charging     at least one connector charging
    suspended    none charging, at least one suspended (by the EV or by us)
    occupied     none of the above, an EV plugged in somewhere (preparing / finishing)
    reserved     none of the above, a connector reserved
    available    none of the above, at least one connector available
    None         connected but nothing reported yet (HA shows "unknown")
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .allocation.phases import NUM_PHASES, PATTERN_PHASES, load_pattern
from .events import jsonable
from .model import ConnectorStatus, Registration

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime
    from typing import Any

    from .allocation.model import Allocation, Phases, SiteSnapshot
    from .config import ConnectorConfig
    from .model import ConnectorState, StationState
    from .view import ZoneView


class StationStatus(StrEnum):
    """A station's state as a whole (see the module docstring for the rule)."""

    OFFLINE = "offline"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"
    CHARGING = "charging"
    SUSPENDED = "suspended"
    OCCUPIED = "occupied"
    RESERVED = "reserved"
    AVAILABLE = "available"


_SUSPENDED = frozenset({ConnectorStatus.SUSPENDED_EV, ConnectorStatus.SUSPENDED_EVSE})
_OCCUPIED = frozenset({ConnectorStatus.PREPARING, ConnectorStatus.FINISHING})


def station_status(station: StationState) -> StationStatus | None:
    """The station's state from its connection and connectors (None: nothing reported yet)."""
    if not station.connected:
        return StationStatus.OFFLINE
    whole = station.connectors.get(0)
    whole_status = whole.status if whole is not None else ConnectorStatus.UNKNOWN
    statuses = [c.status for c in station.charge_points if c.status is not ConnectorStatus.UNKNOWN]
    if whole_status is ConnectorStatus.FAULTED or (
        statuses and all(s is ConnectorStatus.FAULTED for s in statuses)
    ):
        return StationStatus.FAULTED
    if whole_status is ConnectorStatus.UNAVAILABLE or (
        statuses and all(s is ConnectorStatus.UNAVAILABLE for s in statuses)
    ):
        return StationStatus.UNAVAILABLE
    seen = set(statuses)
    for wanted, result in (
        ({ConnectorStatus.CHARGING}, StationStatus.CHARGING),
        (_SUSPENDED, StationStatus.SUSPENDED),
        (_OCCUPIED, StationStatus.OCCUPIED),
        ({ConnectorStatus.RESERVED}, StationStatus.RESERVED),
        ({ConnectorStatus.AVAILABLE}, StationStatus.AVAILABLE),
    ):
        if seen & wanted:
            return result
    if whole_status is ConnectorStatus.AVAILABLE:
        return StationStatus.AVAILABLE
    return None


@dataclass(frozen=True, slots=True)
class OfflineReserve:
    """A station that is not connected and still counts in a zone (safety rule 3)."""

    station_id: str
    current: Phases
    """What it is counted at per grid phase (its lease while it may run, then its base)."""
    since: datetime | None
    """When it was last heard of; None when never since the registry was created."""

    @property
    def amps(self) -> float:
        """The highest phase: "holds 16 A"."""
        return max(self.current)


@dataclass(frozen=True, slots=True)
class SiteView:
    """The whole site at the last allocation run and the stations' live state."""

    current: Phases
    """What the connected chargers draw per grid phase, from their meter values (a charger
    that reports no current counts as 0 A)."""
    power_w: float
    """What the connected chargers draw (W), from their meter values (same rule)."""
    registers: Mapping[str, float]
    """Every connector's energy register (Wh) by "station#connector": HA adds up their
    increases into one site counter (a new charger's register is not energy delivered)."""
    headroom: Phases | None
    """What the root zones leave free per phase (A); None before the first run or no zone."""
    evs_charging: int
    evs_suspended: int
    stations_online: int
    stations_offline: int
    stations_pending: int
    offline_reserving: int
    """Offline stations that still hold current in a zone."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly data."""
        data = jsonable(self)
        assert isinstance(data, dict)  # noqa: S101  # a dataclass always gives a dict
        return data


def grid_current(connector: ConnectorState, config: ConnectorConfig) -> Phases | None:
    """What a connector draws per grid phase, from its current samples (None: not metered)."""
    values = [connector.current(p) for p in ("L1", "L2", "L3")]
    if all(v is None for v in values):
        return None
    grid = [0.0] * NUM_PHASES
    wiring = config.wiring
    if wiring.three_phase:
        for phase, value in enumerate(values, start=1):
            if value is not None:
                grid[wiring.grid_phase(phase) - 1] += value
    else:
        # A single-phase connector: whatever it reports lands on its one grid phase.
        grid[PATTERN_PHASES[load_pattern(wiring, 1)][0]] += sum(v for v in values if v)
    return grid[0], grid[1], grid[2]


def zone_headroom(allocation: Allocation, snapshot: SiteSnapshot) -> dict[str, Phases]:
    """Per zone: what is left per phase for one more EV (the tightest zone on its path)."""
    index = snapshot.zone_index
    own = [allocation.zones[z.zone_id].headroom for z in index.zones]
    result: dict[str, Phases] = {}
    for i, zone in enumerate(index.zones):
        path = index.paths[i]
        l1, l2, l3 = (min(own[z][p] for z in path) for p in range(NUM_PHASES))
        result[zone.zone_id] = (l1, l2, l3)
    return result


def offline_reserves(
    snapshot: SiteSnapshot, stations: Mapping[str, StationState]
) -> dict[str, tuple[OfflineReserve, ...]]:
    """Per zone (sub-zones included): the offline stations counted in it, highest first."""
    index = snapshot.zone_index
    per_station: dict[tuple[int, str], list[float]] = {}
    for connector in snapshot.connectors:
        station = stations.get(connector.connector_id.station_id)
        if connector.fixed_load is None or (station is not None and station.connected):
            continue
        for z in index.paths[index.position[connector.zone_id]]:
            key = (z, connector.connector_id.station_id)
            total = per_station.setdefault(key, [0.0] * NUM_PHASES)
            for p in range(NUM_PHASES):
                total[p] += connector.fixed_load[p]
    result: dict[str, list[OfflineReserve]] = {}
    for (z, station_id), total in per_station.items():
        if max(total) <= 0:
            continue
        station = stations.get(station_id)
        result.setdefault(index.zones[z].zone_id, []).append(
            OfflineReserve(
                station_id,
                (total[0], total[1], total[2]),
                station.last_seen if station is not None else None,
            )
        )
    return {
        zone_id: tuple(sorted(items, key=lambda r: (-r.amps, r.station_id)))
        for zone_id, items in result.items()
    }


def build_site_view(
    stations: Iterable[StationState],
    zones: Iterable[ZoneView],
    pending: int,
) -> SiteView:
    """The site's totals from the stations' live state and the zones' last run."""
    current = [0.0] * NUM_PHASES
    power = 0.0
    registers: dict[str, float] = {}
    online = offline = 0
    for station in stations:
        if station.registration is not Registration.ACCEPTED:
            continue
        if station.connected:
            online += 1
        else:
            offline += 1
        for connector in station.charge_points:
            if (energy_wh := connector.energy_wh) is not None:
                registers[f"{station.station_id}#{connector.connector_id}"] = energy_wh
            if not station.connected:
                continue  # its last samples say nothing about now
            power += connector.power_w or 0.0
            grid = grid_current(connector, station.config.connector(connector.connector_id))
            if grid is not None:
                for p in range(NUM_PHASES):
                    current[p] += grid[p]
    roots = [z for z in zones if z.parent_id is None]
    headroom: Phases | None = None
    if roots:
        l1, l2, l3 = (sum(z.headroom[p] for z in roots) for p in range(NUM_PHASES))
        headroom = (l1, l2, l3)
    holding = {r.station_id for z in roots for r in z.offline_reserve}
    return SiteView(
        current=(current[0], current[1], current[2]),
        power_w=power,
        registers=registers,
        headroom=headroom,
        evs_charging=sum(z.charging for z in roots),
        evs_suspended=sum(z.suspended for z in roots),
        stations_online=online,
        stations_offline=offline,
        stations_pending=pending,
        offline_reserving=len(holding),
    )
