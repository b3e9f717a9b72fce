"""Diagnostics of the config entry and of a device, secrets and card numbers redacted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from syrupy.filters import props

from custom_components.ev_charging_expert.const import DOMAIN

from .conftest import START, ConnectCharger, HaCharger

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import device_registry as dr
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

PASSWORD = "s3cret-key-of-20-ch"
REDACTED = "**REDACTED**"


@pytest.fixture
async def charging(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> HaCharger:
    """CP1 with a password, an open session on connector 1 and a meter value."""
    charger = await connect_charger("CP1", connectors=2)
    await charger.boot(
        charge_point_serial_number="SN-1", iccid="8931000000000000001", imsi="204080000000001"
    )
    await charger.start_transaction(1, "04A1B2C3", meter_start=1000, timestamp=START)
    await charger.meter_values(
        1, [{"measurand": "Energy.Active.Import.Register", "value": "1500", "unit": "Wh"}]
    )
    hub.site.set_password("CP1", PASSWORD)
    await hass.async_block_till_done()
    return charger


@pytest.mark.usefixtures("charging")
async def test_config_entry_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    port: int,
    snapshot: SnapshotAssertion,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    assert diagnostics["listening_port"] == port
    station = diagnostics["stations"]["CP1"]
    assert station["password_hash"] == REDACTED
    assert station["boot"]["iccid"] == REDACTED
    assert station["boot"]["imsi"] == REDACTED
    assert station["connectors"]["1"]["transaction"]["id_tag"] == REDACTED
    assert PASSWORD not in str(diagnostics)
    assert "04A1B2C3" not in str(diagnostics)
    # The number of allocation runs depends on how events interleave: not part of the snapshot.
    assert diagnostics == snapshot(exclude=props("port", "listening_port", "runs"))


@pytest.mark.usefixtures("charging")
async def test_device_diagnostics_of_a_station_and_of_its_connector(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    station = device_registry.async_get_device(identifiers={(DOMAIN, "CP1")})
    connector = device_registry.async_get_device(identifiers={(DOMAIN, "CP1#1")})

    of_station = await get_diagnostics_for_device(hass, hass_client, init_integration, station)
    of_connector = await get_diagnostics_for_device(hass, hass_client, init_integration, connector)

    assert of_station["station_id"] == "CP1"
    assert of_station["password_hash"] == REDACTED
    assert of_station["connectors"]["1"]["transaction"]["id_tag"] == REDACTED
    assert "04A1B2C3" not in str(of_station)
    # A connector's diagnostics are its station's.
    assert of_connector == of_station


async def test_device_diagnostics_of_the_central_system_device_are_empty(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    central = device_registry.async_get_device(identifiers={(DOMAIN, init_integration.entry_id)})

    assert await get_diagnostics_for_device(hass, hass_client, init_integration, central) == {}
