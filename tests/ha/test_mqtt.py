"""MQTT export and commands through HA's mqtt integration (HA's `mqtt_mock`).

The end-to-end run against a real broker is in test_mqtt_broker.py.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from homeassistant.helpers import config_validation as cv, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
import voluptuous_serialize

from custom_components.ev_charging_expert.const import DOMAIN
from custom_components.ev_charging_expert.mqtt_export import ISSUE_MQTT_MISSING

from .conftest import zone_subentry

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import (
        MqttMockHAClient,
        MqttMockHAClientGenerator,
    )

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

    from .conftest import ConnectCharger

PREFIX = "site42"


def _mqtt(**changes: Any) -> dict[str, Any]:
    return {
        "mqtt": {
            "export": True,
            "prefix": PREFIX,
            "min_interval": 1.0,
            "allow_control": False,
            "allow_remote_start_stop": False,
            **changes,
        }
    }


@pytest.fixture
def expected_lingering_timers() -> bool:
    """The mocked paho client never closes its socket, so HA's mqtt client keeps its 1 s
    housekeeping timer (HA's own mqtt tests live with it the same way)."""
    return True


@pytest.fixture
def zone_subentries() -> list[Any]:
    return [zone_subentry("z1", "Garage", 63.0)]


@pytest.fixture
def entry_options() -> dict[str, Any]:
    return _mqtt(allow_control=True)


def _published(mqtt_mock: MqttMockHAClient) -> dict[str, tuple[str, int, bool]]:
    """The last payload, QoS and retain flag per topic."""
    return {
        call.args[0]: (call.args[1], call.args[2], call.args[3])
        for call in mqtt_mock.async_publish.call_args_list
    }


def _export_state(hass: HomeAssistant) -> str:
    state = hass.states.get("sensor.ev_charging_expert_mqtt_export")
    assert state is not None
    return state.state


async def _command(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, name: str, payload: Any
) -> dict[str, Any]:
    mqtt_mock.async_publish.reset_mock()
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    async_fire_mqtt_message(hass, f"{PREFIX}/command/{name}", raw)
    await hass.async_block_till_done()
    reply, qos, retain = _published(mqtt_mock)[f"{PREFIX}/result"]
    assert (qos, retain) == (1, False)
    data: dict[str, Any] = json.loads(reply)
    return data


async def test_retained_states_and_availability_then_offline_on_unload(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1", connectors=1)
    await charger.status(1, "Charging")
    await hass.async_block_till_done()
    hub: EvChargingCoordinator = init_integration.runtime_data
    hub.mqtt.exporter.flush()  # due at once or after the interval: send what is due now
    published = _published(mqtt_mock)
    assert published[f"{PREFIX}/availability"] == ("online", 1, True)
    for topic in ("site", "zone/z1", "station/CP1", "connector/CP1/1"):
        payload, _, retain = published[f"{PREFIX}/{topic}"]
        assert retain is True
        assert json.loads(payload)["schema_version"] == 1
    assert _export_state(hass) == "online"

    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert _published(mqtt_mock)[f"{PREFIX}/availability"] == ("offline", 1, True)


async def test_commands_change_the_site_and_bad_ones_get_an_error(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    await connect_charger("CP1", connectors=1)
    hub: EvChargingCoordinator = init_integration.runtime_data
    reply = await _command(
        hass,
        mqtt_mock,
        "connector_limit",
        {"id": "r1", "station": "CP1", "connector": 1, "amps": 10},
    )
    assert (reply["id"], reply["accepted"]) == ("r1", True)
    assert hub.site.stations["CP1"].config.connector(1).user_limit == 10.0
    # The HA number shows the same limit: one command path.
    await hass.async_block_till_done()

    reply = await _command(hass, mqtt_mock, "connector_limit", '{"id": "r2", "amps": ')
    assert (reply["accepted"], reply["code"]) == (False, "invalid_json")
    reply = await _command(
        hass,
        mqtt_mock,
        "connector_limit",
        {"id": "r3", "station": "CP1", "connector": 1, "amps": -3},
    )
    assert (reply["id"], reply["accepted"], reply["code"]) == ("r3", False, "invalid_payload")
    assert "amps" in reply["message"]
    assert hub.site.stations["CP1"].config.connector(1).user_limit == 10.0  # unchanged
    reply = await _command(
        hass, mqtt_mock, "remote_start", {"id": 4, "station": "CP1", "id_tag": "T"}
    )
    assert (reply["accepted"], reply["code"]) == (False, "disabled")


@pytest.mark.parametrize("entry_options", [_mqtt(allow_control=False)])
async def test_no_command_is_heard_unless_control_is_allowed(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    await connect_charger("CP1", connectors=1)
    hub: EvChargingCoordinator = init_integration.runtime_data
    mqtt_mock.async_publish.reset_mock()
    async_fire_mqtt_message(
        hass,
        f"{PREFIX}/command/connector_limit",
        json.dumps({"station": "CP1", "connector": 1, "amps": 6}),
    )
    await hass.async_block_till_done()
    assert f"{PREFIX}/result" not in _published(mqtt_mock)
    assert hub.site.stations["CP1"].config.connector(1).user_limit is None


@pytest.mark.parametrize("entry_options", [_mqtt()])
async def test_export_on_without_mqtt_raises_a_repair(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_MQTT_MISSING) is not None
    assert _export_state(hass) == "mqtt_missing"
    # Turned off in the options: the repair goes.
    hass.config_entries.async_update_entry(init_integration, options=_mqtt(export=False))
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_MQTT_MISSING) is None
    assert _export_state(hass) == "disabled"


@pytest.mark.parametrize("entry_options", [{}])
async def test_export_is_off_by_default_and_the_options_turn_it_on_live(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, init_integration: MockConfigEntry
) -> None:
    assert not [c for c in mqtt_mock.async_publish.call_args_list if c.args[0].startswith(PREFIX)]
    assert _export_state(hass) == "disabled"
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    # The form goes to the frontend as JSON: every field must serialise.
    voluptuous_serialize.convert(result["data_schema"], custom_serializer=cv.custom_serializer)
    values = {
        "minimum_standard": "iec_61851",
        "shed_priority": "energy",
        "reevaluation_minutes": 15,
        "nominal_voltage": 230,
        "safety_margin": 1.0,
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**values, **_mqtt(prefix="a/#")}
    )
    assert result["type"] == "form"
    assert result["errors"] == {"base": "invalid_mqtt_prefix"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "minimum_standard": "iec_61851",
            "shed_priority": "energy",
            "reevaluation_minutes": 15,
            "nominal_voltage": 230,
            "safety_margin": 1.0,
            **_mqtt(prefix=f"{PREFIX}/"),
        },
    )
    assert result["type"] == "create_entry"
    assert init_integration.options["mqtt"]["prefix"] == PREFIX  # the slash is dropped
    await hass.async_block_till_done()
    assert _published(mqtt_mock)[f"{PREFIX}/availability"] == ("online", 1, True)
    assert _export_state(hass) == "online"

    # Another prefix: the old topics are deleted (empty retained messages).
    hass.config_entries.async_update_entry(
        init_integration, options={**init_integration.options, **_mqtt(prefix="other")}
    )
    await hass.async_block_till_done()
    published = _published(mqtt_mock)
    assert published[f"{PREFIX}/availability"] == ("", 1, True)
    assert published[f"{PREFIX}/site"] == ("", 0, True)
    assert published["other/availability"] == ("online", 1, True)


async def test_broker_reconnect_republishes_every_state(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    clock: ManualClock,
    init_integration: MockConfigEntry,
) -> None:
    from homeassistant.components.mqtt import MQTT_CONNECTION_STATE  # noqa: PLC0415
    from homeassistant.helpers.dispatcher import async_dispatcher_send  # noqa: PLC0415

    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, False)
    await hass.async_block_till_done()
    assert _export_state(hass) == "broker_disconnected"
    mqtt_mock.async_publish.reset_mock()
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, True)
    await hass.async_block_till_done()
    clock.advance(1.0)  # each object at most once per second, even now
    await hass.async_block_till_done()
    published = _published(mqtt_mock)
    assert published[f"{PREFIX}/availability"][0] == "online"
    assert f"{PREFIX}/site" in published
    assert _export_state(hass) == "online"


