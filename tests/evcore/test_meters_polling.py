"""Polling meters against a real Modbus server (tools/sim/modbus_meter) on 127.0.0.1.

Time runs on a ManualClock: polls start when a test advances the clock, and a test awaits them
(`step`). Nothing waits on the wall clock except loopback round trips; `asyncio.wait_for`
failsafes are only reached when a test fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
import json

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.errors import ConfigError
from custom_components.ev_charging_expert.evcore.meters import (
    BUILTIN_MODELS,
    MTZ,
    NSX,
    NSX_LEGACY,
    PM5320,
    MeterConfig,
    MeterEvent,
    MeterPool,
    MeterProtocol,
    MeterReadingReceived,
    MeterState,
    MeterStateChanged,
    ModelRegistry,
    Parity,
    SerialSettings,
)
from custom_components.ev_charging_expert.evcore.meters.transport import (
    Gateway,
    default_client_factory,
)
from tools.sim.modbus_meter import BenchRig, MeterSimulator, start_bench_rig

FAILSAFE = 10.0  # s, wall clock; a passing test never gets near it

type StartSim = Callable[..., MeterSimulator]


@pytest.fixture
async def simulators() -> AsyncIterator[list[MeterSimulator]]:
    """Simulators a test makes; all stopped at teardown."""
    made: list[MeterSimulator] = []
    yield made
    for sim in made:
        await sim.stop()


@pytest.fixture
async def pools() -> AsyncIterator[list[MeterPool]]:
    made: list[MeterPool] = []
    yield made
    for pool in made:
        await asyncio.wait_for(pool.stop(), FAILSAFE)


async def start_sim(
    simulators: list[MeterSimulator],
    model: str = PM5320,
    slaves: tuple[int, ...] = (1,),
    *,
    rtu: bool = False,
    registry: ModelRegistry | None = None,
) -> MeterSimulator:
    sim = MeterSimulator(rtu=rtu)
    model_obj = (registry or ModelRegistry()).get(model)
    for slave in slaves:
        sim.add_meter(model_obj, slave)
    simulators.append(sim)
    await sim.start()
    return sim


def make_pool(
    pools: list[MeterPool], registry: ModelRegistry | None = None, **kwargs: float
) -> tuple[MeterPool, ManualClock, list[MeterEvent]]:
    clock = ManualClock()
    pool = MeterPool(clock, registry, **kwargs)
    events: list[MeterEvent] = []
    pool.subscribe(events.append)
    pools.append(pool)
    return pool, clock, events


def meter_config(sim: MeterSimulator, slave: int = 1, **overrides: object) -> MeterConfig:
    values: dict[str, object] = {
        "meter_id": f"m{slave}",
        "name": f"Meter {slave}",
        "model": PM5320,
        "protocol": MeterProtocol.RTU_OVER_TCP if sim.rtu else MeterProtocol.TCP,
        "host": "127.0.0.1",
        "port": sim.port,
        "slave_id": slave,
    }
    values.update(overrides)
    return MeterConfig(**values)  # type: ignore[arg-type]


async def step(clock: ManualClock, pool: MeterPool, seconds: float) -> None:
    """Move time on and let the polls it started finish."""
    clock.advance(seconds)
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run (no clock change) until `condition` holds: network events only."""

    async def spin() -> None:
        while not condition():  # noqa: ASYNC110 - yields to network events, no clock
            await asyncio.sleep(0)

    await asyncio.wait_for(spin(), FAILSAFE)


async def run_until(
    clock: ManualClock, pool: MeterPool, condition: Callable[[], bool], *, limit: float
) -> float:
    """Advance in steps of 0.5 s until `condition`; returns the clock time it held."""
    while not condition():
        assert clock.monotonic() < limit, "condition not reached in time"
        await step(clock, pool, 0.5)
    return clock.monotonic()


# --- decoding against the simulator -------------------------------------------------------------


