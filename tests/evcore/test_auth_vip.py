"""VIP cards feed the allocator's VIP tier; the physical invariant of conftest_load holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custom_components.ev_charging_expert.evcore.auth import Card
from custom_components.ev_charging_expert.evcore.auth.modes import AuthMode
from custom_components.ev_charging_expert.evcore.config import ZoneConfig
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey as K

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture


async def test_a_vip_card_is_served_first_and_the_zone_never_overloads(env: LoadEnv) -> None:
    env.set_zones(ZoneConfig("C", "Small", 16.0))
    env.controller.auth.set_zone_mode("C", mode=AuthMode.KNOWN_CARDS)
    env.controller.cards.add(Card("REGULAR1"))
    env.controller.cards.add(Card("REGULAR2"))
    env.controller.cards.add(Card("BOSS", vip=True))
    for sid in ("R1", "R2", "V"):
        await env.add_charger(sid)
        env.place(sid, "C")
    await env.plug("R1", tag="REGULAR1")
    await env.plug("R2", tag="REGULAR2")
    await env.converge()
    assert env.limits() == {K("R1", 1): 8.0, K("R2", 1): 8.0, K("V", 1): 0.0}
    # The VIP card arrives at an ordinary station while both regular EVs draw the zone:
    # they are lowered (confirmed) before the VIP rises; `env` checks every step.
    await env.plug("V", tag="BOSS")
    await env.converge()
    assert env.limits() == {K("R1", 1): 0.0, K("R2", 1): 0.0, K("V", 1): 16.0}
    # The card loses its VIP status mid-session: back to sharing.
    env.controller.cards.update("BOSS", vip=False)
    await env.advance(900)
    await env.converge()
    assert sum(env.limits().values()) <= 16.0
    assert env.limits()[K("V", 1)] < 16.0


async def test_an_unknown_card_does_not_charge_in_a_known_cards_zone(env: LoadEnv) -> None:
    env.set_zones(ZoneConfig("C", "Small", 16.0))
    env.controller.auth.set_zone_mode("C", mode=AuthMode.KNOWN_CARDS)
    await env.add_charger("S1")
    env.place("S1", "C")
    await env.plug("S1", tag="STRANGER")
    await env.converge()
    assert env.site.stations["S1"].connectors[1].transaction is None
    assert env.limits() == {K("S1", 1): 0.0}
    assert env.controller.cards.get("STRANGER").pending
