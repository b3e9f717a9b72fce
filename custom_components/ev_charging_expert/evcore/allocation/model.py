"""Inputs and outputs of the allocator: immutable snapshots and results.

All currents are in amperes. A connector's setpoint is per connector phase (what an OCPP
charging profile limits); `phases.load_pattern` says which grid phases it lands on. Zone budgets
are per grid phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import math
from typing import TYPE_CHECKING

from .phases import EV_PHASES, NUM_PHASES, PATTERN_PHASES, THREE_PHASE, Wiring, load_pattern

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..keys import ConnectorKey

type Phases = tuple[float, float, float]
"""A value per grid phase L1, L2, L3."""


class MinimumStandard(StrEnum):
    """The minimum current an EV accepts to charge with (below it, the EV is suspended)."""

    IEC_61851 = "iec_61851"  # 6 A single- and three-phase
    EV_ZE_READY = "ev_ze_ready"  # 8 A single-phase, 14 A three-phase

    @property
    def single_phase(self) -> float:
        """Minimum current of an EV charging on one phase (A)."""
        return 6.0 if self is MinimumStandard.IEC_61851 else 8.0

    @property
    def three_phase(self) -> float:
        """Minimum current per phase of an EV charging on three phases (A)."""
        return 6.0 if self is MinimumStandard.IEC_61851 else 14.0

    def minimum(self, pattern: int) -> float:
        """Minimum current for a connector with this load pattern."""
        return self.three_phase if pattern == THREE_PHASE else self.single_phase


class ShedPriority(StrEnum):
    """Which EVs are suspended first when not every minimum fits."""

    ENERGY = "energy"  # the EVs that consumed the most energy in their session
    DURATION = "duration"  # the EVs that have been charging the longest


class Reason(StrEnum):
    """Why a connector got its setpoint."""

    ALLOCATED = "allocated"  # got its maximum current
    CAPPED_BY_ZONE = "capped_by_zone"  # less than its maximum: a zone phase is full
    SUSPENDED_PRIORITY = "suspended_priority"  # 0 A: others come first by the shedding rule
    SUSPENDED_NO_CAPACITY = "suspended_no_capacity"  # 0 A: its minimum does not fit even alone
    NOT_CHARGING = "not_charging"  # 0 A: no EV wants current
    BELOW_MINIMUM = "below_minimum"  # 0 A: its maximum current is below the minimum current
    UNCONTROLLED = "uncontrolled"  # not allocated: counted at its fixed load


@dataclass(frozen=True, slots=True)
class AllocationSettings:
    """Site-wide load management settings."""

    minimum_standard: MinimumStandard = MinimumStandard.IEC_61851
    shed_priority: ShedPriority = ShedPriority.ENERGY
    reevaluation_period: float = 900.0
    """Seconds between two revisits of who is suspended (rotation)."""
    resume_delay: float = 60.0
    """Seconds a suspended EV stays suspended at least; after that it starts again as soon
    as its minimum fits beside everyone else's, without waiting for the revisit (once per
    period: suspended again, it waits for the revisit)."""
    resolution: float = 0.1
    """Setpoints are rounded down to a multiple of this (A); 0 = no rounding."""

    def __post_init__(self) -> None:
        if not self.reevaluation_period >= 0:
            raise ValueError(f"reevaluation_period must be >= 0, got {self.reevaluation_period}")
        if not self.resume_delay >= 0:
            raise ValueError(f"resume_delay must be >= 0, got {self.resume_delay}")
        if not (self.resolution >= 0 and math.isfinite(self.resolution)):
            raise ValueError(f"resolution must be >= 0, got {self.resolution}")


@dataclass(frozen=True, slots=True)
class ZoneBudget:
    """A zone (switchboard) and what EVs may draw through it on each grid phase.

    `budget` is already computed by the caller (static: max current; dynamic: max current minus
    the measured non-EV load, or the degraded setpoint). A negative or NaN budget counts as 0.
    """

    zone_id: str
    budget: Phases
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectorSnapshot:
    """One connector as the allocator sees it."""

    connector_id: ConnectorKey
    zone_id: str
    rating: float
    """Maximum current of the connector (A per phase)."""
    wants_current: bool
    """An EV is plugged in and may draw current (charging, or suspended by us)."""
    wiring: Wiring = Wiring.TRI123
    ev_phases: int | None = None
    """Phases the EV charges on: 1, 2 or 3; None = not known yet (all wired phases)."""
    max_current: float | None = None
    """User cap (A per phase), applied on top of the rating."""
    session_energy_wh: float = 0.0
    charging_duration_s: float = 0.0
    """Time the session has actually been charging (not time plugged in), for rotation."""
    vip_card: bool = False
    vip_station: bool = False
    fixed_load: Phases | None = None
    """Set for a connector we cannot control: counted at these amps per *grid* phase."""
    provisional: bool = False
    """Its `fixed_load` holds only until its charger is under control (its configuration
    read, its base confirmed: a charger that just connected): who runs is decided as if it
    were controlled already, so the others are not suspended because of it."""
    unconfirmed: float = 0.0
    """A limit (A) the charger may still apply on grid phases where it was never counted (its
    EV left or changed, its phases are no longer known) because no lower limit was confirmed
    since: counted on every grid phase of `pattern`, and the connector gets 0 A until the
    charger confirms a new limit (then its room is given away)."""
    pattern: int = field(init=False, repr=False)
    """Where the setpoint lands on the grid (see `phases.load_pattern`)."""
    limit: float = field(init=False, repr=False)
    """Effective maximum current: the rating, lowered by the user cap."""

    def __post_init__(self) -> None:
        if not isinstance(self.wiring, Wiring):
            object.__setattr__(self, "wiring", Wiring(self.wiring))
        if self.ev_phases not in EV_PHASES:
            raise ValueError(f"{self.connector_id}: ev_phases must be 1, 2, 3 or None")
        _non_negative(self.connector_id, "rating", self.rating)
        _non_negative(self.connector_id, "session_energy_wh", self.session_energy_wh)
        _non_negative(self.connector_id, "charging_duration_s", self.charging_duration_s)
        limit = self.rating
        if self.max_current is not None:
            _non_negative(self.connector_id, "max_current", self.max_current)
            limit = min(limit, self.max_current)
        if self.fixed_load is not None:
            if len(self.fixed_load) != NUM_PHASES:
                raise ValueError(f"{self.connector_id}: fixed_load needs one value per phase")
            for value in self.fixed_load:
                _non_negative(self.connector_id, "fixed_load", value)
        _non_negative(self.connector_id, "unconfirmed", self.unconfirmed)
        object.__setattr__(self, "pattern", load_pattern(self.wiring, self.ev_phases))
        object.__setattr__(self, "limit", float(limit))

    @property
    def vip(self) -> bool:
        """Whether the connector is served first (VIP card or VIP station)."""
        return self.vip_card or self.vip_station


def _non_negative(connector_id: ConnectorKey, name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{connector_id}: {name} must be finite and >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class AllocatorState:
    """What the allocator remembers between two runs (from the previous `Allocation`)."""

    reevaluated_at: float | None = None
    """Monotonic time of the last revisit of suspensions; None = revisit now."""
    running: frozenset[ConnectorKey] = frozenset()
    """Connectors that were given current."""
    suspended: frozenset[ConnectorKey] = frozenset()
    """Connectors that wanted current and were suspended (they wait for the next revisit, or
    for room once `resume_delay` has passed)."""
    suspended_since: Mapping[ConnectorKey, float] = field(default_factory=dict, compare=False)
    """Per suspended connector: monotonic time it was suspended."""
    resumed: frozenset[ConnectorKey] = frozenset()
    """Connectors that started again in free room since the last revisit: if suspended again,
    they wait for the next revisit (at most one such restart per period, no flapping)."""


@dataclass(frozen=True, slots=True)
class ZoneIndex:
    """The zone tree, validated and flattened (derived from a snapshot's zones).

    Constraint `3 * z + p` is grid phase p of zone z (position in `zones`).
    """

    zones: tuple[ZoneBudget, ...]
    position: Mapping[str, int]
    paths: tuple[tuple[int, ...], ...]
    """Per zone: itself, its parent, ..., its root."""
    constraints: tuple[tuple[tuple[int, ...], ...], ...]
    """Per zone, per load pattern: the constraints a connector of that zone loads."""

    @classmethod
    def build(cls, zones: tuple[ZoneBudget, ...]) -> ZoneIndex:
        """Validate the tree (unique ids, known parents, no cycles) and index it."""
        position: dict[str, int] = {}
        for i, zone in enumerate(zones):
            if zone.zone_id in position:
                raise ValueError(f"duplicate zone id {zone.zone_id!r}")
            if len(zone.budget) != NUM_PHASES:
                raise ValueError(f"zone {zone.zone_id!r}: budget needs one value per phase")
            position[zone.zone_id] = i
        parents: list[int] = []
        for zone in zones:
            if zone.parent_id is None:
                parents.append(-1)
            elif zone.parent_id in position:
                parents.append(position[zone.parent_id])
            else:
                raise ValueError(f"zone {zone.zone_id!r}: unknown parent {zone.parent_id!r}")
        paths: list[tuple[int, ...]] = []
        for i, zone in enumerate(zones):
            path = [i]
            parent = parents[i]
            while parent >= 0:
                if parent in path:
                    raise ValueError(f"zone {zone.zone_id!r}: cycle in the zone tree")
                path.append(parent)
                parent = parents[parent]
            paths.append(tuple(path))
        constraints = tuple(
            tuple(tuple(3 * z + p for z in path for p in phases) for phases in PATTERN_PHASES)
            for path in paths
        )
        return cls(tuple(zones), position, tuple(paths), constraints)


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    """Everything the allocator needs, frozen at one instant.

    Construction validates it (unique ids, a proper tree, connectors in known zones) and sorts
    `zones` and `connectors` by id: the order they are given in does not matter, down to the
    last bit of floating-point sums.
    """

    zones: tuple[ZoneBudget, ...]
    connectors: tuple[ConnectorSnapshot, ...]
    now: float
    """Monotonic seconds."""
    settings: AllocationSettings = AllocationSettings()
    state: AllocatorState = AllocatorState()
    zone_index: ZoneIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", tuple(sorted(self.zones, key=_zone_key)))
        object.__setattr__(self, "connectors", tuple(sorted(self.connectors, key=_connector_key)))
        index = ZoneIndex.build(self.zones)
        position = index.position
        seen: set[ConnectorKey] = set()
        for connector in self.connectors:
            if connector.connector_id in seen:
                raise ValueError(f"duplicate connector id {connector.connector_id!r}")
            seen.add(connector.connector_id)
            if connector.zone_id not in position:
                raise ValueError(
                    f"connector {connector.connector_id!r}: unknown zone {connector.zone_id!r}"
                )
        object.__setattr__(self, "zone_index", index)


def _zone_key(zone: ZoneBudget) -> str:
    return zone.zone_id


def _connector_key(connector: ConnectorSnapshot) -> ConnectorKey:
    return connector.connector_id


@dataclass(frozen=True, slots=True)
class ZoneAllocation:
    """Per grid phase totals of one zone, its sub-zones included."""

    zone_id: str
    budget: Phases
    fixed: Phases
    """Load of uncontrolled connectors, and the unconfirmed limits still counted."""
    allocated: Phases
    """Sum of the setpoints given."""

    @property
    def headroom(self) -> Phases:
        """Budget left on each phase (negative when uncontrolled loads exceed the budget)."""
        b, f, a = self.budget, self.fixed, self.allocated
        return (
            effective_budget(b[0]) - f[0] - a[0],
            effective_budget(b[1]) - f[1] - a[1],
            effective_budget(b[2]) - f[2] - a[2],
        )


def effective_budget(value: float) -> float:
    """A budget as the allocator uses it: negative or NaN counts as 0 (less current)."""
    return value if value > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Allocation:
    """The result of `allocate`."""

    setpoints: Mapping[ConnectorKey, float]
    """Per controllable connector: the limit to send (A per phase; 0 = suspended)."""
    reasons: Mapping[ConnectorKey, Reason]
    """Per connector (uncontrolled ones included): why it got its setpoint."""
    limited_by: Mapping[ConnectorKey, str]
    """Per connector capped below its maximum: the zone whose phase is full."""
    zones: Mapping[str, ZoneAllocation]
    state: AllocatorState
    """Pass it back in the next snapshot."""
    reevaluated: bool
    """Whether suspensions were revisited in this run."""
    next_reevaluation_at: float
    """Monotonic time from which the next run revisits suspensions (schedule a run then)."""
    next_resume_at: float = math.inf
    """Monotonic time a suspended connector may start again in free room (schedule a run)."""
