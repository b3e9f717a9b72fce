"""The load-management loop: snapshot the site, allocate, check, deliver.

Runs on the event loop. Runs are requested by what changes the picture (a status, a session, a
connection, a configuration change, an answer from a charger, a timer) and coalesced: many
requests in one loop turn make one run. A run is synchronous and short (the allocator is pure
and fast); only the sends to chargers are asynchronous, and their answers request a new run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
import logging
import math
from typing import TYPE_CHECKING

from .allocation.allocator import allocate
from .allocation.guard import check
from .allocation.model import (
    Allocation,
    AllocatorState,
    ConnectorSnapshot,
    Phases,
    SiteSnapshot,
    ZoneBudget,
)
from .allocation.phases import PATTERN_PHASES, THREE_PHASE, load_pattern
from .budgets import EvDraw, ZoneBudgetInfo, zone_budgets
from .config import LoadSettings, ZoneConfig, terminal_zones
from .degraded import (
    DegradedPlan,
    StationNeeds,
    degraded_plan,
    fallback_capacity,
    zone_path,
)
from .delivery import DeliverySettings, LeaseState, Send, plan, record_answer, record_sent
from .errors import ChargerCallError, ChargerError, ChargerRejectedError
from .events import (
    SessionEnded,
    SessionStarted,
    StationAccepted,
    StationBooted,
    StationConfigured,
    StationRemoved,
    StationUpdated,
)
from .model import ConnectorStatus, Registration
from .ocpp.smart_charging import Capabilities, base_profile, lease_profile

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from datetime import datetime

    from .clock import Cancelable
    from .config import StationConfig
    from .events import SiteEvent
    from .meters.external import MeterSource
    from .model import ConnectorState, StationState
    from .ocpp.v16 import ChargePointV16
    from .site import Site

_LOGGER = logging.getLogger(__name__)

# Statuses in which an EV is plugged in with a session that may draw current.
_WANTS_CURRENT = frozenset(
    {
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.PREPARING,
    }
)
_TARGET_EPSILON = 1e-6
_BASES_DEFER = 1.0  # s after a run that sent setpoints, the bases follow
_RELEASE_TIMEOUT = 10.0  # s to wait for a station being removed to take 0 A
_METER_CHECK = 0.5  # s between two looks at the zone meters' freshness
_EV_SAMPLE_MAX_AGE = timedelta(seconds=60)  # an older EV sample says nothing about now
_EV_REACTION = 5.0  # s an EV may take to follow a new limit
# A phase drawing more than this (A) counts as used when detecting the EV's phases.
_PHASE_IN_USE = 1.0


class Control(StrEnum):
    """Whether we can hold a charger's current."""

    UNKNOWN = "unknown"  # configuration not read yet: counted at its rating
    CONTROLLED = "controlled"
    NO_SMART_CHARGING = "no_smart_charging"  # counted at its rating
    REJECTED = "rejected"  # refused our profiles: counted at its rating


_UNCONTROLLED = frozenset({Control.NO_SMART_CHARGING, Control.REJECTED})


@dataclass(slots=True)
class ChargerControl:
    """Per station: what it can do and what its base profile holds."""

    control: Control = Control.UNKNOWN
    capabilities: Capabilities | None = None
    base_installed: bool = False
    """A base profile was confirmed on the current connection."""
    base: LeaseState = field(default_factory=LeaseState)
    """The base profile's current per connector: confirmed (`held`; None = never since the
    charger booted, so its rating) and in flight (`sent`). It never expires."""
    base_seq: int = 0
    """Numbers the base sends: an answer to an older one is ignored."""


@dataclass(frozen=True, slots=True)
class LoadUpdate:
    """A run finished: the HA glue refreshes what changed."""

    changed_connectors: frozenset[str]
    changed_zones: frozenset[str]
    changed_stations: frozenset[str] = frozenset()
    """Stations whose degraded current changed."""
    degraded_problems_changed: bool = False
    """The zones whose stations get 0 A in degraded mode (and why) changed."""


@dataclass(slots=True)
class _Run:
    snapshot: SiteSnapshot
    allocation: Allocation
    targets: dict[str, float]
    station_of: dict[str, tuple[str, int]] = field(default_factory=dict)
    by_key: dict[str, ConnectorSnapshot] = field(default_factory=dict)


def connector_key(station_id: str, connector_id: int) -> str:
    """The allocator's id of a connector."""
    return f"{station_id}#{connector_id}"


