"""Dynamic zones end to end: a meter drives the budget; a lost meter degrades the zone.

Simulated chargers over loopback, one manual clock; the physical invariant of conftest_load
checks every accepted profile against the zone's max, and each step here checks what the
chargers allow against the building's measured load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.load.budgets import NEGATIVE_BUILDING_DELAY
from custom_components.ev_charging_expert.evcore.meters.external import ExternalMeter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from conftest_load import LoadEnv

    from custom_components.ev_charging_expert.evcore.events import AllocationUpdated

pytest_plugins = ("conftest_load",)  # the `env` fixture

ZONE = ZoneConfig("d", "Garage", 63.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=10.0)


def _allowed(env: LoadEnv) -> float:
    return sum(env.limits().values())


async def _site(env: LoadEnv, max_age: float = 5.0) -> ExternalMeter:
    env.set_zones(ZONE)
    meter = ExternalMeter("m1", env.clock, max_age=max_age)
    env.lm.set_zone_meters({"d": meter})
    for sid in ("S1", "S2"):
        await env.add_charger(sid)
        env.place(sid, "d", {1: Wiring.TRI123})
    return meter


async def _read_physical(env: LoadEnv, meter: ExternalMeter, building: float) -> None:
    evs = sum(
        min(env.site.stations[sid].connectors[1].current("L1") or 0.0, cp.allowed(1))
        for sid, cp in env.sims.items()
    )
    meter.update((building + evs,) * 3)
    env.lm.meter_updated("m1")
    await env.settle()


async def _read(env: LoadEnv, meter: ExternalMeter, building: float) -> None:
    """The meter sees the building's load plus what the EVs last reported drawing."""
    evs = sum(env.site.stations[sid].connectors[1].current("L1") or 0.0 for sid in env.sims)
    meter.update((building + evs, building + evs, building + evs))
    env.lm.meter_updated("m1")
    await env.settle()


async def _two_evs_charging(
    env: LoadEnv,
    meter: ExternalMeter,
    read: Callable[[LoadEnv, ExternalMeter, float], Awaitable[None]],
) -> None:
    """The building takes 20 A; two EVs plug in, ramp and report, the meter follows."""
    await read(env, meter, 20.0)
    await env.plug("S1")
    await env.plug("S2")
    for _ in range(20):
        await env.advance(5.0, step=5.0)
        await read(env, meter, 20.0)


async def test_evs_share_what_the_building_leaves_and_follow_a_load_step(env: LoadEnv) -> None:
    meter = await _site(env)
    await _two_evs_charging(env, meter, _read)
    # 63 - 20 - 1 A margin = 42 A for two EVs.
    assert env.lm.budgets["d"].budget[0] == pytest.approx(42.0, abs=0.2)
    assert _allowed(env) <= 42.0 + 1e-6

    # The building takes 20 A more: the EVs are decreased at the next reading.
    await _read(env, meter, 40.0)
    assert env.lm.budgets["d"].budget[0] == pytest.approx(22.0, abs=0.6)
    assert _allowed(env) <= 63.0 - 40.0 - 1.0 + 1e-6


async def test_a_decrease_the_evs_have_not_followed_yet_does_not_shrink_the_budget_again(
    env: LoadEnv,
) -> None:
    """After a decrease the meter still sees the old draw for a few seconds (an EV has 5 s to
    follow). Counting the EVs at their new limit meanwhile would make the building look bigger
    and cut the budget again at every reading, down to nothing."""
    meter = await _site(env)
    await _two_evs_charging(env, meter, _read)
    before = _allowed(env)
    assert before == pytest.approx(42.0, abs=0.2)
    # The building takes 15 A more; the EVs still draw what they drew, for 4 s of readings.
    meter.update((35.0 + before,) * 3)
    env.lm.meter_updated("m1")
    await env.settle()
    assert env.lm.budgets["d"].budget[0] == pytest.approx(27.0, abs=0.6)
    for _ in range(8):
        await env.advance(0.5, step=0.5)
        meter.update((35.0 + before,) * 3)
        env.lm.meter_updated("m1")
        await env.settle()
        assert env.lm.budgets["d"].budget[0] == pytest.approx(27.0, abs=0.6)
    assert _allowed(env) == pytest.approx(27.0, abs=0.6)


