"""Load management in HA: station and connector settings, setpoints, zone devices, repairs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from homeassistant.components.number import (
    ATTR_VALUE,
    DOMAIN as NUMBER_DOMAIN,
    SERVICE_SET_VALUE,
)
from homeassistant.components.select import (
    ATTR_OPTION,
    ATTR_OPTIONS,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from ocpp.charge_point import camel_to_snake_case
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.ev_charging_expert.const import DOMAIN, SUBENTRY_ZONE
from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import ConnectorConfig, StationConfig
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey as K

from .conftest import (
    ConnectCharger,
    HaCharger,
    entity_id,
    wait_for,
    wait_load_managed,
    zone_subentry,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentryDataWithId
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

# The "suspended" binary sensor is disabled by default (the reason sensor says it): enabled here.
pytestmark = pytest.mark.usefixtures("entity_registry_enabled_by_default")

MAIN = "main"
GARAGE = "garage"
OFFICE = "office"

# Main (40 A) feeds Garage (32 A); Office (25 A) is on its own. Stations go in Garage or Office.
TREE: list[ConfigSubentryDataWithId] = [
    zone_subentry(MAIN, "Main", 40),
    zone_subentry(GARAGE, "Garage", 32, parent_id=MAIN),
    zone_subentry(OFFICE, "Office", 25),
]


@pytest.fixture
def zone_subentries() -> list[ConfigSubentryDataWithId]:
    """One 32 A zone, unless a test gives another tree."""
    return [zone_subentry(MAIN, "Main", 32)]


def state(hass: HomeAssistant, platform: str, unique_id: str) -> Any:
    """The state object of one of our entities."""
    found = hass.states.get(entity_id(hass, platform, unique_id))
    assert found is not None
    return found


def value(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """The state (string) of one of our entities."""
    return state(hass, platform, unique_id).state


async def select(hass: HomeAssistant, unique_id: str, option: str) -> None:
    """Choose an option of one of our selects."""
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: entity_id(hass, "select", unique_id), ATTR_OPTION: option},
        blocking=True,
    )
    await hass.async_block_till_done()


async def set_number(hass: HomeAssistant, unique_id: str, number: float) -> None:
    """Set one of our numbers."""
    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: entity_id(hass, "number", unique_id), ATTR_VALUE: number},
        blocking=True,
    )
    await hass.async_block_till_done()


async def switch(hass: HomeAssistant, unique_id: str, service: str) -> None:
    """Turn one of our switches on or off."""
    await hass.services.async_call(
        SWITCH_DOMAIN,
        service,
        {ATTR_ENTITY_ID: entity_id(hass, "switch", unique_id)},
        blocking=True,
    )
    await hass.async_block_till_done()


def limit_of(request: dict[str, Any]) -> float:
    """The limit of a SetChargingProfile as the charger received it."""
    profile = request["cs_charging_profiles"]
    return profile["charging_schedule"]["charging_schedule_period"][0]["limit"]


def set_charging_profiles(charger: HaCharger) -> list[dict[str, Any]]:
    """The SetChargingProfile requests the charger received (ignored ones are kept raw)."""
    return [camel_to_snake_case(r) for r in charger.requests["SetChargingProfile"]]


def held(hub: EvChargingCoordinator, key: K) -> float | None:
    """The limit a connector's charger confirmed, once no change is in flight."""
    lease = hub.controller.load.leases.get(key)
    return lease.held if lease is not None and lease.sent is None else None


def last_lease_limit(charger: HaCharger) -> float | None:
    """The limit of the last lease (connector profile) the charger received."""
    leases = [r for r in set_charging_profiles(charger) if r["connector_id"] != 0]
    return limit_of(leases[-1]) if leases else None


async def charging_in_main(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    *station_ids: str,
) -> list[HaCharger]:
    """Connect the chargers, put them in zone Main with the zone select, then start a session
    on each, one after the other, once they are all load-managed."""
    chargers = [await connect_charger(station_id) for station_id in station_ids]
    for station_id in station_ids:
        await select(hass, f"{station_id}_zone", "Main")
        await wait_load_managed(hass, hub, station_id)
    for charger in chargers:
        await charger.start_session()
    return chargers


# ---------------------------------------------------------------------------- zone select


@pytest.mark.parametrize("zone_subentries", [TREE])
async def test_zone_select_offers_unassigned_and_the_zones_without_sub_zones(
    hass: HomeAssistant, connect_charger: ConnectCharger
) -> None:
    await connect_charger("CP1")

    zone = state(hass, "select", "CP1_zone")

    assert zone.state == "unassigned"
    assert zone.attributes[ATTR_OPTIONS] == ["unassigned", "Garage", "Office"]