@pytest.mark.parametrize("model", [PM5320, NSX_LEGACY, NSX, MTZ])
async def test_builtin_model_reads_back_simulated_values(
    model: str, simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators, model)
    sim.meter(1).set(currents=(40, 35, 31), total_power_w=-12_300, energy_wh=9_876_000)
    pool, _, _ = make_pool(pools)
    meter = pool.add(meter_config(sim, model=model))
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    assert meter.state is MeterState.CONNECTED, meter.reason
    reading = meter.reading
    assert reading is not None
    assert reading.currents_a == pytest.approx((40, 35, 31))
    assert reading.total_power_w == pytest.approx(-12_300, rel=1e-6)
    assert reading.energy_wh == pytest.approx(9_876_000)
    assert reading.powers_w == (None, None, None)
    assert sim.meter(1).requests == len(meter.blocks) == 3


async def test_custom_model_reads_back(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    registry = ModelRegistry()
    registry.import_json(
        json.dumps(
            [
                {
                    "name": "Odd meter",
                    "numbering": "address",
                    "max_gap": 2,
                    "registers": {
                        # mA in little-endian int32 input registers
                        "current_l1": {
                            "address": 0,
                            "format": "int32",
                            "word_order": "little",
                            "type": "input",
                            "scale": 0.001,
                        },
                        "current_l2": {
                            "address": 2,
                            "format": "int32",
                            "word_order": "little",
                            "type": "input",
                            "scale": 0.001,
                        },
                        "current_l3": {
                            "address": 4,
                            "format": "int32",
                            "word_order": "little",
                            "type": "input",
                            "scale": 0.001,
                        },
                        # 0.1 W in holding registers, a gap of 2 registers read through
                        "power_l1": {"address": 10, "format": "int16", "scale": 0.1},
                        "power_l2": {"address": 13, "format": "int16", "scale": 0.1},
                        "power_l3": {"address": 16, "format": "uint32", "scale": 0.1},
                        "energy_delivered": {"address": 40, "format": "uint32", "scale": 10},
                    },
                }
            ]
        )
    )
    sim = await start_sim(simulators, "Odd meter", registry=registry)
    sim.meter(1).set(currents=(6.5, 0.25, 16.0), powers=(1000.5, -200.0, 3000.0), energy_wh=55_550)
    pool, _, _ = make_pool(pools, registry)
    meter = pool.add(meter_config(sim, model="Odd meter"))
    assert [(b.register_type.value, b.address, b.count) for b in meter.blocks] == [
        ("holding", 10, 8),
        ("holding", 40, 2),
        ("input", 0, 6),
    ]
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    reading = meter.reading
    assert reading is not None, meter.reason
    assert reading.currents_a == pytest.approx((6.5, 0.25, 16.0))
    assert reading.powers_w == pytest.approx((1000.5, -200.0, 3000.0))
    assert reading.total_power_w == pytest.approx(3800.5)  # not measured: sum of the phases
    assert reading.energy_wh == pytest.approx(55_550)


async def test_rtu_over_tcp_framing(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators, MTZ, rtu=True)
    sim.meter(1).set(currents=(1.5, 2.5, 3.5), energy_wh=42)
    pool, _, _ = make_pool(pools)
    meter = pool.add(meter_config(sim, model=MTZ))
    assert meter.config.protocol is MeterProtocol.RTU_OVER_TCP
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    assert meter.reading is not None, meter.reason
    assert meter.reading.currents_a == (1.5, 2.5, 3.5)
    # A Modbus TCP client cannot talk to an RTU-framed gateway: no answer, not a wrong value.
    pool2, clock2, _ = make_pool(pools)
    wrong = pool2.add(meter_config(sim, model=MTZ, protocol=MeterProtocol.TCP, timeout=0.5))
    pool2.start()
    await until(lambda: wrong.gateway.requests == 1)  # sent; the RTU server ignores it
    await step(clock2, pool2, 0.5)
    assert wrong.state is MeterState.NOT_CONNECTED
    assert wrong.reading is None


# --- sharing, state, freshness -----------------------------------------------------------------


async def test_two_meters_on_one_gateway_share_a_connection(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators, PM5320, slaves=(1, 2))
    sim.meter(1).set(currents=(10, 11, 12))
    sim.meter(2).set(currents=(20, 21, 22))
    pool, clock, _ = make_pool(pools)
    first = pool.add(meter_config(sim, 1))
    second = pool.add(meter_config(sim, 2))
    assert first.gateway is second.gateway
    assert list(pool.gateways) == [f"127.0.0.1:{sim.port}"]
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    for _ in range(4):
        await step(clock, pool, 0.5)
    assert first.reading is not None
    assert second.reading is not None
    assert first.reading.currents_a == (10, 11, 12)
    assert second.reading.currents_a == (20, 21, 22)
    assert first.polls == second.polls == 5
    assert sim.connections_accepted == 1
    assert sim.open_connections == 1
    assert first.gateway.connects == 1


async def test_gateway_conflicts_and_unknown_model(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators)
    pool, _, _ = make_pool(pools)
    pool.add(meter_config(sim, 1))
    with pytest.raises(ConfigError, match="already exists"):
        pool.add(meter_config(sim, 1))
    with pytest.raises(
        ConfigError, match=r"slave id 1 on 127\.0\.0\.1:\d+ is already used by meter"
    ):
        pool.add(meter_config(sim, 1, meter_id="other"))
    with pytest.raises(ConfigError, match="already used with tcp framing, not rtu_over_tcp"):
        pool.add(meter_config(sim, 2, protocol=MeterProtocol.RTU_OVER_TCP))
    with pytest.raises(ConfigError, match="unknown meter model 'Nope'"):
        pool.add(meter_config(sim, 3, model="Nope"))
    assert len(pool) == 1


async def test_silent_gateway_makes_the_reading_invalid_within_the_bound(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators)
    sim.meter(1).set(currents=(30, 30, 30))
    pool, clock, events = make_pool(pools)
    meter = pool.add(meter_config(sim))  # period 0.5 s, timeout 1 s: valid for 2 s
    assert meter.validity == 2.0
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    assert meter.state is MeterState.CONNECTED
    assert meter.reading is not None
    assert meter.reading.monotonic == 0.0
    assert meter.reading_valid(0.0)

    await sim.stop()  # the gateway goes away (connections dropped)
    await step(clock, pool, 0.5)
    assert meter.state is MeterState.NOT_CONNECTED
    assert meter.reason is not None
    assert meter.reading_valid()  # one failed poll is tolerated
    await step(clock, pool, 1.5)  # t = 2.0: exactly at the bound
    assert meter.reading_valid()
    assert meter.valid_reading() is meter.reading
    assert not meter.reading_valid(2.0001)
    await step(clock, pool, 0.5)  # t = 2.5
    assert not meter.reading_valid()
    assert meter.valid_reading() is None
    assert meter.reading is not None  # kept for display, never used as valid
    assert meter.last_success == meter.reading.timestamp == clock.now() - timedelta(seconds=2.5)

    # Back: the meter recovers within the reconnection backoff, with the new values.
    sim.meter(1).set(currents=(5, 6, 7))
    await sim.start()
    gateway = meter.gateway
    assert gateway.retry_in <= 2.0
    recovered_at = await run_until(
        clock, pool, lambda: meter.state is MeterState.CONNECTED, limit=2.5 + 2.0 + 0.5
    )
    assert meter.reading is not None
    assert meter.reading.currents_a == (5, 6, 7)
    assert meter.reading_valid()
    assert recovered_at <= 4.5
    states = [e.state for e in events if isinstance(e, MeterStateChanged)]
    assert states == [MeterState.CONNECTED, MeterState.NOT_CONNECTED, MeterState.CONNECTED]
    assert sim.connections_accepted == 2  # one before the outage, one after
    assert gateway.connects == 2


async def test_reconnection_backs_off(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators)
    await sim.stop()
    pool, clock, _ = make_pool(pools, reconnect_min=1.0, reconnect_max=4.0)
    meter = pool.add(meter_config(sim))
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    assert meter.state is MeterState.NOT_CONNECTED
    assert meter.reason is not None
    assert "cannot connect" in meter.reason
    attempts = [meter.gateway.connect_attempts]
    for _ in range(24):  # 12 s
        await step(clock, pool, 0.5)
        attempts.append(meter.gateway.connect_attempts)
    # Attempts at t = 0, 1, 3, 7, 11: the wait doubles (1, 2, 4) and stays at the maximum.
    times = [i * 0.5 for i in range(1, len(attempts)) if attempts[i] > attempts[i - 1]]
    assert times == [1.0, 3.0, 7.0, 11.0]
    assert meter.polls == 25
    assert not meter.reading_valid()


async def test_meter_that_stops_answering_times_out(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators)
    pool, clock, _ = make_pool(pools)
    meter = pool.add(meter_config(sim))
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    sim.meter(1).silent = True
    requests = meter.gateway.requests
    clock.advance(0.5)  # poll 2 starts and waits for an answer that never comes
    await until(lambda: meter.gateway.requests == requests + 1)
    clock.advance(0.5)  # t = 1.0: poll 3 is due, poll 2 still runs: skipped, not queued
    assert meter.skipped == 1
    await step(clock, pool, 0.5)  # t = 1.5: poll 2 times out
    assert meter.state is MeterState.NOT_CONNECTED
    assert meter.reason == f"127.0.0.1:{sim.port}#1: no answer within 1 s"
    assert not meter.gateway.connected  # a late answer must not be read as the next one
    sim.meter(1).silent = False
    await step(clock, pool, 0.5)
    assert meter.state is MeterState.CONNECTED
    assert sim.connections_accepted == 2


async def test_modbus_exception_and_bad_values_are_errors(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators, PM5320, slaves=(1, 2))
    pool, clock, _ = make_pool(pools)
    wrong_model = pool.add(meter_config(sim, 1, model=MTZ))  # registers the meter lacks
    nan = pool.add(meter_config(sim, 2))
    sim.meter(2).set(currents=(10, None, 10))  # NaN: phase 2 not available
    pool.start()
    await step(clock, pool, 0.5)
    assert wrong_model.state is MeterState.ERROR
    assert wrong_model.reason is not None
    assert "Modbus exception 2 (illegal data address)" in wrong_model.reason
    assert nan.state is MeterState.ERROR
    assert nan.reason == f"127.0.0.1:{sim.port}#2: current L2 not available"
    assert wrong_model.reading is None
    assert nan.reading is None
    assert sim.connections_accepted == 1  # exceptions do not drop the shared connection


async def test_events_and_listener_errors(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators)
    pool, clock, events = make_pool(pools)

    def broken(event: MeterEvent) -> None:
        raise RuntimeError(event)

    pool.subscribe(broken)
    unsubscribe = pool.subscribe(lambda _: None)
    unsubscribe()
    unsubscribe()
    meter = pool.add(meter_config(sim))
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    await step(clock, pool, 0.5)
    assert [type(e) for e in events] == [
        MeterStateChanged,
        MeterReadingReceived,
        MeterReadingReceived,
    ]
    change = events[0]
    assert isinstance(change, MeterStateChanged)
    assert (change.meter_id, change.previous, change.state) == (
        "m1",
        MeterState.NOT_CONNECTED,
        MeterState.CONNECTED,
    )
    reading = events[2]
    assert isinstance(reading, MeterReadingReceived)
    assert reading.reading is meter.reading
    assert meter.status.last_success == clock.now()


async def test_remove_and_add_while_running(
    simulators: list[MeterSimulator], pools: list[MeterPool]
) -> None:
    sim = await start_sim(simulators, PM5320, slaves=(1, 2))
    pool, clock, _ = make_pool(pools)
    first = pool.add(meter_config(sim, 1))
    pool.start()
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    second = pool.add(meter_config(sim, 2))  # starts at once
    await asyncio.wait_for(pool.wait_idle(), FAILSAFE)
    assert second.state is MeterState.CONNECTED
    await pool.remove("m1")
    assert not first.polling
    assert first.gateway.connected  # still used by m2
    await pool.remove("m2")
    assert not second.gateway.connected
    assert pool.gateways == {}
    with pytest.raises(ConfigError, match="unknown meter"):
        await pool.remove("m2")
    polls = first.polls
    await step(clock, pool, 5)
    assert first.polls == polls


async def test_serial_rtu_without_a_port_is_not_connected(pools: list[MeterPool]) -> None:
    pool, _, _ = make_pool(pools)
    meter = pool.add(
        MeterConfig(
            meter_id="rtu",
            name="Serial meter",
            model=NSX,
            protocol=MeterProtocol.RTU,
            serial=SerialSettings("/dev/does-not-exist-evcore"),
            slave_id=3,
        )
    )
    await meter.poll()
    assert meter.state is MeterState.NOT_CONNECTED
    assert meter.reason is not None
    assert "/dev/does-not-exist-evcore" in meter.reason


async def test_bench_rig_builds_meters_against_simulators() -> None:
    clock = ManualClock()
    rig: BenchRig = await start_bench_rig(6, gateways=2, clock=clock)
    try:
        await asyncio.wait_for(rig.pool.wait_idle(), FAILSAFE)
        clock.advance(0.5)
        await asyncio.wait_for(rig.pool.wait_idle(), FAILSAFE)
        assert len(rig.pool) == 6
        assert len(rig.pool.gateways) == 2
        assert rig.polls == rig.successes == 12
        assert [sim.connections_accepted for sim in rig.simulators] == [1, 1]
        assert all(m.reading_valid() for m in rig.pool)
    finally:
        await asyncio.wait_for(rig.stop(), FAILSAFE)


def test_builtin_models_are_all_simulated() -> None:
    for model in BUILTIN_MODELS.values():
        sim = MeterSimulator()
        meter = sim.add_meter(model, 9, currents=(1, 2, 3))
        assert meter.currents_a == (1, 2, 3)
        with pytest.raises(ValueError, match="already simulated"):
            sim.add_meter(model, 9)


async def test_tcp_client_settings() -> None:
    clock = ManualClock()
    tcp = MeterConfig(meter_id="t", name="t", model=NSX, host="192.0.2.1", port=1502)
    client = default_client_factory(Gateway(tcp, clock), lambda _: None)
    assert isinstance(client, AsyncModbusTcpClient)
    assert (client.comm_params.host, client.comm_params.port) == ("192.0.2.1", 1502)
    assert not client.comm_params.reconnect_delay  # pymodbus must not reconnect on its own
    assert client.ctx.retries == 0


async def test_serial_client_settings() -> None:
    pytest.importorskip("serial")  # pymodbus' serial client needs pyserial
    serial = MeterConfig(
        meter_id="s",
        name="s",
        model=NSX,
        protocol=MeterProtocol.RTU,
        serial=SerialSettings("/dev/ttyUSB7", 9600, Parity.NONE, 2),
    )
    client = default_client_factory(Gateway(serial, ManualClock()), lambda _: None)
    assert isinstance(client, AsyncModbusSerialClient)
    params = client.comm_params
    assert (params.host, params.baudrate, params.parity, params.stopbits) == (
        "/dev/ttyUSB7",
        9600,
        "N",
        2,
    )
