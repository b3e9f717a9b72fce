"""Zones and power meters: which meter drives which zone, and what happens when it goes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_RECONFIGURE
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.ev_charging_expert.const import (
    CONF_DEGRADED_SETPOINT,
    CONF_MAX_CURRENT,
    CONF_MODE,
    CONF_PARENT,
    CONF_ZONE_NAME,
    DOMAIN,
    NO_PARENT,
    SUBENTRY_METER,
    SUBENTRY_ZONE,
)

from .conftest import meter_subentry, modbus_form, start_subentry_flow, submit, zone_subentry

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentryDataWithId
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator

pytestmark = pytest.mark.usefixtures("manual_hub_clock")

MAIN = "main"
GRID = "grid"  # an HA-sensor meter
SUB = "sub"  # another one
REPORTING = "solar"  # a reporting-only Modbus meter


def sensor_meter(meter_id: str, name: str, prefix: str) -> ConfigSubentryDataWithId:
    """An HA-sensor meter on sensor.<prefix>_l1..l3."""
    return meter_subentry(
        meter_id,
        name,
        {
            "kind": "ha_sensors",
            **{f"current_l{p}": f"sensor.{prefix}_l{p}" for p in (1, 2, 3)},
            "max_age": 60.0,
        },
    )


def with_meter(zone: ConfigSubentryDataWithId, meter_id: str) -> ConfigSubentryDataWithId:
    """The zone subentry with a meter."""
    return {**zone, "data": {**zone["data"], "meter_id": meter_id}}  # type: ignore[typeddict-item]


METERS = [
    sensor_meter(GRID, "Grid", "grid"),
    sensor_meter(SUB, "Sub", "sub"),
    meter_subentry(
        REPORTING,
        "Solar",
        {
            "kind": "modbus",
            "model": "MTZ",
            "protocol": "tcp",
            "host": "127.0.0.1",
            "port": 1,
            "slave_id": 1,
            "reporting_only": True,
        },
    ),
]
DYNAMIC_MAIN = with_meter(
    zone_subentry(MAIN, "Main", 63, mode="dynamic", degraded_setpoint=10), GRID
)


def zone_form(name: str, mode: str = "dynamic", meter: str | None = None) -> dict[str, Any]:
    """What the user enters in the zone form."""
    form: dict[str, Any] = {
        CONF_ZONE_NAME: name,
        CONF_PARENT: NO_PARENT,
        CONF_MAX_CURRENT: 32,
        CONF_MODE: mode,
        CONF_DEGRADED_SETPOINT: 6,
    }
    if meter is not None:
        form["meter_id"] = meter
    return form


async def start_zone_flow(
    hass: HomeAssistant, entry: MockConfigEntry, zone_id: str | None = None
) -> dict[str, Any]:
    """Open the form: a new one, or the reconfiguration of `zone_id`."""
    return await start_subentry_flow(hass, entry, SUBENTRY_ZONE, zone_id)


def meter_options(form: dict[str, Any]) -> list[str]:
    """The values the zone form's meter dropdown offers."""
    for key, validator in form["data_schema"].schema.items():
        if key == "meter_id":
            return [option["value"] for option in validator.config["options"]]
    raise AssertionError("no meter field")


@pytest.fixture
def zone_subentries() -> list[ConfigSubentryDataWithId]:
    """Three meters (one reporting only) and a dynamic zone driven by Grid."""
    return [*METERS, DYNAMIC_MAIN]


# ---------------------------------------------------------------------------- the rules


async def test_zone_form_offers_meters_that_drive_no_zone_and_are_not_reporting_only(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    new_zone = await start_zone_flow(hass, init_integration)
    main = await start_zone_flow(hass, init_integration, MAIN)

    assert meter_options(new_zone) == ["none", SUB]
    assert meter_options(main) == ["none", GRID, SUB]
    # Choosing one that is not offered does not get past the form.
    with pytest.raises(InvalidData):
        await submit(hass, new_zone, zone_form("Garage", meter=GRID))


async def test_a_dynamic_zone_with_a_meter_is_created_and_the_load_manager_told(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    flow = await start_zone_flow(hass, init_integration)

    with patch.object(hub.controller.load, "set_zone_meters") as set_zone_meters:
        result = await submit(hass, flow, zone_form("Garage", meter=SUB))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["meter_id"] == SUB
    garage = next(
        s.subentry_id for s in init_integration.subentries.values() if s.title == "Garage"
    )
    mapping = set_zone_meters.call_args.args[0]
    assert mapping == {MAIN: hub.meters.source(GRID), garage: hub.meters.source(SUB)}
    assert mapping[garage].meter_id == SUB


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (zone_form("Garage"), "dynamic_zone_without_meter"),
        (zone_form("Garage", mode="static", meter=SUB), "static_zone_with_meter"),
    ],
    ids=["dynamic_without_meter", "static_with_meter"],
)
async def test_zone_and_meter_must_agree(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    form: dict[str, Any],
    error: str,
) -> None:
    flow = await start_zone_flow(hass, init_integration)

    result = await submit(hass, flow, form)

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"meter_id": error}
    assert set(hub.zones) == {MAIN}


