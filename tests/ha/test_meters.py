"""Modbus power meters: the meter flow, their devices and entities, against a real simulator.

The simulator is a real Modbus TCP server on 127.0.0.1; the hub runs on a manual clock, so a
poll happens when a test advances the clock or calls `poll_all`, and no test waits on time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)

from custom_components.ev_charging_expert.const import (
    DOMAIN,
    METER_DISPLAY_INTERVAL,
    SUBENTRY_METER,
)
from custom_components.ev_charging_expert.evcore.meters import MTZ, PM5320

from .conftest import (
    START,
    entity_id,
    meter_subentry,
    meters_idle,
    modbus_form,
    modbus_meter_data,
    start_subentry_flow,
    submit,
    wait_for,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentryDataWithId
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock
    from tools.sim.modbus_meter import MeterSimulator

# "last_read" is disabled by default (it changes at every poll): enabled here.
pytestmark = pytest.mark.usefixtures("manual_hub_clock", "entity_registry_enabled_by_default")

METER = "grid"  # subentry id of the meter the fixtures configure


async def start_meter_flow(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str | None = None
) -> dict[str, Any]:
    """Open the form: a new one, or the reconfiguration of `subentry_id`."""
    return await start_subentry_flow(hass, entry, SUBENTRY_METER, subentry_id)


def state(hass: HomeAssistant, key: str, meter_id: str = METER) -> str:
    """State of one of a meter's sensors."""
    found = hass.states.get(entity_id(hass, "sensor", f"meter_{meter_id}_{key}"))
    assert found is not None
    return found.state


@pytest.fixture
def zone_subentries(meter_simulator: MeterSimulator) -> list[ConfigSubentryDataWithId]:
    """One Modbus meter on the simulator (the conftest's name for the entry's subentries)."""
    return [meter_subentry(METER, "Grid", modbus_meter_data(meter_simulator.port))]


# ---------------------------------------------------------------------------- the flow


@pytest.mark.parametrize("zone_subentries", [[]])
async def test_modbus_meter_flow_creates_a_device_showing_the_simulator_values(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    meter_simulator: MeterSimulator,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    menu = await start_meter_flow(hass, init_integration)
    assert menu["type"] is FlowResultType.MENU
    assert menu["menu_options"] == ["modbus", "ha_sensors"]
    form = await submit(hass, menu, {"next_step_id": "modbus"})
    assert form["type"] is FlowResultType.FORM
    assert form["step_id"] == "modbus"

    result = await submit(hass, form, modbus_form(meter_simulator.port))
    await meters_idle(hass, hub)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Main meter"
    assert result["data"] == modbus_meter_data(meter_simulator.port) | {"name": "Main meter"}
    (meter_id,) = hub.meters.ids()
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"meter_{meter_id}")})
    assert device is not None
    assert device.name == "Main meter"
    assert device.model == PM5320
    assert device.via_device_id is not None
    assert device.config_entries_subentries[init_integration.entry_id] == {meter_id}
    entities = er.async_entries_for_device(entity_registry, device.id)
    assert {e.config_subentry_id for e in entities} == {meter_id}
    assert {e.unique_id.removeprefix(f"meter_{meter_id}_") for e in entities} == {
        "current_l1",
        "current_l2",
        "current_l3",
        "power",
        "energy",
        "connection",
        "last_read",
    }
    # The simulator's values, in the entities' units.
    assert state(hass, "current_l1", meter_id) == "40.0"
    assert state(hass, "current_l2", meter_id) == "35.0"
    assert state(hass, "current_l3", meter_id) == "30.0"
    assert float(state(hass, "power", meter_id)) == pytest.approx(105 * 230, rel=1e-6)
    assert float(state(hass, "energy", meter_id)) == pytest.approx(1234.567)  # kWh
    energy = hass.states.get(entity_id(hass, "sensor", f"meter_{meter_id}_energy"))
    assert energy.attributes["state_class"] == "total_increasing"
    assert state(hass, "connection", meter_id) == "connected"
    assert state(hass, "last_read", meter_id) == START
    # Applied live: the same hub, no reload.
    assert init_integration.runtime_data is hub
    assert init_integration.state is ConfigEntryState.LOADED


