"""One bad number must never set a zone's budget: charger measurands, Modbus and HA meters.

Reproduced: a single MeterValues sample `Current.Import = "NaN"` from one charger set a dynamic
zone's budget to 0 A, so every charger of the zone went to 0 A. Every number that enters the
core is now finite and inside its measurand's range (`evcore.limits`), or dropped for that
sample, counted per station and logged once per station and measurand.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings, strategies as st
from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import Measurand, Phase, UnitOfMeasure
import pytest

from custom_components.ev_charging_expert.evcore import limits
from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.load.budgets import DEFAULT_SAFETY_MARGIN
from custom_components.ev_charging_expert.evcore.meters import (
    BUILTIN_MODELS,
    PM5320,
    MeterConfig,
    MeterPool,
    MeterProtocol,
    MeterState,
)
from custom_components.ev_charging_expert.evcore.meters.external import ExternalMeter
from custom_components.ev_charging_expert.evcore.ocpp.v16.metering import parse_meter_values
from custom_components.ev_charging_expert.evcore.site import MemoryStore, Site
from tools.sim.modbus_meter import MeterSimulator

if TYPE_CHECKING:
    from conftest_load import LoadEnv, TestCharger

pytest_plugins = ("conftest_load",)  # the `env` fixture

ZONE = ZoneConfig("d", "Garage", 63.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=10.0)
BUILDING = 20.0  # A per phase, the building's own load
SITE_LOGGER = "custom_components.ev_charging_expert.evcore.site"

HOSTILE_NUMBERS = [
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "1e308",
    "-1e308",
    "1e400",
    "-1",
    "1000.5",
    pytest.param("9" * 400, id="400-digits"),
]


def _timestamp(env: LoadEnv) -> str:
    return env.clock.now().isoformat()


async def _meter_values(
    cp: TestCharger, connector_id: int, samples: list[dict[str, Any]], timestamp: str
) -> None:
    await cp.call(
        call.MeterValues(
            connector_id=connector_id,
            meter_value=[{"timestamp": timestamp, "sampled_value": samples}],
        ),
        suppress=False,
    )


def _currents(value: str) -> list[dict[str, Any]]:
    return [
        {"value": value, "measurand": "Current.Import", "unit": "A", "phase": phase}
        for phase in ("L1", "L2", "L3")
    ]


async def _read(env: LoadEnv, meter: ExternalMeter) -> None:
    """The zone's meter sees the building plus what each EV reported, at most its limit."""
    evs = sum(
        min(env.site.stations[sid].connectors[1].current("L1") or 0.0, cp.allowed(1))
        for sid, cp in env.sims.items()
    )
    meter.update((BUILDING + evs,) * 3)
    env.lm.meter_updated("m1")
    await env.settle()


async def _two_evs_charging(env: LoadEnv) -> ExternalMeter:
    env.set_zones(ZONE)
    meter = ExternalMeter("m1", env.clock, max_age=30.0)
    env.lm.set_zone_meters({"d": meter})
    for sid in ("S1", "S2"):
        await env.add_charger(sid)
        env.place(sid, "d", {1: Wiring.TRI123})
    await _read(env, meter)
    await env.plug("S1")
    await env.plug("S2")
    for _ in range(12):
        await env.advance(5.0, step=5.0)
        await _read(env, meter)
    return meter


def _assert_budget_sane(env: LoadEnv) -> None:
    """Finite, within [0, max], and at least what the meter leaves with no EV counted."""
    info = env.lm.budgets["d"]
    assert not info.degraded
    assert info.measured is not None
    for p in range(3):
        budget = info.budget[p]
        assert math.isfinite(budget)
        floor = ZONE.max_current - info.measured[p] - DEFAULT_SAFETY_MARGIN
        assert max(floor, 0.0) - 1e-6 <= budget <= ZONE.max_current


