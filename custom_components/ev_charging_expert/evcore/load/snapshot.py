"""The allocator's immutable snapshot, from the site: who wants current, who counts at what.

What cannot be controlled right now is counted as a fixed load (safety rule 3): a charger
without Smart Charging or that refused our limits at its rating, one whose base is not
confirmed at its rating, an offline one at its lease (until it ends) then at its base, and a
station that left a zone there until it confirms 0 A. A connector whose limit may now land on
grid phases it was not counted on (its EV left or paused, the phases it used are no longer
known) counts there at that limit until the charger confirms 0 A (`unconfirmed`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
import math
from typing import TYPE_CHECKING

from ..allocation.model import ConnectorSnapshot, SiteSnapshot, ZoneBudget
from ..allocation.phases import PATTERN_PHASES, THREE_PHASE, load_pattern
from ..config import terminal_zones
from ..keys import ConnectorKey
from ..model import ConnectorStatus, Registration
from ..rules.pipeline import NO_RULES, zone_limits
from .budgets import EvDraw, ZoneBudgetInfo, zone_budgets
from .control import UNCONTROLLED, ChargerControl, Control
from .degraded import DegradedPlan, StationNeeds, degraded_plan
from .delivery import LeaseState

if TYPE_CHECKING:
    from datetime import datetime

    from ..allocation.model import Phases
    from ..allocation.phases import Wiring
    from ..model import ConnectorState, StationState
    from ..site import Site
    from .control import LoadState

# Statuses in which an EV is plugged in with a session that may draw current.
WANTS_CURRENT = frozenset(
    {
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.PREPARING,
    }
)
_EV_SAMPLE_MAX_AGE = timedelta(seconds=60)  # an older EV sample says nothing about now
_EV_REACTION = 5.0  # s an EV may take to follow a new limit
# A phase drawing more than this (A) counts as used when detecting the EV's phases.
_PHASE_IN_USE = 1.0
PROVISIONAL_GRACE = 60.0
"""Seconds a charger that just connected (or that load management has not heard of since it
started) counts at its rating only provisionally: the others are not suspended for it (see
`ConnectorSnapshot.provisional`). Taking control of a charger takes about a second."""


class SnapshotBuilder:
    """Reads the site and the load state.

    Writes only `state.lease_ends`, budgets, and each lease's `pattern` and `unplanned`.
    """

    def __init__(self, site: Site, state: LoadState) -> None:
        self._site = site
        self._state = state

    def build(self, now: float) -> SiteSnapshot:
        """The snapshot of this instant, with every zone's budget (stored in the state)."""
        state = self._state
        state.lease_ends = math.inf
        terminal = terminal_zones(state.zones)
        wall = self._site.clock.now()
        connectors: list[ConnectorSnapshot] = []
        for station in self._site.stations.values():
            if station.registration is not Registration.ACCEPTED:
                continue
            zone_id = station.config.zone_id
            if zone_id is None or zone_id not in terminal:
                continue  # unassigned: no current (its base holds it)
            control = state.controls.get(station.station_id, ChargerControl())
            connectors.extend(
                self._connector(station, connector, control, zone_id, now=now, wall=wall)
                for connector in station.charge_points
            )
        self._carry_over(connectors, terminal, now)
        draft = SiteSnapshot(
            zones=tuple(
                ZoneBudget(z.zone_id, (0.0, 0.0, 0.0), z.parent_id) for z in state.zones.values()
            ),
            connectors=tuple(connectors),
            now=now,
            settings=state.settings.allocation_settings(),
            state=state.allocator,
        )
        state.budgets = self.budgets(draft)
        # The operating rules only lower each zone's own budget (rules/pipeline.py).
        rules = state.rules() if state.rules is not None else NO_RULES
        state.limits = zone_limits(state.zones, state.budgets, rules)
        return replace(
            draft,
            zones=tuple(
                ZoneBudget(z.zone_id, state.limits[z.zone_id].limit, z.parent_id)
                for z in state.zones.values()
            ),
        )

    # ------------------------------------------------------------------ budgets
    def budgets(
        self, snapshot: SiteSnapshot, *, only: set[str] | None = None
    ) -> dict[str, ZoneBudgetInfo]:
        """Each zone's own budget: static max, meter-based, or degraded (meter lost).

        With `only`, just those zones (and only the connectors below them are looked at).
        """
        state = self._state
        readings: dict[str, Phases | None] = {}
        taken: list[datetime] = []
        for zone_id, meter in state.zone_meters.items():
            if only is not None and zone_id not in only:
                continue
            reading = meter.valid_reading(self._site.clock.monotonic())
            readings[zone_id] = None if reading is None else reading.currents_a
            if reading is not None:
                taken.append(reading.timestamp)
        # An EV sample newer than a meter's reading may show a draw the meter did not see yet:
        # subtracting it would make the building's load look smaller than it is.
        not_after = min(taken, default=None)
        connectors = snapshot.connectors
        if only is not None:
            index = snapshot.zone_index
            wanted = {index.position[z] for z in only if z in index.position}
            connectors = tuple(
                c for c in connectors if wanted.intersection(index.paths[index.position[c.zone_id]])
            )
        draws = [self._ev_draw(c, not_after) for c in connectors] if not_after is not None else []
        return zone_budgets(
            state.zones, readings, draws, safety_margin=state.settings.safety_margin, only=only
        )

    def _ev_draw(self, connector: ConnectorSnapshot, not_after: datetime) -> EvDraw:
        """What a connector adds to its zone's meter, never overstated (see budgets.py)."""
        station_id, connector_id = connector.connector_id
        station = self._site.stations.get(station_id)
        station_connector = station.connectors.get(connector_id) if station else None
        if station_connector is None or station_connector.transaction is None:
            return EvDraw(connector.zone_id, (0.0, 0.0, 0.0))
        lease = self._state.leases.get(connector.connector_id)
        if connector.fixed_load is not None:
            cap = max(connector.fixed_load)
        elif lease is None or lease.held is None:
            cap = 0.0
        else:
            # The limit in force (a change in flight is not in force yet), or the one before
            # it for the few seconds an EV takes to follow a change (IEC 61851: 5 s): else a
            # meter that still sees the old draw would make the building look bigger at every
            # decrease, and the budget would fall again, and again.
            cap = lease.held
            following = self._site.clock.monotonic() - lease.changed_at < _EV_REACTION
            if following and lease.previous is not None:
                cap = max(cap, lease.previous)
        started = station_connector.transaction.started_at
        recent = self._site.clock.now() - _EV_SAMPLE_MAX_AGE
        amps = [0.0, 0.0, 0.0]
        wiring = connector.wiring
        for phase in (1, 2, 3):
            sample = station_connector.measurements.get(("Current.Import", f"L{phase}"))
            if (
                sample is None
                or sample.timestamp <= started
                or sample.timestamp < recent
                or sample.timestamp > not_after
            ):
                continue
            if not wiring.three_phase and phase != 1:
                continue
            grid = wiring.grid_phase(phase) - 1
            amps[grid] += min(max(sample.value, 0.0), cap)
        return EvDraw(connector.zone_id, (amps[0], amps[1], amps[2]))

    # ------------------------------------------------------------------ degraded mode
    def degraded_plan(self) -> DegradedPlan:
        """Every station's degraded current (what its base holds) for the zones as they are."""
        state = self._state
        needs: dict[str, StationNeeds] = {}
        for station in self._site.stations.values():
            config = station.config
            if station.registration is not Registration.ACCEPTED or config.zone_id is None:
                continue
            points = station.charge_points
            wirings = tuple(config.connector(c.connector_id).wiring for c in points)
            ratings = [config.connector(c.connector_id).rating for c in points]
            control = state.controls.get(station.station_id)
            uncontrolled = control is not None and control.control in UNCONTROLLED
            needs[station.station_id] = StationNeeds(
                station_id=station.station_id,
                zone_id=config.zone_id,
                wirings=wirings,
                rating=min(ratings, default=0.0),
                minimum_override=config.minimum_override,
                degraded_override=config.degraded_override,
                dc=config.dc,
                fixed=sum(ratings) if uncontrolled else None,
            )
        return degraded_plan(state.zones, needs, state.settings.minimum_standard)

    # ------------------------------------------------------------------ connectors
    def _carry_over(
        self, connectors: list[ConnectorSnapshot], terminal: set[str], now: float
    ) -> None:
        """Keep counting connectors that left the snapshot while they may draw there.

        That is a station unassigned, removed or no longer accepted: its charger may still
        hold a lease, and its base, in the zone it was in. A reachable one is kept as wanting
        no current, so it is sent 0 A and its room is given away once 0 A is confirmed for
        its lease and its base; an unreachable one counts at the higher of its lease (until
        it ends) and its base — for good, if it never confirms a base of 0 A (a charger we
        cannot control never does: its rating, unless a base was confirmed before). A removed
        station is forgotten when its lease ends (it was sent 0 A before it was removed).
        """
        state = self._state
        if state.last is None:
            return
        present = {c.connector_id for c in connectors}
        for key, previous in state.last.by_key.items():
            if key in present or previous.zone_id not in terminal:
                continue
            lease = state.leases.get(key) or LeaseState()
            station = self._site.stations.get(key.station_id)
            control = state.controls.get(key.station_id)
            reachable = (
                station is not None
                and station.registration is Registration.ACCEPTED
                and station.connected
                and control is not None
                and control.control is Control.CONTROLLED
                and control.base_installed
            )
            base = control.base.committed(previous.rating) if control is not None else 0.0
            if reachable:
                confirmed_zero = lease.sent is None and lease.held is not None and lease.held <= 0
                if confirmed_zero and base <= 0:
                    continue  # 0 A confirmed: it draws nothing here any more
                state_now = station.connectors.get(key.connector_id) if station else None
                carried = replace(
                    previous,
                    wants_current=False,
                    ev_phases=ev_phases(state_now),
                    fixed_load=None,
                    provisional=False,
                    unconfirmed=self._unconfirmed(key, previous.wiring, state_now, previous.rating),
                )
            else:
                self._unconfirmed(key, previous.wiring, None, previous.rating, fixed=True)
                expires = lease.may_run_until(state.delivery.lease_duration)
                runs = now < expires
                if runs:
                    state.lease_ends = min(state.lease_ends, expires)  # then at its base
                amps = max(lease.committed(previous.rating) if runs else 0.0, base)
                if amps <= 0:
                    if station is None or station.registration is not Registration.ACCEPTED:
                        state.leases.pop(key, None)  # nothing left to remember
                    continue
                carried = replace(
                    previous,
                    fixed_load=_on_wired_phases(previous.wiring, amps),
                    provisional=False,
                    unconfirmed=0.0,
                )
            connectors.append(carried)

    def _connector(
        self,
        station: StationState,
        connector: ConnectorState,
        control: ChargerControl,
        zone_id: str,
        *,
        now: float,
        wall: datetime,
    ) -> ConnectorSnapshot:
        config = station.config
        cconfig = config.connector(connector.connector_id)
        key = ConnectorKey(station.station_id, connector.connector_id)
        fixed = self._fixed_load(station, control, key, cconfig.rating, now)
        unconfirmed = self._unconfirmed(
            key, cconfig.wiring, connector, cconfig.rating, fixed=fixed is not None
        )
        transaction = connector.transaction
        duration = 0.0
        if transaction is not None:
            duration = max((wall - transaction.started_at).total_seconds(), 0.0)
        return ConnectorSnapshot(
            connector_id=key,
            zone_id=zone_id,
            rating=cconfig.rating,
            wants_current=wants_current(connector) and not cconfig.paused,
            wiring=cconfig.wiring,
            ev_phases=ev_phases(connector),
            max_current=cconfig.user_limit,
            session_energy_wh=connector.session_energy_wh or 0.0,
            charging_duration_s=duration,
            vip_station=config.vip,
            fixed_load=None if fixed is None else _on_wired_phases(cconfig.wiring, fixed),
            provisional=fixed is not None and self._provisional(station, control, key, now),
            unconfirmed=unconfirmed,
        )

    def _unconfirmed(
        self,
        key: ConnectorKey,
        wiring: Wiring,
        connector: ConnectorState | None,
        rating: float,
        *,
        fixed: bool = False,
    ) -> float:
        """The limit to count for a connector on grid phases it was not counted on (or 0).

        Everyone's limits were planned with this connector's on the grid phases its EV draws
        on. When those widen — its single-phase EV leaves (the next one may draw on every
        wired phase) or starts drawing on more phases — the limit the charger holds lands on
        phases where nobody counted it, and delivery, which only holds back increases, would
        never lower the others for it: a charger that does not answer would leave them there
        until its request times out. So until the charger confirms 0 A, the connector counts
        on its pattern at what delivery counts it: its committed limit.

        An EV's phases are those seen during its session (an EV that pauses is still the same
        EV: the allocator counts it on every wired phase meanwhile, but its limit does not
        land there). A fixed load is counted on every wired phase already (`fixed`).
        """
        lease = self._state.leases.get(key)
        if lease is None:
            return 0.0
        transaction = connector.transaction if connector is not None else None
        session = transaction.transaction_id if transaction is not None else None
        if session is None or session != lease.session:
            lease.session, lease.session_phases = session, None
        seen = ev_phases(connector)
        if seen is not None:
            lease.session_phases = seen
        drawn_on = load_pattern(wiring, None if fixed else lease.session_phases)
        committed = lease.committed(rating)
        if fixed or committed <= 0:
            lease.unplanned = False
        elif lease.pattern is not None and not _within(drawn_on, lease.pattern):
            lease.unplanned = True
        lease.pattern = drawn_on
        return committed if lease.unplanned else 0.0

    def _provisional(
        self, station: StationState, control: ChargerControl, key: ConnectorKey, now: float
    ) -> bool:
        """Whether a connector counted at its rating is so only until we know more.

        That is a charger that just connected, until its configuration is read and its base
        confirmed, and one we have not heard of since load management started (a restart);
        for PROVISIONAL_GRACE at most. Not one that refuses our limits, nor one offline whose
        lease or base we know.
        """
        if control.control in UNCONTROLLED:
            return False
        if station.connected:
            since = control.connected_since
        else:
            lease = self._state.leases.get(key)
            if lease is not None and lease.held is not None:
                return False
            since = None
        start = self._state.started_at if since is None else since
        return now < start + PROVISIONAL_GRACE

    def _fixed_load(
        self,
        station: StationState,
        control: ChargerControl,
        key: ConnectorKey,
        rating: float,
        now: float,
    ) -> float | None:
        """What to count for a connector we cannot set right now (None: we control it)."""
        if control.control in UNCONTROLLED:
            return rating
        if station.connected and control.control is Control.CONTROLLED:
            # Until its base is confirmed, losing us would leave it unlimited.
            return None if control.base_installed else rating
        if station.connected:
            return rating  # capabilities not read yet
        lease = self._state.leases.get(key)
        if lease is None or lease.held is None:
            return rating
        # Offline: its lease holds until it expires, then its base (its degraded current).
        # The last lease it may hold is the last one sent (an unanswered send may have been
        # applied), at the higher of the confirmed and the in-flight value. A DC station has
        # no degraded mode: it keeps its last setpoint.
        if station.config.dc:
            base, expires = 0.0, math.inf  # no degraded mode: its last setpoint, for good
        else:
            base = control.base.committed(rating)  # what its base holds
            expires = lease.may_run_until(self._state.delivery.lease_duration)
        if now >= expires:
            return base
        self._state.lease_ends = min(self._state.lease_ends, expires)  # then at its base
        return max(lease.committed(rating), base)


