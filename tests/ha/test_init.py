"""Setup, unload, devices and persistence of the integration."""

from __future__ import annotations

import socket

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_charging_expert.const import DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .conftest import ConnectCharger


async def test_setup_and_unload_frees_the_port(
    hass: HomeAssistant, init_integration: MockConfigEntry, port: int
) -> None:
    assert init_integration.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


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
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, "CP1_2_status")
    assert entity_id is not None
    assert hass.states.get(entity_id).state == "available"
