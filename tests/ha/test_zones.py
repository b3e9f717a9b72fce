"""Zones (config subentries) and the site settings (options): validated, applied live."""

from __future__ import annotations

from dataclasses import replace
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest

from custom_components.ev_charging_expert.const import (
    CONF_CONSUMPTION_OPTIMISATION,
    CONF_DEGRADED_SETPOINT,
    CONF_MAX_CURRENT,
    CONF_MINIMUM_STANDARD,
    CONF_MODE,
    CONF_NOMINAL_VOLTAGE,
    CONF_PARENT,
    CONF_REEVALUATION_MINUTES,
    CONF_SAFETY_MARGIN,
    CONF_SHED_PRIORITY,
    CONF_ZONE_NAME,
    DOMAIN,
    NO_PARENT,
    SUBENTRY_ZONE,
)
from custom_components.ev_charging_expert.evcore.allocation.model import (
    MinimumStandard,
    ShedPriority,
)
from custom_components.ev_charging_expert.evcore.config import LoadSettings

from .conftest import (
    ConnectCharger,
    HaCharger,
    entity_id,
    start_subentry_flow,
    submit,
    wait_for,
    wait_load_managed,
    zone_subentry,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentryDataWithId
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

# Subentry ids (the zone ids).
MAIN = "main"
GARAGE = "garage"
BAY = "bay"
OFFICE = "office"


def zone_form(
    name: str,
    max_current: float,
    parent_id: str = NO_PARENT,
    *,
    mode: str = "static",
    degraded_setpoint: float = 0.0,
) -> dict[str, Any]:
    """What the user enters in the zone form."""
    return {
        CONF_ZONE_NAME: name,
        CONF_PARENT: parent_id,
        CONF_MAX_CURRENT: max_current,
        CONF_MODE: mode,
        CONF_DEGRADED_SETPOINT: degraded_setpoint,
    }


async def start_zone_flow(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str | None = None
) -> dict[str, Any]:
    """Open the form: a new one, or the reconfiguration of `subentry_id`."""
    return await start_subentry_flow(hass, entry, SUBENTRY_ZONE, subentry_id)


def parent_options(form: dict[str, Any]) -> list[str]:
    """The values the parent dropdown offers."""
    for key, validator in form["data_schema"].schema.items():
        if key == CONF_PARENT:
            return [option["value"] for option in validator.config["options"]]
    raise AssertionError("no parent field")


def last_lease_limit(charger: HaCharger) -> float | None:
    """The limit of the last lease (connector profile) the charger received."""
    leases = [p for p in charger.requests["SetChargingProfile"] if p["connector_id"] != 0]
    if not leases:
        return None
    profile = leases[-1]["cs_charging_profiles"]
    return profile["charging_schedule"]["charging_schedule_period"][0]["limit"]


def setpoint(hass: HomeAssistant, station_id: str) -> str:
    """State of connector 1's setpoint sensor."""
    return hass.states.get(entity_id(hass, "sensor", f"{station_id}_1_setpoint")).state


# ---------------------------------------------------------------------------- adding zones


async def test_user_adds_a_top_zone_then_a_sub_zone_applied_live(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    flow = await start_zone_flow(hass, init_integration)
    assert flow["type"] is FlowResultType.FORM
    assert flow["step_id"] == "user"
    assert flow["errors"] == {}
    assert parent_options(flow) == [NO_PARENT]

    result = await submit(hass, flow, zone_form("  Main  ", 40))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Main"
    assert result["data"] == zone_form("Main", 40.0)
    (main,) = init_integration.subentries.values()
    assert main.subentry_type == SUBENTRY_ZONE
    assert hub.zones[main.subentry_id].max_current == 40.0
    assert hub.zones[main.subentry_id].parent_id is None

    flow = await start_zone_flow(hass, init_integration)
    assert parent_options(flow) == [NO_PARENT, main.subentry_id]
    result = await submit(hass, flow, zone_form("Garage", 32, main.subentry_id))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    garage = next(s for s in init_integration.subentries.values() if s.title == "Garage")
    assert hub.zones[garage.subentry_id].parent_id == main.subentry_id
    # Each zone is a device of its own subentry, with its entities.
    for subentry in (main, garage):
        device = device_registry.async_get_device(
            identifiers={(DOMAIN, f"zone_{subentry.subentry_id}")}
        )
        assert device is not None
        assert device.config_entries_subentries[init_integration.entry_id] == {subentry.subentry_id}
        entities = er.async_entries_for_device(entity_registry, device.id)
        assert entities
        assert {e.config_subentry_id for e in entities} == {subentry.subentry_id}
    # Still the same hub: nothing was reloaded.
    assert init_integration.runtime_data is hub
    assert init_integration.state is ConfigEntryState.LOADED


# Main (40 A) > Garage (32 A) > Bay (16 A): three levels, the most there may be.
THREE_LEVELS: list[ConfigSubentryDataWithId] = [
    zone_subentry(MAIN, "Main", 40),
    zone_subentry(GARAGE, "Garage", 32, parent_id=MAIN),
    zone_subentry(BAY, "Bay", 16, parent_id=GARAGE),
]


@pytest.mark.parametrize("zone_subentries", [THREE_LEVELS])
@pytest.mark.parametrize(
    ("form", "errors"),
    [
        (zone_form("gARAGE", 10), {"name": "name_taken"}),
        (zone_form("Shed", 50, MAIN), {"base": "invalid_zone"}),
        (
            zone_form("Shed", 20, mode="dynamic", degraded_setpoint=25),
            {"degraded_setpoint": "degraded_above_max"},
        ),
        (zone_form("Shelf", 10, BAY), {"base": "invalid_zone"}),
        (zone_form("Unassigned", 10), {"name": "name_reserved"}),
    ],
    ids=[
        "duplicate_name",
        "sub_zone_above_parent",
        "degraded_above_max",
        "too_deep",
        "reserved_name",
    ],
)
async def test_invalid_zone_is_refused_with_the_reason_key(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    form: dict[str, Any],
    errors: dict[str, str],
) -> None:
    flow = await start_zone_flow(hass, init_integration)

    result = await submit(hass, flow, form)

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert len(init_integration.subentries) == 3
    assert set(hub.zones) == {MAIN, GARAGE, BAY}

    # Corrected, the same flow goes through.
    result = await submit(hass, result, zone_form("Shed", 10, MAIN))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(hub.zones) == 4


@pytest.mark.parametrize("zone_subentries", [[zone_subentry(MAIN, "Main", 40)]])
async def test_sub_zone_of_a_zone_that_holds_stations_is_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    hub.site.accept_station("CP9")
    hub.site.configure_station("CP9", replace(hub.site.stations["CP9"].config, zone_id=MAIN))
    flow = await start_zone_flow(hass, init_integration)

    result = await submit(hass, flow, zone_form("Garage", 32, MAIN))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"parent_id": "parent_holds_stations"}
    assert set(hub.zones) == {MAIN}


# ---------------------------------------------------------------------------- reconfiguring


@pytest.mark.parametrize("zone_subentries", [[zone_subentry(MAIN, "Main", 32)]])
async def test_reconfiguring_max_current_applies_live_without_reconnecting(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    chargers = [await connect_charger(sid) for sid in ("CP1", "CP2")]
    for charger in chargers:
        hub.site.configure_station(
            charger.id, replace(hub.site.stations[charger.id].config, zone_id=MAIN)
        )
        await wait_load_managed(hass, hub, charger.id)
    for charger in chargers:
        await charger.start_session()
    await wait_for(hass, lambda: setpoint(hass, "CP1") == setpoint(hass, "CP2") == "16.0")
    handlers = dict(hub.site.chargers)

    flow = await start_zone_flow(hass, init_integration, MAIN)
    assert flow["step_id"] == "reconfigure"
    result = await submit(hass, flow, zone_form("Main", 20))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.subentries[MAIN].data[CONF_MAX_CURRENT] == 20.0
    await wait_for(hass, lambda: setpoint(hass, "CP1") == setpoint(hass, "CP2") == "10.0")
    assert hass.states.get("sensor.main_budget_l1").state == "20.0"
    # The decrease reaches both chargers over the connections they already had.
    for charger in chargers:
        await wait_for(hass, lambda c=charger: last_lease_limit(c) == 10)
        assert not charger.ws.close_code
    assert hub.site.chargers == handlers
    assert init_integration.runtime_data is hub
    assert init_integration.state is ConfigEntryState.LOADED


@pytest.mark.parametrize(
    "zone_subentries",
    [
        [
            zone_subentry(MAIN, "Main", 40),
            zone_subentry(GARAGE, "Garage", 32, parent_id=MAIN),
            zone_subentry(BAY, "Bay", 16, parent_id=GARAGE),
            zone_subentry(OFFICE, "Office", 25),
        ]
    ],
)
async def test_reconfigure_offers_no_parent_below_the_zone_itself(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    flow = await start_zone_flow(hass, init_integration, GARAGE)

    # Neither Garage itself nor its sub-zone Bay: that would make a cycle.
    assert parent_options(flow) == [NO_PARENT, MAIN, OFFICE]
    assert flow["description_placeholders"] is None

    result = await submit(hass, flow, zone_form("Car park", 25, OFFICE))

    assert result["type"] is FlowResultType.ABORT
    assert init_integration.subentries[GARAGE].title == "Car park"
    assert hub.zones[GARAGE].name == "Car park"
    assert hub.zones[GARAGE].parent_id == OFFICE
    assert hub.zones[BAY].parent_id == GARAGE


@pytest.mark.parametrize(
    "zone_subentries",
    [[zone_subentry(MAIN, "Main", 40), zone_subentry(GARAGE, "Garage", 32, parent_id=MAIN)]],
)
async def test_reconfigure_refuses_a_max_below_a_sub_zone(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    flow = await start_zone_flow(hass, init_integration, MAIN)

    result = await submit(hass, flow, zone_form("Main", 30))

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"base": "invalid_zone"}
    assert result["description_placeholders"] == {"max_depth": "3"}
    assert hub.zones[MAIN].max_current == 40.0


# ---------------------------------------------------------------------------- orphans


@pytest.mark.parametrize(
    "zone_subentries",
    [[zone_subentry(MAIN, "Main", 40), zone_subentry(GARAGE, "Garage", 32, parent_id=MAIN)]],
)
async def test_deleting_a_parent_zone_orphans_its_sub_zones_until_they_get_a_parent(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
    issue_registry: ir.IssueRegistry,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    charger = await connect_charger("CP1")
    hub.site.configure_station("CP1", replace(hub.site.stations["CP1"].config, zone_id=GARAGE))
    await charger.start_session()
    await wait_for(hass, lambda: setpoint(hass, "CP1") == "32.0")
    assert issue_registry.async_get_issue(DOMAIN, "orphan_zone") is None

    assert hass.config_entries.async_remove_subentry(init_integration, MAIN)
    await hass.async_block_till_done()

    issue = issue_registry.async_get_issue(DOMAIN, "orphan_zone")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {"zones": "Garage"}
    assert hub.zones == {}
    # No current for an orphan's EV; its station counts as unassigned.
    await wait_for(hass, lambda: setpoint(hass, "CP1") == "0.0")
    allocation = hass.states.get(entity_id(hass, "sensor", "CP1_1_allocation"))
    assert allocation.state == "unassigned"
    assert issue_registry.async_get_issue(DOMAIN, "unassigned_stations") is not None
    # The deleted zone's entities are gone; the orphan's stay, unavailable.
    assert entity_registry.async_get_entity_id("sensor", DOMAIN, f"zone_{MAIN}_budget_l1") is None
    assert hass.states.get("sensor.garage_budget_l1").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.garage_max_current").state == STATE_UNAVAILABLE

    # Made top-level, the zone is back in the tree, with the entities it had.
    flow = await start_zone_flow(hass, init_integration, GARAGE)
    result = await submit(hass, flow, zone_form("Garage", 32))

    assert result["type"] is FlowResultType.ABORT
    assert issue_registry.async_get_issue(DOMAIN, "orphan_zone") is None
    assert issue_registry.async_get_issue(DOMAIN, "unassigned_stations") is None
    await wait_for(hass, lambda: setpoint(hass, "CP1") == "32.0")
    await wait_for(hass, lambda: hass.states.get("sensor.garage_budget_l1").state == "32.0")
    assert hass.states.get("sensor.garage_max_current").state == "32.0"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# ---------------------------------------------------------------------------- site settings


async def test_site_settings_are_stored_and_applied_live(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    handler = hub.site.chargers["CP1"]
    flow = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert flow["type"] is FlowResultType.FORM
    assert flow["step_id"] == "init"
    defaults = {
        str(key): key.default() for key in flow["data_schema"].schema if hasattr(key, "default")
    }
    # The operating rules' options (issue 11) follow these; tests/ha/test_rules.py has them.
    assert (
        defaults.items()
        >= {
            CONF_MINIMUM_STANDARD: "iec_61851",
            CONF_SHED_PRIORITY: "energy",
            CONF_REEVALUATION_MINUTES: 15,
            CONF_NOMINAL_VOLTAGE: 230,
            CONF_SAFETY_MARGIN: 1.0,
            CONF_CONSUMPTION_OPTIMISATION: False,
        }.items()
    )
    options = {
        CONF_MINIMUM_STANDARD: "ev_ze_ready",
        CONF_SHED_PRIORITY: "duration",
        CONF_REEVALUATION_MINUTES: 5,
        CONF_NOMINAL_VOLTAGE: 240,
        CONF_SAFETY_MARGIN: 2.0,
        CONF_CONSUMPTION_OPTIMISATION: True,
    }

    result = await hass.config_entries.options.async_configure(flow["flow_id"], options)
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert init_integration.options.items() >= options.items()
    assert hub.controller.load.settings == LoadSettings(
        minimum_standard=MinimumStandard.EV_ZE_READY,
        shed_priority=ShedPriority.DURATION,
        reevaluation_period=300.0,
        nominal_voltage=240.0,
        safety_margin=2.0,
        consumption_optimisation=True,
    )
    assert init_integration.runtime_data is hub
    assert hub.site.chargers["CP1"] is handler
    assert not charger.ws.close_code

    # The form opens again on the stored values.
    flow = await hass.config_entries.options.async_init(init_integration.entry_id)
    defaults = {
        str(key): key.default() for key in flow["data_schema"].schema if hasattr(key, "default")
    }
    assert defaults.items() >= options.items()


@pytest.mark.parametrize("zone_subentries", [[zone_subentry(MAIN, "Main", 10)]])
async def test_a_stricter_minimum_standard_suspends_an_ev_at_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    hub.site.configure_station("CP1", replace(hub.site.stations["CP1"].config, zone_id=MAIN))
    await charger.start_session()
    await wait_for(hass, lambda: setpoint(hass, "CP1") == "10.0")

    # EV/ZE ready: a three-phase EV needs 14 A, more than the zone's 10 A.
    hass.config_entries.async_update_entry(
        init_integration, options={**init_integration.options, CONF_MINIMUM_STANDARD: "ev_ze_ready"}
    )
    await hass.async_block_till_done()

    await wait_for(hass, lambda: setpoint(hass, "CP1") == "0.0")
    allocation = hass.states.get(entity_id(hass, "sensor", "CP1_1_allocation"))
    assert allocation.state == "suspended_no_capacity"