class LoadManager:
    """Shares each zone's current between the EVs and delivers it safely."""

    def __init__(
        self,
        site: Site,
        *,
        settings: LoadSettings | None = None,
        delivery: DeliverySettings | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self._site = site
        self.settings = settings or LoadSettings()
        self.delivery = delivery or DeliverySettings()
        self.request_timeout = request_timeout
        self.zones: dict[str, ZoneConfig] = {}
        self.zone_meters: dict[str, MeterSource] = {}
        self.budgets: dict[str, ZoneBudgetInfo] = {}
        """Each zone's own budget at the last run, and how it was found."""
        self.degraded = DegradedPlan()
        """Each station's degraded current at the last run."""
        self._meter_timer: Cancelable | None = None
        self.leases: dict[str, LeaseState] = {}
        self.controls: dict[str, ChargerControl] = {}
        self.last: _Run | None = None
        self._state = AllocatorState()
        self._listeners: list[Callable[[LoadUpdate], None]] = []
        self._scheduled = False
        self._full_run = False
        self._waiting = False
        self._timer: Cancelable | None = None
        self._stopped = False
        self._closing: set[asyncio.Task[None]] = set()
        self._lease_ends = math.inf
        self._bases_waiting: set[str] = set()
        self._bases_blocked = False
        self._bases_timer: Cancelable | None = None
        """Stations whose base would rise once their leases are confirmed."""
        self.runs = 0
        self.guard_violations = 0
        self._unsubscribe = site.subscribe(self._on_site_event)
        self._unhook = site.before_removal(self.release)

    # ------------------------------------------------------------------ configuration
    def set_zones(self, zones: Mapping[str, ZoneConfig]) -> None:
        """Replace the zone tree (already validated)."""
        self.zones = dict(zones)
        self.request_run()

    def set_zone_meters(self, meters: Mapping[str, MeterSource]) -> None:
        """Which meter drives which dynamic zone (zone id -> meter); idempotent."""
        if dict(meters) == self.zone_meters:
            return
        self.zone_meters = dict(meters)
        self.request_run()
        self._arm_meter_timer()

    def meter_updated(self, meter_id: str) -> None:
        """A meter read (or lost) something: re-allocate if a zone's budget moved enough.

        Decreases and increases under half the safety margin are absorbed by the margin
        itself (meter noise), so a meter polled twice a second does not cost an allocation
        twice a second.
        """
        zones = {z for z, m in self.zone_meters.items() if m.meter_id == meter_id}
        if zones:
            self._check_budgets(zones)

    def _check_budgets(self, zone_ids: set[str]) -> None:
        """Re-allocate when one of these zones' budgets moved by half the margin or more."""
        last = self.last
        if last is None or self._stopped:
            return
        threshold = self.settings.safety_margin / 2
        fresh = self._budgets(last.snapshot, last.station_of, only=zone_ids)
        for zone_id in zone_ids:
            info, old = fresh.get(zone_id), self.budgets.get(zone_id)
            if info is None or old is None or old.degraded != info.degraded:
                self.request_run()
                return
            if any(abs(n - o) >= threshold for n, o in zip(info.budget, old.budget, strict=True)):
                self.request_run()
                return

    def _arm_meter_timer(self) -> None:
        # A reading goes stale without any event: look again every half second while a
        # meter drives a zone.
        if self._meter_timer is not None:
            self._meter_timer.cancel()
            self._meter_timer = None
        if self.zone_meters and not self._stopped:
            self._meter_timer = self._site.clock.call_later(_METER_CHECK, self._meter_tick)

    def _meter_tick(self) -> None:
        # Only a reading that went stale (or came back) between two readings matters here;
        # new readings are checked as they arrive.
        self._meter_timer = None
        now = self._site.clock.monotonic()
        for zone_id, meter in self.zone_meters.items():
            info = self.budgets.get(zone_id)
            lost = meter.valid_reading(now) is None
            if info is None or info.degraded != lost:
                self.request_run()
                break
        self._arm_meter_timer()

    def set_settings(self, settings: LoadSettings) -> None:
        """Replace the site settings."""
        self.settings = settings
        self._state = AllocatorState()  # new rules: revisit suspensions now
        self.request_run()

    def subscribe(self, listener: Callable[[LoadUpdate], None]) -> Callable[[], None]:
        """Call `listener` after every run that changed something."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def stop(self) -> None:
        """Stop running (leases then expire on the chargers, by design). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._bases_timer is not None:
            self._bases_timer.cancel()
            self._bases_timer = None
        self._unsubscribe()
        self._unhook()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._meter_timer is not None:
            self._meter_timer.cancel()
            self._meter_timer = None

    # ------------------------------------------------------------------ triggers
    def _on_site_event(self, event: SiteEvent) -> None:
        match event:
            case StationUpdated(station_id=sid, connector_id=cid):
                self._on_station_updated(sid, cid)
            case StationConfigured() | SessionStarted() | SessionEnded() | StationAccepted():
                self.request_run()
            case StationBooted(station_id=sid):
                self.on_boot(sid)
            case StationRemoved(station_id=sid):
                # Its leases stay until they end on the charger (see _carry_over).
                self.controls.pop(sid, None)
                self.request_run()
            case _:
                pass

    def _on_station_updated(self, station_id: str, connector_id: int | None) -> None:
        station = self._site.stations.get(station_id)
        if station is None or station.registration is not Registration.ACCEPTED:
            return
        control = self.controls.setdefault(station_id, ChargerControl())
        if not station.connected:
            control.base_installed = False
            now = self._site.clock.monotonic()
            if control.base.sent is not None:
                # It may have applied the base in flight: count the higher of the two.
                record_answer(control.base, accepted=None, now=now)
                control.base_seq += 1
            # The same for its leases: a send whose job the closed connection cancelled
            # before it ran would otherwise stay "in flight" for good.
            for lease in self._station_leases(station_id):
                if lease.sent is not None:
                    record_answer(lease, accepted=None, now=now)
        elif station.configuration and control.capabilities is None:
            self._learn_capabilities(station, control)
        if connector_id is None or self._relevant_change(station, connector_id):
            self.request_run()

    def _relevant_change(self, station: StationState, connector_id: int) -> bool:
        # Meter values arrive all the time; they matter only when they change the phases an
        # EV is seen drawing on. Status changes always matter.
        if connector_id == 0:
            return True
        connector = station.connectors.get(connector_id)
        if connector is None or self.last is None:
            return True
        previous = self.last.by_key.get(connector_key(station.station_id, connector_id))
        if previous is None:
            # Not managed at the last run: it matters only if its station is in a zone now.
            return station.config.zone_id in self.zones and connector.status in _WANTS_CURRENT
        return (
            _wants_current(connector) != previous.wants_current
            or _ev_phases(connector) != previous.ev_phases
        )

    def on_boot(self, station_id: str) -> None:
        """A charger booted: it may have lost its profiles; count it at its rating again."""
        self.controls[station_id] = ChargerControl()
        for lease in self._station_leases(station_id):
            lease.held = None
        self.request_run()

    def _station_leases(self, station_id: str) -> Iterator[LeaseState]:
        """The leases of a station's connectors."""
        prefix = f"{station_id}#"
        return (lease for key, lease in self.leases.items() if key.startswith(prefix))

    def request_run(self) -> None:
        """Ask for a run soon; requests in the same loop turn make one run."""
        self._full_run = True
        self._schedule()

    def request_replan(self) -> None:
        """Ask for delivery to look again (a charger answered): no new allocation needed."""
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled or self._stopped:
            return
        self._scheduled = True
        # Coalescing, not a timer: run after the events of this loop turn.
        asyncio.get_running_loop().call_soon(self._run)

    # ------------------------------------------------------------------ capabilities
    def _learn_capabilities(self, station: StationState, control: ChargerControl) -> None:
        capabilities = Capabilities.from_configuration(station.configuration)
        control.capabilities = capabilities
        control.control = (
            Control.CONTROLLED if capabilities.controllable else Control.NO_SMART_CHARGING
        )
        if control.control is Control.NO_SMART_CHARGING:
            _LOGGER.warning(
                "%s: no usable Smart Charging; it is counted at its rating", station.station_id
            )
            self._site.notify_uncontrollable(station.station_id, "no_smart_charging")

    # ------------------------------------------------------------------ the run
    def _run(self) -> None:
        self._scheduled = False
        if self._stopped:
            return
        now = self._site.clock.monotonic()
        if not self._full_run and self.last is not None:
            self._replan(now)
            return
        self._full_run = False
        self.runs += 1
        old_degraded, self.degraded = self.degraded, self._degraded_plan()
        snapshot, station_of = self._snapshot(now)
        allocation = allocate(snapshot)
        problems = check(snapshot, allocation)
        if problems:
            # A violation is a bug: keep the previous safe values and say so loudly.
            self.guard_violations += 1
            _LOGGER.error("Allocation refused by the safety guard: %s", "; ".join(problems[:5]))
            targets = dict(self.last.allocation.setpoints) if self.last else {}
        else:
            self._state = allocation.state
            targets = dict(allocation.setpoints)
        the_plan = plan(snapshot, targets, self.leases, self.delivery)
        for send in the_plan.sends:
            self._send(send, station_of[send.connector_id], now)
        if the_plan.sends:
            # The setpoints are what a budget change waits for: bases (the fallback) follow
            # a moment later instead of doubling the traffic of this instant.
            self._defer_bases()
        else:
            self._deliver_bases()
        self._waiting = bool(the_plan.waiting)
        previous = self.last
        if not problems:
            by_key = {c.connector_id: c for c in snapshot.connectors}
            self.last = _Run(snapshot, allocation, targets, station_of, by_key)
        self._arm_timer(
            now,
            the_plan.wake_at,
            allocation.next_reevaluation_at,
            allocation.next_resume_at,
            self._lease_ends,
        )
        self._announce(previous, old_degraded)

    def _replan(self, now: float) -> None:
        """Delivery only, on the last snapshot: an answer may have freed room for increases."""
        last = self.last
        assert last is not None  # noqa: S101
        the_plan = plan(last.snapshot, last.targets, self.leases, self.delivery, now=now)
        for send in the_plan.sends:
            self._send(send, last.station_of[send.connector_id], now)
        self._waiting = bool(the_plan.waiting)
        # An increase held back by the rate limit must go out when the limit ends.
        self._arm_timer(
            now,
            the_plan.wake_at,
            last.allocation.next_reevaluation_at,
            last.allocation.next_resume_at,
            self._lease_ends,
        )

    def _arm_timer(self, now: float, *wake_times: float) -> None:
        """Wake at the earliest of `wake_times`, and at the next renewal at the latest."""
        delay = max(min(*wake_times, now + self.delivery.renewal_period) - now, 0.05)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._site.clock.call_later(delay, self.request_run)

    def _announce(self, previous: _Run | None, old_degraded: DegradedPlan) -> None:
        if self.last is None or not self._listeners:
            return
        new_degraded = self.degraded
        stations = frozenset(
            sid
            for sid in old_degraded.station.keys() | new_degraded.station.keys()
            if old_degraded.station.get(sid) != new_degraded.station.get(sid)
        )
        problems = old_degraded.problems != new_degraded.problems
        old_points = previous.allocation.setpoints if previous else {}
        old_reasons = previous.allocation.reasons if previous else {}
        new = self.last.allocation
        changed = frozenset(
            key
            for key in set(new.reasons) | set(old_reasons)
            if new.setpoints.get(key) != old_points.get(key)
            or new.reasons.get(key) != old_reasons.get(key)
        )
        old_zones = previous.allocation.zones if previous else {}
        zones = frozenset(z for z, v in new.zones.items() if old_zones.get(z) != v)
        if not changed and not zones and not stations and not problems:
            return
        update = LoadUpdate(changed, zones, stations, problems)
        for listener in list(self._listeners):
            try:
                listener(update)
            except Exception:
                _LOGGER.exception("Load listener failed")

    # ------------------------------------------------------------------ snapshot
    def _snapshot(self, now: float) -> tuple[SiteSnapshot, dict[str, tuple[str, int]]]:
        self._lease_ends = math.inf  # the first lease of a charger out of reach to end
        terminal = terminal_zones(self.zones)
        wall = self._site.clock.now()
        connectors: list[ConnectorSnapshot] = []
        station_of: dict[str, tuple[str, int]] = {}
        for station in self._site.stations.values():
            if station.registration is not Registration.ACCEPTED:
                continue
            zone_id = station.config.zone_id
            if zone_id is None or zone_id not in terminal:
                continue  # unassigned: no current (its base profile holds it)
            control = self.controls.get(station.station_id, ChargerControl())
            for connector in station.charge_points:
                key = connector_key(station.station_id, connector.connector_id)
                station_of[key] = (station.station_id, connector.connector_id)
                connectors.append(
                    self._connector_snapshot(
                        station=station,
                        connector=connector,
                        control=control,
                        zone_id=zone_id,
                        key=key,
                        now=now,
                        wall=wall,
                    )
                )
        self._carry_over(connectors, station_of, terminal, now)
        draft = SiteSnapshot(
            zones=tuple(
                ZoneBudget(z.zone_id, (0.0, 0.0, 0.0), z.parent_id) for z in self.zones.values()
            ),
            connectors=tuple(connectors),
            now=now,
            settings=self.settings.allocation_settings(),
            state=self._state,
        )
        self.budgets = self._budgets(draft, station_of)
        snapshot = replace(
            draft,
            zones=tuple(
                ZoneBudget(z.zone_id, self.budgets[z.zone_id].budget, z.parent_id)
                for z in self.zones.values()
            ),
        )
        return snapshot, station_of

    def _budgets(
        self,
        snapshot: SiteSnapshot,
        station_of: Mapping[str, tuple[str, int]],
        *,
        only: set[str] | None = None,
    ) -> dict[str, ZoneBudgetInfo]:
        """Each zone's own budget: static max, meter-based, or degraded (meter lost).

        With `only`, just those zones (and only the connectors below them are looked at).
        """
        readings: dict[str, Phases | None] = {}
        taken: list[datetime] = []
        for zone_id, meter in self.zone_meters.items():
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
        draws = (
            [self._ev_draw(c, station_of, not_after) for c in connectors]
            if not_after is not None
            else []
        )
        return zone_budgets(
            self.zones, readings, draws, safety_margin=self.settings.safety_margin, only=only
        )

    def _ev_draw(
        self,
        connector: ConnectorSnapshot,
        station_of: Mapping[str, tuple[str, int]],
        not_after: datetime,
    ) -> EvDraw:
        """What a connector adds to its zone's meter, never overstated (see budgets.py)."""
        station_id, connector_id = station_of[connector.connector_id]
        station = self._site.stations.get(station_id)
        station_connector = station.connectors.get(connector_id) if station else None
        if station_connector is None or station_connector.transaction is None:
            return EvDraw(connector.zone_id, (0.0, 0.0, 0.0))
        lease = self.leases.get(connector.connector_id)
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

    def _degraded_plan(self) -> DegradedPlan:
        needs: dict[str, StationNeeds] = {}
        for station in self._site.stations.values():
            config = station.config
            if station.registration is not Registration.ACCEPTED or config.zone_id is None:
                continue
            points = station.charge_points
            wirings = tuple(config.connector(c.connector_id).wiring for c in points)
            ratings = [config.connector(c.connector_id).rating for c in points]
            control = self.controls.get(station.station_id)
            uncontrolled = control is not None and control.control in _UNCONTROLLED
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
        return degraded_plan(self.zones, needs, self.settings.minimum_standard)

    def _carry_over(
        self,
        connectors: list[ConnectorSnapshot],
        station_of: dict[str, tuple[str, int]],
        terminal: set[str],
        now: float,
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
        if self.last is None:
            return
        for key, previous in self.last.by_key.items():
            if key in station_of or previous.zone_id not in terminal:
                continue
            lease = self.leases.get(key) or LeaseState()
            station_id, connector_id = self.last.station_of[key]
            station = self._site.stations.get(station_id)
            control = self.controls.get(station_id)
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
                carried = replace(previous, wants_current=False, fixed_load=None)
            else:
                expires = lease.may_run_until(self.delivery.lease_duration)
                runs = now < expires
                if runs:
                    self._lease_ends = min(self._lease_ends, expires)  # then at its base
                amps = max(lease.committed(previous.rating) if runs else 0.0, base)
                if amps <= 0:
                    if station is None or station.registration is not Registration.ACCEPTED:
                        self.leases.pop(key, None)  # nothing left to remember
                    continue
                phases = PATTERN_PHASES[load_pattern(previous.wiring, None)]
                fixed = tuple(amps if p in phases else 0.0 for p in range(3))
                carried = replace(previous, fixed_load=fixed)  # type: ignore[arg-type]
            connectors.append(carried)
            station_of[key] = (station_id, connector_id)

    def _connector_snapshot(
        self,
        *,
        station: StationState,
        connector: ConnectorState,
        control: ChargerControl,
        zone_id: str,
        key: str,
        now: float,
        wall: datetime,
    ) -> ConnectorSnapshot:
        config: StationConfig = station.config
        cconfig = config.connector(connector.connector_id)
        ev_phases = _ev_phases(connector)
        fixed = self._fixed_load(station, control, key, cconfig.rating, now)
        fixed_load = None
        if fixed is not None:
            phases = PATTERN_PHASES[load_pattern(cconfig.wiring, None)]
            fixed_load = tuple(fixed if p in phases else 0.0 for p in range(3))
        transaction = connector.transaction
        duration = 0.0
        if transaction is not None:
            duration = max((wall - transaction.started_at).total_seconds(), 0.0)
        return ConnectorSnapshot(
            connector_id=key,
            zone_id=zone_id,
            rating=cconfig.rating,
            wants_current=_wants_current(connector) and not cconfig.paused,
            wiring=cconfig.wiring,
            ev_phases=ev_phases,
            max_current=cconfig.user_limit,
            session_energy_wh=connector.session_energy_wh or 0.0,
            charging_duration_s=duration,
            vip_station=config.vip,
            fixed_load=fixed_load,  # type: ignore[arg-type]
        )

    def _fixed_load(
        self,
        station: StationState,
        control: ChargerControl,
        key: str,
        rating: float,
        now: float,
    ) -> float | None:
        """What to count for a connector we cannot set right now (None: we control it)."""
        if control.control in _UNCONTROLLED:
            return rating
        if station.connected and control.control is Control.CONTROLLED:
            # Until its base profile is confirmed, losing us would leave it unlimited.
            return None if control.base_installed else rating
        if station.connected:
            return rating  # capabilities not read yet
        lease = self.leases.get(key)
        if lease is None or lease.held is None:
            return rating
        # Offline: its lease holds until it expires, then its base profile (its degraded
        # current). The last lease it may hold is the last one sent (an unanswered send may
        # have been applied), at the higher of the confirmed and the in-flight value. A DC
        # station has no degraded mode: it keeps its last setpoint.
        if station.config.dc:
            base, expires = 0.0, math.inf  # no degraded mode: its last setpoint, for good
        else:
            base = control.base.committed(rating)  # what its base profile holds
            expires = lease.may_run_until(self.delivery.lease_duration)
        if now >= expires:
            return base
        self._lease_ends = min(self._lease_ends, expires)  # then it counts at its base
        return max(lease.committed(rating), base)

    # ------------------------------------------------------------------ sending
    def _deliver_bases(self) -> None:
        """Give every controlled station its degraded current as its base profile.

        The bases are what the chargers draw once nobody renews their leases, all at once: in
        every zone they must fit its capacity without us (`fallback_capacity`) — also while
        they change. So, like setpoints: a lower base goes out at once; a higher one only
        when it fits with every other station at its committed base (the higher of the old
        and the new while a change is in flight; its rating while none was ever confirmed,
        or when we cannot control it). Until then the station keeps the base it has.
        """
        loads: dict[str, float] | None = None  # only needed for a raise: most runs have none
        now = self._site.clock.monotonic()
        self._bases_waiting.clear()
        self._bases_blocked = False
        for station_id, control in self.controls.items():
            if (
                control.control is not Control.CONTROLLED
                or control.capabilities is None
                or control.base.sent is not None
            ):
                continue
            station = self._site.stations.get(station_id)
            handler = self._site.handlers.get(station_id)
            if station is None or handler is None or not station.connected:
                continue
            want = self.degraded.per_connector.get(station_id, 0.0)
            if (
                control.base_installed
                and control.base.held is not None
                and abs(want - control.base.held) <= _TARGET_EPSILON
            ):
                continue
            ratings = _ratings(station)
            delta = len(ratings) * want - sum(control.base.committed(r) for r in ratings)
            if delta > _TARGET_EPSILON:
                loads = loads if loads is not None else self._base_loads()
                if not self._may_raise_base(station, delta, loads, now):
                    if control.base_installed or control.base.held is None:
                        continue  # wait for room, or for its leases
                    want = control.base.held  # (re)install what it holds; raise later
            self._send_base(station_id, control, handler, want, now)

    def _may_raise_base(
        self, station: StationState, delta: float, loads: dict[str, float], now: float
    ) -> bool:
        """Whether a station's bases may rise by `delta` (A, all connectors); book it if so.

        A connector without a lease in force draws on the base now: raising the base would
        raise it, unchecked. So only above confirmed leases, and only into fallback room.
        """
        if not self._leases_in_force(station, now):
            self._bases_waiting.add(station.station_id)  # its lease answers: run again
            return False
        zone_id = station.config.zone_id
        path = zone_path(zone_id, self.zones) if zone_id is not None else []
        if any(loads[z] + delta > fallback_capacity(self.zones[z]) + _TARGET_EPSILON for z in path):
            self._bases_blocked = True  # the others' lower bases, once confirmed, make room
            return False
        for z in path:
            loads[z] += delta
        return True

    def _defer_bases(self) -> None:
        if self._bases_timer is None and not self._stopped:
            self._bases_timer = self._site.clock.call_later(_BASES_DEFER, self._bases_due)

    def _bases_due(self) -> None:
        self._bases_timer = None
        if not self._stopped:
            self._deliver_bases()

    def _leases_in_force(self, station: StationState, now: float) -> bool:
        """Whether every connector of the station holds a confirmed lease that still runs."""
        for connector in station.charge_points:
            lease = self.leases.get(connector_key(station.station_id, connector.connector_id))
            if (
                lease is None
                or lease.held is None
                or lease.sent is not None
                or now >= lease.floor_at + self.delivery.short_lease_duration
            ):
                return False
        return True

    def _base_loads(self) -> dict[str, float]:
        """Per zone: what its stations draw with every one of them on its base (committed)."""
        loads = dict.fromkeys(self.zones, 0.0)
        for station in self._site.stations.values():
            zone_id = station.config.zone_id
            if station.registration is not Registration.ACCEPTED or zone_id not in self.zones:
                continue
            control = self.controls.get(station.station_id)
            ratings = _ratings(station)
            if control is None or control.control in _UNCONTROLLED:
                amps = sum(ratings)  # no base we know of: its rating
            else:
                amps = sum(control.base.committed(r) for r in ratings)
            for z in zone_path(zone_id, self.zones):
                loads[z] += amps
        return loads

    def _send_base(
        self,
        station_id: str,
        control: ChargerControl,
        handler: ChargePointV16,
        amps: float,
        now: float,
    ) -> None:
        assert control.capabilities is not None  # noqa: S101
        control.base_seq += 1
        record_sent(control.base, Send(station_id, amps, "base"), now)
        profile = base_profile(
            amps,
            capabilities=control.capabilities,
            now=self._site.clock.now(),
            nominal_voltage=self.settings.nominal_voltage,
        )
        handler.spawn(self._deliver_base(station_id, control, handler, control.base_seq, profile))

    async def _deliver_base(
        self,
        station_id: str,
        control: ChargerControl,
        handler: ChargePointV16,
        seq: int,
        profile: object,
    ) -> None:
        accepted: bool | None = None
        try:
            result = await handler.request(profile, timeout=self.request_timeout, validate=False)
            accepted = str(result.status) == "Accepted"
            if not accepted:
                self._reject(station_id, control, str(result.status))
        except ChargerCallError as err:
            accepted = False
            self._reject(station_id, control, err.code)
        except ChargerError as err:
            _LOGGER.info("%s: base profile not confirmed: %s", station_id, err)
        finally:
            renew = first = False
            if seq == control.base_seq:
                before, first = control.base.held, not control.base_installed
                record_answer(control.base, accepted=accepted, now=self._site.clock.monotonic())
                if accepted:
                    control.base_installed = True
                    if before is not None and control.base.held is not None:
                        renew = self._renew_leases(station_id, before, control.base.held)
            if not accepted or first or self._bases_blocked:
                # Controllable now, counted at its rating now, retried, or room for a base.
                self.request_run()
            elif renew:
                self.request_replan()

    async def release(self, station_id: str) -> None:
        """A station is about to be removed: bring its base and its leases to 0 A.

        It will not hear from us again, so without this it would keep its base (its degraded
        current) for good. Confirmed 0 A leases also give its room away at once; what is not
        confirmed keeps counting until its lease ends (see _carry_over).
        """
        control = self.controls.get(station_id)
        station = self._site.stations.get(station_id)
        handler = self._site.handlers.get(station_id)
        if (
            control is None
            or control.capabilities is None
            or control.control is not Control.CONTROLLED
            or station is None
            or handler is None
        ):
            if control is not None and control.base.held != 0.0:
                _LOGGER.warning(
                    "%s is removed while we cannot reach it: it may keep drawing its "
                    "degraded current (its base profile)",
                    station_id,
                )
            return
        wall, now = self._site.clock.now(), self._site.clock.monotonic()
        control.base_seq += 1  # an answer to an older base send no longer counts
        record_sent(control.base, Send(station_id, 0.0, "base"), now)
        profiles: list[tuple[object, LeaseState]] = [
            (base_profile(0.0, capabilities=control.capabilities, now=wall), control.base)
        ]
        for connector in station.charge_points:
            lease = self.leases.get(connector_key(station_id, connector.connector_id))
            if lease is None or lease.sent is not None:
                continue  # never sent (it holds the base), or a change already in flight
            record_sent(lease, Send(station_id, 0.0, "decrease"), now)
            valid_to = wall + timedelta(seconds=self.delivery.lease_duration)
            profile = lease_profile(
                connector.connector_id,
                0.0,
                capabilities=control.capabilities,
                now=wall,
                valid_to=valid_to,
            )
            profiles.append((profile, lease))
        await asyncio.gather(*(self._release_one(handler, p, state) for p, state in profiles))
        if control.base.held != 0.0:
            _LOGGER.warning(
                "%s is removed without confirming a 0 A base profile: it may keep drawing "
                "its degraded current",
                station_id,
            )

    async def _release_one(
        self, handler: ChargePointV16, profile: object, state: LeaseState
    ) -> None:
        accepted: bool | None = None
        try:
            result = await handler.request(profile, timeout=_RELEASE_TIMEOUT, validate=False)
            accepted = str(result.status) == "Accepted"
        except ChargerError:
            pass
        finally:
            record_answer(state, accepted=accepted, now=self._site.clock.monotonic())

    def _renew_leases(self, station_id: str, before: float, after: float) -> bool:
        """Renew now the leases of a station whose validity the new base changes.

        A lease above the base ends early (DeliverySettings.short_lease_duration); one that
        is above the old base and not the new one, or the other way round, is renewed.
        """
        renewed = False
        for lease in self._station_leases(station_id):
            held = lease.held
            if held is not None and (held > before + _TARGET_EPSILON) != (
                held > after + _TARGET_EPSILON
            ):
                lease.sent_at = -math.inf
                renewed = True
        return renewed

    def _reject(self, station_id: str, control: ChargerControl, status: str) -> None:
        _LOGGER.warning(
            "%s refused our charging profile (%s); it is counted at its rating", station_id, status
        )
        control.control = Control.REJECTED
        self._site.notify_uncontrollable(station_id, status)

    def _send(self, send: Send, target: tuple[str, int], now: float) -> None:
        station_id, connector_id = target
        handler = self._site.handlers.get(station_id)
        control = self.controls.get(station_id)
        if handler is None or control is None or control.capabilities is None:
            return
        wall = self._site.clock.now()
        lease = self.leases.setdefault(send.connector_id, LeaseState())
        # Read after `wall`: the lease's end as we count it is never before its validTo.
        record_sent(lease, send, self._site.clock.monotonic())
        station = self._site.stations[station_id]
        connector = station.connectors.get(connector_id)
        phases = (_ev_phases(connector) or 1) if connector is not None else 1
        # A lease above the base ends early (see DeliverySettings.short_lease_duration).
        base = control.base.committed(station.config.connector(connector_id).rating)
        duration = (
            self.delivery.lease_duration
            if send.amps <= base + _TARGET_EPSILON
            else self.delivery.short_lease_duration
        )
        profile = lease_profile(
            connector_id,
            send.amps,
            capabilities=control.capabilities,
            now=wall,
            valid_to=wall + timedelta(seconds=duration),
            phases=phases,
            nominal_voltage=self.settings.nominal_voltage,
        )
        handler.spawn(
            self._deliver(
                station_id, control, handler, key=send.connector_id, lease=lease, profile=profile
            )
        )

    async def _deliver(
        self,
        station_id: str,
        control: ChargerControl,
        handler: ChargePointV16,
        *,
        key: str,
        lease: LeaseState,
        profile: object,
    ) -> None:
        accepted: bool | None = None
        try:
            result = await handler.request(profile, timeout=self.request_timeout, validate=False)
            accepted = str(result.status) == "Accepted"
            if not accepted:
                self._reject(station_id, control, str(result.status))
        except (ChargerCallError, ChargerRejectedError) as err:
            accepted = False
            self._reject(station_id, control, str(err))
        except ChargerError as err:
            _LOGGER.info("%s: setpoint not confirmed: %s", station_id, err)
        finally:
            record_answer(lease, accepted=accepted, now=self._site.clock.monotonic())
            if accepted is None:
                self._drop(station_id, handler)
            if accepted is False or (accepted and station_id in self._bases_waiting):
                self.request_run()  # counted at its rating now / a base may rise now
            elif self._waiting or accepted is None or self._target_moved(key, lease):
                # A confirmed decrease may make room for a waiting increase; an unanswered
                # change is planned again (at the higher value it now counts at); a target
                # that moved while this change was in flight is delivered now.
                self.request_replan()

    def _drop(self, station_id: str, handler: ChargePointV16) -> None:
        """Close the connection of a charger that did not confirm a lease.

        While it stays connected it counts at its lease, but that lease may end unseen (its
        renewals are not confirmed) and the charger then falls back to its base, which can be
        more. Offline, it counts at the higher of the two until its lease ends; it reconnects
        and gets its base again.
        """
        station = self._site.stations.get(station_id)
        if (
            self._stopped
            or station is None
            or not station.connected
            or self._site.handlers.get(station_id) is not handler
        ):
            return
        _LOGGER.warning(
            "%s did not confirm a charging profile in time; closing its connection", station_id
        )
        task = asyncio.get_running_loop().create_task(
            handler.close(code=1011, reason="Charging profile not confirmed")
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _target_moved(self, key: str, lease: LeaseState) -> bool:
        last = self.last
        if last is None or lease.held is None:
            return False
        target = last.targets.get(key)
        return target is not None and abs(target - lease.held) > _TARGET_EPSILON


def _ratings(station: StationState) -> list[float]:
    return [station.config.connector(c.connector_id).rating for c in station.charge_points]


def _wants_current(connector: ConnectorState) -> bool:
    return connector.transaction is not None and connector.status in _WANTS_CURRENT


def _ev_phases(connector: ConnectorState | None) -> int | None:
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