@pytest.mark.parametrize("zone_subentries", [TREE])
async def test_assigning_every_station_settles_the_unassigned_repair(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    issue_registry: ir.IssueRegistry,
) -> None:
    assert issue_registry.async_get_issue(DOMAIN, "unassigned_stations") is None
    await connect_charger("CP1")
    await connect_charger("CP2")

    issue = issue_registry.async_get_issue(DOMAIN, "unassigned_stations")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders == {"count": "2", "stations": "CP1, CP2"}

    await select(hass, "CP1_zone", "Garage")

    assert hub.site.stations["CP1"].config.zone_id == GARAGE
    assert value(hass, "select", "CP1_zone") == "Garage"
    issue = issue_registry.async_get_issue(DOMAIN, "unassigned_stations")
    assert issue.translation_placeholders == {"count": "1", "stations": "CP2"}

    await select(hass, "CP2_zone", "Office")

    assert hub.site.stations["CP2"].config.zone_id == OFFICE
    assert issue_registry.async_get_issue(DOMAIN, "unassigned_stations") is None

    await select(hass, "CP1_zone", "unassigned")

    assert hub.site.stations["CP1"].config.zone_id is None
    issue = issue_registry.async_get_issue(DOMAIN, "unassigned_stations")
    assert issue.translation_placeholders == {"count": "1", "stations": "CP1"}


@pytest.mark.parametrize("zone_subentries", [TREE])
async def test_zone_select_follows_the_zone_tree(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    device_registry: dr.DeviceRegistry,
) -> None:
    await connect_charger("CP1")
    await select(hass, "CP1_zone", "Garage")
    zone = entity_id(hass, "select", "CP1_zone")

    # A sub-zone under Office: Office is no place for a station any more, Desk is.
    flow = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, SUBENTRY_ZONE), context={"source": SOURCE_USER}
    )
    await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        {"name": "Desk", "parent_id": OFFICE, "max_current": 16, "mode": "static"},
    )
    await hass.async_block_till_done()
    assert hass.states.get(zone).attributes[ATTR_OPTIONS] == ["unassigned", "Desk", "Garage"]

    # Renamed: the station's zone shows under its new name.
    flow = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, SUBENTRY_ZONE),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": GARAGE},
    )
    await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        {"name": "Car park", "parent_id": MAIN, "max_current": 32, "mode": "static"},
    )
    await hass.async_block_till_done()
    assert hass.states.get(zone).state == "Car park"
    assert hass.states.get(zone).attributes[ATTR_OPTIONS] == ["unassigned", "Car park", "Desk"]
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"zone_{GARAGE}")})
    assert device.name == "Car park"

    # Deleted: the station is unassigned, and Main, without sub-zones now, takes stations.
    hass.config_entries.async_remove_subentry(init_integration, GARAGE)
    await hass.async_block_till_done()
    assert hass.states.get(zone).state == "unassigned"
    assert hass.states.get(zone).attributes[ATTR_OPTIONS] == ["unassigned", "Desk", "Main"]
    assert hub.site.stations["CP1"].config.zone_id == GARAGE  # kept, pointing nowhere


# ---------------------------------------------------------------------------- connector settings