def _assert_state_in_range(env: LoadEnv) -> None:
    for station in env.site.stations.values():
        for connector in station.connectors.values():
            for sample in connector.measurements.values():
                assert limits.measurement_problem(sample) is None, sample


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
async def test_a_bad_current_sample_never_sets_a_dynamic_zone_budget(
    env: LoadEnv, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    meter = await _two_evs_charging(env)
    budget = env.lm.budgets["d"].budget
    limits_before = env.limits()
    kept = env.site.stations["S1"].connectors[1].measurements["Current.Import", "L1"]
    caplog.clear()

    for _ in range(2):
        await _meter_values(env.sims["S1"], 1, _currents(value), _timestamp(env))
        await _read(env, meter)

    assert env.lm.budgets["d"].budget == pytest.approx(budget)
    assert env.limits() == limits_before
    assert env.site.stations["S1"].connectors[1].measurements["Current.Import", "L1"] is kept
    assert env.site.stations["S1"].rejected == {"Current.Import": 6}
    refused = [
        r for r in caplog.records if r.name == SITE_LOGGER and "Current.Import" in r.msg % r.args
    ]
    assert len(refused) == 1  # once per station and measurand per interval
    assert refused[0].levelno == logging.WARNING
    _assert_budget_sane(env)


async def test_a_refusal_is_logged_again_after_the_interval(
    env: LoadEnv, caplog: pytest.LogCaptureFixture
) -> None:
    await env.add_charger("S1")
    caplog.clear()

    await _meter_values(env.sims["S1"], 1, _currents("NaN"), _timestamp(env))
    env.clock.advance(limits.LOG_INTERVAL_S - 1)
    await _meter_values(env.sims["S1"], 1, _currents("NaN"), _timestamp(env))
    env.clock.advance(1)
    await _meter_values(env.sims["S1"], 1, _currents("NaN"), _timestamp(env))

    refused = [r for r in caplog.records if r.name == SITE_LOGGER]
    assert len(refused) == 2
    assert env.site.stations["S1"].rejected == {"Current.Import": 9}


@pytest.mark.parametrize(
    ("sample", "why"),
    [
        ({"value": "1.5", "measurand": "Power.Factor"}, "outside"),
        ({"value": "120", "measurand": "SoC", "unit": "Percent"}, "outside"),
        ({"value": "2", "measurand": "Current.Import", "unit": "W"}, "unit"),
        ({"value": "1e12", "measurand": "Energy.Active.Import.Register"}, "outside"),
        ({"value": "-3", "measurand": "Voltage", "unit": "V"}, "outside"),
        ({"value": "-400", "measurand": "Temperature", "unit": "Celsius"}, "outside"),
    ],
)
async def test_every_measurand_has_its_range(
    env: LoadEnv, caplog: pytest.LogCaptureFixture, sample: dict[str, str], why: str
) -> None:
    await env.add_charger("S1")

    await _meter_values(env.sims["S1"], 1, [sample], _timestamp(env))

    assert (sample["measurand"], None) not in env.site.stations["S1"].connectors[1].measurements
    assert env.site.stations["S1"].rejected == {sample["measurand"]: 1}
    assert why in caplog.text


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e308, -5.0, 200_000.0])
async def test_a_meter_value_out_of_range_is_a_failed_read_never_a_budget(
    env: LoadEnv, value: float
) -> None:
    meter = await _two_evs_charging(env)

    assert meter.update((value, 30.0, 30.0)) is not None
    env.lm.meter_updated("m1")
    await env.settle()

    info = env.lm.budgets["d"]
    assert info.degraded
    assert info.budget == (ZONE.degraded_setpoint,) * 3
    assert meter.rejected == 1
    assert meter.valid_reading() is None


@pytest.mark.parametrize(
    "values",
    [
        {"currents": (200_000.0, 10.0, 10.0)},
        {"currents": (10.0, 10.0, 10.0), "energy_wh": 2e12},
        {"currents": (10.0, 10.0, 10.0), "total_power_w": 3e9},
    ],
    ids=["current", "energy", "power"],
)
async def test_a_modbus_register_out_of_range_is_a_failed_read(values: dict[str, Any]) -> None:
    sim = MeterSimulator()
    sim.add_meter(BUILTIN_MODELS[PM5320], 1)
    await sim.start()
    pool = MeterPool(ManualClock())
    try:
        meter = pool.add(
            MeterConfig(
                meter_id="m1",
                name="Main",
                model=PM5320,
                protocol=MeterProtocol.TCP,
                host="127.0.0.1",
                port=sim.port,
                slave_id=1,
            )
        )
        sim.meter(1).set(currents=(10.0, 10.0, 10.0), energy_wh=1000.0)
        assert await meter.poll() is not None
        sim.meter(1).set(**values)

        assert await meter.poll() is None

        assert meter.state is MeterState.ERROR
        assert "check the register format" in (meter.reason or "")
        assert meter.rejected == 1
        assert meter.valid_reading() is not None  # the previous reading, until it ages out
    finally:
        await asyncio.wait_for(pool.stop(), 10)
        await sim.stop()


