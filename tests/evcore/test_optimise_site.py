"""Consumption optimisation on a simulated site, and why it can only lower before it raises.

End to end: a Controller and `ocpp`-library chargers over loopback on one ManualClock
(conftest_load.py). EVs capped onboard at 16 A sit on 32 A connectors; with the option on, their
unused current goes to the others. The physical invariant (what the chargers' own profiles allow,
per zone and grid phase, within the zone's max) is checked after every profile a charger
accepts, every clock step, plug-in and unplug.

The ordering proof is on delivery's pure `plan`: a cap is a decrease, sent at once; the others'
increases that use the room it frees wait until the charger has confirmed it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.allocation.allocator import allocate
from custom_components.ev_charging_expert.evcore.allocation.model import (
    ConnectorSnapshot,
    SiteSnapshot,
    ZoneBudget,
)
from custom_components.ev_charging_expert.evcore.config import LoadSettings, ZoneConfig
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey as K
from custom_components.ev_charging_expert.evcore.load.delivery import (
    DeliverySettings,
    LeaseState,
    Send,
    plan,
    record_answer,
    record_sent,
)
from custom_components.ev_charging_expert.evcore.load.optimise import OptimiseSettings

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

ZONE = ZoneConfig("Z", "Car park", 72.0)
DETECT = OptimiseSettings().detect_after


async def three_evs(env: LoadEnv, *, optimise: bool) -> None:
    """A (EV capped onboard at 16 A), B and C (32 A EVs) share 72 A: 24 A each."""
    env.controller.set_load_settings(LoadSettings(consumption_optimisation=optimise))
    env.set_zones(ZONE)
    for sid in ("A", "B", "C"):
        await env.add_charger(sid)
        env.place(sid, "Z")
    await env.plug("A", phases=3, max_current=16.0)
    await env.plug("B", phases=3)
    await env.plug("C", phases=3)
    await env.converge()


def draws(env: LoadEnv) -> dict[str, float]:
    return {sid: cp.connectors[1].current for sid, cp in env.sims.items()}


async def test_without_the_option_the_ev_capped_onboard_keeps_its_share(env: LoadEnv) -> None:
    await three_evs(env, optimise=False)
    await env.advance(DETECT * 3)
    await env.converge()
    assert env.limits() == {K("A", 1): 24.0, K("B", 1): 24.0, K("C", 1): 24.0}
    assert draws(env) == {"A": 16.0, "B": 24.0, "C": 24.0}
    assert env.lm.optimiser.caps == {}


async def test_unused_current_of_an_ev_capped_onboard_goes_to_the_others(env: LoadEnv) -> None:
    await three_evs(env, optimise=True)
    assert env.lm.optimiser.caps == {}  # not before the detection time
    await env.advance(DETECT + 30)
    await env.converge()
    assert env.lm.optimiser.caps == {K("A", 1): 18.0}
    assert env.limits() == {K("A", 1): 18.0, K("B", 1): 27.0, K("C", 1): 27.0}
    assert draws(env) == {"A": 16.0, "B": 27.0, "C": 27.0}
    assert env.physical.checks > 0
    assert env.physical.violations == []


async def test_an_ev_that_draws_more_again_gets_its_share_back(env: LoadEnv) -> None:
    await three_evs(env, optimise=True)
    await env.advance(DETECT + 30)
    await env.converge()
    assert env.lm.optimiser.caps == {K("A", 1): 18.0}
    # Its onboard limit goes up (the battery warmed up): it draws its whole cap.
    env.sims["A"].connectors[1].ev.max_current = 32.0
    # Its next meter value (every 10 s) shows it: that sample triggers the run that lifts it.
    runs = env.lm.runs
    await env.advance(10.0)
    assert env.lm.optimiser.caps == {}
    assert env.lm.runs > runs
    await env.converge()
    assert env.limits() == {K("A", 1): 24.0, K("B", 1): 24.0, K("C", 1): 24.0}
    # And it stays so: it draws its share.
    await env.advance(DETECT * 3)
    assert env.lm.optimiser.caps == {}
    assert env.physical.violations == []


async def test_a_full_battery_is_held_at_the_minimum_and_the_rest_shared(env: LoadEnv) -> None:
    await three_evs(env, optimise=True)
    ev = env.sims["A"].connectors[1].ev
    ev.need_wh = ev.delivered_wh  # full now: SuspendedEV, 0 A
    await env.advance(DETECT + 30)
    await env.converge()
    assert env.lm.optimiser.caps == {K("A", 1): 6.0}
    assert env.limits() == {K("A", 1): 6.0, K("B", 1): 32.0, K("C", 1): 32.0}
    # Held at the minimum, it leaves nothing pending: no run is scheduled for it.
    runs = env.lm.runs
    await env.advance(600.0)
    assert env.lm.runs - runs <= 600 / 60 * 2
    assert env.lm.optimiser.caps == {K("A", 1): 6.0}
    assert env.physical.violations == []


async def test_switching_the_option_off_gives_every_share_back(env: LoadEnv) -> None:
    await three_evs(env, optimise=True)
    await env.advance(DETECT + 30)
    await env.converge()
    env.controller.set_load_settings(LoadSettings(consumption_optimisation=False))
    await env.converge()
    assert env.lm.optimiser.caps == {}
    assert env.limits() == {K("A", 1): 24.0, K("B", 1): 24.0, K("C", 1): 24.0}
    assert env.physical.violations == []


# ---------------------------------------------------------------------- ordering
def snapshot(cap: float | None) -> SiteSnapshot:
    return SiteSnapshot(
        zones=(ZoneBudget("Z", (72.0, 72.0, 72.0)),),
        connectors=tuple(
            ConnectorSnapshot(
                K(sid, 1),
                "Z",
                32.0,
                wants_current=True,
                ev_phases=3,
                max_current=cap if sid == "A" else None,
            )
            for sid in ("A", "B", "C")
        ),
        now=1000.0,
    )


def held(amps: float) -> LeaseState:
    return LeaseState(held=amps, sent_at=990.0, floor=amps, floor_at=990.0)


@pytest.mark.parametrize("answer", [True, None])
def test_a_cap_is_delivered_before_the_increases_it_makes_room_for(answer: bool | None) -> None:
    leases = {K(s, 1): held(24.0) for s in ("A", "B", "C")}
    capped = snapshot(18.0)
    targets = dict(allocate(capped).setpoints)
    assert targets == {K("A", 1): 18.0, K("B", 1): 27.0, K("C", 1): 27.0}
    first = plan(capped, targets, leases, DeliverySettings())
    assert first.sends == [Send(K("A", 1), 18.0, "decrease")]
    assert sorted(first.waiting) == [K("B", 1), K("C", 1)]
    record_sent(leases[K("A", 1)], first.sends[0], 1000.0)
    # In flight, A counts at the higher of 24 and 18: still no room.
    assert plan(capped, targets, leases, DeliverySettings(), now=1001.0).sends == []
    record_answer(leases[K("A", 1)], accepted=answer, now=1002.0)
    after = plan(capped, targets, leases, DeliverySettings(), now=1002.0)
    if answer:
        assert {s.connector_id: s.kind for s in after.sends} == {
            K("B", 1): "increase",
            K("C", 1): "increase",
        }
    else:
        # Unknown answer: A may hold 24 A; it is sent 18 A again and nobody rises.
        assert after.sends == [Send(K("A", 1), 18.0, "decrease")]


def test_a_release_lowers_the_others_before_it_raises_the_ev() -> None:
    leases = {K("A", 1): held(18.0), K("B", 1): held(27.0), K("C", 1): held(27.0)}
    released = snapshot(None)
    targets = dict(allocate(released).setpoints)
    first = plan(released, targets, leases, DeliverySettings())
    assert {s.connector_id: s.kind for s in first.sends} == {
        K("B", 1): "decrease",
        K("C", 1): "decrease",
    }
    assert first.waiting == [K("A", 1)]
