"""Sensors: snapshot of a charging station, metering, session, statuses, update statuses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, Platform
from ocpp.v16 import call
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from .conftest import START, ConnectCharger, HaCharger, entity_id, wait_for

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import entity_registry as er
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

# Several of these sensors are disabled by default (rarely charted): enabled here.
pytestmark = pytest.mark.usefixtures("entity_registry_enabled_by_default")

# 16 A per phase and 11.04 kW, the energy register in kWh as many chargers send it.
METER_SAMPLE = [
    {"measurand": "Current.Import", "phase": "L1", "value": "16.1", "unit": "A"},
    {"measurand": "Current.Import", "phase": "L2", "value": "15.9", "unit": "A"},
    {"measurand": "Current.Import", "phase": "L3", "value": "16.0", "unit": "A"},
    {"measurand": "Power.Active.Import", "value": "11.04", "unit": "kW"},
    {"measurand": "Energy.Active.Import.Register", "value": "12.345", "unit": "kWh"},
]


def _state(hass: HomeAssistant, unique_id: str) -> str:
    state = hass.states.get(entity_id(hass, "sensor", unique_id))
    assert state is not None
    return state.state


async def _charge(
    hass: HomeAssistant, hub: EvChargingCoordinator, clock: ManualClock, charger: HaCharger
) -> int:
    """Start a session on connector 1 with card TAG1 at 1000 Wh; 30 min later, meter it."""
    answer = await charger.start_transaction(1, "TAG1", meter_start=1000, timestamp=START)
    await charger.status(1, "Charging")
    clock.advance(1800)
    await charger.meter_values(1, METER_SAMPLE, transaction_id=answer.transaction_id)
    await wait_for(hass, lambda: hub.site.stations["CP1"].connector(1).energy_wh == 12345)
    await hass.async_block_till_done()
    return answer.transaction_id


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platforms", [[Platform.SENSOR]])
async def test_sensors_of_a_charging_station_with_two_connectors(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1", connectors=2)
    await charger.heartbeat()
    await _charge(hass, hub, clock, charger)

    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_meter_values_update_currents_power_and_energy_in_kwh(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1", connectors=2)
    assert _state(hass, "CP1_1_current_l1") == STATE_UNAVAILABLE

    await charger.meter_values(1, METER_SAMPLE)
    await wait_for(hass, lambda: _state(hass, "CP1_1_energy") != STATE_UNAVAILABLE)

    assert _state(hass, "CP1_1_current_l1") == "16.1"
    assert _state(hass, "CP1_1_current_l2") == "15.9"
    assert _state(hass, "CP1_1_current_l3") == "16.0"
    assert _state(hass, "CP1_1_power") == "11040.0"
    energy = hass.states.get(entity_id(hass, "sensor", "CP1_1_energy"))
    assert energy.state == "12.345"
    assert energy.attributes["unit_of_measurement"] == "kWh"
    # The other connector's meter is untouched.
    assert _state(hass, "CP1_2_energy") == STATE_UNAVAILABLE
    assert _state(hass, "CP1_1_session_energy") == STATE_UNAVAILABLE


async def test_power_and_energy_are_summed_over_phases_without_a_total(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    await charger.meter_values(
        1,
        [
            {"measurand": "Power.Active.Import", "phase": phase, "value": "2300", "unit": "W"}
            for phase in ("L1", "L2", "L3")
        ]
        + [
            {"measurand": "Energy.Active.Import.Register", "phase": "L1", "value": "1000"},
            {"measurand": "Energy.Active.Import.Register", "phase": "L2", "value": "500"},
        ],
    )
    await wait_for(hass, lambda: _state(hass, "CP1_1_power") != STATE_UNAVAILABLE)

    assert _state(hass, "CP1_1_power") == "6900.0"
    assert _state(hass, "CP1_1_energy") == "1.5"


async def test_session_sensors_follow_the_transaction(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1", connectors=2)
    transaction_id = await _charge(hass, hub, clock, charger)

    assert _state(hass, "CP1_1_session_energy") == "11.345"
    assert _state(hass, "CP1_1_session_duration") == "30.0"
    assert _state(hass, "CP1_1_id_tag") == "TAG1"
    assert _state(hass, "CP1_1_status") == "charging"
    assert _state(hass, "CP1_2_id_tag") == STATE_UNAVAILABLE

    await charger.stop_transaction(transaction_id, 13000)
    await charger.status(1, "Finishing")
    await wait_for(hass, lambda: _state(hass, "CP1_1_status") == "finishing")

    assert _state(hass, "CP1_1_session_energy") == STATE_UNAVAILABLE
    assert _state(hass, "CP1_1_session_duration") == STATE_UNAVAILABLE
    assert _state(hass, "CP1_1_id_tag") == STATE_UNAVAILABLE
    # The register keeps its last metered value.
    assert _state(hass, "CP1_1_energy") == "12.345"


CONNECTOR_STATUSES = [
    ("Available", "available"),
    ("Preparing", "preparing"),
    ("Charging", "charging"),
    ("SuspendedEVSE", "suspended_evse"),
    ("SuspendedEV", "suspended_ev"),
    ("Finishing", "finishing"),
    ("Reserved", "reserved"),
    ("Unavailable", "unavailable"),
    ("Faulted", "faulted"),
]
# The station's state, derived from its connectors (evcore/overview.py).
STATION_STATES = {
    "available": "available",
    "preparing": "occupied",
    "charging": "charging",
    "suspended_evse": "suspended",
    "suspended_ev": "suspended",
    "finishing": "occupied",
    "reserved": "reserved",
    "unavailable": "unavailable",
    "faulted": "faulted",
}


async def test_connector_and_station_status_are_enum_options(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    status = entity_id(hass, "sensor", "CP1_1_status")

    for ocpp_status, state in CONNECTOR_STATUSES:
        await charger.status(1, ocpp_status)
        await charger.status(0, ocpp_status)
        await wait_for(hass, lambda state=state: hass.states.get(status).state == state)

        assert _state(hass, "CP1_status") == STATION_STATES[state]
        assert state in hass.states.get(status).attributes["options"]


async def test_error_code_sensor_reports_the_connector_fault(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    assert _state(hass, "CP1_1_error_code") == "no_error"

    await charger.status(1, "Faulted", error_code="GroundFailure")
    await wait_for(hass, lambda: _state(hass, "CP1_1_error_code") == "ground_failure")

    await charger.status(1, "Faulted", error_code="EVCommunicationError")
    await wait_for(hass, lambda: _state(hass, "CP1_1_error_code") == "ev_communication_error")
    assert _state(hass, "CP1_1_status") == "faulted"


async def test_station_status_follows_its_connectors_before_connector_0_reports(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1", boot=False)
    await charger.boot()
    await charger.status(1, "Available")
    await wait_for(hass, lambda: hass.states.get("sensor.cp1_connector_1_status") is not None)

    await wait_for(hass, lambda: _state(hass, "CP1_status") == "available")
    assert _state(hass, "CP1_1_status") == "available"

    await charger.status(1, "Charging")
    await wait_for(hass, lambda: _state(hass, "CP1_status") == "charging")


async def test_heartbeat_sets_the_last_heartbeat_timestamp(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    assert _state(hass, "CP1_last_heartbeat") == STATE_UNKNOWN

    clock.advance(90)
    await charger.heartbeat()
    await wait_for(hass, lambda: _state(hass, "CP1_last_heartbeat") != STATE_UNKNOWN)

    assert _state(hass, "CP1_last_heartbeat") == "2026-01-01T10:01:30+00:00"


FIRMWARE_STATUSES = [
    ("Downloading", "downloading"),
    ("Downloaded", "downloaded"),
    ("DownloadFailed", "download_failed"),
    ("Installing", "installing"),
    ("Installed", "installed"),
    ("InstallationFailed", "installation_failed"),
    ("Idle", "idle"),
]
DIAGNOSTICS_STATUSES = [
    ("Uploading", "uploading"),
    ("Uploaded", "uploaded"),
    ("UploadFailed", "upload_failed"),
    ("Idle", "idle"),
]


async def test_firmware_status_notifications_set_the_firmware_update_sensor(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    assert _state(hass, "CP1_firmware_status") == STATE_UNKNOWN

    for ocpp_status, state in FIRMWARE_STATUSES:
        await charger.call(call.FirmwareStatusNotification(status=ocpp_status), suppress=False)
        await wait_for(hass, lambda state=state: _state(hass, "CP1_firmware_status") == state)


async def test_diagnostics_status_notifications_set_the_diagnostics_upload_sensor(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    assert _state(hass, "CP1_diagnostics_status") == STATE_UNKNOWN

    for ocpp_status, state in DIAGNOSTICS_STATUSES:
        await charger.call(call.DiagnosticsStatusNotification(status=ocpp_status), suppress=False)
        await wait_for(hass, lambda state=state: _state(hass, "CP1_diagnostics_status") == state)


async def test_connector_sensors_are_unavailable_while_the_charger_is_away(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1", connectors=2)
    await charger.meter_values(1, METER_SAMPLE)
    await wait_for(hass, lambda: _state(hass, "CP1_1_energy") == "12.345")

    await charger.close()
    await wait_for(hass, lambda: _state(hass, "CP1_1_energy") == STATE_UNAVAILABLE)
    for unique_id in ("CP1_status", "CP1_last_heartbeat", "CP1_2_status", "CP1_1_power"):
        assert _state(hass, unique_id) == STATE_UNAVAILABLE

    charger = await connect_charger("CP1", connectors=2)
    await wait_for(hass, lambda: _state(hass, "CP1_1_energy") == "12.345")
    assert _state(hass, "CP1_2_status") == "available"