def _within(pattern: int, other: int) -> bool:
    """Whether every grid phase of load pattern `pattern` is one of `other`'s."""
    return set(PATTERN_PHASES[pattern]) <= set(PATTERN_PHASES[other])


def _on_wired_phases(wiring: Wiring, amps: float) -> Phases:
    """`amps` on every grid phase a connector is wired to (its EV's phases are unknown)."""
    phases = PATTERN_PHASES[load_pattern(wiring, None)]
    l1, l2, l3 = (amps if p in phases else 0.0 for p in range(3))
    return l1, l2, l3


def ratings(station: StationState) -> list[float]:
    """The rating of each of a station's connectors."""
    return [station.config.connector(c.connector_id).rating for c in station.charge_points]


def wants_current(connector: ConnectorState) -> bool:
    """Whether an EV is plugged in with a session that may draw current."""
    return connector.transaction is not None and connector.status in WANTS_CURRENT


def ev_phases(connector: ConnectorState | None) -> int | None:
    """Phases the EV is seen drawing on, from per-phase currents while charging."""
    if (
        connector is None
        or connector.status is not ConnectorStatus.CHARGING
        or connector.transaction is None
    ):
        return None
    # Only samples taken after this session started: the last ones of the previous EV stay in
    # the connector's state when the charger sends no MeterValues after StopTransaction.
    started = connector.transaction.started_at
    samples = [connector.measurements.get(("Current.Import", p)) for p in ("L1", "L2", "L3")]
    currents = [m.value for m in samples if m is not None and m.timestamp > started]
    if len(currents) != len(samples):
        return None
    used = sum(1 for c in currents if c > _PHASE_IN_USE)
    if used == 0:
        return None
    return THREE_PHASE if used == THREE_PHASE else used
