"""Power meters made of Home Assistant sensors: units, lost sensors, staleness, the flow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.ev_charging_expert.const import SUBENTRY_METER

from .conftest import START, entity_id, meter_subentry

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentryDataWithId
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

# "last_read" is disabled by default (it changes at every poll): enabled here.
pytestmark = pytest.mark.usefixtures("manual_hub_clock", "entity_registry_enabled_by_default")

METER = "board"
PHASES = ("sensor.l1", "sensor.l2", "sensor.l3")
CURRENT_METER = {
    "kind": "ha_sensors",
    "current_l1": "sensor.l1",
    "current_l2": "sensor.l2",
    "current_l3": "sensor.l3",
    "max_age": 60.0,
}
POWER_METER = {
    "kind": "ha_sensors",
    "power_l1": "sensor.l1",
    "power_l2": "sensor.l2",
    "power_l3": "sensor.l3",
    "voltage": 230.0,
    "energy": "sensor.energy",
    "max_age": 60.0,
}


def set_phases(hass: HomeAssistant, values: tuple[Any, Any, Any], unit: str | None) -> None:
    """Write the three phase sensors (a value of None leaves that one alone)."""
    for entity, value in zip(PHASES, values, strict=True):
        if value is not None:
            attributes = {"unit_of_measurement": unit} if unit else {}
            hass.states.async_set(entity, str(value), attributes)


def state(hass: HomeAssistant, key: str) -> str:
    """State of one of the meter's sensors."""
    return hass.states.get(entity_id(hass, "sensor", f"meter_{METER}_{key}")).state


def reason(hass: HomeAssistant) -> str | None:
    """Why the meter is not connected."""
    found = hass.states.get(entity_id(hass, "sensor", f"meter_{METER}_connection"))
    return found.attributes["reason"]


@pytest.fixture
def meter_data() -> dict[str, Any]:
    """The meter's subentry data (a test module may override it per test)."""
    return CURRENT_METER


@pytest.fixture
def zone_subentries(meter_data: dict[str, Any]) -> list[ConfigSubentryDataWithId]:
    """One HA-sensor meter."""
    return [meter_subentry(METER, "Board", meter_data)]


@pytest.fixture
def sources(hass: HomeAssistant) -> None:
    """The source sensors exist before the integration starts (as after an HA restart)."""
    set_phases(hass, (10.0, 11.0, 12.5), "A")
    hass.states.async_set("sensor.energy", "12.5", {"unit_of_measurement": "kWh"})


# ---------------------------------------------------------------------------- readings


@pytest.mark.usefixtures("sources")
async def test_current_sensors_drive_the_meter_and_its_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    reading = hub.meters.source(METER).valid_reading()
    assert reading is not None
    assert reading.currents_a == (10.0, 11.0, 12.5)
    assert state(hass, "current_l3") == "12.5"
    assert state(hass, "connection") == "connected"
    assert state(hass, "last_read") == START
    # Without power or energy sensors the meter has no such entities.
    assert hub.meters.entities[METER] == {
        "current_l1",
        "current_l2",
        "current_l3",
        "connection",
        "last_read",
    }

    set_phases(hass, ("500", None, None), "mA")
    await hass.async_block_till_done()

    assert hub.meters.source(METER).valid_reading().currents_a == (0.5, 11.0, 12.5)


