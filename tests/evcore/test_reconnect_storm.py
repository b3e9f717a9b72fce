"""A reconnection storm on a small scale: 50 chargers drop and come back at once.

The large one (1000 chargers, real time) is `bench/reconnect_storm.py`; this one runs on the
manual clock of conftest_load, whose physical checker (every zone phase, what the chargers'
own profiles allow, after every profile accepted and every clock step) covers the whole storm.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import LoadSettings, ZoneConfig
from custom_components.ev_charging_expert.evcore.load import LoadManager

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

STATIONS = 50
PER_ZONE = 10
WIRINGS = (Wiring.TRI123, Wiring.TRI231, Wiring.TRI312, Wiring.MONO1, Wiring.MONO2, Wiring.MONO3)
# The site zone binds (every EV counted on every wired phase gets about 12 A), every EV's
# minimum fits: all of them charge.
ZONES = (
    ZoneConfig("site", "Site", 8.0 * STATIONS + 100.0),
    *(
        ZoneConfig(f"z{k}", f"Zone {k}", 10.0 * PER_ZONE + 40.0, parent_id="site")
        for k in range(STATIONS // PER_ZONE)
    ),
)


async def _site(env: LoadEnv) -> list[str]:
    env.set_zones(*ZONES)
    stations = [f"ST{i:02d}" for i in range(STATIONS)]
    for station_id in stations:
        await env.add_charger(station_id, wait=False)
    await env.wait_for(lambda: all(env._known(s) for s in stations))
    for i, station_id in enumerate(stations):
        env.place(station_id, f"z{i // PER_ZONE}", {1: WIRINGS[i % len(WIRINGS)]})
    await asyncio.gather(*(env.plug(s, phases=1 if i % 2 else 3) for i, s in enumerate(stations)))
    await env.converge()
    return stations


def _all_charging(env: LoadEnv) -> bool:
    last = env.lm.last
    return last is not None and all(v > 0 for v in last.allocation.setpoints.values())


@pytest.mark.parametrize("restart", [False, True], ids=["network", "restart"])
async def test_fifty_chargers_reconnecting_at_once_stay_within_every_zone(
    env: LoadEnv, restart: bool
) -> None:
    """Every connection closes at once (the network, or Home Assistant restarting: then load
    management starts again knowing nothing of the chargers); they all come back 5 s later,
    at the same instant. No zone phase is ever over its max meanwhile, and every EV charges
    again once the chargers are under control (nobody is left suspended)."""
    stations = await _site(env)
    assert len(env.lm.last.allocation.setpoints) == STATIONS
    assert _all_charging(env)
    if restart:
        env.lm.stop()
        env.lm = LoadManager(env.site, settings=LoadSettings())
        env.lm.set_zones({z.zone_id: z for z in ZONES})
    for station_id in stations:
        await env.site.chargers[station_id].close(code=1001, reason="Going away")
    await env.wait_for(lambda: not any(env.site.stations[s].connected for s in stations))
    await env.settle()
    start = env.clock.monotonic()
    await env.advance(5.0, step=0.5)  # every charger reconnects at this instant
    await env.wait_for(lambda: all(env.site.stations[s].connected for s in stations))
    await env.converge()
    assert env.physical.checks > 0
    assert not env.physical.violations
    assert _all_charging(env)
    assert not env.lm.state.allocator.suspended
    assert env.clock.monotonic() - start < 120
    assert all(env.sims[s].connects == 2 for s in stations)