async def test_home_assistant_stopping_says_offline(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, init_integration: MockConfigEntry
) -> None:
    from homeassistant.const import EVENT_HOMEASSISTANT_STOP  # noqa: PLC0415

    assert _published(mqtt_mock)[f"{PREFIX}/availability"][0] == "online"
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert _published(mqtt_mock)[f"{PREFIX}/availability"] == ("offline", 1, True)


@pytest.mark.parametrize("entry_options", [_mqtt()])
async def test_export_waits_for_mqtt_still_setting_up_without_holding_our_setup(
    hass: HomeAssistant,
    mock_hass_config: None,
    mqtt_mock_entry: MqttMockHAClientGenerator,  # its entry exists, not set up yet
    init_integration: MockConfigEntry,
) -> None:
    assert _export_state(hass) == "broker_disconnected"
    mqtt_mock = await mqtt_mock_entry()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _export_state(hass) == "online"
    assert _published(mqtt_mock)[f"{PREFIX}/availability"] == ("online", 1, True)


@pytest.mark.parametrize("entry_options", [_mqtt()])
async def test_mqtt_set_up_later_starts_the_export_without_a_reload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,  # first: no MQTT entry exists yet
    mock_hass_config: None,
    mqtt_mock_entry: MqttMockHAClientGenerator,
) -> None:
    assert _export_state(hass) == "mqtt_missing"
    mqtt_mock = await mqtt_mock_entry()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _export_state(hass) == "online"
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_MQTT_MISSING) is None
    assert _published(mqtt_mock)[f"{PREFIX}/availability"] == ("online", 1, True)
