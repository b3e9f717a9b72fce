"""MQTT zone setpoints end to end (no HA): the command handler, the operating rules, load
management and simulated chargers on loopback, with the physical checker of conftest_load.

Safety: while EVs charge, a setpoint never lets a phase exceed the old limit during the change
(every accepted profile is checked against the zone's max) nor the new one once the decreases
are confirmed; nothing from outside raises a zone above its max.
"""

from __future__ import annotations

from dataclasses import replace
import json
from typing import TYPE_CHECKING, Any

from custom_components.ev_charging_expert.evcore.config import ZoneConfig
from custom_components.ev_charging_expert.evcore.export.commands import (
    CommandHandler,
    CommandSettings,
)
from custom_components.ev_charging_expert.evcore.export.exporter import StateExporter
from custom_components.ev_charging_expert.evcore.rules import RemoteSettings, SetpointSource

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

ZONE = ZoneConfig("z1", "Garage", 63.0)
TOL = 1e-6


async def _site(env: LoadEnv) -> tuple[CommandHandler, dict[str, str]]:
    env.set_zones(ZONE)
    for sid in ("S1", "S2", "S3"):
        await env.add_charger(sid)
        env.place(sid, "z1")
    for sid in ("S1", "S2", "S3"):
        await env.plug(sid)
    await env.converge()
    env.controller.set_remote_settings(
        RemoteSettings(enabled=True, source=SetpointSource.MQTT, min_period=0.0)
    )
    retained: dict[str, str] = {}

    def publish(topic: str, payload: str, *, retain: bool) -> None:
        assert retain
        retained[topic] = payload

    StateExporter(env.controller, publish).start()
    return CommandHandler(env.controller, CommandSettings(allow_control=True)), retained


async def _setpoint(handler: CommandHandler, zone: str, amps: Any) -> dict[str, Any]:
    payload = json.dumps({"id": "sp", "zone": zone, "amps": amps})
    return (await handler.handle("zone_setpoint", payload)).to_dict()


def _phase_sums(env: LoadEnv) -> list[float]:
    return env.physical.loads()["z1"]


async def test_an_mqtt_setpoint_lowers_the_zone_safely_while_evs_charge(env: LoadEnv) -> None:
    handler, retained = await _site(env)
    assert max(_phase_sums(env)) > 40.0  # 3 x 21 A before

    reply = await _setpoint(handler, "Garage", 30)  # by name; the id works as well
    assert (reply["accepted"], reply["code"]) == (True, "accepted")
    # During the change every accepted profile was checked against the old limit (63 A) by
    # the physical checker; once converged, against the new one.
    await env.converge()
    env.physical.zones["z1"] = replace(ZONE, max_current=30.0)
    env.check("after the MQTT setpoint")
    assert max(_phase_sums(env)) <= 30.0 + TOL
    env.clock.advance(1.0)
    zone = json.loads(retained["ev_charging_expert/zone/z1"])
    assert (zone["remote_setpoint_a"], zone["limited_by"]) == (30.0, "remote")
    site = json.loads(retained["ev_charging_expert/site"])
    assert site["rules"]["setpoints"] == {"z1": 30.0}

    # Cleared: back up, never above the switchboard's max.
    env.physical.zones["z1"] = ZONE
    reply = await _setpoint(handler, "z1", None)
    assert reply["accepted"] is True
    await env.converge()
    assert 30.0 < max(_phase_sums(env)) <= 63.0 + TOL


async def test_an_mqtt_setpoint_cannot_raise_a_zone_or_come_from_elsewhere(
    env: LoadEnv,
) -> None:
    handler, _ = await _site(env)
    before = dict(env.limits())
    reply = await _setpoint(handler, "z1", 80)  # above the zone's 63 A
    assert (reply["accepted"], reply["code"]) == (False, "out_of_range")
    reply = await _setpoint(handler, "nowhere", 10)
    assert (reply["accepted"], reply["code"]) == (False, "unknown_zone")
    env.controller.set_remote_settings(
        RemoteSettings(enabled=True, source=SetpointSource.MODBUS, min_period=0.0)
    )
    reply = await _setpoint(handler, "z1", 10)
    assert (reply["accepted"], reply["code"]) == (False, "not_controlling_source")
    heartbeat = (await handler.handle("heartbeat", '{"id": 1}')).to_dict()
    assert (heartbeat["accepted"], heartbeat["code"]) == (False, "not_controlling_source")
    await env.converge()
    assert env.limits() == before
    assert env.controller.rules_view().setpoints == {}
