"""The site at a glance: who holds current while offline (zone sensor and repair), the site's
energy counter, the problems sensor and the device tree."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.ev_charging_expert.const import (
    CONF_OFFLINE_REPAIR_MINUTES,
    DOMAIN,
    ISSUE_OFFLINE_RESERVE,
)
from custom_components.ev_charging_expert.evcore.model import Registration

from .conftest import ConnectCharger, entity_id, wait_for, wait_load_managed, zone_subentry
from .test_repairs import process_repair_fix_flow, start_repair_fix_flow

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

MAIN = "main"
ISSUE = f"{ISSUE_OFFLINE_RESERVE}_{MAIN}"
pytestmark = [
    pytest.mark.parametrize("zone_subentries", [[zone_subentry(MAIN, "Main", 32)]]),
    pytest.mark.parametrize("entry_options", [{CONF_OFFLINE_REPAIR_MINUTES: 1}]),
]


async def _charging(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger, sid: str
) -> Any:
    charger = await connect_charger(sid)
    hub.site.configure_station(sid, replace(hub.site.stations[sid].config, zone_id=MAIN))
    await wait_load_managed(hass, hub, sid)
    await charger.start_session(1, f"TAG-{sid}")
    await wait_for(
        hass,
        lambda: (view := hub.allocation(sid, 1)) is not None and (view.held or 0) > 0,
    )
    return charger


async def test_an_offline_station_holding_current_is_named_then_removed_through_a_repair(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
    issue_registry: ir.IssueRegistry,
    hass_client: ClientSessionGenerator,
) -> None:
    charger = await _charging(hass, hub, connect_charger, "CP1")
    await charger.close()
    await wait_for(hass, lambda: hub.zone_view(MAIN).offline_reserve)
    held = hass.states.get(entity_id(hass, "sensor", f"zone_{MAIN}_offline_held"))
    assert float(held.state) > 0
    assert held.attributes["stations"][0].startswith("CP1 (")

    # Not yet: it may come back.
    hub.overview.sync_offline()
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None
    clock.advance(70)  # its lease (100 s) still runs: it may still draw
    await hass.async_block_till_done()
    hub.overview.sync_offline()
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders["zone"] == "Main"
    assert issue.translation_placeholders["stations"].startswith("CP1 (")

    assert await async_setup_component(hass, "repairs", {})
    client = await hass_client()
    flow = await start_repair_fix_flow(client, DOMAIN, ISSUE)
    assert flow["step_id"] == "remove"
    result = await process_repair_fix_flow(client, flow["flow_id"], {"remove": ["CP1"]})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()

    assert hub.site.stations["CP1"].registration is Registration.REMOVED
    assert dr.async_get(hass).async_get_device(identifiers={(DOMAIN, "CP1")}) is None


async def test_the_site_counter_adds_register_increases_not_registers(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    energy = entity_id(hass, "sensor", "site_energy")

    async def register(wh: float) -> None:
        sample = [{"measurand": "Energy.Active.Import.Register", "value": str(wh), "unit": "Wh"}]
        await charger.meter_values(1, sample)
        await hass.async_block_till_done()
        hub.overview._flush_now()  # without waiting for the 1 s coalescing
        await hass.async_block_till_done()

    # A charger that joins with 12 MWh on its register delivered nothing yet.
    await register(12_000_000)
    assert float(hass.states.get(energy).state) == 0.0
    await register(12_000_500)
    assert float(hass.states.get(energy).state) == pytest.approx(0.5)  # kWh
    await register(12_001_500)
    assert float(hass.states.get(energy).state) == pytest.approx(1.5)


async def test_problems_sensor_follows_the_repairs_and_the_tree_is_visible(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
    device_registry: dr.DeviceRegistry,
) -> None:
    problems = entity_id(hass, "binary_sensor", "site_problems")
    await connect_charger("CP1")
    # In no zone: "unassigned stations" is a repair.
    await wait_for(hass, lambda: hass.states.get(problems).state == "on")
    assert hass.states.get(problems).attributes["issues"] == ["unassigned_stations"]
    hub.site.configure_station("CP1", replace(hub.site.stations["CP1"].config, zone_id=MAIN))
    await wait_for(hass, lambda: hass.states.get(problems).state == "off")

    station = device_registry.async_get_device(identifiers={(DOMAIN, "CP1")})
    zone = device_registry.async_get_device(identifiers={(DOMAIN, f"zone_{MAIN}")})
    assert station.via_device_id == zone.id
    assert zone.manufacturer == "EV Charging Expert"
    connector = device_registry.async_get_device(identifiers={(DOMAIN, "CP1#1")})
    assert connector.model == "Connector"
    assert connector.via_device_id == station.id
