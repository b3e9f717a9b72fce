"""Operating rules end to end: a time-of-use boundary and a digital input cut zones while EVs
charge, with simulated chargers (the `ocpp` library) obeying their profiles over loopback.

The physical invariant of conftest_load checks every accepted profile (and every clock step)
against each zone's limit in `env.physical.zones`. During a cut that limit is the *old* one
(nothing may rise before the decreases that make room for it are confirmed); once the
allocation has converged, it is the *new* one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import ZoneConfig
from custom_components.ev_charging_expert.evcore.events import TouPeriodChanged
from custom_components.ev_charging_expert.evcore.rules import (
    DigitalInput,
    RemoteSettings,
    SetpointSource,
    TouConfig,
)

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

PARENT = ZoneConfig("p", "Parking", 64.0)
A = ZoneConfig("a", "Level A", 64.0, parent_id="p")
B = ZoneConfig("b", "Level B", 64.0, parent_id="p")


async def _site(env: LoadEnv) -> None:
    env.set_zones(PARENT, A, B)
    for sid, zone in (("A1", "a"), ("A2", "a"), ("B1", "b")):
        await env.add_charger(sid)
        env.place(sid, zone, {1: Wiring.TRI123})
        await env.plug(sid)
    await env.converge()


def _limit(env: LoadEnv, zone: str, amps: float) -> None:
    """What the physical checker holds zone `zone` to from now on."""
    env.physical.zones[zone] = replace(env.physical.zones[zone], max_current=amps)


def _zone_allowed(env: LoadEnv, prefix: str) -> float:
    return sum(cp.allowed(1) for sid, cp in env.sims.items() if sid.startswith(prefix))


async def test_a_tou_boundary_cuts_a_zone_and_the_other_rises_only_after(env: LoadEnv) -> None:
    await _site(env)
    # Three EVs share the parking's 64 A.
    assert _zone_allowed(env, "") <= 64.0 + 1e-6
    # T0 is Monday 08:00 UTC: a period from 08:10 cuts level A to 25 % (16 A).
    env.controller.set_tou(
        TouConfig.from_dict(
            {
                "enabled": True,
                "periods": [{"name": "peak", "percent": 25, "slots": "Mon 08:10-09:00"}],
                "excluded": {"b": ["peak"], "p": ["peak"]},
            }
        )
    )
    await env.settle()
    assert env.controller.rules_view().tou_period is None
    before = _zone_allowed(env, "A")
    assert before > 16.0
    # From the boundary on, nothing in level A may be above what it had (decreases first)
    # and the parking stays within 64 A while B rises into the room A frees.
    _limit(env, "a", before)
    await env.advance(600.0 - 300.0)  # 08:05
    await env.advance(300.0)  # 08:10: the boundary
    assert any(e == TouPeriodChanged("peak", None) for e in env.events)
    await env.converge()
    _limit(env, "a", 16.0)
    env.check("converged under the period")
    view = env.controller.zone_view("a")
    assert view is not None
    assert view.limited_by == "tou:peak"
    assert view.effective_limit == (16.0, 16.0, 16.0)
    assert _zone_allowed(env, "A") <= 16.0 + 1e-6
    assert _zone_allowed(env, "B") >= 32.0 - 1e-6  # B took the freed room (its EV's max)
    # 09:00: the period ends, level A gets its share back.
    _limit(env, "a", 64.0)
    await env.advance(50 * 60.0, step=30.0)
    await env.converge()
    assert env.controller.rules_view().tou_period is None
    assert _zone_allowed(env, "A") > 16.0


async def test_a_digital_input_cuts_every_zone_then_releases(env: LoadEnv) -> None:
    await _site(env)
    env.controller.set_inputs([DigitalInput("grid relay", 25.0)])
    env.controller.set_input_state("grid relay", False)
    await env.converge()
    total = _zone_allowed(env, "")
    assert total > 16.0
    # The relay closes: every zone at 25 % of its max (16 A). Never above the old sums.
    _limit(env, "p", total)
    env.controller.set_input_state("grid relay", True)
    await env.converge()
    for zone in ("p", "a", "b"):
        _limit(env, zone, 16.0)
        view = env.controller.zone_view(zone)
        assert view is not None
        assert view.limited_by == "input:grid relay"
    env.check("converged under the input")
    assert env.controller.rules_view().active_inputs == ("grid relay",)
    # 0 %: every EV suspended.
    env.controller.set_inputs([DigitalInput("grid relay", 0.0)])
    await env.converge()
    for zone in ("p", "a", "b"):
        _limit(env, zone, 0.0)
    env.check("suspended by a 0 % input")
    assert _zone_allowed(env, "") == 0.0
    # Released: back to the switchboards' max.
    for zone, config in (("p", PARENT), ("a", A), ("b", B)):
        _limit(env, zone, config.max_current)
    env.controller.set_input_state("grid relay", False)
    await env.advance(90.0)  # suspended EVs resume after the allocator's resume delay
    await env.converge()
    assert _zone_allowed(env, "") > 16.0


async def test_a_remote_setpoint_cuts_a_zone_safely(env: LoadEnv) -> None:
    await _site(env)
    env.controller.set_remote_settings(RemoteSettings(enabled=True))
    before = _zone_allowed(env, "")
    _limit(env, "p", before)
    result = env.controller.set_zone_setpoint("p", 20.0, source=SetpointSource.HA)
    assert result.accepted
    await env.converge()
    _limit(env, "p", 20.0)
    env.check("converged under the remote setpoint")
    view = env.controller.zone_view("a")
    assert view is not None
    assert view.limited_by == "remote"  # its parent's
    assert view.effective_limit == (20.0, 20.0, 20.0)
