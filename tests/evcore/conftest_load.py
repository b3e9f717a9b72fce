"""Load management end to end: a Controller and simulated chargers on loopback.

Imported by test_load_management.py (fixtures: `env`). Everything runs on one `ManualClock`
shared by the site and the simulators: time moves only when a test advances it.

Waiting. `settle()` returns once nothing is in flight anywhere: no request of a simulator
waiting for its answer, no job (SetChargingProfile, configuration read) of the central system
waiting for a charger, no load-management run pending. It is a quiescence check over event-loop
turns (`asyncio.sleep(0)`), not a timer; its failsafe (FAILSAFE_S of real time) is never reached
by a passing test.

The invariant. `Physical` knows how the site is *wired* (which zone each station sits in, each
connector's phase rotation) independently of the site's configuration. After every
SetChargingProfile a simulated charger accepts (and after every clock step, plug-in and unplug)
it adds up, per zone and grid phase, what each charger is allowed to draw right now according to
its own ProfileStore (its hardware maximum when no profile applies), on the grid phases that
connector can load: the wired phase for MONO wiring; with an EV plugged in, the phases that EV
uses; with no EV, every wired phase. Any sum above the zone's max current is recorded as a
violation (an exception inside an OCPP handler would be turned into a CallError by the library,
so the checker records and the test fails on the next `settle()`) — unless the chargers that
misbehave on purpose (`profile_mode` other than "accept") overload that zone phase on their own
while every obedient charger there is at 0 A: no controller can help then (two chargers that
ignore every profile, one of them rebooted without profiles); those are kept apart in
`beyond_control`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
import logging
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import NotSupportedError
from ocpp.messages import MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
import pytest

from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import (
    ConnectorConfig,
    LoadSettings,
    StationConfig,
    ZoneConfig,
    validate_assignment,
    validate_zones,
)
from custom_components.ev_charging_expert.evcore.controller import Controller
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey
from custom_components.ev_charging_expert.evcore.load import (
    Control,
)
from custom_components.ev_charging_expert.evcore.load.delivery import DeliverySettings
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy
from custom_components.ev_charging_expert.evcore.ocpp.v16.smart_charging import round_limit
from custom_components.ev_charging_expert.evcore.site import MemoryStore, SiteSettings
from tools.sim import Ev, SimulatedChargePoint
from tools.sim.profiles import ACCEPTED

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FAILSAFE_S = 20
TOL = 1e-6
_LOGGER = logging.getLogger(__name__)

# ---------------------------------------------------------------------- simulated chargers


class TestCharger(SimulatedChargePoint):
    """A simulated charger with a hook after every accepted profile and misbehaviour modes.

    profile_mode: "accept" (the simulator's own rules), "reject" (answers Rejected to every
    SetChargingProfile), "callerror" (answers a NotSupported CallError), "ignore" (never
    answers, does not apply), "apply_silently" (applies the profile but never answers: the
    answer is lost).
    `meter_values_after_stop`: False models the many chargers that send no MeterValues after a
    StopTransaction (the simulator sends one with zero currents).
    """

    __test__ = False

    def __init__(self, *args: Any, on_profile: Callable[[TestCharger], None], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.on_profile = on_profile
        self.profile_mode = "accept"
        self.meter_values_after_stop = True
        self.ignored: list[dict[str, Any]] = []
        self.accepted_profiles = 0

    async def route_message(self, raw_msg: str | bytes) -> None:
        if self.profile_mode in ("ignore", "apply_silently"):
            msg = unpack(raw_msg)
            if msg.message_type_id == MessageType.Call and msg.action == "SetChargingProfile":
                self.ignored.append(msg.payload)
                if self.profile_mode == "apply_silently":
                    status = self.profiles.set_profile(
                        msg.payload["connectorId"],
                        msg.payload["csChargingProfiles"],
                        self.clock.now(),
                    )
                    if status == ACCEPTED:
                        self._profile_accepted()
                        self._refresh_in_background()
                return
        await super().route_message(raw_msg)

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kwargs: Any
    ) -> call_result.SetChargingProfile:
        if self.profile_mode == "reject":
            return call_result.SetChargingProfile(status="Rejected")
        if self.profile_mode == "callerror":
            raise NotSupportedError(description="no smart charging here")
        result = super().on_set_charging_profile(
            connector_id=connector_id, cs_charging_profiles=cs_charging_profiles, **kwargs
        )
        if result.status == ACCEPTED:
            self._profile_accepted()
        return result

    def _profile_accepted(self) -> None:
        self.accepted_profiles += 1
        self.on_profile(self)

    async def _send_meter_values(self, connector: Any, context: str) -> None:
        if connector.transaction_id is None and not self.meter_values_after_stop:
            return
        await super()._send_meter_values(connector, context)

    def allowed(self, connector_id: int) -> float:
        """What the connector may draw now: its profile limit, at most the hardware maximum."""
        limit = self.limit_amps(connector_id)
        return self.max_current if limit is None else min(limit, self.max_current)


# ---------------------------------------------------------------------- the physical site
@dataclass
class Placement:
    zone_id: str
    wirings: dict[int, Wiring]


@dataclass
class Physical:
    """How the site is really wired, and the invariant over it."""

    zones: dict[str, ZoneConfig] = field(default_factory=dict)
    placement: dict[str, Placement] = field(default_factory=dict)
    chargers: dict[str, TestCharger] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    beyond_control: list[str] = field(default_factory=list)
    checks: int = 0
    peak: dict[tuple[str, int], float] = field(default_factory=dict)

    def ancestors(self, zone_id: str) -> list[str]:
        out = []
        current: str | None = zone_id
        while current is not None:
            out.append(current)
            current = self.zones[current].parent_id
        return out

    @staticmethod
    def grid_phases(wiring: Wiring, ev: Ev | None) -> tuple[int, ...]:
        if not wiring.three_phase:
            return (wiring.grid_phase(1) - 1,)
        if ev is not None and ev.phases == 1:
            return (wiring.grid_phase(1) - 1,)
        return (0, 1, 2)

    def loads(
        self, now: datetime | None = None, *, obedient_only: bool = False
    ) -> dict[str, list[float]]:
        del now  # each charger reads its own clock (the shared ManualClock)
        loads = {zid: [0.0, 0.0, 0.0] for zid in self.zones}
        for sid, place in self.placement.items():
            cp = self.chargers[sid]
            if obedient_only and cp.profile_mode != "accept":
                continue
            for cid, connector in cp.connectors.items():
                allowed = cp.allowed(cid)
                wiring = place.wirings.get(cid, Wiring.TRI123)
                for zid in self.ancestors(place.zone_id):
                    for p in self.grid_phases(wiring, connector.ev):
                        loads[zid][p] += allowed
        return loads

    def check(self, when: str) -> None:
        self.checks += 1
        obedient = self.loads(obedient_only=True)
        for zid, phases in self.loads().items():
            budget = self.zones[zid].max_current
            for p, value in enumerate(phases):
                key = (zid, p)
                self.peak[key] = max(self.peak.get(key, 0.0), value)
                if value > budget + TOL and obedient[zid][p] <= TOL:
                    # Chargers that do not obey us (misbehaving on purpose) overload it alone
                    # while every charger that obeys is at 0 A there: nothing we could do.
                    self.beyond_control.append(f"{when}: zone {zid} L{p + 1} {value:.1f} A")
                elif value > budget + TOL:
                    detail = {
                        sid: {cid: cp.allowed(cid) for cid in cp.connectors}
                        for sid, cp in self.chargers.items()
                        if sid in self.placement
                    }
                    message = (
                        f"{when}: zone {zid} L{p + 1} allowed {value:.1f} A > budget "
                        f"{budget:g} A; allowed per charger: {detail}"
                    )
                    _LOGGER.error(message)
                    self.violations.append(message)


# ---------------------------------------------------------------------- the environment
class LoadEnv:
    """A site with load management, simulated chargers and the physical invariant."""

    def __init__(self, controller: Controller, clock: ManualClock) -> None:
        self.controller = controller
        self.site = controller.site
        self.clock = clock
        self.lm = controller.load
        self.physical = Physical()
        self.sims: dict[str, TestCharger] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.events: list[Any] = []
        self.unsubscribe = controller.subscribe(self.events.append)
        self.strict = True

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.controller.port}/ocpp"

    # ------------------------------------------------------------------ configuration
    def set_zones(self, *zones: ZoneConfig) -> None:
        validated = validate_zones(zones)
        self.physical.zones = dict(validated)
        self.lm.set_zones(validated)

    def place(
        self,
        station_id: str,
        zone_id: str | None,
        wirings: dict[int, Wiring] | None = None,
        *,
        vip: bool = False,
        physical: bool = True,
        **connector_changes: Any,
    ) -> None:
        """Assign a station in the site's configuration (and, by default, wire it there)."""
        cp = self.sims[station_id]
        wirings = wirings or dict.fromkeys(cp.connectors, Wiring.TRI123)
        connectors = {
            cid: ConnectorConfig(
                wiring=wirings.get(cid, Wiring.TRI123),
                rating=cp.max_current,
                **connector_changes,
            )
            for cid in cp.connectors
        }
        config = StationConfig(zone_id=zone_id, vip=vip, connectors=connectors)
        validate_assignment(self.physical.zones, {station_id: config})
        if physical and zone_id is not None:
            self.physical.placement[station_id] = Placement(zone_id, wirings)
            self.check("placed")
        self.site.configure_station(station_id, config)

    def configure_connector(self, station_id: str, connector_id: int, **changes: Any) -> None:
        station = self.site.stations[station_id]
        config = station.config.with_connector(connector_id, **changes)
        self.site.configure_station(station_id, config)

    # ------------------------------------------------------------------ chargers
    async def add_charger(
        self,
        station_id: str,
        *,
        connectors: int = 1,
        max_current: float = 32.0,
        meter_interval: int = 10,
        configuration: dict[str, str] | None = None,
        profile_mode: str = "accept",
        wait: bool = True,
    ) -> TestCharger:
        """Start a simulated charger; return once load management knows what it can do."""
        cp = TestCharger(
            station_id,
            self.url,
            connectors=connectors,
            clock=self.clock,
            max_current=max_current,
            meter_interval=meter_interval,
            auto=False,
            reconnect_delay=(5.0, 5.0),
            on_profile=lambda c: self.physical.check(f"{c.station_id} accepted a profile"),
        )
        cp.profile_mode = profile_mode
        cp.configuration.update(configuration or {})
        self.sims[station_id] = cp
        self.physical.chargers[station_id] = cp
        self.tasks[station_id] = asyncio.create_task(cp.run())
        await self.wait_for(lambda: cp.accepted)
        if wait:
            await self.wait_for(lambda: self._known(station_id))
        await self.settle()
        return cp

    def _known(self, station_id: str) -> bool:
        control = self.lm.controls.get(station_id)
        if control is None:
            return False
        if control.control is Control.CONTROLLED:
            return control.base_installed
        return control.control in (Control.REJECTED, Control.NO_SMART_CHARGING)

    async def plug(
        self,
        station_id: str,
        connector_id: int = 1,
        *,
        phases: int = 3,
        max_current: float = 32.0,
        tag: str | None = None,
    ) -> None:
        """An EV arrives and its session starts (the check runs before the CS can react)."""
        cp = self.sims[station_id]
        ev = Ev(
            phases=phases,
            max_current=max_current,
            need_wh=1e9,
            stay=1e9,
            id_tag=tag or f"TAG-{station_id}-{connector_id}",
        )
        cp.connectors[connector_id].ev = ev  # physically there from now on
        self.check(f"EV plugged into {station_id}/{connector_id}")
        cp.connectors[connector_id].ev = None
        await cp.plug_in(connector_id, ev)
        self.check(f"session started on {station_id}/{connector_id}")

    async def unplug(self, station_id: str, connector_id: int = 1) -> None:
        await self.sims[station_id].unplug(connector_id)
        self.check(f"EV left {station_id}/{connector_id}")

    async def stop_charger(self, station_id: str) -> None:
        cp = self.sims[station_id]
        await cp.stop()
        await asyncio.wait_for(self.tasks[station_id], FAILSAFE_S)

    # ------------------------------------------------------------------ waiting and time
    def _busy(self) -> bool:
        if self.lm._scheduled:
            return True
        for cp in self.sims.values():
            if cp.in_flight:
                return True
        for station_id, handler in self.site.chargers.items():
            cp = self.sims.get(station_id)
            if cp is not None and (cp.ignored or cp.profile_mode != "accept"):
                continue  # its requests may wait for their timeout (clock driven)
            if handler._tasks:
                return True
        return False

    async def settle(self) -> None:
        """Return once nothing is in flight (see the module docstring)."""
        quiet = 0
        async with asyncio.timeout(FAILSAFE_S):
            while quiet < 8:
                await asyncio.sleep(0)
                quiet = 0 if self._busy() else quiet + 1
        self.assert_safe()

    async def wait_for(self, predicate: Callable[[], Any]) -> None:
        async with asyncio.timeout(FAILSAFE_S):
            while not predicate():  # noqa: ASYNC110  # state on both ends of a socket
                await asyncio.sleep(0)

    async def advance(self, seconds: float, step: float = 5.0) -> None:
        """Move the shared clock in steps; after each one everything settles and is checked."""
        await self.settle()
        remaining = seconds
        while remaining > TOL:
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta
            self.check("clock step")
            await self.settle()

    def converged(self) -> bool:
        last = self.lm.last
        if last is None or self._busy():
            return False
        for key, target in last.allocation.setpoints.items():
            lease = self.lm.leases.get(key)
            if lease is None or lease.sent is not None or lease.held is None:
                return False
            if not target - DeliverySettings().dead_band < lease.held <= target + TOL:
                return False
            cp = self.sims[key.station_id]
            if abs(cp.allowed(key.connector_id) - round_limit(lease.held)) > TOL:
                return False
        return True

    async def converge(self, max_seconds: float = 180.0, stable: float = 15.0) -> None:
        """Advance time until every setpoint is delivered (rate limit, phase detection) and
        nothing changes for `stable` seconds (a meter interval: phases seen)."""
        waited = 0.0
        await self.settle()
        while True:
            if self.converged():
                seen = (self.targets(), self.limits())
                await self.advance(stable)
                waited += stable
                if self.converged() and (self.targets(), self.limits()) == seen:
                    return
                continue
            if waited >= max_seconds:
                raise AssertionError(
                    f"no convergence after {waited} s: targets "
                    f"{dict(self.lm.last.allocation.setpoints) if self.lm.last else None}, "
                    f"leases {self.lm.leases}, limits {self.limits()}"
                )
            await self.advance(5.0)
            waited += 5.0

    # ------------------------------------------------------------------ reading
    def limits(self) -> dict[str, float]:
        """Allowed current per placed or configured connector key, from the chargers."""
        return {
            ConnectorKey(sid, cid): cp.allowed(cid)
            for sid, cp in self.sims.items()
            for cid in cp.connectors
        }

    def targets(self) -> dict[str, float]:
        assert self.lm.last is not None
        return {k: round_limit(v) for k, v in self.lm.last.allocation.setpoints.items()}

    def check(self, when: str) -> None:
        self.physical.check(when)
        self.assert_safe()

    def assert_safe(self) -> None:
        if self.strict and self.physical.violations:
            raise AssertionError(
                "safety invariant violated:\n" + "\n".join(self.physical.violations[:5])
            )

    async def close(self) -> None:
        for station_id in list(self.sims):
            task = self.tasks[station_id]
            if not task.done():
                await self.stop_charger(station_id)
        self.unsubscribe()
        await self.controller.stop()


@pytest.fixture
async def env() -> AsyncIterator[LoadEnv]:
    """A Controller (central system, load management, meters) on a ManualClock (T0), on
    127.0.0.1, with no chargers and no zones."""
    clock = ManualClock(T0)
    controller = Controller(
        clock=clock,
        store=MemoryStore(),
        # Simulated chargers come and go as the tests say: let them in.
        settings=SiteSettings(new_charger_policy=NewChargerPolicy.ACCEPT),
        load_settings=LoadSettings(),
    )
    await controller.restore()
    await controller.start(host="127.0.0.1", port=0, ping_interval=None)
    environment = LoadEnv(controller, clock)
    yield environment
    await environment.close()
