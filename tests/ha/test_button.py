"""Buttons: soft and hard reset of a station, unlock of a connector."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.ev_charging_expert.const import DOMAIN

from .conftest import ConnectCharger, entity_id

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion


async def _press(hass: HomeAssistant, unique_id: str) -> None:
    await hass.services.async_call(
        BUTTON_DOMAIN,
        SERVICE_PRESS,
        {ATTR_ENTITY_ID: entity_id(hass, "button", unique_id)},
        blocking=True,
    )


@pytest.mark.parametrize("platforms", [[Platform.BUTTON]])
@pytest.mark.usefixtures("entity_registry_enabled_by_default", "clock")
async def test_buttons_of_a_booted_charger_with_two_connectors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    await connect_charger("CP1", connectors=2)

    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("clock")
async def test_hard_reset_button_is_disabled_by_default(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, connect_charger: ConnectCharger
) -> None:
    await connect_charger("CP1")

    entry = entity_registry.async_get(entity_id(hass, "button", "CP1_hard_reset"))
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert not entity_registry.async_get(entity_id(hass, "button", "CP1_soft_reset")).disabled


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "clock")
@pytest.mark.parametrize(
    ("unique_id", "action", "payload"),
    [
        ("CP1_soft_reset", "Reset", {"type": "Soft"}),
        ("CP1_hard_reset", "Reset", {"type": "Hard"}),
        ("CP1_1_unlock", "UnlockConnector", {"connector_id": 1}),
        ("CP1_2_unlock", "UnlockConnector", {"connector_id": 2}),
    ],
)
async def test_button_press_sends_its_request(
    hass: HomeAssistant,
    connect_charger: ConnectCharger,
    unique_id: str,
    action: str,
    payload: dict[str, object],
) -> None:
    charger = await connect_charger("CP1", connectors=2)

    await _press(hass, unique_id)

    assert charger.requests[action] == [payload]


@pytest.mark.usefixtures("clock")
@pytest.mark.usefixtures("entity_registry_enabled_by_default")  # unlock is disabled by default
@pytest.mark.parametrize(
    ("unique_id", "action", "status"),
    [("CP1_soft_reset", "Reset", "Rejected"), ("CP1_1_unlock", "UnlockConnector", "UnlockFailed")],
)
async def test_refused_button_press_raises_rejected(
    hass: HomeAssistant, connect_charger: ConnectCharger, unique_id: str, action: str, status: str
) -> None:
    charger = await connect_charger("CP1")
    charger.answers[action] = {"status": status}

    with pytest.raises(HomeAssistantError) as err:
        await _press(hass, unique_id)

    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "rejected"
    assert err.value.translation_placeholders == {
        "station_id": "CP1",
        "action": action,
        "status": status,
    }
