"""The composition root of evcore: builds, wires, starts and stops everything.

HA (the coordinator), the tests, the benchmarks and the demo all build the core through this
class; nobody else wires Site, the central system, load management and the meters together.

- One owner of state: `Site` (stations, sessions) and the load manager (allocation), both
  owned here. Readers use the views (`zone_views`, `allocation`, `station_load`,
  `load_view`, `meter_view`); writers call the owners' commands.
- One event stream: `subscribe(callback, kinds=...)` delivers every `ControllerEvent`.
- The meter → budget path that safety rule 4 depends on is wired here, once: a meter event
  (polled Modbus meters, or `external_meter_changed` for readings pushed from outside) makes
  load management re-check that zone's budget.
- Injected: the clock, the store, and how to run blocking work (`executor`: password checks
  now, the session store next).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
import logging
from typing import TYPE_CHECKING, Any

from .charger import REQUEST_TIMEOUT
from .events import AllocationUpdated, ControllerEvent, MeterUpdated, RulesChanged
from .load import LoadManager
from .meters import MeterPool, MeterState, MeterStateChanged
from .ocpp.server import DEFAULT_MAX_FRAME, CentralSystem
from .rules import Rules, effective_limits
from .site import Site, SiteSettings
from .view import (
    SUSPENDED_REASONS,
    AllocationView,
    LoadView,
    MeterView,
    StationLoadView,
    ZoneView,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import tzinfo
    import ssl

    from .admission import AdmissionLimits, Executor
    from .charger import Charger
    from .clock import Clock
    from .config import LoadSettings, ZoneConfig
    from .keys import ConnectorKey
    from .load.delivery import DeliverySettings
    from .meters import MeterEvent, ModelRegistry
    from .meters.external import MeterSource
    from .rules import (
        DigitalInput,
        RemoteSettings,
        RulesView,
        SetpointResult,
        SetpointSource,
        TouCalendar,
        TouConfig,
        ZoneLimit,
    )
    from .site import SiteStore

_LOGGER = logging.getLogger(__name__)

type Listener = Callable[[ControllerEvent], None]


class Controller:
    """One site: its stations, its OCPP port, its load management and its meters."""

    def __init__(
        self,
        *,
        clock: Clock,
        store: SiteStore,
        settings: SiteSettings | None = None,
        load_settings: LoadSettings | None = None,
        delivery: DeliverySettings | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        meter_models: ModelRegistry | None = None,
        executor: Executor | None = None,
        limits: AdmissionLimits | None = None,
    ) -> None:
        self.clock = clock
        self.executor = executor
        self.limits = limits
        self.site = Site(clock, store, settings or SiteSettings())
        self.load = LoadManager(
            self.site, settings=load_settings, delivery=delivery, request_timeout=request_timeout
        )
        self.meters = MeterPool(clock, meter_models)
        self.central_system: CentralSystem | None = None
        self.request_timeout = request_timeout
        self._listeners: list[tuple[Listener, tuple[type, ...] | None]] = []
        self._zone_views: dict[str, ZoneView] = {}
        # Operating rules (issue 11): they lower zone limits at every run (rules/pipeline.py).
        self.rules = Rules(
            clock,
            zones=lambda: self.load.zones,
            request_run=self.load.request_run,
            emit=self._on_rules,
        )
        self.load.state.rules = self.rules.inputs
        self._unsubscribe = [
            self.site.subscribe(self._emit),
            self.load.subscribe(self._on_allocation),
            self.meters.subscribe(self._on_meter_event),
        ]

    # ------------------------------------------------------------------ lifecycle
    async def restore(self) -> None:
        """Load the station registry from the store (before `start`)."""
        await self.site.load()

    async def start(
        self,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        ping_interval: float | None = 60,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        """Poll the meters and open the OCPP port; raises OSError when it cannot listen."""
        self.meters.start()
        self.rules.start()
        self.central_system = CentralSystem(
            self.site,
            host=host,
            port=port,
            ssl_context=ssl_context,
            request_timeout=self.request_timeout,
            max_frame=max_frame,
            ping_interval=ping_interval,
            limits=self.limits,
            executor=self.executor,
        )
        try:
            await self.central_system.start()
        except BaseException:
            self.central_system = None
            raise

    @property
    def port(self) -> int | None:
        """The OCPP port actually bound, once started."""
        return None if self.central_system is None else self.central_system.port

    async def stop(self) -> None:
        """Close every connection and the port, stop load management and the meters.

        Leases then expire on the chargers, by design. Idempotent.
        """
        if self.central_system is not None:
            central_system, self.central_system = self.central_system, None
            await central_system.stop()
        self.load.stop()
        self.rules.stop()
        await self.meters.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # ------------------------------------------------------------------ the event stream
    def subscribe(
        self, callback: Listener, kinds: Iterable[type] | None = None
    ) -> Callable[[], None]:
        """Call `callback` with every event (or only those of `kinds`); returns unsubscribe."""
        entry = (callback, tuple(kinds) if kinds is not None else None)
        self._listeners.append(entry)

        def unsubscribe() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)

        return unsubscribe

    def _emit(self, event: ControllerEvent) -> None:
        for callback, kinds in list(self._listeners):
            if kinds is not None and not isinstance(event, kinds):
                continue
            try:
                callback(event)
            except Exception:
                _LOGGER.exception("Event listener failed on %s", event)

    def _on_allocation(self, update: AllocationUpdated) -> None:
        # Zone status includes EV counts, which the allocator does not compare: a zone whose
        # totals stayed the same (32 A to one EV, then 16 A to each of two) changed too.
        previous, self._zone_views = self._zone_views, self._build_zone_views()
        changed = update.zones | {
            z
            for z in previous.keys() | self._zone_views.keys()
            if previous.get(z) != self._zone_views.get(z)
        }
        if changed != update.zones:
            update = replace(update, zones=frozenset(changed))
        self._emit(update)

    # ------------------------------------------------------------------ configuration
    def set_zones(self, zones: Mapping[str, ZoneConfig]) -> None:
        """Replace the zone tree (already validated); zones that left lose their status."""
        self.load.set_zones(zones)
        self._zone_views = {z: v for z, v in self._zone_views.items() if z in zones}

    def set_load_settings(self, settings: LoadSettings) -> None:
        """Replace the load-management settings (applied at the next run)."""
        if settings != self.load.settings:
            self.load.set_settings(settings)

    def set_zone_meters(self, meters: Mapping[str, MeterSource]) -> None:
        """Which meter drives which dynamic zone (zone id -> meter)."""
        self.load.set_zone_meters(meters)

    # ------------------------------------------------------------------ meters
    def _on_meter_event(self, event: MeterEvent) -> None:
        self.external_meter_changed(
            event.meter_id, state_changed=isinstance(event, MeterStateChanged)
        )

    def external_meter_changed(self, meter_id: str, *, state_changed: bool) -> None:
        """A meter read (or lost) something: re-check its zone's budget, tell subscribers."""
        self.load.meter_updated(meter_id)
        self._emit(MeterUpdated(meter_id, state_changed))

    def meter_view(self, meter_id: str) -> MeterView | None:
        """State and last reading of a polled (Modbus) meter; None when not in the pool."""
        meter = self.meters.meters.get(meter_id)
        if meter is None:
            return None
        status = meter.status
        return MeterView(
            meter_id,
            status.state,
            status.reason,
            status.last_success,
            meter.reading if status.state is MeterState.CONNECTED else None,
        )

    # ------------------------------------------------------------------ chargers
    def charger(self, station_id: str) -> Charger:
        """A connected station's charger port (raises ChargerNotConnectedError)."""
        return self.site.charger(station_id)

    # ------------------------------------------------------------------ views
    def zone_views(self) -> dict[str, ZoneView]:
        """Every zone's status at the last allocation run (none before the first run)."""
        if not self._zone_views and self.load.last is not None:
            self._zone_views = self._build_zone_views()
        return self._zone_views

    def zone_view(self, zone_id: str) -> ZoneView | None:
        """A zone's status at the last allocation run."""
        return self.zone_views().get(zone_id)

    def _build_zone_views(self) -> dict[str, ZoneView]:
        state = self.load.state
        last = state.last
        if last is None:
            return {}
        index = last.snapshot.zone_index
        charging = [0] * len(index.zones)
        suspended = [0] * len(index.zones)
        allocation = last.allocation
        for connector in last.snapshot.connectors:
            key = connector.connector_id
            is_charging = allocation.setpoints.get(key, 0.0) > 0
            is_suspended = allocation.reasons.get(key) in SUSPENDED_REASONS
            for z in index.paths[index.position[connector.zone_id]]:
                charging[z] += is_charging
                suspended[z] += is_suspended
        views: dict[str, ZoneView] = {}
        effective = effective_limits(state.zones, state.limits)
        for i, zone in enumerate(index.zones):
            config = state.zones.get(zone.zone_id)
            totals = allocation.zones[zone.zone_id]
            info = state.budgets.get(zone.zone_id)
            if config is None:
                continue  # left the tree since the run
            views[zone.zone_id] = ZoneView(
                zone_id=zone.zone_id,
                name=config.name,
                parent_id=config.parent_id,
                max_current=config.max_current,
                mode=config.mode,
                degraded_setpoint=config.degraded_setpoint,
                budget=zone.budget,
                allocated=totals.allocated,
                fixed=totals.fixed,
                charging=charging[i],
                suspended=suspended[i],
                degraded=info.degraded if info else False,
                measured=info.measured if info else None,
                building=info.building if info else None,
                degraded_problem=state.degraded.problems.get(zone.zone_id),
                **self._rule_fields(zone.zone_id, effective),
            )
        return views

    def allocation(self, key: ConnectorKey) -> AllocationView | None:
        """A connector's share at the last run; None when it was not managed."""
        state = self.load.state
        last = state.last
        if last is None or key not in last.by_key:
            return None
        lease = state.leases.get(key)
        return AllocationView(
            key=key,
            setpoint=last.allocation.setpoints.get(key),
            reason=last.allocation.reasons.get(key),
            limited_by=last.allocation.limited_by.get(key),
            held=lease.held if lease else None,
            sent=lease.sent if lease else None,
        )

    def station_load(self, station_id: str) -> StationLoadView | None:
        """What load management knows of a station; None before it was seen."""
        state = self.load.state
        control = state.controls.get(station_id)
        if control is None:
            return None
        return StationLoadView(
            station_id=station_id,
            control=control.control,
            degraded_current=state.degraded.station.get(station_id),
            base_held=control.base.held,
            base_sent=control.base.sent,
            base_planned=state.degraded.per_connector.get(station_id),
        )

    def degraded_current(self, station_id: str) -> float | None:
        """What a station may draw when it loses us (None: in no zone)."""
        return self.load.state.degraded.station.get(station_id)

    def degraded_problems(self) -> dict[str, str]:
        """Per zone: why its stations get 0 A in degraded mode."""
        return dict(self.load.state.degraded.problems)

    def load_view(self) -> LoadView:
        """Load management as a whole (diagnostics)."""
        state = self.load.state
        last = state.last
        keys = set(state.leases) | (set(last.allocation.reasons) if last else set())
        connectors = tuple(
            view for key in sorted(keys) if (view := self._allocation_or_lease(key)) is not None
        )
        stations = tuple(
            station
            for sid in sorted(state.controls)
            if (station := self.station_load(sid)) is not None
        )
        return LoadView(
            runs=self.load.runs,
            guard_violations=self.load.guard_violations,
            zones=tuple(self.zone_views().values()),
            stations=stations,
            connectors=connectors,
        )

    def _allocation_or_lease(self, key: ConnectorKey) -> AllocationView | None:
        view = self.allocation(key)
        if view is not None:
            return view
        lease = self.load.state.leases.get(key)
        if lease is None:
            return None
        return AllocationView(key, None, None, None, lease.held, lease.sent)

    # ------------------------------------------------------------------ operating rules
    def _on_rules(self, event: ControllerEvent) -> None:
        self._emit(event)
        if isinstance(event, RulesChanged):
            # A rule change requests a run (queued before this): once it ran, zones whose
            # reason changed while their limit did not are announced too.
            with contextlib.suppress(RuntimeError):  # no loop yet: the first run builds them
                asyncio.get_running_loop().call_soon(self._refresh_zone_views)

    def _refresh_zone_views(self) -> None:
        if self.load.last is None:
            return
        previous, self._zone_views = self._zone_views, self._build_zone_views()
        changed = frozenset(
            z
            for z in previous.keys() | self._zone_views.keys()
            if previous.get(z) != self._zone_views.get(z)
        )
        if changed:
            self._emit(AllocationUpdated(frozenset(), changed))

    def _rule_fields(self, zone_id: str, effective: Mapping[str, ZoneLimit]) -> dict[str, Any]:
        limit = effective.get(zone_id)
        if limit is None:
            return {"remote_setpoint": self.rules.remote_setpoint(zone_id)}
        return {
            "limited_by": limit.limited_by,
            "effective_limit": limit.limit,
            "remote_setpoint": self.rules.remote_setpoint(zone_id),
        }

    @property
    def tou(self) -> TouCalendar:
        """The time-of-use calendar (periods, period at an instant, boundaries)."""
        return self.rules.tou

    def set_timezone(self, tz: tzinfo) -> None:
        """The site's local time zone (HA's): timeslots are read in it."""
        self.rules.set_timezone(tz)

    def set_tou(self, config: TouConfig) -> None:
        """Replace the time-of-use settings (ConfigError names the field; nothing changes)."""
        self.rules.set_tou(config)

    def set_tou_source(self, period: str, *, active: bool) -> None:
        """An outside source (an HA schedule or binary entity) of a period changed."""
        self.rules.set_tou_source(period, active=active)

    def set_inputs(self, inputs: Iterable[DigitalInput]) -> None:
        """Replace the digital inputs (ConfigError names the field; nothing changes)."""
        self.rules.set_inputs(inputs)

    def set_input_state(self, name: str, active: bool) -> bool:  # contract C1
        """A digital input's state (unavailable: report it active); False: no such input."""
        return self.rules.set_input_state(name, active=active)

    def set_remote_settings(self, settings: RemoteSettings) -> None:
        """Replace the remote-setpoint settings."""
        self.rules.set_remote_settings(settings)

    def set_zone_setpoint(
        self, zone_id: str, amps: float, *, source: SetpointSource
    ) -> SetpointResult:
        """A remote setpoint for a zone (A per phase, 0..its max), from `source`."""
        return self.rules.set_zone_setpoint(zone_id, amps, source=source)

    def clear_zone_setpoint(self, zone_id: str, *, source: SetpointSource) -> SetpointResult:
        """Drop a zone's remote setpoint, from `source`."""
        return self.rules.clear_zone_setpoint(zone_id, source=source)

    def remote_heartbeat(self, source: SetpointSource) -> SetpointResult:
        """The controlling source of remote setpoints says it is alive."""
        return self.rules.remote_heartbeat(source)

    def rules_view(self) -> RulesView:
        """Remote setpoints, heartbeat, time-of-use period and active inputs now."""
        return self.rules.view()

    def tou_summary(self) -> dict[str, object]:
        """Max current per zone per time-of-use period (the guide's Summary tab)."""
        return self.rules.summary()
