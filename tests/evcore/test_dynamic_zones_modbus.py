"""Dynamic zones driven by a real Modbus meter: tools/sim/modbus_meter on 127.0.0.1.

The scenario of test_dynamic_zones.py, but the zone's meter is a `Meter` of a `MeterPool`
polling a pymodbus simulator every 0.5 s on the shared ManualClock, and every pool event
reaches the LoadManager as hub.py sends it (`meter_updated`). The simulated meter shows the
building's load plus, per EV, what its charger last reported drawing, capped at what the charger
allows now (`Rig.evs`): a decrease shows at once (the charger enforces its limit), a rise when
the charger reports it. That is the model under which the load manager's estimate of the EVs'
own draw (last sample, at most the limit) is exact.

Time moves one polling period at a time (a longer clock step would age the reading past its
validity before the poll it starts can run): after each step the polls it started are awaited
(loopback I/O, no timer), everything settles, and the physical invariant of conftest_load is
checked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.meters import (
    BUILTIN_MODELS,
    PM5320,
    Meter,
    MeterConfig,
    MeterPool,
    MeterProtocol,
)
from tools.sim.modbus_meter import MeterSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

ZONE = ZoneConfig("d", "Garage", 63.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=20.0)
STATIONS = ("S1", "S2", "S3")
PERIOD = 0.5  # s, the meter's polling period
FAILSAFE = 10.0  # s, wall clock; a passing test never gets near it


@dataclass
class Rig:
    """The site of `env`, a simulated PM5320 behind a Modbus server, and the pool polling it."""

    env: LoadEnv
    sim: MeterSimulator
    pool: MeterPool
    meter: Meter
    building: float = 0.0

    def allowed(self) -> float:
        return sum(self.env.limits().values())

    def evs(self) -> float:
        """What the EVs add to the meter: what each last reported, at most what it may draw now.

        A lower limit shows at once (the charger enforces it); a rise shows when it is reported.
        """
        return sum(
            min(self.env.site.stations[sid].connectors[1].current("L1") or 0.0, cp.allowed(1))
            for sid, cp in self.env.sims.items()
        )

    async def run(self, seconds: float) -> None:
        """Move the clock on by polling periods; each poll and what it causes settles."""
        env = self.env
        for _ in range(round(seconds / PERIOD)):
            self.sim.meter(1).set(currents=(self.building + self.evs(),) * 3)
            env.clock.advance(PERIOD)
            env.check("clock step")
            await asyncio.wait_for(self.pool.wait_idle(), FAILSAFE)
            await env.settle()

    async def converge(self, max_seconds: float = 180.0, stable: float = 15.0) -> None:
        """`env.converge()` in polling periods: setpoints delivered, then `stable` s unchanged."""
        start = self.env.clock.monotonic()
        while self.env.clock.monotonic() - start < max_seconds:
            if not self.env.converged():
                await self.run(PERIOD)
                continue
            seen = (self.env.targets(), self.env.limits())
            await self.run(stable)
            if self.env.converged() and (self.env.targets(), self.env.limits()) == seen:
                return
        pytest.fail(f"no convergence in {max_seconds} s: limits {self.env.limits()}")


@pytest.fixture
async def rig(env: LoadEnv, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """Three chargers in dynamic zone "d", metered over Modbus (param: RTU-over-TCP framing)."""
    rtu: bool = getattr(request, "param", False)
    sim = MeterSimulator(rtu=rtu)  # 127.0.0.1, a free port kept across restarts
    sim.add_meter(BUILTIN_MODELS[PM5320], 1)
    await sim.start()
    pool = env.controller.meters  # polled on the controller's clock, wired to the budgets
    config = MeterConfig(
        meter_id="m1",
        name="Garage meter",
        model=PM5320,
        protocol=MeterProtocol.RTU_OVER_TCP if rtu else MeterProtocol.TCP,
        host="127.0.0.1",
        port=sim.port,
        slave_id=1,
        polling_period=PERIOD,
    )
    meter = pool.add(config)
    try:
        env.set_zones(ZONE)
        env.controller.set_zone_meters({"d": meter})  # the pool's Meter is the MeterSource
        for sid in STATIONS:
            await env.add_charger(sid)
            env.place(sid, "d", {1: Wiring.TRI123})
        await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
        await env.settle()
        yield Rig(env, sim, pool, meter)
    finally:
        await asyncio.wait_for(pool.stop(), FAILSAFE)
        await sim.stop()


async def _charging(rig: Rig, building: float) -> None:
    """The building draws `building` A; three EVs arrive and ramp up to what is left."""
    rig.building = building
    await rig.run(PERIOD)
    for sid in STATIONS:
        await rig.env.plug(sid)
    await rig.converge()


@pytest.mark.parametrize("rig", [False, True], ids=["tcp", "rtu_over_tcp"], indirect=True)
async def test_evs_follow_building_load_steps_read_over_modbus(rig: Rig) -> None:
    await _charging(rig, 20.0)
    assert rig.meter.reading is not None
    assert rig.meter.reading.currents_a[0] == pytest.approx(20.0 + rig.allowed(), abs=0.1)
    # 63 - 20 - 1 A margin = 42 A for three EVs.
    assert rig.env.lm.budgets["d"].budget[0] == pytest.approx(42.0, abs=0.2)
    assert rig.allowed() == pytest.approx(42.0, abs=0.6)
    assert rig.allowed() <= 42.0 + 1e-6

    # The building takes 15 A more: the EVs are decreased at the next poll, and stay there.
    rig.building = 35.0
    await rig.run(PERIOD)
    assert rig.env.lm.budgets["d"].budget[0] == pytest.approx(27.0, abs=0.6)
    assert rig.allowed() <= 63.0 - 35.0 - 1.0 + 1e-6
    await rig.converge()
    assert rig.allowed() == pytest.approx(27.0, abs=0.6)
    assert rig.allowed() <= 27.0 + 1e-6

    # It drops back: the EVs get the room again (increases are rate-limited).
    rig.building = 20.0
    await rig.run(PERIOD)
    assert rig.env.lm.budgets["d"].budget[0] == pytest.approx(42.0, abs=0.6)
    await rig.converge()
    assert rig.allowed() == pytest.approx(42.0, abs=0.6)
    assert rig.allowed() <= 42.0 + 1e-6
    assert not rig.env.lm.budgets["d"].degraded
    assert rig.env.physical.peak[("d", 0)] <= ZONE.max_current  # also checked at every step


async def test_stopped_meter_degrades_the_zone_and_recovers(rig: Rig) -> None:
    env, meter = rig.env, rig.meter
    await _charging(rig, 10.0)
    assert not env.lm.budgets["d"].degraded
    assert rig.allowed() == pytest.approx(52.0, abs=0.6)

    await rig.sim.stop()  # the gateway goes away: polls fail, the reading ages
    assert meter.reading is not None
    last = meter.reading.monotonic
    while not env.lm.budgets["d"].degraded:
        await rig.run(PERIOD)
        # Lost once the reading is older than 2 periods + timeout; the zone sees it at its
        # next look (every 0.5 s).
        assert env.clock.monotonic() - last <= meter.validity + PERIOD
    assert env.clock.monotonic() - last > meter.validity  # and not before
    assert meter.validity == 2.0
    assert env.lm.budgets["d"].budget == (20.0, 20.0, 20.0)
    # At the same step (decreases are not rate-limited): three 6 A minimums fit in 20 A.
    assert rig.allowed() <= 20.0 + 1e-6
    assert min(env.limits().values()) >= 6.0
    await rig.converge()
    assert env.lm.budgets["d"].degraded
    assert rig.allowed() == pytest.approx(20.0, abs=0.6)
    assert rig.allowed() <= 20.0 + 1e-6

    await rig.sim.start()  # same port: the gateway reconnects after its backoff
    back_by = env.clock.monotonic() + meter.gateway.retry_in + PERIOD
    while env.lm.budgets["d"].degraded:
        await rig.run(PERIOD)
        assert env.clock.monotonic() <= back_by
    await rig.converge()
    assert not env.lm.budgets["d"].degraded
    assert rig.allowed() == pytest.approx(52.0, abs=0.6)
    assert rig.sim.connections_accepted == 2