async def test_one_meter_never_drives_two_zones(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    # Two forms open at once both offer Sub; the first one to be saved takes it.
    first = await start_zone_flow(hass, init_integration)
    second = await start_zone_flow(hass, init_integration)
    assert SUB in meter_options(first)
    assert SUB in meter_options(second)
    assert (await submit(hass, first, zone_form("Garage", meter=SUB)))["type"] is (
        FlowResultType.CREATE_ENTRY
    )

    result = await submit(hass, second, zone_form("Office", meter=SUB))

    assert result["errors"] == {"meter_id": "meter_drives_other_zone"}
    assert result["description_placeholders"] == {"zone": "Garage"}
    assert sorted(z.name for z in hub.zones.values()) == ["Garage", "Main"]


async def test_a_meter_driving_a_zone_cannot_become_reporting_only(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    # A Modbus meter that drives a zone.
    hass.config_entries.async_update_subentry(
        init_integration,
        init_integration.subentries[REPORTING],
        data={**init_integration.subentries[REPORTING].data, "reporting_only": False},
    )
    flow = await start_zone_flow(hass, init_integration, MAIN)
    await submit(hass, flow, zone_form("Main", meter=REPORTING))
    assert init_integration.subentries[MAIN].data["meter_id"] == REPORTING

    flow = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, SUBENTRY_METER),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": REPORTING},
    )
    result = await submit(
        hass, flow, modbus_form(1, name="Solar", model="MTZ", reporting_only=True)
    )

    assert result["errors"] == {"reporting_only": "meter_drives_zone"}
    assert result["description_placeholders"] == {"zone": "Main"}


# ---------------------------------------------------------------------------- losing the meter


async def test_deleting_the_meter_of_a_dynamic_zone_raises_a_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    issue_registry: ir.IssueRegistry,
) -> None:
    assert hub.meters.zone_meters == {MAIN: hub.meters.source(GRID)}
    assert issue_registry.async_get_issue(DOMAIN, "zone_without_meter") is None

    with patch.object(hub.controller.load, "set_zone_meters") as set_zone_meters:
        hass.config_entries.async_remove_subentry(init_integration, GRID)
        await hass.async_block_till_done()

    # The zone stays (dynamic, on its degraded setpoint) without a meter.
    assert set_zone_meters.call_args.args[0] == {}
    assert hub.meters.zone_meters == {}
    assert MAIN in hub.zones
    issue = issue_registry.async_get_issue(DOMAIN, "zone_without_meter")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {"zones": "Main"}
    # Its form no longer offers the deleted meter, and wants another one.
    flow = await start_zone_flow(hass, init_integration, MAIN)
    assert meter_options(flow) == ["none", SUB]

    await submit(hass, flow, zone_form("Main", meter=SUB))

    assert hub.meters.zone_meters == {MAIN: hub.meters.source(SUB)}
    assert issue_registry.async_get_issue(DOMAIN, "zone_without_meter") is None


@pytest.mark.parametrize(
    "zone_subentries",
    [[*METERS, zone_subentry(MAIN, "Main", 63, mode="dynamic", degraded_setpoint=10)]],
)
async def test_a_dynamic_zone_from_before_meters_gets_the_repair_at_start(
    hass: HomeAssistant, init_integration: MockConfigEntry, issue_registry: ir.IssueRegistry
) -> None:
    issue = issue_registry.async_get_issue(DOMAIN, "zone_without_meter")
    assert issue is not None
    assert issue.translation_placeholders == {"zones": "Main"}
