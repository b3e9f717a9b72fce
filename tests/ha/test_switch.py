"""Availability switches: a station's (connector 0) and each connector's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.ev_charging_expert.const import DOMAIN

from .conftest import ConnectCharger, entity_id, wait_for

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import entity_registry as er
    from syrupy.assertion import SnapshotAssertion


# Some of these entities are disabled by default (rarely used): enabled here.
pytestmark = pytest.mark.usefixtures("entity_registry_enabled_by_default")


async def _switch(hass: HomeAssistant, service: str, unique_id: str) -> None:
    await hass.services.async_call(
        SWITCH_DOMAIN,
        service,
        {ATTR_ENTITY_ID: entity_id(hass, "switch", unique_id)},
        blocking=True,
    )


@pytest.mark.parametrize("platforms", [[Platform.SWITCH]])
@pytest.mark.usefixtures("clock")
async def test_switches_of_a_booted_charger_with_two_connectors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1", connectors=2)
    await charger.status(2, "Unavailable")
    await wait_for(
        hass,
        lambda: hass.states.get(entity_id(hass, "switch", "CP1_2_availability")).state == STATE_OFF,
    )

    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    ("unique_id", "service", "payload"),
    [
        ("CP1_availability", SERVICE_TURN_OFF, {"connector_id": 0, "type": "Inoperative"}),
        ("CP1_availability", SERVICE_TURN_ON, {"connector_id": 0, "type": "Operative"}),
        ("CP1_2_availability", SERVICE_TURN_OFF, {"connector_id": 2, "type": "Inoperative"}),
        ("CP1_1_availability", SERVICE_TURN_ON, {"connector_id": 1, "type": "Operative"}),
    ],
)
async def test_availability_switch_sends_change_availability(
    hass: HomeAssistant,
    connect_charger: ConnectCharger,
    unique_id: str,
    service: str,
    payload: dict[str, object],
) -> None:
    charger = await connect_charger("CP1", connectors=2)

    await _switch(hass, service, unique_id)

    assert charger.requests["ChangeAvailability"] == [payload]


@pytest.mark.usefixtures("clock")
async def test_scheduled_availability_change_is_a_success(
    hass: HomeAssistant, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    charger.answers["ChangeAvailability"] = {"status": "Scheduled"}

    await _switch(hass, SERVICE_TURN_OFF, "CP1_1_availability")

    assert charger.requests["ChangeAvailability"] == [{"connector_id": 1, "type": "Inoperative"}]


@pytest.mark.usefixtures("clock")
async def test_rejected_availability_change_raises_rejected(
    hass: HomeAssistant, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    charger.answers["ChangeAvailability"] = {"status": "Rejected"}

    with pytest.raises(HomeAssistantError) as err:
        await _switch(hass, SERVICE_TURN_OFF, "CP1_availability")

    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "rejected"
    assert err.value.translation_placeholders["action"] == "ChangeAvailability"


@pytest.mark.usefixtures("clock")
async def test_switch_state_follows_the_reported_status(
    hass: HomeAssistant, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1", boot=False)
    await charger.boot()
    await charger.status(1, "Available")
    switch = "switch.cp1_connector_1_available"
    await wait_for(hass, lambda: hass.states.get(switch) is not None)
    assert hass.states.get(switch).state == STATE_ON
    # No StatusNotification for connector 0 yet: the station's availability is unknown.
    assert hass.states.get(entity_id(hass, "switch", "CP1_availability")).state == STATE_UNKNOWN

    await charger.status(1, "Unavailable")
    await wait_for(hass, lambda: hass.states.get(switch).state == STATE_OFF)

    await charger.status(1, "Charging")
    await wait_for(hass, lambda: hass.states.get(switch).state == STATE_ON)
