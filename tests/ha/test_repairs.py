"""Pending policy: a new charger waits as a fixable repair issue until the user accepts it."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs.websocket_api import (
    RepairsFlowIndexView,
    RepairsFlowResourceView,
)
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
from ocpp.exceptions import SecurityError
import pytest

from custom_components.ev_charging_expert.const import CONF_NEW_CHARGER_POLICY, DOMAIN

from .conftest import ConnectCharger, wait_for

if TYPE_CHECKING:
    from aiohttp.test_utils import TestClient
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator

ISSUE_ID = "pending_charger_CP1"


@pytest.fixture
def entry_data(entry_data: dict[str, Any]) -> dict[str, Any]:
    """New chargers wait for the user."""
    return {**entry_data, CONF_NEW_CHARGER_POLICY: "pending"}


@pytest.fixture
async def repairs_client(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> TestClient:
    """An HTTP client of the repairs API (what the frontend uses to run a fix flow)."""
    assert await async_setup_component(hass, "repairs", {})
    return await hass_client()


# The equivalents of HA core's tests/components/repairs helpers.
async def start_repair_fix_flow(client: TestClient, handler: str, issue_id: str) -> dict[str, Any]:
    """Start an issue's fix flow."""
    response = await client.post(
        RepairsFlowIndexView.url, json={"handler": handler, "issue_id": issue_id}
    )
    assert response.status == HTTPStatus.OK
    return await response.json()


async def process_repair_fix_flow(
    client: TestClient, flow_id: str, json: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Submit a step of a fix flow."""
    response = await client.post(RepairsFlowResourceView.url.format(flow_id=flow_id), json=json)
    assert response.status == HTTPStatus.OK
    return await response.json()


async def test_new_charger_is_held_pending_with_a_fixable_issue(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    issue_registry: ir.IssueRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    charger = await connect_charger("CP1", boot=False)

    answer = await charger.boot()

    assert answer.status == "Pending"
    assert answer.interval <= 60
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE_ID)
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "pending_charger"
    assert issue.translation_placeholders == {"station_id": "CP1"}
    assert device_registry.async_get_device(identifiers={(DOMAIN, "CP1")}) is None
    # Until accepted, it may boot and beat, nothing else.
    with pytest.raises(SecurityError):
        await charger.status(1)
    await charger.heartbeat()


async def test_repair_fix_flow_accepts_the_charger_and_asks_it_to_boot_again(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    repairs_client: TestClient,
    issue_registry: ir.IssueRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    charger = await connect_charger("CP1", boot=False)
    await charger.boot()

    flow = await start_repair_fix_flow(repairs_client, DOMAIN, ISSUE_ID)
    assert flow["type"] == "form"
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"] == {"station_id": "CP1"}
    result = await process_repair_fix_flow(repairs_client, flow["flow_id"])

    assert result["type"] == "create_entry"
    assert await charger.wait_request("TriggerMessage") == {"requested_message": "BootNotification"}
    # The triggered boot is accepted: the central system reads the configuration, and the
    # charger becomes a device.
    await wait_for(hass, lambda: hub.site.stations["CP1"].configuration)
    await wait_for(
        hass, lambda: device_registry.async_get_device(identifiers={(DOMAIN, "CP1")}) is not None
    )
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_ID) is None
    assert (await charger.boot()).status == "Accepted"
    await charger.status(1)
    await wait_for(
        hass,
        lambda: device_registry.async_get_device(identifiers={(DOMAIN, "CP1#1")}) is not None,
    )


async def test_charger_refusing_the_triggered_boot_is_accepted_at_its_next_boot(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    repairs_client: TestClient,
) -> None:
    charger = await connect_charger("CP1", boot=False)
    await charger.boot()
    charger.answers["TriggerMessage"] = {"status": "Rejected"}

    flow = await start_repair_fix_flow(repairs_client, DOMAIN, ISSUE_ID)
    result = await process_repair_fix_flow(repairs_client, flow["flow_id"])

    assert result["type"] == "create_entry"
    await charger.wait_request("TriggerMessage")
    assert (await charger.boot()).status == "Accepted"
    await wait_for(hass, lambda: hub.site.stations["CP1"].configuration)


async def test_repair_fix_flow_of_a_charger_that_went_away_accepts_it_for_later(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    repairs_client: TestClient,
) -> None:
    charger = await connect_charger("CP1", boot=False)
    await charger.boot()
    await charger.close()
    await wait_for(hass, lambda: not hub.site.pending["CP1"].connected)

    flow = await start_repair_fix_flow(repairs_client, DOMAIN, ISSUE_ID)
    result = await process_repair_fix_flow(repairs_client, flow["flow_id"])

    assert result["type"] == "create_entry"
    assert hub.site.is_accepted("CP1")
    charger = await connect_charger("CP1")
    assert charger.requests["GetConfiguration"]


async def test_accept_charger_service_lets_a_pending_charger_in_now(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    issue_registry: ir.IssueRegistry,
) -> None:
    charger = await connect_charger("CP1", boot=False)
    await charger.boot()

    await hass.services.async_call(
        DOMAIN, "accept_charger", {"charge_box_id": "CP1"}, blocking=True
    )

    assert issue_registry.async_get_issue(DOMAIN, ISSUE_ID) is None
    assert await charger.wait_request("TriggerMessage") == {"requested_message": "BootNotification"}
    await wait_for(hass, lambda: hub.site.stations["CP1"].configuration)


async def test_other_issues_get_a_plain_confirmation_flow(
    hass: HomeAssistant, hub: EvChargingCoordinator, repairs_client: TestClient
) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        "something_else",
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="pending_charger",
        translation_placeholders={"station_id": "X"},
    )

    flow = await start_repair_fix_flow(repairs_client, DOMAIN, "something_else")
    result = await process_repair_fix_flow(repairs_client, flow["flow_id"])

    assert result["type"] == "create_entry"
    assert "X" not in hub.site.stations


async def test_pending_chargers_from_storage_get_their_issue_at_startup(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    hass_storage[f"{DOMAIN}.{mock_config_entry.entry_id}"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{mock_config_entry.entry_id}",
        "data": {
            "version": 1,
            "next_transaction_id": 1,
            "stations": {"CP7": {"registration": "pending"}},
        },
    }
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert issue_registry.async_get_issue(DOMAIN, "pending_charger_CP7") is not None

    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
