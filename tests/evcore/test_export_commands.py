"""Commands from outside: schema checks, refusals that change nothing, and the same command path
as HA's entities (connector limit and pause) and the operating rules (zone setpoint)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import (
    ConnectorConfig,
    StationConfig,
    ZoneConfig,
)
from custom_components.ev_charging_expert.evcore.controller import Controller
from custom_components.ev_charging_expert.evcore.export.commands import (
    COMMAND_SCHEMAS,
    REPLY_SCHEMA,
    CommandHandler,
    CommandSettings,
)
from custom_components.ev_charging_expert.evcore.model import BootInfo, NewChargerPolicy
from custom_components.ev_charging_expert.evcore.site import MemoryStore, SiteSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ALLOWED = CommandSettings(allow_control=True)


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    controller = Controller(
        clock=ManualClock(),
        store=MemoryStore(),
        settings=SiteSettings(new_charger_policy=NewChargerPolicy.ACCEPT),
    )
    await controller.restore()
    controller.set_zones({"z1": ZoneConfig("z1", "Garage", 63.0)})
    controller.site.station_booted("S1", BootInfo("Vendor", "Model"))
    controller.site.configure_station(
        "S1", StationConfig(zone_id="z1", connectors={1: ConnectorConfig(rating=32.0)})
    )
    yield controller
    await controller.stop()


async def _send(handler: CommandHandler, command: str, payload: Any) -> dict[str, Any]:
    raw = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    reply = (await handler.handle(command, raw)).to_dict()
    Draft202012Validator(REPLY_SCHEMA).validate(reply)
    return reply


LIMIT = "connector_limit"


def _limit(**changes: Any) -> dict[str, Any]:
    payload = {"id": 7, "station": "S1", "connector": 1, "amps": 6, **changes}
    return {k: v for k, v in payload.items() if v is not ...}


@pytest.mark.parametrize(
    ("command", "payload", "code", "names"),
    [
        (LIMIT, "{not json", "invalid_json", "not JSON"),
        (LIMIT, "[1, 2]", "invalid_payload", "JSON object"),
        (LIMIT, '{"id": 7, "station": "S1", "connector": 1, "amps": NaN}', "invalid_json", "NaN"),
        (LIMIT, _limit(amps=-1), "invalid_payload", "amps"),
        (LIMIT, _limit(amps="6"), "invalid_payload", "amps"),
        (LIMIT, _limit(amps=...), "invalid_payload", "amps"),
        (LIMIT, _limit(x=1), "invalid_payload", "x"),
        (LIMIT, _limit(connector=0), "invalid_payload", "connector"),
        (LIMIT, _limit(amps=40), "out_of_range", "rating"),
        (LIMIT, _limit(station="NOPE"), "unknown_station", "NOPE"),
        (LIMIT, _limit(connector=9), "unknown_connector", "9"),
        ("connector_pause", _limit(amps=..., paused="yes"), "invalid_payload", "paused"),
        ("remote_start", {"id": 7, "station": "S1", "id_tag": "CARD"}, "disabled", "remote start"),
        ("reboot_everything", {"id": 7}, "unknown_command", "reboot_everything"),
        (LIMIT, "x" * 5000, "invalid_payload", "4096"),
    ],
)
async def test_bad_commands_are_refused_naming_the_problem_and_change_nothing(
    controller: Controller, command: str, payload: Any, code: str, names: str
) -> None:
    handler = CommandHandler(controller, ALLOWED)
    before = controller.site.stations["S1"].config
    reply = await _send(handler, command, payload)
    assert reply["accepted"] is False
    assert reply["code"] == code
    assert names in reply["message"]
    assert reply["id"] in (7, None)
    if isinstance(payload, dict) and code != "unknown_command":
        assert reply["id"] == 7  # the id is echoed whenever it could be read
    assert controller.site.stations["S1"].config == before
    assert handler.refused == 1


async def test_every_command_is_refused_while_control_is_not_allowed(
    controller: Controller,
) -> None:
    handler = CommandHandler(controller)  # the default: off
    for command in COMMAND_SCHEMAS:
        reply = await _send(handler, command, {"id": "r1"})
        assert (reply["accepted"], reply["code"]) == (False, "control_disabled")
    assert controller.site.stations["S1"].config.connector(1).user_limit is None


async def test_connector_limit_and_pause_take_the_entities_path(controller: Controller) -> None:
    handler = CommandHandler(controller, ALLOWED)
    reply = await _send(
        handler, "connector_limit", {"id": "a", "station": "S1", "connector": 1, "amps": 10}
    )
    assert reply == {
        "id": "a",
        "command": "connector_limit",
        "accepted": True,
        "code": "accepted",
        "message": "limited to 10 A",
    }
    assert controller.site.stations["S1"].config.connector(1).user_limit == 10.0
    await _send(handler, "connector_limit", {"station": "S1", "connector": 1, "amps": 32})
    assert controller.site.stations["S1"].config.connector(1).user_limit is None  # = rating
    await _send(handler, "connector_limit", {"station": "S1", "connector": 1, "amps": 8})
    await _send(handler, "connector_limit", {"station": "S1", "connector": 1, "amps": None})
    assert controller.site.stations["S1"].config.connector(1).user_limit is None
    reply = await _send(
        handler, "connector_pause", {"station": "S1", "connector": 1, "paused": True}
    )
    assert reply["accepted"] is True
    assert controller.site.stations["S1"].config.connector(1).paused is True


async def test_remote_start_needs_its_own_switch_and_a_connected_charger(
    controller: Controller,
) -> None:
    handler = CommandHandler(
        controller, CommandSettings(allow_control=True, allow_remote_start_stop=True)
    )
    reply = await _send(handler, "remote_start", {"id": 1, "station": "S1", "id_tag": "CARD"})
    assert (reply["accepted"], reply["code"]) == (False, "not_connected")
    reply = await _send(handler, "remote_stop", {"id": 2, "station": "S1"})
    assert (reply["accepted"], reply["code"]) == (False, "no_single_transaction")


async def test_a_retained_command_is_not_run(controller: Controller) -> None:
    handler = CommandHandler(controller, ALLOWED)
    payload = json.dumps({"id": "old", "station": "S1", "connector": 1, "paused": True})
    reply = (await handler.handle("connector_pause", payload, retained=True)).to_dict()
    assert (reply["id"], reply["accepted"], reply["code"]) == ("old", False, "retained")
    assert controller.site.stations["S1"].config.connector(1).paused is False
