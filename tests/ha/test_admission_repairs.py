"""Admission repairs: a full list of waiting chargers, a known charger whose password fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.exceptions import ServiceValidationError
import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.const import CONF_NEW_CHARGER_POLICY, DOMAIN

from .conftest import basic_auth, open_websocket, wait_for

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import issue_registry as ir

    from custom_components.ev_charging_expert.evcore.clock import ManualClock
    from custom_components.ev_charging_expert.hub import EvChargingHub

PASSWORD = "right-password-0123"


@pytest.fixture
def entry_data(entry_data: dict[str, Any]) -> dict[str, Any]:
    """The default policy: new chargers wait for the user."""
    return {**entry_data, CONF_NEW_CHARGER_POLICY: "pending"}


async def test_full_list_of_waiting_chargers_drops_the_oldest_and_raises_a_repair(
    hass: HomeAssistant, hub: EvChargingHub, port: int, issue_registry: ir.IssueRegistry
) -> None:
    hub.site.settings.max_pending = 2
    sockets = [await open_websocket(port, f"X{i}") for i in range(3)]
    await wait_for(hass, lambda: len(hub.site.pending) == 2 and hub.site.pending_dropped == 1)

    issue = issue_registry.async_get_issue(DOMAIN, "pending_list_full")
    assert issue is not None
    assert issue.translation_placeholders == {"limit": "2"}
    assert issue_registry.async_get_issue(DOMAIN, "pending_charger_X0") is None  # dropped
    assert issue_registry.async_get_issue(DOMAIN, "pending_charger_X2") is not None
    for ws in sockets:
        await ws.close()


async def test_known_charger_failing_its_password_raises_a_repair_until_it_gets_in(
    hass: HomeAssistant,
    hub: EvChargingHub,
    clock: ManualClock,
    port: int,
    issue_registry: ir.IssueRegistry,
) -> None:
    hub.site.accept_station("CP1")
    hub.site.set_password("CP1", PASSWORD)
    for _ in range(5):
        with pytest.raises(InvalidStatus):
            await open_websocket(port, "CP1", additional_headers=basic_auth("CP1", "old"))
    await hass.async_block_till_done()

    issue = issue_registry.async_get_issue(DOMAIN, "charger_password_failing_CP1")
    assert issue is not None
    assert issue.translation_placeholders == {"station_id": "CP1"}

    clock.advance(60)
    ws = await open_websocket(port, "CP1", additional_headers=basic_auth("CP1", PASSWORD))
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, "charger_password_failing_CP1") is None
    await ws.close()


async def test_accepting_an_identity_breaking_the_rule_is_a_validation_error(
    hass: HomeAssistant, hub: EvChargingHub
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "accept_charger", {"charge_box_id": "CP1\n"}, blocking=True
        )

    assert err.value.translation_key == "invalid_identity"
    assert hub.site.stations == {}
