"""Degraded mode in HA: the zone's state, each station's degraded current, the repair."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN, SERVICE_SET_VALUE
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN, SERVICE_TURN_ON
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.ev_charging_expert.const import DOMAIN
from custom_components.ev_charging_expert.evcore.events import AllocationUpdated
from custom_components.ev_charging_expert.evcore.load.budgets import NegativeBuildingLoad

from .conftest import entity_id, zone_subentry
from .test_load_entities import select

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator

    from .conftest import ConnectCharger

# The degraded current sensor is disabled by default: enabled here.
pytestmark = pytest.mark.usefixtures("init_integration", "entity_registry_enabled_by_default")


@pytest.fixture
def zone_subentries() -> list:
    return [
        zone_subentry("static", "Parking", 51.0),
        zone_subentry("dyn", "Building", 63.0, mode="dynamic", degraded_setpoint=16.0),
    ]


async def _set_minimum(hass: HomeAssistant, station_id: str, amps: float) -> None:
    number = entity_id(hass, "number", f"{station_id}_minimum_override")
    await hass.services.async_call(
        NUMBER_DOMAIN, SERVICE_SET_VALUE, {ATTR_ENTITY_ID: number, "value": amps}, blocking=True
    )


async def test_stations_show_their_degraded_current_and_scale_to_the_zone(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    await connect_charger("P1", connectors=2)
    await connect_charger("P2", connectors=2)
    await connect_charger("W")
    for station_id in ("P1", "P2", "W"):
        await select(hass, f"{station_id}_zone", "Parking")
    await _set_minimum(hass, "W", 10)
    await hass.async_block_till_done()
    # The guide's example: 12 + 12 + 10 A of minimums in 51 A: scale 1.5.
    degraded = {
        sid: hass.states.get(entity_id(hass, "sensor", f"{sid}_degraded_current")).state
        for sid in ("P1", "P2", "W")
    }
    assert degraded == {"P1": "18.0", "P2": "18.0", "W": "15.0"}


async def test_minimums_that_do_not_fit_raise_a_repair(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    await connect_charger("A")
    await select(hass, "A_zone", "Parking")
    await _set_minimum(hass, "A", 60)
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "degraded_zero_static")
    assert issue is not None
    assert issue.translation_placeholders["zone"] == "Parking"
    state = hass.states.get(entity_id(hass, "sensor", "A_degraded_current"))
    assert state.state == "0.0"

    await _set_minimum(hass, "A", 0)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, "degraded_zero_static") is None


async def test_dynamic_zone_without_a_meter_is_degraded(hass: HomeAssistant) -> None:
    state = hass.states.get(entity_id(hass, "binary_sensor", "zone_dyn_degraded"))
    assert state.state == "on"
    assert hass.states.get(entity_id(hass, "binary_sensor", "zone_static_degraded")).state == "off"
    setpoint = hass.states.get(entity_id(hass, "sensor", "zone_dyn_degraded_setpoint"))
    assert setpoint.state == "16.0"


async def test_dc_station_has_no_degraded_current(
    hass: HomeAssistant, connect_charger: ConnectCharger
) -> None:
    await connect_charger("DC1")
    await select(hass, "DC1_zone", "Parking")
    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_ON,
        {ATTR_ENTITY_ID: entity_id(hass, "switch", "DC1_dc")},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert hass.states.get(entity_id(hass, "sensor", "DC1_degraded_current")).state == "unknown"


async def test_the_degraded_zero_repair_gives_the_figures_and_what_to_change(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    for station_id in ("A", "B", "C"):
        await connect_charger(station_id)
        await select(hass, f"{station_id}_zone", "Parking")
    await _set_minimum(hass, "A", 40)
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "degraded_zero_static")
    assert issue is not None
    assert issue.translation_placeholders["reason"] == hub.controller.degraded_problems()["static"]
    assert "3 stations need 52 A" in issue.translation_placeholders["reason"]
    assert "2 of them would fit" in issue.translation_placeholders["reason"]


async def test_a_zone_whose_meter_does_not_see_the_evs_raises_a_repair_with_the_figures(
    hass: HomeAssistant, hub: EvChargingCoordinator
) -> None:
    state = hub.controller.load.state
    state.negative_building["dyn"] = NegativeBuildingLoad(
        "dyn", 0.0, (5.0, 5.0, 5.0), (40.0, 0.0, 0.0), (-35.0, 5.0, 5.0)
    )
    state.building_warnings = frozenset({"dyn"})
    hub._on_allocation(AllocationUpdated(frozenset(), frozenset(), building_warnings_changed=True))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "negative_building_load_dyn")
    assert issue is not None
    assert issue.translation_placeholders["zone"] == "Building"
    assert (
        "L1: measured 5.0 A, our EVs 40.0 A, building -35.0 A"
        in (issue.translation_placeholders["figures"])
    )
    state.building_warnings = frozenset()
    hub._on_allocation(AllocationUpdated(frozenset(), frozenset(), building_warnings_changed=True))
    assert ir.async_get(hass).async_get_issue(DOMAIN, "negative_building_load_dyn") is None
