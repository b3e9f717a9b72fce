"""Connectivity binary sensor: says whether the charger holds its OCPP connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, Platform
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from .conftest import ConnectCharger, entity_id, wait_for

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import entity_registry as er
    from syrupy.assertion import SnapshotAssertion


# Some of these entities are disabled by default (rarely used): enabled here.
pytestmark = pytest.mark.usefixtures("entity_registry_enabled_by_default")


@pytest.mark.parametrize("platforms", [[Platform.BINARY_SENSOR]])
@pytest.mark.usefixtures("clock")
async def test_binary_sensors_of_a_booted_charger(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    await connect_charger("CP1", connectors=2)

    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("clock")
async def test_connectivity_stays_available_and_turns_off_while_the_charger_is_away(
    hass: HomeAssistant, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1", connectors=2)
    connected = entity_id(hass, "binary_sensor", "CP1_connected")
    status = entity_id(hass, "sensor", "CP1_1_status")
    assert hass.states.get(connected).state == STATE_ON

    await charger.close()
    await wait_for(hass, lambda: hass.states.get(connected).state == STATE_OFF)
    assert hass.states.get(status).state == STATE_UNAVAILABLE

    await connect_charger("CP1", connectors=2)
    await wait_for(hass, lambda: hass.states.get(connected).state == STATE_ON)
    assert hass.states.get(status).state == "available"