async def test_wiring_select_sets_how_the_connector_is_wired(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    await connect_charger("CP1")
    wiring = state(hass, "select", "CP1_1_wiring")
    assert wiring.state == "TRI123"
    assert wiring.attributes[ATTR_OPTIONS] == [w.value for w in Wiring]

    await select(hass, "CP1_1_wiring", "MONO2")

    assert hub.site.stations["CP1"].config.connector(1).wiring is Wiring.MONO2
    assert value(hass, "select", "CP1_1_wiring") == "MONO2"


async def test_rating_caps_the_current_limit(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    await connect_charger("CP1")
    limit = entity_id(hass, "number", "CP1_1_current_limit")
    assert value(hass, "number", "CP1_1_rating") == "32.0"
    assert hass.states.get(limit).state == "32.0"
    assert hass.states.get(limit).attributes["max"] == 32.0

    await set_number(hass, "CP1_1_rating", 16)

    assert hub.site.stations["CP1"].config.connector(1).rating == 16.0
    assert hass.states.get(limit).state == "16.0"
    assert hass.states.get(limit).attributes["max"] == 16.0
    with pytest.raises(ServiceValidationError):
        await set_number(hass, "CP1_1_current_limit", 20)

    await set_number(hass, "CP1_1_current_limit", 10.5)

    assert hub.site.stations["CP1"].config.connector(1).user_limit == 10.5
    assert hass.states.get(limit).state == "10.5"

    # At the rating is no cap at all: a later higher rating is not held back by it.
    await set_number(hass, "CP1_1_current_limit", 16)

    assert hub.site.stations["CP1"].config.connector(1).user_limit is None
    await set_number(hass, "CP1_1_rating", 20)
    assert hass.states.get(limit).state == "20.0"

    # Nor is a limit the rating is lowered to (or below).
    await set_number(hass, "CP1_1_current_limit", 10)
    await set_number(hass, "CP1_1_rating", 10)
    assert hub.site.stations["CP1"].config.connector(1).user_limit is None
    assert hass.states.get(limit).state == "10.0"


async def test_vip_and_pause_switches(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    await connect_charger("CP1")
    assert value(hass, "switch", "CP1_vip") == STATE_OFF
    assert value(hass, "switch", "CP1_1_pause") == STATE_OFF

    await switch(hass, "CP1_vip", SERVICE_TURN_ON)
    await switch(hass, "CP1_1_pause", SERVICE_TURN_ON)

    assert hub.site.stations["CP1"].config.vip
    assert hub.site.stations["CP1"].config.connector(1).paused
    assert value(hass, "switch", "CP1_vip") == STATE_ON
    assert value(hass, "switch", "CP1_1_pause") == STATE_ON

    await switch(hass, "CP1_vip", SERVICE_TURN_OFF)
    await switch(hass, "CP1_1_pause", SERVICE_TURN_OFF)

    assert not hub.site.stations["CP1"].config.vip
    assert not hub.site.stations["CP1"].config.connector(1).paused


async def test_settings_work_while_the_charger_is_offline_and_survive_a_reload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    await charger.close()
    await wait_for(hass, lambda: value(hass, "binary_sensor", "CP1_connected") == STATE_OFF)
    assert value(hass, "sensor", "CP1_1_setpoint") == STATE_UNAVAILABLE
    for platform, unique_id in (
        ("select", "CP1_zone"),
        ("select", "CP1_1_wiring"),
        ("number", "CP1_1_rating"),
        ("number", "CP1_1_current_limit"),
        ("switch", "CP1_vip"),
        ("switch", "CP1_1_pause"),
    ):
        assert value(hass, platform, unique_id) != STATE_UNAVAILABLE, unique_id

    await select(hass, "CP1_zone", "Main")
    await select(hass, "CP1_1_wiring", "TRI231")
    await set_number(hass, "CP1_1_rating", 20)
    await set_number(hass, "CP1_1_current_limit", 12)
    await switch(hass, "CP1_vip", SERVICE_TURN_ON)
    await switch(hass, "CP1_1_pause", SERVICE_TURN_ON)
    expected = StationConfig(
        zone_id=MAIN,
        vip=True,
        connectors={
            1: ConnectorConfig(wiring=Wiring.TRI231, rating=20.0, user_limit=12.0, paused=True)
        },
    )
    assert hub.site.stations["CP1"].config == expected

    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()

    assert init_integration.runtime_data is not hub
    assert init_integration.runtime_data.site.stations["CP1"].config == expected
    assert value(hass, "select", "CP1_zone") == "Main"
    assert value(hass, "select", "CP1_1_wiring") == "TRI231"
    assert value(hass, "number", "CP1_1_rating") == "20.0"
    assert value(hass, "number", "CP1_1_current_limit") == "12.0"
    assert value(hass, "switch", "CP1_vip") == STATE_ON
    assert value(hass, "switch", "CP1_1_pause") == STATE_ON


# ---------------------------------------------------------------------------- allocation


@pytest.mark.usefixtures("clock")
async def test_two_evs_share_their_zone(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    chargers = await charging_in_main(hass, hub, connect_charger, "CP1", "CP2")

    for charger in chargers:
        await wait_for(hass, lambda c=charger: last_lease_limit(c) == 16)
    await wait_for(hass, lambda: value(hass, "sensor", "CP1_1_setpoint") == "16.0")
    assert value(hass, "sensor", "CP2_1_setpoint") == "16.0"
    assert value(hass, "sensor", "CP1_1_allocation") == "capped_by_zone"
    assert value(hass, "binary_sensor", "CP1_1_suspended") == STATE_OFF
    for phase in (1, 2, 3):
        assert value(hass, "sensor", f"zone_{MAIN}_budget_l{phase}") == "32.0"
        assert value(hass, "sensor", f"zone_{MAIN}_allocated_l{phase}") == "32.0"
    assert value(hass, "sensor", f"zone_{MAIN}_evs_charging") == "2"
    assert value(hass, "sensor", f"zone_{MAIN}_evs_suspended") == "0"
    assert value(hass, "sensor", f"zone_{MAIN}_max_current") == "32.0"
    assert value(hass, "sensor", f"zone_{MAIN}_mode") == "static"

    # First the base profile: the station's fallback when it stops hearing from us (0 A).
    base = chargers[0].requests["SetChargingProfile"][0]
    assert base["connector_id"] == 0
    profile = base["cs_charging_profiles"]
    assert profile["stack_level"] == 0
    assert profile["charging_profile_purpose"] == "TxDefaultProfile"
    assert "valid_to" not in profile
    assert profile["charging_schedule"]["charging_rate_unit"] == "A"
    assert limit_of(base) == 0
    # Then the setpoint, as a lease on the connector that expires unless renewed.
    lease = chargers[0].requests["SetChargingProfile"][-1]
    assert lease["connector_id"] == 1
    profile = lease["cs_charging_profiles"]
    assert profile["stack_level"] == 1
    assert profile["charging_profile_purpose"] == "TxDefaultProfile"
    assert profile["valid_to"] > profile["valid_from"]


async def test_pausing_an_ev_gives_the_other_up_to_its_rating(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    cp1, cp2 = await charging_in_main(hass, hub, connect_charger, "CP1", "CP2")
    await wait_for(hass, lambda: held(hub, K("CP1", 1)) == held(hub, K("CP2", 1)) == 16)

    await switch(hass, "CP1_1_pause", SERVICE_TURN_ON)

    await wait_for(hass, lambda: value(hass, "sensor", "CP2_1_setpoint") == "32.0")
    assert value(hass, "sensor", "CP1_1_setpoint") == "0.0"
    assert value(hass, "sensor", "CP1_1_allocation") == "not_charging"
    assert value(hass, "sensor", "CP2_1_allocation") == "allocated"
    assert value(hass, "sensor", f"zone_{MAIN}_evs_charging") == "1"
    assert value(hass, "sensor", f"zone_{MAIN}_allocated_l1") == "32.0"
    # The paused EV is held at 0 A first; that makes the room for the other's 32 A, which
    # goes out once that charger's increase interval (10 s) has passed.
    await wait_for(hass, lambda: held(hub, K("CP1", 1)) == 0)
    assert last_lease_limit(cp1) == 0
    assert last_lease_limit(cp2) == 16
    clock.advance(10)
    await wait_for(hass, lambda: last_lease_limit(cp2) == 32)


async def test_room_freed_while_a_change_is_in_flight_is_given_within_the_increase_interval(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    cp1 = await connect_charger("CP1")
    cp2 = await connect_charger("CP2")
    for station_id in ("CP1", "CP2"):
        await select(hass, f"{station_id}_zone", "Main")
        await wait_load_managed(hass, hub, station_id)
    await cp1.start_session()
    await wait_for(hass, lambda: held(hub, K("CP1", 1)) == 32)
    # Both bases at their degraded current (16 A) and every lease renewed after that.
    clock.advance(1)  # the bases follow the setpoints a moment later
    await wait_for(
        hass,
        lambda: (
            all(hub.controller.load.controls[s].base.held == 16 for s in ("CP1", "CP2"))
            and all(lease.sent is None for lease in hub.controller.load.leases.values())
        ),
    )
    # CP2 holds back its answer to the 16 A it gets when its EV starts.
    cp2.ignore.add("SetChargingProfile")
    await cp2.start_session()
    await wait_for(hass, lambda: hub.controller.load.leases[K("CP2", 1)].sent == 16)

    await switch(hass, "CP1_1_pause", SERVICE_TURN_ON)
    await wait_for(hass, lambda: held(hub, K("CP1", 1)) == 0)
    cp2.ignore.clear()
    await cp2.answer_late("SetChargingProfile", {"status": "Accepted"})
    await wait_for(hass, lambda: held(hub, K("CP2", 1)) == 16)
    clock.advance(10)

    # Bounded: this wait is the one that fails while the bug is there.
    async with asyncio.timeout(2):
        await wait_for(hass, lambda: last_lease_limit(cp2) == 32)
    assert last_lease_limit(cp1) == 0


@pytest.mark.usefixtures("clock")
async def test_a_charger_that_refuses_profiles_raises_a_repair(
    hass: HomeAssistant,
    connect_charger: ConnectCharger,
    issue_registry: ir.IssueRegistry,
) -> None:
    charger = await connect_charger("CP2", boot=False)
    charger.answers["SetChargingProfile"] = {"status": "Rejected"}
    await charger.boot()
    await charger.status(0)
    await charger.status(1)

    await wait_for(
        hass,
        lambda: issue_registry.async_get_issue(DOMAIN, "uncontrollable_charger_CP2") is not None,
    )
    issue = issue_registry.async_get_issue(DOMAIN, "uncontrollable_charger_CP2")
    assert issue.translation_key == "uncontrollable_charger"
    assert issue.translation_placeholders == {"station_id": "CP2", "reason": "Rejected"}

    # Counted at its rating in its zone: the allocation says it is not controlled.
    await select(hass, "CP2_zone", "Main")
    await charger.start_session()
    await wait_for(hass, lambda: value(hass, "sensor", "CP2_1_allocation") == "uncontrolled")


@pytest.mark.parametrize("zone_subentries", [[zone_subentry(MAIN, "Main", 10)]])
@pytest.mark.usefixtures("clock")
async def test_an_ev_that_does_not_fit_is_shown_suspended(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    await charging_in_main(hass, hub, connect_charger, "CP1", "CP2")

    await wait_for(hass, lambda: value(hass, "sensor", f"zone_{MAIN}_evs_suspended") == "1")

    assert value(hass, "sensor", f"zone_{MAIN}_evs_charging") == "1"
    suspended = {sid: value(hass, "binary_sensor", f"{sid}_1_suspended") for sid in ("CP1", "CP2")}
    assert sorted(suspended.values()) == [STATE_OFF, STATE_ON]
    for sid, on in suspended.items():
        if on == STATE_ON:
            assert value(hass, "sensor", f"{sid}_1_setpoint") == "0.0"
            assert value(hass, "sensor", f"{sid}_1_allocation") == "suspended_priority"
        else:
            assert value(hass, "sensor", f"{sid}_1_setpoint") == "10.0"


# ---------------------------------------------------------------------------- zone devices


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platforms", [[Platform.SENSOR]])
async def test_zone_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await wait_for(hass, lambda: hass.states.get("sensor.main_budget_l1").state == "32.0")

    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)

    entries = er.async_entries_for_config_entry(entity_registry, init_integration.entry_id)
    # The hub's own entities (site totals, TOU period, inputs, cards, BMS, MQTT): no subentry.
    hub = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, init_integration.entry_id)})
    assert hub is not None
    hub_device_id = hub.id
    assert {e.config_subentry_id for e in entries if e.device_id != hub_device_id} == {MAIN}


# ---------------------------------------------------------------------------- diagnostics


async def test_diagnostics_show_the_load_management(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    (charger,) = await charging_in_main(hass, hub, connect_charger, "CP1")
    await wait_for(hass, lambda: last_lease_limit(charger) == 32)
    clock.advance(1)  # the bases follow the setpoints a moment later
    await wait_for(hass, lambda: hub.controller.load.controls["CP1"].base.held == 32)
    # Nothing in flight (a lease renewal may be on its way when a run just happened).
    lease = hub.controller.load.state.leases
    await wait_for(hass, lambda: all(entry.sent is None for entry in lease.values()))
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    load = diagnostics["load_management"]
    assert load["settings"] == {
        "minimum_standard": "iec_61851",
        "shed_priority": "energy",
        "reevaluation_period": 900.0,
        "nominal_voltage": 230.0,
        "safety_margin": 1.0,
        "consumption_optimisation": False,
    }
    assert load["optimisation_caps"] == []
    assert load["zone_config"] == {
        MAIN: {
            "zone_id": MAIN,
            "name": "Main",
            "max_current": 32.0,
            "parent_id": None,
            "mode": "static",
            "degraded_setpoint": 0.0,
        }
    }
    assert load["runs"] > 0
    assert load["guard_violations"] == 0
    # The zone as the last run saw it.
    (zone,) = load["zones"]
    assert (zone["zone_id"], zone["budget"], zone["charging"]) == (MAIN, [32.0, 32.0, 32.0], 1)
    # Per station: whether we control it; its base confirmed, in flight, and planned.
    assert load["stations"] == [
        {
            "station_id": "CP1",
            "control": "controlled",
            "degraded_current": 32.0,
            "base_held": 32.0,
            "base_sent": None,
            "base_planned": 32.0,
        }
    ]
    assert load["connectors"] == [
        {
            "key": {"station_id": "CP1", "connector_id": 1},
            "setpoint": 32.0,
            "reason": "allocated",
            "limited_by": None,
            "held": 32.0,
            "sent": None,
        }
    ]