async def test_an_ev_suspended_by_a_load_spike_resumes_after_the_resume_delay(
    env: LoadEnv,
) -> None:
    """A spike of the building suspends one EV; when the room comes back it starts again after
    the resume delay (60 s), not at the next revisit (15 min). The meter sees each EV's
    reported draw, or less at once when its limit went down (the charger enforces it)."""
    meter = await _site(env)
    await _two_evs_charging(env, meter, _read_physical)
    assert sorted(env.limits().values()) == [21.0, 21.0]
    start = env.clock.monotonic()
    await _read_physical(env, meter, 55.0)  # 7 A left: one EV at its minimum
    assert sorted(env.limits().values()) == [0.0, 7.0]
    for _ in range(20):
        await env.advance(5.0, step=5.0)
        await _read_physical(env, meter, 20.0)
        if env.clock.monotonic() - start < 60.0:
            assert min(env.limits().values()) == 0.0
    assert env.clock.monotonic() - start < 900.0
    assert sorted(env.limits().values()) == [21.0, 21.0]


async def test_small_meter_noise_does_not_reallocate(env: LoadEnv) -> None:
    meter = await _site(env)
    await _read(env, meter, 20.0)
    await env.settle()
    runs = env.lm.runs
    await _read(env, meter, 20.3)  # below half the 1 A safety margin
    assert env.lm.runs == runs
    await _read(env, meter, 21.0)
    assert env.lm.runs == runs + 1


@pytest.mark.parametrize("how", ["unavailable", "stale"])
async def test_lost_meter_degrades_the_zone_to_its_setpoint(env: LoadEnv, how: str) -> None:
    meter = await _site(env)
    await _read(env, meter, 10.0)
    await env.plug("S1")
    await env.plug("S2")
    await env.converge(stable=5.0)
    if how == "unavailable":
        meter.invalidate()
        env.lm.meter_updated("m1")
    else:
        await env.advance(6.0, step=0.5)  # past max_age: the staleness tick notices
    await env.converge(stable=5.0)
    info = env.lm.budgets["d"]
    assert info.degraded
    assert info.budget == (10.0, 10.0, 10.0)
    # Two 6 A minimums do not fit in 10 A: one EV charges at 10 A, the other is suspended.
    assert sorted(env.limits().values()) == [0.0, 10.0]
    await _read(env, meter, 10.0)
    await env.converge(stable=5.0)
    assert not env.lm.budgets["d"].degraded


async def test_a_meter_that_does_not_see_our_evs_is_reported_after_five_minutes(
    env: LoadEnv,
) -> None:
    """A meter on another feeder (or with a wrong CT ratio) reads 5 A while our two EVs draw
    21 A each: the building's load is clamped to 0 A (the budget is then wrong, too high),
    and once that has lasted NEGATIVE_BUILDING_DELAY the zone is reported, with the figures;
    a correct reading clears it."""
    updates: list[AllocationUpdated] = []
    env.lm.subscribe(updates.append)
    meter = await _site(env, max_age=60.0)
    await _two_evs_charging(env, meter, _read)
    assert sorted(env.limits().values()) == [21.0, 21.0]
    assert env.lm.negative_building_loads == {}

    start = env.clock.monotonic()
    meter.update((5.0, 5.0, 5.0))  # now wired to the wrong feeder
    env.lm.meter_updated("m1")
    await env.settle()
    info = env.lm.budgets["d"]
    assert info.building == (0.0, 0.0, 0.0)
    assert info.computed_building == (-37.0, -37.0, -37.0)
    assert env.lm.state.negative_building["d"].since == start
    updates.clear()
    while env.clock.monotonic() - start < NEGATIVE_BUILDING_DELAY - 5.0:
        await env.advance(5.0, step=5.0)
        meter.update((5.0, 5.0, 5.0))
        env.lm.meter_updated("m1")
        await env.settle()
        assert env.lm.negative_building_loads == {}
    assert not any(u.building_warnings_changed for u in updates)
    await env.advance(5.0, step=5.0)  # no new reading needed: a timer looks at it
    warning = env.lm.negative_building_loads["d"]
    assert warning.since == start
    assert warning.measured == (5.0, 5.0, 5.0)
    # With no building load left, the EVs got all of the zone's 63 A (less the margin).
    assert sorted(env.limits().values()) == [31.0, 31.0]
    assert warning.evs == (62.0, 62.0, 62.0)
    assert warning.building == (-57.0, -57.0, -57.0)
    assert [u.building_warnings_changed for u in updates] == [True]

    await _read(env, meter, 20.0)  # the meter is fixed
    assert env.lm.negative_building_loads == {}
    assert updates[-1].building_warnings_changed
