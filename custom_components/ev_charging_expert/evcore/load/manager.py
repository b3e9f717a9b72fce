"""The load-management loop: snapshot the site, allocate, check, deliver.

Runs on the event loop. Runs are requested by what changes the picture (a status, a session, a
connection, a configuration change, an answer from a charger, a timer) and coalesced: many
requests in one loop turn make one run. A run is synchronous and short (the allocator is pure
and fast); only the sends to chargers are asynchronous, and their answers request a new run.

The work is split by responsibility: `SnapshotBuilder` (what the allocator sees),
`LeaseSender` (setpoints as leases), `BaseKeeper` (fallback bases, release on removal); this
class decides when to run and wires them. None of them knows an OCPP version: chargers are
reached through the charger port.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..allocation.allocator import allocate
from ..allocation.guard import check
from ..allocation.model import AllocatorState
from ..events import (
    AllocationUpdated,
    SessionEnded,
    SessionStarted,
    StationAccepted,
    StationBooted,
    StationConfigured,
    StationRemoved,
    StationUpdated,
)
from ..keys import ConnectorKey
from ..model import Registration
from .bases import BaseKeeper
from .budgets import NEGATIVE_BUILDING_DELAY, track_negative_building
from .control import ChargerControl, Control, LoadState, Run
from .delivery import DeliverySettings, plan, record_answer
from .leases import LeaseSender
from .observe import BudgetsChecked, RunObserved, cpu_clock, guarded, stopwatch
from .optimise import Optimiser
from .snapshot import SnapshotBuilder, ev_phases, wants_current

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..clock import Cancelable
    from ..config import LoadSettings, ZoneConfig
    from ..events import SiteEvent
    from ..meters.external import MeterSource
    from ..model import StationState
    from ..site import Site
    from .budgets import NegativeBuildingLoad, ZoneBudgetInfo
    from .degraded import DegradedPlan
    from .delivery import LeaseState
    from .observe import LoadObserver

_LOGGER = logging.getLogger(__name__)

_METER_CHECK = 0.5  # s between two looks at the zone meters' freshness


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
        self.state = state = LoadState(request_timeout=request_timeout)
        if settings is not None:
            state.settings = settings
        if delivery is not None:
            state.delivery = delivery
        state.started_at = site.clock.monotonic()
        self._snapshots = SnapshotBuilder(site, state)
        self._leases = LeaseSender(
            site, state, request_run=self.request_run, request_replan=self.request_replan
        )
        self._bases = BaseKeeper(
            site,
            state,
            self._leases,
            request_run=self.request_run,
            request_replan=self.request_replan,
        )
        self.optimiser = Optimiser(site, state)
        self._listeners: list[Callable[[AllocationUpdated], None]] = []
        self._scheduled = False
        self._full_run = False
        self._timer: Cancelable | None = None
        self._meter_timer: Cancelable | None = None
        self.runs = 0
        self.guard_violations = 0
        self._observer: LoadObserver | None = None
        self._unsubscribe = site.subscribe(self._on_site_event)
        self._unhook = site.before_removal(self._bases.release)

    # ------------------------------------------------------------------ read access
    @property
    def settings(self) -> LoadSettings:
        """The site's load-management settings."""
        return self.state.settings

    @property
    def delivery(self) -> DeliverySettings:
        """Timing rules of delivery."""
        return self.state.delivery

    @property
    def zones(self) -> dict[str, ZoneConfig]:
        """The zone tree."""
        return self.state.zones

    @property
    def zone_meters(self) -> dict[str, MeterSource]:
        """Which meter drives which dynamic zone."""
        return self.state.zone_meters

    @property
    def budgets(self) -> dict[str, ZoneBudgetInfo]:
        """Each zone's own budget at the last run, and how it was found."""
        return self.state.budgets

    @property
    def negative_building_loads(self) -> dict[str, NegativeBuildingLoad]:
        """Dynamic zones whose meter reads clearly less than our EVs draw, for minutes.

        Their computed building load has stayed below `NEGATIVE_BUILDING_THRESHOLD` on a phase
        for `NEGATIVE_BUILDING_DELAY` (the meter is on another feeder, its CT ratio is wrong):
        it is clamped to 0, so their budget is wrong. With the figures of the last reading;
        `AllocationUpdated.building_warnings_changed` says when this changes.
        """
        state = self.state
        return {z: state.negative_building[z] for z in state.building_warnings}

    @property
    def degraded(self) -> DegradedPlan:
        """Each station's degraded current at the last run."""
        return self.state.degraded

    @property
    def leases(self) -> dict[ConnectorKey, LeaseState]:
        """What each connector's charger holds or was sent."""
        return self.state.leases

    @property
    def controls(self) -> dict[str, ChargerControl]:
        """What each station can do and what its base holds."""
        return self.state.controls

    @property
    def last(self) -> Run | None:
        """The last run."""
        return self.state.last

    # ------------------------------------------------------------------ configuration
    def set_zones(self, zones: Mapping[str, ZoneConfig]) -> None:
        """Replace the zone tree (already validated)."""
        self.state.zones = dict(zones)
        self.request_run()

    def set_zone_meters(self, meters: Mapping[str, MeterSource]) -> None:
        """Which meter drives which dynamic zone (zone id -> meter); idempotent."""
        if dict(meters) == self.state.zone_meters:
            return
        self.state.zone_meters = dict(meters)
        self.request_run()
        self._arm_meter_timer()

    def set_settings(self, settings: LoadSettings) -> None:
        """Replace the site settings."""
        self.state.settings = settings
        self.state.allocator = AllocatorState()  # new rules: revisit suspensions now
        self.request_run()

    def subscribe(self, listener: Callable[[AllocationUpdated], None]) -> Callable[[], None]:
        """Call `listener` after every run that changed something (the Controller does)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def observe(self, observer: LoadObserver | None) -> None:
        """Tell `observer` of every run, send, booked answer and budget check (see observe.py).

        One observer at a time (None removes it); without one this costs a None check.
        """
        guarded_observer = guarded(observer)
        self._observer = self._leases.observer = self._bases.observer = guarded_observer

    def current_budgets(self, only: set[str] | None = None) -> dict[str, ZoneBudgetInfo]:
        """Each zone's budget from the meters' readings now, over the last run's connectors.

        What a meter reading's check computes (with `only`, just those zones); nothing is
        stored, sent or requested. Empty before the first run.
        """
        last = self.state.last
        return {} if last is None else self._snapshots.budgets(last.snapshot, only=only)

    def stop(self) -> None:
        """Stop running (leases then expire on the chargers, by design). Idempotent."""
        if self.state.stopped:
            return
        self.state.stopped = True
        self._bases.stop()
        self._unsubscribe()
        self._unhook()
        for timer in (self._timer, self._meter_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._meter_timer = None

    # ------------------------------------------------------------------ meters
    def meter_updated(self, meter_id: str) -> None:
        """A meter read (or lost) something: re-allocate if a zone's budget moved enough.

        Decreases and increases under half the safety margin are absorbed by the margin
        itself (meter noise), so a meter polled twice a second does not cost an allocation
        twice a second.
        """
        zones = {z for z, m in self.state.zone_meters.items() if m.meter_id == meter_id}
        if zones:
            observer = self._observer
            if observer is None:
                self._check_budgets(zones)
                return
            started, start, cpu = self._site.clock.monotonic(), stopwatch(), cpu_clock()
            self._check_budgets(zones)
            duration, cpu = stopwatch() - start, cpu_clock() - cpu
            observer.budgets_checked(BudgetsChecked(frozenset(zones), started, duration, cpu))

    def _check_budgets(self, zone_ids: set[str]) -> None:
        """Re-allocate when one of these zones' budgets moved by half the margin or more."""
        state = self.state
        if state.last is None or state.stopped:
            return
        threshold = state.settings.safety_margin / 2
        fresh = self._snapshots.budgets(state.last.snapshot, only=zone_ids)
        now = self._site.clock.monotonic()
        state.negative_building = track_negative_building(
            state.negative_building, fresh, now, partial=True
        )
        if self._building_warnings(now) != state.building_warnings:
            self.request_run()
            return
        for zone_id in zone_ids:
            info, old = fresh.get(zone_id), state.budgets.get(zone_id)
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
        if self.state.zone_meters and not self.state.stopped:
            self._meter_timer = self._site.clock.call_later(_METER_CHECK, self._meter_tick)

    def _meter_tick(self) -> None:
        # Only a reading that went stale (or came back) between two readings matters here;
        # new readings are checked as they arrive.
        self._meter_timer = None
        now = self._site.clock.monotonic()
        for zone_id, meter in self.state.zone_meters.items():
            info = self.state.budgets.get(zone_id)
            lost = meter.valid_reading(now) is None
            if info is None or info.degraded != lost:
                self.request_run()
                break
        self._arm_meter_timer()

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
                self.state.controls.pop(sid, None)
                self.request_run()
            case _:
                pass

    def _on_station_updated(self, station_id: str, connector_id: int | None) -> None:
        station = self._site.stations.get(station_id)
        if station is None or station.registration is not Registration.ACCEPTED:
            return
        control = self.state.controls.setdefault(station_id, ChargerControl())
        now = self._site.clock.monotonic()
        if station.connected and control.connected_since is None:
            control.connected_since = now
        if not station.connected:
            control.base_installed = False
            control.connected_since = None
            if control.base.sent is not None:
                # It may have applied the base in flight: count the higher of the two.
                record_answer(control.base, accepted=None, now=now)
                control.base_seq += 1
            # The same for its leases: a send whose job the closed connection cancelled
            # before it ran would otherwise stay "in flight" for good.
            for lease in self.state.station_leases(station_id):
                if lease.sent is not None:
                    record_answer(lease, accepted=None, now=now)
        elif control.capabilities is None:
            self._learn_capabilities(station, control)
        if connector_id is None or self._relevant_change(station, connector_id):
            self.request_run()

    def _relevant_change(self, station: StationState, connector_id: int) -> bool:
        # Meter values arrive all the time; they matter only when they change the phases an
        # EV is seen drawing on. Status changes always matter.
        if connector_id == 0:
            return True
        connector = station.connectors.get(connector_id)
        last = self.state.last
        if connector is None or last is None:
            return True
        key = ConnectorKey(station.station_id, connector_id)
        previous = last.by_key.get(key)
        if previous is None:
            # Not managed at the last run: it matters only if its station is in a zone now.
            return station.config.zone_id in self.state.zones and wants_current(connector)
        return (
            wants_current(connector) != previous.wants_current
            or ev_phases(connector) != previous.ev_phases
            or self.optimiser.draw_reached_cap(key)
        )

    def on_boot(self, station_id: str) -> None:
        """A charger booted: it may have lost its limits; count it at its rating again."""
        connected = self._site.stations[station_id].connected
        now = self._site.clock.monotonic()
        self.state.controls[station_id] = ChargerControl(connected_since=now if connected else None)
        for lease in self.state.station_leases(station_id):
            lease.held = None
        self.request_run()

    def _learn_capabilities(self, station: StationState, control: ChargerControl) -> None:
        charger = self._site.chargers.get(station.station_id)
        capabilities = charger.capabilities if charger is not None else None
        if capabilities is None:
            return  # its configuration is not read yet
        control.capabilities = capabilities
        control.control = (
            Control.CONTROLLED if capabilities.controllable else Control.NO_SMART_CHARGING
        )
        if control.control is Control.NO_SMART_CHARGING:
            _LOGGER.warning(
                "%s: no usable Smart Charging; it is counted at its rating", station.station_id
            )
            self._site.notify_uncontrollable(station.station_id, "no_smart_charging")

    def request_run(self) -> None:
        """Ask for a run soon; requests in the same loop turn make one run."""
        self._full_run = True
        self._schedule()

    def request_replan(self) -> None:
        """Ask for delivery to look again (a charger answered): no new allocation needed."""
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled or self.state.stopped:
            return
        self._scheduled = True
        # Coalescing, not a timer: run after the events of this loop turn.
        asyncio.get_running_loop().call_soon(self._run)

    # ------------------------------------------------------------------ the run
    def _run(self) -> None:
        self._scheduled = False
        state = self.state
        if state.stopped:
            return
        now = self._site.clock.monotonic()
        observer = self._observer
        start = stopwatch() if observer is not None else 0.0
        if not self._full_run and state.last is not None:
            sends = self._replan(now)
            if observer is not None:
                run = RunObserved(now, stopwatch() - start, full=False, sends=sends)
                observer.run_finished(run)
            return
        self._full_run = False
        self.runs += 1
        old_degraded, state.degraded = state.degraded, self._snapshots.degraded_plan()
        snapshot = self.optimiser.apply(self._snapshots.build(now))
        state.negative_building = track_negative_building(
            state.negative_building, state.budgets, now
        )
        built = stopwatch() if observer is not None else 0.0
        allocation = allocate(snapshot)
        allocated = stopwatch() if observer is not None else 0.0
        problems = check(snapshot, allocation)
        if problems:
            # A violation is a bug: keep the previous safe values and say so loudly.
            self.guard_violations += 1
            _LOGGER.error("Allocation refused by the safety guard: %s", "; ".join(problems[:5]))
            targets = dict(state.last.allocation.setpoints) if state.last else {}
        else:
            state.allocator = allocation.state
            targets = dict(allocation.setpoints)
        the_plan = plan(snapshot, targets, state.leases, state.delivery)
        planned = stopwatch() if observer is not None else 0.0
        for send in the_plan.sends:
            self._leases.send(send, now)
        sent = stopwatch() if observer is not None else 0.0
        if the_plan.sends:
            # The setpoints are what a budget change waits for: bases (the fallback) follow
            # a moment later instead of doubling the traffic of this instant.
            self._bases.defer()
        else:
            self._bases.deliver()
        state.waiting = bool(the_plan.waiting)
        previous = state.last
        if not problems:
            by_key = {c.connector_id: c for c in snapshot.connectors}
            state.last = Run(snapshot, allocation, targets, by_key)
        self._arm_timer(
            now,
            the_plan.wake_at,
            allocation.next_reevaluation_at,
            allocation.next_resume_at,
            state.lease_ends,
            self.optimiser.next_at,
            *(n.reported_at for n in state.negative_building.values() if n.reported_at > now),
        )
        self._announce(previous, old_degraded, self._report_building_warnings(now))
        if observer is not None:
            run = RunObserved(
                now,
                stopwatch() - start,
                full=True,
                sends=len(the_plan.sends),
                snapshot_duration=built - start,
                allocate_duration=allocated - built,
                send_duration=sent - planned,
            )
            observer.run_finished(run)

    def _replan(self, now: float) -> int:
        """Delivery only, on the last snapshot: an answer may have freed room for increases.

        Returns the number of setpoints sent.
        """
        state = self.state
        last = state.last
        assert last is not None  # noqa: S101
        the_plan = plan(last.snapshot, last.targets, state.leases, state.delivery, now=now)
        for send in the_plan.sends:
            self._leases.send(send, now)
        state.waiting = bool(the_plan.waiting)
        # An increase held back by the rate limit must go out when the limit ends.
        self._arm_timer(
            now,
            the_plan.wake_at,
            last.allocation.next_reevaluation_at,
            last.allocation.next_resume_at,
            state.lease_ends,
            self.optimiser.next_at,
        )
        return len(the_plan.sends)

    def _building_warnings(self, now: float) -> frozenset[str]:
        return frozenset(z for z, n in self.state.negative_building.items() if now >= n.reported_at)

    def _report_building_warnings(self, now: float) -> bool:
        """Log the zones newly reported for a negative building load; return if any changed."""
        state = self.state
        warnings = self._building_warnings(now)
        if warnings == state.building_warnings:
            return False
        for zone_id in sorted(warnings - state.building_warnings):
            zone = state.zones.get(zone_id)
            _LOGGER.warning(
                "Zone %s: its meter reads less than our EVs draw (%s) for %d min; its building "
                "load is taken as 0 A and its budget is wrong: check the meter's feeder and "
                "current transformer ratio",
                zone.name if zone is not None else zone_id,
                state.negative_building[zone_id].summary(),
                NEGATIVE_BUILDING_DELAY // 60,
            )
        state.building_warnings = warnings
        return True

    def _arm_timer(self, now: float, *wake_times: float) -> None:
        """Wake at the earliest of `wake_times`, and at the next renewal at the latest."""
        delay = max(min(*wake_times, now + self.state.delivery.renewal_period) - now, 0.05)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._site.clock.call_later(delay, self.request_run)

    def _announce(
        self, previous: Run | None, old_degraded: DegradedPlan, warnings_changed: bool
    ) -> None:
        state = self.state
        if state.last is None or not self._listeners:
            return
        new_degraded = state.degraded
        stations = frozenset(
            sid
            for sid in old_degraded.station.keys() | new_degraded.station.keys()
            if old_degraded.station.get(sid) != new_degraded.station.get(sid)
        )
        problems = old_degraded.problems != new_degraded.problems
        old_points = previous.allocation.setpoints if previous else {}
        old_reasons = previous.allocation.reasons if previous else {}
        new = state.last.allocation
        changed = frozenset(
            key
            for key in set(new.reasons) | set(old_reasons)
            if new.setpoints.get(key) != old_points.get(key)
            or new.reasons.get(key) != old_reasons.get(key)
        )
        old_zones = previous.allocation.zones if previous else {}
        zones = frozenset(z for z, v in new.zones.items() if old_zones.get(z) != v)
        if not changed and not zones and not stations and not problems and not warnings_changed:
            return
        update = AllocationUpdated(changed, zones, stations, problems, warnings_changed)
        for listener in list(self._listeners):
            try:
                listener(update)
            except Exception:
                _LOGGER.exception("Load listener failed")