@pytest.mark.usefixtures("sources")
@pytest.mark.parametrize("meter_data", [POWER_METER])
async def test_power_sensors_become_currents_at_the_nominal_voltage(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    set_phases(hass, (2300, 4600, -1150), "W")
    await hass.async_block_till_done()

    reading = hub.meters.source(METER).valid_reading()
    # An exporting phase still loads its cable: its magnitude counts.
    assert reading.currents_a == pytest.approx((10.0, 20.0, 5.0))
    assert reading.total_power_w == pytest.approx(5750)
    assert reading.energy_wh == pytest.approx(12_500)
    assert state(hass, "current_l2") == "20.0"
    assert float(state(hass, "power")) == pytest.approx(5750)
    assert float(state(hass, "energy")) == pytest.approx(12.5)  # kWh

    set_phases(hass, (2.3, 2.3, 2.3), "kW")
    await hass.async_block_till_done()
    assert hub.meters.source(METER).valid_reading().currents_a == pytest.approx((10, 10, 10))


@pytest.mark.usefixtures("sources")
@pytest.mark.parametrize(
    ("value", "unit", "expected_state", "expected_reason"),
    [
        (STATE_UNAVAILABLE, "A", "not_connected", "sensor.l2 is unavailable"),
        (STATE_UNKNOWN, "A", "not_connected", "sensor.l2 is unknown"),
        ("high", "A", "error", "sensor.l2: 'high' is not a number"),
        ("nan", "A", "error", "sensor.l2: 'nan' is not a number"),
        ("9", None, "error", "sensor.l2: unit None is not one of A, mA"),
        ("9", "W", "error", "sensor.l2: unit 'W' is not one of A, mA"),
    ],
    ids=["unavailable", "unknown", "text", "nan", "no_unit", "wrong_unit"],
)
async def test_an_unusable_phase_sensor_makes_the_meter_lost(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    value: str,
    unit: str | None,
    expected_state: str,
    expected_reason: str,
) -> None:
    set_phases(hass, (None, value, None), unit)
    await hass.async_block_till_done()

    assert hub.meters.source(METER).valid_reading() is None
    assert state(hass, "connection") == expected_state
    assert reason(hass) == expected_reason
    assert state(hass, "current_l1") == STATE_UNAVAILABLE

    # Usable again: a reading at once.
    set_phases(hass, (None, 9.0, None), "A")
    await hass.async_block_till_done()
    assert hub.meters.source(METER).valid_reading().currents_a == (10.0, 9.0, 12.5)
    assert state(hass, "connection") == "connected"
    assert reason(hass) is None


async def test_missing_sensors_leave_the_meter_not_connected_until_they_appear(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    assert hub.meters.source(METER).valid_reading() is None
    assert state(hass, "connection") == "not_connected"
    assert reason(hass) == "sensor.l1 does not exist"

    set_phases(hass, (1, 2, 3), "A")
    await hass.async_block_till_done()

    assert hub.meters.source(METER).valid_reading().currents_a == (1.0, 2.0, 3.0)


@pytest.mark.usefixtures("sources")
async def test_a_silent_phase_sensor_goes_stale_after_max_age(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    manual_hub_clock: ManualClock,
) -> None:
    manual_hub_clock.advance(40)
    # L1 and L2 report (same values: no state change, a state report); L3 says nothing.
    set_phases(hass, (10.0, 11.0, None), "A")
    await hass.async_block_till_done()
    manual_hub_clock.advance(19.9)
    await hass.async_block_till_done()
    assert hub.meters.source(METER).valid_reading() is not None

    manual_hub_clock.advance(0.1)  # 60 s since L3 was last heard of
    await hass.async_block_till_done()

    assert hub.meters.source(METER).valid_reading() is None
    assert state(hass, "connection") == "not_connected"
    assert reason(hass) == "sensor.l3: no update for 60 s"

    set_phases(hass, (None, None, 12.5), "A")  # a report of the same value is news enough
    await hass.async_block_till_done()
    assert hub.meters.source(METER).valid_reading() is not None


@pytest.mark.usefixtures("sources")
async def test_load_manager_hears_of_sensor_updates(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    calls: list[str] = []
    hub.controller.load.meter_updated = calls.append  # type: ignore[attr-defined]

    set_phases(hass, (1, None, None), "A")
    set_phases(hass, (STATE_UNAVAILABLE, None, None), None)
    await hass.async_block_till_done()

    assert calls == [METER, METER]


# ---------------------------------------------------------------------------- the flow


async def start_sensor_flow(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Open the meter flow and choose Home Assistant sensors."""
    menu = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    return await hass.config_entries.subentries.async_configure(
        menu["flow_id"], {"next_step_id": "ha_sensors"}
    )


def sensor_form(
    name: str = "Board",
    *,
    currents: tuple[str, ...] = (),
    powers: tuple[str, ...] = (),
    voltage: float = 230.0,
    totals: dict[str, str] | None = None,
    max_age: float = 60.0,
) -> dict[str, Any]:
    """What the user enters in the HA-sensor meter form."""
    return {
        "name": name,
        "currents": dict(zip(("current_l1", "current_l2", "current_l3"), currents, strict=False)),
        "powers": {
            **dict(zip(("power_l1", "power_l2", "power_l3"), powers, strict=False)),
            "voltage": voltage,
        },
        "totals": totals or {},
        "max_age": max_age,
    }


@pytest.mark.usefixtures("sources")
@pytest.mark.parametrize("zone_subentries", [[]])
async def test_sensor_meter_flow_creates_a_meter_that_applies_live(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    flow = await start_sensor_flow(hass, init_integration)
    assert flow["step_id"] == "ha_sensors"

    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        sensor_form(powers=PHASES, voltage=240, totals={"energy": "sensor.energy"}),
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        "kind": "ha_sensors",
        "name": "Board",
        "power_l1": "sensor.l1",
        "power_l2": "sensor.l2",
        "power_l3": "sensor.l3",
        "voltage": 240.0,
        "energy": "sensor.energy",
        "max_age": 60.0,
    }
    (meter_id,) = hub.meters.ids()
    set_phases(hass, (2400, 2400, 2400), "W")
    await hass.async_block_till_done()
    assert hub.meters.source(meter_id).valid_reading().currents_a == pytest.approx((10, 10, 10))
    assert hub.meters.entities[meter_id] >= {"power", "energy"}

    # Reconfigured to currents: the same meter follows the new sensors.
    flow = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, SUBENTRY_METER),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": meter_id},
    )
    assert flow["step_id"] == "ha_sensors"
    hass.states.async_set("sensor.a1", "3", {"unit_of_measurement": "A"})
    hass.states.async_set("sensor.a2", "4", {"unit_of_measurement": "A"})
    hass.states.async_set("sensor.a3", "5", {"unit_of_measurement": "A"})
    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"], sensor_form(currents=("sensor.a1", "sensor.a2", "sensor.a3"))
    )
    await hass.async_block_till_done()

    assert result["reason"] == "reconfigure_successful"
    assert hub.meters.source(meter_id).valid_reading().currents_a == (3.0, 4.0, 5.0)
    # No power or energy sensor any more: those entities went away.
    assert hub.meters.entities[meter_id] == {
        "current_l1",
        "current_l2",
        "current_l3",
        "connection",
        "last_read",
    }


@pytest.mark.parametrize("zone_subentries", [[]])
@pytest.mark.parametrize(
    ("form", "errors", "placeholders"),
    [
        (sensor_form(), {"base": "sensors_missing"}, None),
        (
            sensor_form(currents=PHASES[:2]),
            {"base": "currents_incomplete"},
            {"missing": "L3"},
        ),
        (
            sensor_form(currents=PHASES, powers=PHASES),
            {"base": "currents_and_powers"},
            None,
        ),
        (
            sensor_form(currents=("sensor.l1", "sensor.l1", "sensor.l3")),
            {"base": "same_sensor"},
            None,
        ),
        (
            sensor_form(powers=PHASES, voltage=50),
            {"base": "voltage_out_of_range"},
            {"min": "100", "max": "300"},
        ),
        (
            sensor_form(currents=PHASES, max_age=0),
            {"base": "max_age_out_of_range"},
            {"min": "1", "max": "3600"},
        ),
        (sensor_form("", currents=PHASES), {"name": "name_required"}, None),
    ],
    ids=["nothing", "two_phases", "both", "same_sensor", "voltage", "max_age", "name"],
)
async def test_invalid_sensor_meter_is_refused_with_the_reason(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    form: dict[str, Any],
    errors: dict[str, str],
    placeholders: dict[str, str] | None,
) -> None:
    flow = await start_sensor_flow(hass, init_integration)

    result = await hass.config_entries.subentries.async_configure(flow["flow_id"], form)

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert result["description_placeholders"] == placeholders
    assert hub.meters.ids() == []
