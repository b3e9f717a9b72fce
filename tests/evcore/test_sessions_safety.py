"""Force stop and load management: freeing a gone charger's connector never overloads a zone.

The physical invariant of conftest_load runs after every profile a charger accepts and every
clock step: what each charger may draw (its own profile store) summed per zone and phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.ev_charging_expert.evcore.config import ZoneConfig
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey as K

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture


async def test_force_stop_of_an_offline_charger_keeps_counting_what_it_may_draw(env: LoadEnv):
    env.set_zones(ZoneConfig("B", "Building B", 32.0))
    s5 = await env.add_charger("S5")
    await env.add_charger("S6")
    env.place("S5", "B")
    env.place("S6", "B")
    await env.plug("S5", phases=3)
    await env.plug("S6", phases=3)
    await env.converge()
    assert env.limits() == {K("S5", 1): 16.0, K("S6", 1): 16.0}

    # S5 is gone for good (its EV still charges on its last lease, then on its base).
    s5.reconnect_delay = (3600.0, 3600.0)
    await env.stop_charger("S5")
    await env.advance(10)
    closed = env.site.force_stop_session("S5", 1)
    assert closed.stop_reason == "ForcedByUser"
    assert env.site.stations["S5"].connectors[1].transaction is None

    # Time passes over S5's lease expiry: S6 may rise only as S5's share really frees up;
    # the invariant (checked at every step) catches any moment the zone is overloaded.
    await env.advance(240, step=5)
    await env.converge()
    assert env.limits()[K("S6", 1)] + env.limits()[K("S5", 1)] <= 32.0