@pytest.mark.parametrize("zone_subentries", [[]])
@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"port": 70000}, {"base": "invalid_meter"}),
        ({"slave_id": 0}, {"base": "invalid_meter"}),
        ({"host": None}, {"base": "invalid_meter"}),
        ({"polling_period": 0}, {"base": "invalid_meter"}),
        ({"protocol": "rtu"}, {"base": "invalid_meter"}),
        ({"name": "  "}, {"name": "name_required"}),
    ],
    ids=["port", "slave_id", "host", "polling_period", "serial_port", "name"],
)
async def test_invalid_modbus_meter_is_refused_with_the_reason(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    meter_simulator: MeterSimulator,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    menu = await start_meter_flow(hass, init_integration)
    form = await submit(hass, menu, {"next_step_id": "modbus"})

    entered = {**modbus_form(meter_simulator.port), **changes}
    result = await submit(hass, form, {k: v for k, v in entered.items() if v is not None})

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert result["description_placeholders"] is None
    assert hub.meters.ids() == []
    # Corrected, the same flow goes through.
    result = await submit(hass, result, modbus_form(meter_simulator.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(hub.meters.ids()) == 1


async def test_second_meter_on_a_gateway_needs_its_own_slave_id_and_name(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    meter_simulator: MeterSimulator,
) -> None:
    menu = await start_meter_flow(hass, init_integration)
    form = await submit(hass, menu, {"next_step_id": "modbus"})

    same_slave = await submit(hass, form, modbus_form(meter_simulator.port, name="Sub"))
    assert same_slave["errors"] == {"base": "gateway_conflict"}
    same_name = await submit(hass, form, modbus_form(meter_simulator.port, name="grid", slave_id=2))
    assert same_name["errors"] == {"name": "name_taken"}
    result = await submit(hass, form, modbus_form(meter_simulator.port, name="Sub", slave_id=2))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # One connection for both meters.
    assert len(hub.controller.meters.gateways) == 1


async def test_model_choice_offers_the_built_in_models(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    menu = await start_meter_flow(hass, init_integration)
    form = await submit(hass, menu, {"next_step_id": "modbus"})

    models = form["data_schema"].schema
    (selector,) = [v for k, v in models.items() if k == "model"]
    assert selector.config["options"] == [PM5320, "NSX legacy", "NSX", MTZ]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")  # the hub's MQTT counters
@pytest.mark.parametrize("platforms", [[Platform.SENSOR]])
async def test_meter_sensors_snapshot(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
) -> None:
    await meters_idle(hass, hub)

    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


# ---------------------------------------------------------------------------- live state


async def test_stopped_simulator_makes_the_meter_not_connected_and_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    manual_hub_clock: ManualClock,
    meter_simulator: MeterSimulator,
) -> None:
    await meters_idle(hass, hub)
    assert state(hass, "connection") == "connected"
    assert hub.meters.source(METER).valid_reading() is not None

    await meter_simulator.stop()
    manual_hub_clock.advance(0.5)  # the next poll is due
    await meters_idle(hass, hub)

    assert state(hass, "connection") == "not_connected"
    connection = hass.states.get(entity_id(hass, "sensor", f"meter_{METER}_connection"))
    assert connection.attributes["reason"]
    assert state(hass, "current_l1") == STATE_UNAVAILABLE
    assert state(hass, "last_read") == START  # the last success stays shown
    # Two periods plus the timeout after the last good poll, the reading is no longer valid.
    manual_hub_clock.advance(2.0)
    await meters_idle(hass, hub)
    assert hub.meters.source(METER).valid_reading() is None

    await meter_simulator.start()
    # Reconnection waits for its back-off (1, 2, 4 ... s); polls go on meanwhile.
    for _ in range(40):
        manual_hub_clock.advance(0.5)
        await meters_idle(hass, hub)
        if state(hass, "connection") == "connected":
            break
    assert state(hass, "connection") == "connected"
    assert state(hass, "current_l1") == "40.0"
    assert hub.meters.source(METER).valid_reading() is not None


async def test_new_values_show_at_most_once_per_display_interval(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    manual_hub_clock: ManualClock,
    meter_simulator: MeterSimulator,
) -> None:
    await meters_idle(hass, hub)
    assert state(hass, "current_l1") == "40.0"
    meter_simulator.meter(1).set(currents=(12.0, 13.0, 14.0))

    manual_hub_clock.advance(0.5)
    await meters_idle(hass, hub)

    # The load manager has the new reading at once; the entities a little later.
    assert hub.meters.source(METER).valid_reading().currents_a == pytest.approx((12, 13, 14))
    assert state(hass, "current_l1") == "40.0"
    manual_hub_clock.advance(METER_DISPLAY_INTERVAL - 0.5)
    await meters_idle(hass, hub)
    assert state(hass, "current_l1") == "12.0"


async def test_load_manager_hears_of_every_reading_and_state_change(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    manual_hub_clock: ManualClock,
    meter_simulator: MeterSimulator,
) -> None:
    await meters_idle(hass, hub)
    with patch.object(hub.controller.load, "meter_updated") as meter_updated:
        manual_hub_clock.advance(0.5)
        await meters_idle(hass, hub)
        assert [c.args for c in meter_updated.call_args_list] == [(METER,)]

        await meter_simulator.stop()
        manual_hub_clock.advance(0.5)
        await meters_idle(hass, hub)
        # The failed poll changed the state: one more call.
        assert [c.args for c in meter_updated.call_args_list] == [(METER,), (METER,)]


async def test_reconfiguring_a_meter_applies_live(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    meter_simulator: MeterSimulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    await meters_idle(hass, hub)
    meter_simulator.add_meter(hub.controller.meters.models.get(MTZ), 7, currents=(5.0, 6.0, 7.0))
    flow = await start_meter_flow(hass, init_integration, METER)
    assert flow["type"] is FlowResultType.FORM
    assert flow["step_id"] == "modbus"

    result = await submit(
        hass, flow, modbus_form(meter_simulator.port, name="Grid MTZ", model=MTZ, slave_id=7)
    )
    await meters_idle(hass, hub)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"meter_{METER}")})
    assert (device.name, device.model) == ("Grid MTZ", MTZ)
    assert state(hass, "current_l1") == "5.0"
    assert hub.controller.meters[METER].config.slave_id == 7
    assert init_integration.runtime_data is hub


async def test_deleting_a_meter_removes_its_device_and_stops_polling(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    meter_simulator: MeterSimulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    await meters_idle(hass, hub)

    assert hass.config_entries.async_remove_subentry(init_integration, METER)
    await hass.async_block_till_done()

    assert device_registry.async_get_device(identifiers={(DOMAIN, f"meter_{METER}")}) is None
    assert len(hub.controller.meters) == 0
    assert hub.controller.meters.gateways == {}
    await wait_for(hass, lambda: meter_simulator.open_connections == 0)


# ---------------------------------------------------------------------------- diagnostics


async def test_diagnostics_show_the_meter_config_state_and_last_reading(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    meter_simulator: MeterSimulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    await meters_idle(hass, hub)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    meter = diagnostics["meters"][METER]
    assert meter["name"] == "Grid"
    assert meter["config"] == modbus_meter_data(meter_simulator.port) | {"name": "Grid"}
    assert meter["state"] == "connected"
    assert meter["reason"] is None
    assert meter["last_success"] == START
    assert meter["last_reading"]["currents_a"] == [40.0, 35.0, 30.0]
    assert meter["last_reading"]["energy_wh"] == 1_234_567
    assert meter["gateway"]["key"] == f"127.0.0.1:{meter_simulator.port}"
    assert diagnostics["meter_models"] == []
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"meter_{METER}")})
    assert await get_diagnostics_for_device(hass, hass_client, init_integration, device) == meter
