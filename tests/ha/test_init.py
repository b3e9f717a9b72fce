"""Setup, unload, TLS, devices, device removal, persistence and robustness of the integration."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from ocpp_peer import recv_json
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.const import (
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    DOMAIN,
    EVENT_SESSION_ENDED,
)
from custom_components.ev_charging_expert.evcore.model import Registration

from .conftest import START, ConnectCharger, HaCharger, entity_id, open_websocket, wait_for

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.typing import WebSocketGenerator

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock


def _assert_port_free(port: int) -> None:
    with socket.socket() as sock:
        # As a server binds: closed charger connections may linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


async def test_setup_and_unload_frees_the_port(
    hass: HomeAssistant, init_integration: MockConfigEntry, port: int
) -> None:
    assert init_integration.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_unload_closes_every_charger_connection_and_the_port(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    port: int,
) -> None:
    chargers = [await connect_charger(f"CP{i}") for i in (1, 2)]

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()

    for charger in chargers:
        # The receive loop ends because the central system closed the connection.
        await asyncio.wait([charger.task], timeout=10)
        assert charger.task.done()
    _assert_port_free(port)
    sensors = hass.states.async_entity_ids(Platform.SENSOR)
    assert sensors
    assert all(hass.states.get(sensor).state == STATE_UNAVAILABLE for sensor in sensors)


async def test_setup_retries_while_the_port_is_taken(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, port: int
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        mock_config_entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert mock_config_entry.error_reason_translation_key == "cannot_listen"
    assert mock_config_entry.runtime_data.controller.port is None


async def test_entry_with_tls_serves_wss(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    port: int,
    tls_pair: tuple[str, str],
) -> None:
    certfile, keyfile = tls_pair
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={**mock_config_entry.data, CONF_SSL_CERTFILE: certfile, CONF_SSL_KEYFILE: keyfile},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    client_context = ssl.create_default_context(cafile=certfile)

    ws = await connect(
        f"wss://127.0.0.1:{port}/ocpp/CP1",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ssl=client_context,
        ping_interval=None,
    )
    charger = HaCharger("CP1", ws)
    charger.task = asyncio.create_task(charger.start())
    assert (await charger.boot()).status == "Accepted"
    await charger.close()

    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_charger_becomes_a_device_with_its_boot_identity(
    hass: HomeAssistant, connect_charger: ConnectCharger
) -> None:
    await connect_charger("CP1", connectors=2)
    registry = dr.async_get(hass)
    station = registry.async_get_device(identifiers={(DOMAIN, "CP1")})
    assert station is not None
    assert (station.manufacturer, station.model) == ("Acme", "Wallbox")
    assert station.serial_number == "SN-1"
    assert station.sw_version == "1.2.3"
    connector = registry.async_get_device(identifiers={(DOMAIN, "CP1#2")})
    assert connector is not None
    assert connector.via_device_id == station.id
    assert connector.name == "CP1 connector 2"
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, "CP1_2_status")
    assert entity_id is not None
    assert hass.states.get(entity_id).state == "available"


async def test_station_device_hangs_off_the_central_system_device(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    device_registry: dr.DeviceRegistry,
) -> None:
    await connect_charger("CP1")
    central = device_registry.async_get_device(identifiers={(DOMAIN, init_integration.entry_id)})
    station = device_registry.async_get_device(identifiers={(DOMAIN, "CP1")})

    assert central is not None
    assert central.entry_type is dr.DeviceEntryType.SERVICE
    assert station.via_device_id == central.id


async def test_new_firmware_at_reboot_updates_the_device(
    hass: HomeAssistant, connect_charger: ConnectCharger, device_registry: dr.DeviceRegistry
) -> None:
    charger = await connect_charger("CP1")

    await charger.boot(charge_box_serial_number="BOX-9", firmware_version="2.0.0")

    await wait_for(
        hass,
        lambda: (
            device_registry.async_get_device(identifiers={(DOMAIN, "CP1")}).sw_version == "2.0.0"
        ),
    )
    station = device_registry.async_get_device(identifiers={(DOMAIN, "CP1")})
    assert station.serial_number == "BOX-9"


async def test_connector_reported_later_gets_its_device_and_entities(
    hass: HomeAssistant, connect_charger: ConnectCharger, device_registry: dr.DeviceRegistry
) -> None:
    charger = await connect_charger("CP1", connectors=1)
    assert device_registry.async_get_device(identifiers={(DOMAIN, "CP1#2")}) is None

    await charger.status(2, "Preparing")

    await wait_for(hass, lambda: hass.states.get("sensor.cp1_connector_2_status") is not None)
    assert hass.states.get(entity_id(hass, "sensor", "CP1_2_status")).state == "preparing"
    assert device_registry.async_get_device(identifiers={(DOMAIN, "CP1#2")}) is not None


async def test_removing_a_station_device_removes_its_connectors_and_refuses_the_charger(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    hass_ws_client: WebSocketGenerator,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    port: int,
) -> None:
    assert await async_setup_component(hass, "config", {})
    charger = await connect_charger("CP1", connectors=2)
    station = device_registry.async_get_device(identifiers={(DOMAIN, "CP1")})
    client = await hass_ws_client(hass)

    response = await client.remove_device(station.id, init_integration.entry_id)
    await hass.async_block_till_done()

    assert response["success"]
    for identifier in ("CP1", "CP1#1", "CP1#2"):
        assert device_registry.async_get_device(identifiers={(DOMAIN, identifier)}) is None
    site = device_registry.async_get_device(identifiers={(DOMAIN, init_integration.entry_id)})
    assert site is not None
    assert not [
        e
        for e in er.async_entries_for_config_entry(entity_registry, init_integration.entry_id)
        if e.device_id != site.id  # the site's own entities stay
    ]
    assert hub.site.stations["CP1"].registration is Registration.REMOVED
    # Its connection was closed, and it may not come back.
    await asyncio.wait([charger.task], timeout=10)
    assert charger.task.done()
    with pytest.raises(InvalidStatus) as err:
        await open_websocket(port, "CP1")
    assert err.value.response.status_code == 403


async def test_connector_and_central_system_devices_cannot_be_removed_alone(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    hass_ws_client: WebSocketGenerator,
    device_registry: dr.DeviceRegistry,
) -> None:
    assert await async_setup_component(hass, "config", {})
    await connect_charger("CP1", connectors=2)
    client = await hass_ws_client(hass)

    for identifier in ("CP1#2", init_integration.entry_id):
        device = device_registry.async_get_device(identifiers={(DOMAIN, identifier)})
        response = await client.remove_device(device.id, init_integration.entry_id)
        assert not response["success"]
        assert device_registry.async_get_device(identifiers={(DOMAIN, identifier)}) is not None


async def test_removed_charger_accepted_again_comes_back_with_its_entities(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    hass_ws_client: WebSocketGenerator,
    device_registry: dr.DeviceRegistry,
) -> None:
    assert await async_setup_component(hass, "config", {})
    await connect_charger("CP1", connectors=2)
    station = device_registry.async_get_device(identifiers={(DOMAIN, "CP1")})
    client = await hass_ws_client(hass)
    assert (await client.remove_device(station.id, init_integration.entry_id))["success"]
    await hass.async_block_till_done()

    await hass.services.async_call(
        DOMAIN, "accept_charger", {"charge_box_id": "CP1"}, blocking=True
    )
    await connect_charger("CP1", connectors=2)

    await wait_for(hass, lambda: hass.states.get("sensor.cp1_connector_2_status") is not None)
    assert hass.states.get(entity_id(hass, "sensor", "CP1_2_status")).state == "available"
    assert device_registry.async_get_device(identifiers={(DOMAIN, "CP1")}).model == "Wallbox"


async def test_stations_and_open_sessions_survive_a_restart(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    clock: ManualClock,
    connect_charger: ConnectCharger,
    hass_storage: dict[str, Any],
) -> None:
    charger = await connect_charger("CP1", connectors=2)
    started = await charger.start_transaction(2, "TAG1", meter_start=1000, timestamp=START)
    await charger.status(2, "Charging")
    await hass.async_block_till_done()

    # Home Assistant stops: the registry is written when the entry unloads.
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    await charger.close()
    stored = hass_storage[f"{DOMAIN}.{init_integration.entry_id}"]["data"]
    assert stored["stations"]["CP1"]["connectors"]["2"]["transaction_id"] == started.transaction_id

    # ...and starts again from storage, before the charger is back.
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    hub: EvChargingCoordinator = init_integration.runtime_data
    connected = entity_id(hass, "binary_sensor", "CP1_connected")
    status = entity_id(hass, "sensor", "CP1_2_status")
    assert hass.states.get(connected).state == STATE_OFF
    assert hass.states.get(status).state == STATE_UNAVAILABLE
    assert hass.states.get(entity_id(hass, "sensor", "CP1_2_id_tag")).state == STATE_UNAVAILABLE
    transaction = hub.site.stations["CP1"].connector(2).transaction
    assert transaction is not None
    assert transaction.transaction_id == started.transaction_id

    # The charger returns and ends the session it had open across the restart.
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    charger = await connect_charger("CP1", connectors=2)
    assert hass.states.get(connected).state == STATE_ON
    assert hass.states.get(entity_id(hass, "sensor", "CP1_2_id_tag")).state == "TAG1"
    await charger.stop_transaction(started.transaction_id, 5000, reason="EVDisconnected")
    await wait_for(hass, lambda: ended)

    assert ended[0].data["transaction_id"] == started.transaction_id
    assert ended[0].data["energy_wh"] == 4000.0
    # A new session after the restart gets a new, site-unique id.
    again = await charger.start_transaction(1, "TAG2")
    assert again.transaction_id > started.transaction_id


async def test_malformed_frame_from_one_charger_leaves_the_others_working(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger, port: int
) -> None:
    good = await connect_charger("CP1")
    bad = await open_websocket(port, "BAD")
    try:
        await bad.send('[2, "m1", "BootNotification", {"chargePointVendor": ')
        reply = await recv_json(bad)
        assert reply[0] == 4
        assert reply[1] == "-1"

        await bad.send(json.dumps([2, "m2", "Heartbeat", {"unexpected": True}]))
        reply = await recv_json(bad)
        assert reply[:2] == [4, "m2"]

        await good.meter_values(1, [{"measurand": "Power.Active.Import", "value": "7400"}])
        power = entity_id(hass, "sensor", "CP1_1_power")
        await wait_for(hass, lambda: hass.states.get(power).state == "7400.0")
        await hass.services.async_call(
            "button",
            "press",
            {"entity_id": entity_id(hass, "button", "CP1_soft_reset")},
            blocking=True,
        )
        assert good.requests["Reset"] == [{"type": "Soft"}]
    finally:
        await bad.close()


async def test_removing_the_entry_deletes_the_station_registry(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    hass_storage: dict[str, Any],
) -> None:
    await connect_charger("CP1")
    key = f"{DOMAIN}.{init_integration.entry_id}"
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert key in hass_storage

    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()

    assert key not in hass_storage