# ---------------------------------------------------------------------- fuzz
_NUMBERS = [
    *HOSTILE_NUMBERS[:-1],
    "9" * 400,
    "0",
    "6",
    "16.5",
    "32",
    "230",
    "1e3",
    "999",
    "-0",
    "1e-320",
    "x",
]
_CONNECTOR_IDS = [0, 1, 1, 1, 2, 5, -1, 17, 10**30]


def _random_sample(rng: random.Random) -> dict[str, Any]:
    sample: dict[str, Any] = {"value": rng.choice(_NUMBERS)}
    if rng.random() < 0.8:
        sample["measurand"] = rng.choice(["Current.Import", *(m.value for m in Measurand)])
    if rng.random() < 0.6:
        sample["unit"] = rng.choice(list(UnitOfMeasure)).value
    if rng.random() < 0.7:
        sample["phase"] = rng.choice(list(Phase)).value
    return sample


async def test_fuzzed_meter_values_and_status_notifications_never_set_a_budget_or_break_the_zone(
    env: LoadEnv,
) -> None:
    """Random MeterValues and StatusNotification fields from one charger of a dynamic zone.

    After each frame (answered, or refused with a CallError) and a meter reading: the physical
    invariant holds (`settle`), no stored value is outside its range, the zone's budget is
    finite and never below what the meter leaves with no EV counted, and the charger has no
    connector beyond the one it declares.
    """
    rng = random.Random(20260101)  # noqa: S311  # a reproducible fuzz, not cryptography
    meter = await _two_evs_charging(env)
    hostile = env.sims["S1"]
    refused = 0

    for _ in range(80):
        connector_id = rng.choice(_CONNECTOR_IDS)
        try:
            if rng.random() < 0.7:
                samples = [_random_sample(rng) for _ in range(rng.randint(1, 6))]
                await _meter_values(hostile, connector_id, samples, _timestamp(env))
            else:
                await hostile.call(
                    call.StatusNotification(
                        connector_id=connector_id,
                        error_code=rng.choice(["NoError", "OtherError", "GroundFailure"]),
                        status=rng.choice(["Available", "Charging", "Faulted", "SuspendedEV"]),
                        info=rng.choice([None, "x\nFAKE LOG LINE", "ok"]),
                    ),
                    suppress=False,
                )
        except OCPPError:
            refused += 1
        await _read(env, meter)
        _assert_budget_sane(env)
        _assert_state_in_range(env)
        assert set(env.site.stations["S1"].connectors) <= {0, 1}
        if rng.random() < 0.2:
            await env.advance(5.0, step=5.0)
            await _read(env, meter)

    assert refused > 0
    assert sum(env.site.stations["S1"].rejected.values()) > 0
    assert env.site.stations["S2"].rejected == {}


# ---------------------------------------------------------------------- property
_SAMPLE = st.fixed_dictionaries(
    {"value": st.one_of(st.sampled_from(_NUMBERS), st.floats().map(repr), st.text(max_size=8))},
    optional={
        "measurand": st.sampled_from([m.value for m in Measurand]),
        "unit": st.sampled_from([u.value for u in UnitOfMeasure]),
        "phase": st.sampled_from([p.value for p in Phase]),
        "context": st.just("Sample.Periodic"),
    },
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_SAMPLE, min_size=1, max_size=5), min_size=1, max_size=4))
def test_any_sampled_values_leave_only_values_in_range(batches: list[list[dict[str, Any]]]) -> None:
    clock = ManualClock()
    site = Site(clock, MemoryStore())
    site.accept_station("CP1")
    site.start_session(
        "CP1",
        1,
        id_tag="T",
        meter_start_wh=1000.0,
        started_at=clock.now(),
        reservation_id=None,
    )
    connector = site.stations["CP1"].connectors[1]
    energy = 0.0

    for batch in batches:
        clock.advance(10)
        entries = [{"timestamp": clock.now().isoformat(), "sampled_value": batch}]
        site.measurements("CP1", 1, parse_meter_values(entries, clock.now()), None)
        for sample in connector.measurements.values():
            assert limits.measurement_problem(sample) is None
        now = connector.session_energy_wh or 0.0
        assert now >= energy  # a session's energy never goes down
        energy = now
