"""What chargers send: each OCPP 1.6 message lands in the site state and gets its answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocpp.exceptions import NotSupportedError, OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import Measurand
from ocpp_peer import DEFAULT_CONFIGURATION, Charger, wait_until
import pytest

from custom_components.ev_charging_expert.evcore.events import (
    CardPresented,
    SessionEnded,
    SessionStarted,
    StationUpdated,
)
from custom_components.ev_charging_expert.evcore.model import ConnectorStatus
from custom_components.ev_charging_expert.evcore.ocpp.v16.handler import BOOT_CONFIGURATION_KEYS
from custom_components.ev_charging_expert.evcore.site import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def meter_value(*samples: dict, timestamp: str = "2026-01-01T10:00:00+00:00") -> dict:
    return {"timestamp": timestamp, "sampledValue": list(samples)}


async def send_meter_values(charger: Charger, connector_id: int, *values: dict, **kw) -> None:
    await charger.call(
        call.MeterValues(connector_id=connector_id, meter_value=list(values), **kw),
        suppress=False,
    )


# ---------------------------------------------------------------------- BootNotification
async def test_boot_notification_stores_every_field_and_is_accepted_with_the_interval(
    start_central_system, connect_cp
):
    store = MemoryStore()
    site, cs, clock = await start_central_system(store=store, heartbeat_interval=120)
    clock.advance(42)
    charger = await connect_cp("CP1", cs=cs, boot=False)

    answer = await charger.boot(
        charge_point_vendor="Acme",
        charge_point_model="Wallbox Pro",
        charge_point_serial_number="CPS-1",
        charge_box_serial_number="CBS-1",
        firmware_version="1.2.3",
        iccid="8931",
        imsi="2040",
        meter_type="Eastron SDM630",
        meter_serial_number="M-77",
    )

    assert answer.status == "Accepted"
    assert answer.interval == 120
    assert answer.current_time == "2026-01-01T00:00:42+00:00"
    boot = site.stations["CP1"].boot
    assert (boot.vendor, boot.model, boot.serial_number, boot.charge_box_serial_number) == (
        "Acme",
        "Wallbox Pro",
        "CPS-1",
        "CBS-1",
    )
    assert (boot.firmware_version, boot.iccid, boot.imsi) == ("1.2.3", "8931", "2040")
    assert (boot.meter_type, boot.meter_serial_number) == ("Eastron SDM630", "M-77")
    assert boot.serial == "CPS-1"
    assert site.stations["CP1"].last_boot == T0 + timedelta(seconds=42)
    assert store.data["stations"]["CP1"]["boot"]["model"] == "Wallbox Pro"


async def test_boot_with_only_the_required_fields_uses_the_box_serial(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1", boot=False)

    await charger.boot(charge_box_serial_number="CBS-9")

    boot = site.stations["CP1"].boot
    assert boot.serial == "CBS-9"
    assert boot.firmware_version is None


async def test_accepted_boot_reads_the_charger_configuration(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    request = await charger.wait_request("GetConfiguration")
    assert request["key"] == list(BOOT_CONFIGURATION_KEYS)
    assert site.stations["CP1"].configuration == {
        key: value for key, value in DEFAULT_CONFIGURATION.items() if key in BOOT_CONFIGURATION_KEYS
    }


async def test_charger_refusing_get_configuration_still_boots(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1", boot=False)
    charger.answers["GetConfiguration"] = NotSupportedError(description="no config here")

    answer = await charger.boot()
    await charger.wait_request("GetConfiguration")
    # Requests are serialised: once this one is answered, the configuration read is over.
    assert await site.charger("CP1").clear_cache() == "Accepted"

    assert answer.status == "Accepted"
    assert site.stations["CP1"].configuration == {}


async def test_charger_not_answering_get_configuration_still_boots(central_system, connect_cp):
    site, _, clock = central_system
    charger = await connect_cp("CP1", boot=False)
    charger.ignore.add("GetConfiguration")

    await charger.boot()
    await charger.wait_request("GetConfiguration")
    clock.advance(30)  # the configuration read times out

    assert await site.charger("CP1").clear_cache() == "Accepted"
    assert site.stations["CP1"].configuration == {}


async def test_configuration_values_without_value_are_not_stored(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1", boot=False)
    charger.answers["GetConfiguration"] = {
        "configuration_key": [
            {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
            {"key": "AuthorizationKey", "readonly": False},
        ]
    }

    await charger.boot()
    await wait_until(site, lambda: site.stations["CP1"].configuration)

    assert site.stations["CP1"].configuration == {"NumberOfConnectors": "1"}


# ---------------------------------------------------------------------- Heartbeat
async def test_heartbeat_answers_the_site_time_and_records_it(central_system, connect_cp):
    site, _, clock = central_system
    charger = await connect_cp("CP1")
    clock.advance(90)

    answer = await charger.call(call.Heartbeat(), suppress=False)

    assert answer.current_time == "2026-01-01T00:01:30+00:00"
    assert site.stations["CP1"].last_heartbeat == T0 + timedelta(seconds=90)
    assert site.stations["CP1"].last_seen == T0 + timedelta(seconds=90)


# ---------------------------------------------------------------------- StatusNotification
async def test_status_notification_is_recorded_per_connector_with_vendor_info(
    central_system, connect_cp
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    events = []
    site.subscribe(events.append)

    await charger.status(1, "SuspendedEVSE", timestamp="2026-01-01T09:00:00Z")
    await charger.status(
        2,
        "Faulted",
        error_code="GroundFailure",
        info="RCD tripped",
        vendor_id="com.acme",
        vendor_error_code="E042",
        timestamp="2026-01-01T09:01:00+01:00",
    )

    station = site.stations["CP1"]
    one, two = station.connectors[1], station.connectors[2]
    assert one.status is ConnectorStatus.SUSPENDED_EVSE
    assert one.error_code == "NoError"
    assert one.status_at == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert two.status is ConnectorStatus.FAULTED
    assert (two.error_code, two.info, two.vendor_id, two.vendor_error_code) == (
        "GroundFailure",
        "RCD tripped",
        "com.acme",
        "E042",
    )
    assert two.status_at == datetime(2026, 1, 1, 8, 1, tzinfo=UTC)
    assert [c.connector_id for c in station.charge_points] == [1, 2]
    assert StationUpdated("CP1", 1) in events
    assert StationUpdated("CP1", 2) in events


async def test_status_notification_for_connector_zero_is_the_station_status(
    central_system, connect_cp
):
    site, _, clock = central_system
    charger = await connect_cp("CP1")
    clock.advance(5)

    await charger.status(0, "Unavailable", error_code="OtherError", vendor_error_code="X1")

    station = site.stations["CP1"]
    assert station.connectors[0].status is ConnectorStatus.UNAVAILABLE
    assert station.connectors[0].error_code == "OtherError"
    assert station.connectors[0].vendor_error_code == "X1"
    assert station.connectors[0].status_at == T0 + timedelta(seconds=5)  # no timestamp sent
    assert station.charge_points == []


@pytest.mark.parametrize(
    ("ocpp_status", "status"),
    [
        ("Available", ConnectorStatus.AVAILABLE),
        ("Preparing", ConnectorStatus.PREPARING),
        ("Charging", ConnectorStatus.CHARGING),
        ("SuspendedEVSE", ConnectorStatus.SUSPENDED_EVSE),
        ("SuspendedEV", ConnectorStatus.SUSPENDED_EV),
        ("Finishing", ConnectorStatus.FINISHING),
        ("Reserved", ConnectorStatus.RESERVED),
        ("Unavailable", ConnectorStatus.UNAVAILABLE),
        ("Faulted", ConnectorStatus.FAULTED),
    ],
)
async def test_every_ocpp_status_maps_to_a_connector_status(
    central_system, connect_cp, ocpp_status, status
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    await charger.status(1, ocpp_status)

    assert site.stations["CP1"].connectors[1].status is status


async def test_a_status_ocpp_does_not_define_is_refused_and_creates_nothing(
    central_system, connect_cp
):
    site, _, _ = central_system
    cp = await connect_cp("CP1")
    with pytest.raises(OCPPError):
        await cp.call(
            call.StatusNotification(connector_id=3, error_code="NoError", status="Exploded"),
            skip_schema_validation=True,
            suppress=False,
        )

    assert 3 not in site.stations["CP1"].connectors


async def test_a_new_connector_is_persisted_but_a_status_change_is_not(
    start_central_system, connect_cp
):
    store = MemoryStore()
    _, cs, _ = await start_central_system(store=store)
    charger = await connect_cp("CP1", cs=cs)

    await charger.status(1, "Available")
    saves = store.saves
    await charger.status(1, "Charging")

    assert store.saves == saves
    assert "1" in store.data["stations"]["CP1"]["connectors"]


# ---------------------------------------------------------------------- MeterValues
@pytest.mark.parametrize("measurand", list(Measurand))
async def test_every_measurand_is_kept(central_system, connect_cp, measurand):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    await send_meter_values(charger, 1, meter_value({"value": "0.5", "measurand": measurand.value}))

    stored = site.stations["CP1"].connectors[1].measurements[measurand.value, None]
    assert stored.value == 0.5
    assert stored.measurand == measurand.value


@pytest.mark.parametrize(
    ("sample", "normalised"),
    [
        (("Energy.Active.Import.Register", "Wh", "1234.5"), (1234.5, "Wh")),
        (("Energy.Active.Import.Register", "kWh", "12.345"), (12345.0, "Wh")),
        (("Energy.Active.Import.Register", None, "77"), (77.0, "Wh")),  # OCPP default unit
        (("Energy.Reactive.Import.Register", "kvarh", "2"), (2000.0, "varh")),
        (("Energy.Reactive.Import.Register", "varh", "2"), (2.0, "varh")),
        (("Power.Active.Import", "W", "7200"), (7200.0, "W")),
        (("Power.Active.Import", "kW", "7.2"), (7200.0, "W")),
        (("Power.Active.Import", None, "7200"), (7200.0, "W")),  # natural unit, not Wh
        (("Power.Offered", "kW", "11"), (11000.0, "W")),
        (("Power.Reactive.Import", "kvar", "1.5"), (1500.0, "var")),
        (("Power.Reactive.Import", "var", "15"), (15.0, "var")),
        (("Power.Reactive.Import", None, "15"), (15.0, "var")),
        (("Power.Active.Import", "kVA", "3"), (3000.0, "VA")),
        (("Power.Active.Import", "VA", "3"), (3.0, "VA")),
        (("Current.Import", "A", "16"), (16.0, "A")),
        (("Current.Offered", None, "32"), (32.0, "A")),
        (("Voltage", "V", "230.1"), (230.1, "V")),
        (("Voltage", None, "230.1"), (230.1, "V")),
        (("SoC", "Percent", "80"), (80.0, "%")),
        (("SoC", None, "80"), (80.0, "%")),
        (("Temperature", "Celsius", "35"), (35.0, "°C")),
        (("Temperature", "K", "308.15"), (35.0, "°C")),
        (("Temperature", "Fahrenheit", "95"), (35.0, "°C")),
        (("Temperature", None, "35"), (35.0, "°C")),
        (("Power.Factor", None, "0.98"), (0.98, "")),
        (("Frequency", None, "50"), (50.0, "Hz")),
        (("Frequency", "Hertz", "50"), (50.0, "Hz")),
        (("Temperature", "Celcius", "35"), (35.0, "°C")),  # the 1.6 schema's spelling
        (("RPM", None, "1200"), (1200.0, "")),
    ],
)
async def test_units_are_normalised(central_system, connect_cp, sample, normalised):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    measurand, unit, value = sample
    sampled_value = {"value": value, "measurand": measurand}
    if unit is not None:
        sampled_value["unit"] = unit

    await send_meter_values(charger, 1, meter_value(sampled_value))

    stored = site.stations["CP1"].connectors[1].measurements[measurand, None]
    assert stored.value == pytest.approx(normalised[0])
    assert stored.unit == normalised[1]


async def test_per_phase_values_are_kept_apart_and_summed_for_power(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    await send_meter_values(
        charger,
        1,
        meter_value(
            {"value": "16.0", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "15.5", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
            {"value": "0.2", "measurand": "Current.Import", "phase": "N", "unit": "A"},
            {"value": "231", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
            {"value": "229", "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
            {"value": "400", "measurand": "Voltage", "phase": "L1-L2", "unit": "V"},
            {"value": "3.6", "measurand": "Power.Active.Import", "phase": "L1", "unit": "kW"},
            {"value": "3500", "measurand": "Power.Active.Import", "phase": "L2", "unit": "W"},
            {"value": "1000", "measurand": "Energy.Active.Import.Register", "phase": "L3"},
            {"value": "2000", "measurand": "Energy.Active.Import.Register", "phase": "L1"},
        ),
    )

    connector = site.stations["CP1"].connectors[1]
    assert connector.current("L1") == 16.0
    assert connector.current("L2") == 15.5
    assert connector.current("L3") is None
    assert connector.value("Current.Import", "N") == 0.2
    assert connector.value("Voltage", "L1") == 231.0  # L1-N is L1's voltage
    assert connector.value("Voltage", "L2") == 229.0
    assert connector.value("Voltage", "L1-L2") == 400.0  # line to line stays apart
    assert connector.power_w == 7100.0  # no total: sum of the phases
    assert connector.energy_wh == 3000.0


async def test_totals_win_over_the_sum_of_phases(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    await send_meter_values(
        charger,
        1,
        meter_value(
            {"value": "3600", "measurand": "Power.Active.Import", "phase": "L1"},
            {"value": "11", "measurand": "Power.Active.Import", "unit": "kW"},
            {"value": "5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
        ),
    )

    connector = site.stations["CP1"].connectors[1]
    assert connector.power_w == 11000.0
    assert connector.energy_wh == 5000.0


async def test_context_location_and_timestamp_are_kept_with_defaults(central_system, connect_cp):
    site, _, clock = central_system
    charger = await connect_cp("CP1")
    clock.advance(60)

    await send_meter_values(
        charger,
        2,
        meter_value(
            {
                "value": "42",
                "measurand": "Temperature",
                "unit": "Celsius",
                "context": "Sample.Clock",
                "location": "Body",
            },
            timestamp="2026-01-01T08:00:00Z",
        ),
        {"timestamp": "", "sampledValue": [{"value": "1500"}]},  # empty: time of receipt
        {"timestamp": "not a time", "sampledValue": [{"value": "80", "measurand": "SoC"}]},
    )

    connector = site.stations["CP1"].connectors[2]
    temperature = connector.measurements["Temperature", None]
    assert (temperature.context, temperature.location) == ("Sample.Clock", "Body")
    assert temperature.timestamp == datetime(2026, 1, 1, 8, tzinfo=UTC)
    energy = connector.measurements["Energy.Active.Import.Register", None]
    assert (energy.context, energy.location) == ("Sample.Periodic", "Outlet")
    assert energy.timestamp == T0 + timedelta(seconds=60)
    assert connector.measurements["SoC", None].timestamp == T0 + timedelta(seconds=60)


@pytest.mark.parametrize(
    "context",
    [
        "Interruption.Begin",
        "Interruption.End",
        "Sample.Clock",
        "Sample.Periodic",
        "Transaction.Begin",
        "Transaction.End",
        "Trigger",
        "Other",
    ],
)
async def test_every_reading_context_is_kept(central_system, connect_cp, context):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    await send_meter_values(charger, 1, meter_value({"value": "1", "context": context}))

    measurement = (
        site.stations["CP1"].connectors[1].measurements["Energy.Active.Import.Register", None]
    )
    assert measurement.context == context


async def test_signed_and_non_numeric_values_are_skipped(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    await send_meter_values(charger, 1, meter_value({"value": "1000", "unit": "Wh"}))

    await send_meter_values(
        charger,
        1,
        meter_value(
            {"value": "AAECAwQFBgc=", "format": "SignedData"},
            {"value": "2000", "format": "SignedData", "measurand": "Power.Active.Import"},
            {"value": "n/a", "measurand": "Current.Import", "phase": "L1"},
            {"value": "1100", "format": "Raw"},
        ),
    )

    connector = site.stations["CP1"].connectors[1]
    assert connector.energy_wh == 1100.0
    assert connector.power_w is None
    assert connector.current("L1") is None


async def test_meter_values_with_a_transaction_id_are_accepted(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    started = await charger.start_transaction(connector_id=1, meter_start=1000)
    events = []
    site.subscribe(events.append)

    await send_meter_values(
        charger,
        1,
        meter_value({"value": "3.5", "unit": "kWh"}, timestamp="2026-01-01T10:05:00+00:00"),
        transaction_id=started.transaction_id,
    )

    connector = site.stations["CP1"].connectors[1]
    assert connector.session_energy_wh == 2500.0
    assert events == [StationUpdated("CP1", 1)]


# ---------------------------------------------------------------------- Authorize, transactions
async def test_authorize_accepts_the_card_and_reports_it(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    events = []
    site.subscribe(events.append)

    answer = await charger.call(call.Authorize(id_tag="04A2B3C4"), suppress=False)

    assert answer.id_tag_info["status"] == "Accepted"
    assert events == [CardPresented("CP1", None, "04A2B3C4", accepted=True)]


async def test_start_transaction_ids_are_unique_across_the_site(central_system, connect_cp):
    site, _, _ = central_system
    first = await connect_cp("CP1")
    second = await connect_cp("CP2")
    events = []
    site.subscribe(events.append)

    a = await first.start_transaction(connector_id=1, id_tag="A", meter_start=10)
    b = await second.start_transaction(connector_id=1, id_tag="B", meter_start=20)
    c = await first.start_transaction(
        connector_id=2,
        id_tag="C",
        meter_start=30,
        reservation_id=7,
        timestamp="2026-01-01T12:00:00Z",
    )

    assert [a.transaction_id, b.transaction_id, c.transaction_id] == [1, 2, 3]
    assert a.id_tag_info["status"] == "Accepted"
    tx = site.stations["CP1"].connectors[2].transaction
    assert (tx.transaction_id, tx.connector_id, tx.id_tag, tx.meter_start_wh) == (3, 2, "C", 30.0)
    assert tx.reservation_id == 7
    assert tx.started_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert site.stations["CP2"].connectors[1].transaction.transaction_id == 2
    assert CardPresented("CP1", 1, "A", accepted=True) in events
    started = [e.transaction.transaction_id for e in events if isinstance(e, SessionStarted)]
    assert started == [1, 2, 3]


async def test_stop_transaction_closes_the_session_with_its_energy_and_data(
    central_system, connect_cp
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    started = await charger.start_transaction(connector_id=1, id_tag="TAG1", meter_start=1000)
    events = []
    site.subscribe(events.append)

    answer = await charger.call(
        call.StopTransaction(
            meter_stop=5500,
            timestamp="2026-01-01T11:30:00Z",
            transaction_id=started.transaction_id,
            reason="EVDisconnected",
            id_tag="TAG1",
            transaction_data=[
                meter_value(
                    {"value": "1", "unit": "kWh", "context": "Transaction.Begin"},
                    timestamp="2026-01-01T10:00:00Z",
                ),
                meter_value(
                    {"value": "5500", "context": "Transaction.End"},
                    {"value": "signed", "format": "SignedData", "context": "Transaction.End"},
                    timestamp="2026-01-01T11:30:00Z",
                ),
            ],
        ),
        suppress=False,
    )

    assert answer.id_tag_info["status"] == "Accepted"
    connector = site.stations["CP1"].connectors[1]
    assert connector.transaction is None
    assert connector.session_energy_wh is None
    tx = connector.last_transaction
    assert tx.energy_wh() == 4500.0
    assert (tx.meter_stop_wh, tx.stop_reason, tx.stop_id_tag) == (5500.0, "EVDisconnected", "TAG1")
    assert tx.stopped_at == datetime(2026, 1, 1, 11, 30, tzinfo=UTC)
    assert [(m.value, m.context) for m in tx.transaction_data] == [
        (1000.0, "Transaction.Begin"),
        (5500.0, "Transaction.End"),
    ]
    assert events[0] == SessionEnded("CP1", tx)
    assert StationUpdated("CP1", 1) in events


async def test_stop_transaction_without_id_tag_or_reason_defaults_to_local(
    central_system, connect_cp
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    started = await charger.start_transaction(connector_id=2, meter_start=0)

    answer = await charger.call(
        call.StopTransaction(
            meter_stop=10, timestamp="2026-01-01T11:00:00Z", transaction_id=started.transaction_id
        ),
        suppress=False,
    )

    assert answer.id_tag_info is None
    tx = site.stations["CP1"].connectors[2].last_transaction
    assert tx.stop_reason == "Local"
    assert tx.stop_id_tag is None
    assert tx.transaction_data == []


async def test_stop_of_an_unknown_transaction_is_acknowledged(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    events = []
    site.subscribe(events.append)

    answer = await charger.call(
        call.StopTransaction(
            meter_stop=10, timestamp="2026-01-01T11:00:00Z", transaction_id=999, id_tag="X"
        ),
        suppress=False,
    )

    assert answer.id_tag_info["status"] == "Accepted"
    # No session changes; the session store hears of the orphan end.
    assert [type(e).__name__ for e in events] == ["SessionEndUnknown"]


async def test_session_energy_follows_the_energy_register_and_never_goes_down(
    central_system, connect_cp
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    await charger.start_transaction(connector_id=1, meter_start=1000)
    connector = site.stations["CP1"].connectors[1]
    assert connector.session_energy_wh is None  # no register reading yet

    await send_meter_values(charger, 1, meter_value({"value": "1800"}))
    assert connector.session_energy_wh == 800.0
    await send_meter_values(charger, 1, meter_value({"value": "900"}))  # meter went back
    assert connector.session_energy_wh == 800.0
    assert connector.energy_wh == 1800.0
    assert site.stations["CP1"].rejected == {"Energy.Active.Import.Register": 1}


# ---------------------------------------------------------------------- the rest
async def test_data_transfer_from_a_charger_is_answered_unknown_vendor(central_system, connect_cp):
    charger = await connect_cp("CP1")

    answer = await charger.call(
        call.DataTransfer(vendor_id="com.acme", message_id="hello", data='{"x": 1}'),
        suppress=False,
    )

    assert answer.status == "UnknownVendorId"


@pytest.mark.parametrize("status", ["Idle", "Uploaded", "UploadFailed", "Uploading"])
async def test_diagnostics_status_notification_is_recorded(
    start_central_system, connect_cp, status
):
    store = MemoryStore()
    site, cs, _ = await start_central_system(store=store)
    charger = await connect_cp("CP1", cs=cs)
    events = []
    site.subscribe(events.append)

    await charger.call(call.DiagnosticsStatusNotification(status=status), suppress=False)

    assert site.stations["CP1"].diagnostics_status == status
    assert store.data["stations"]["CP1"]["diagnostics_status"] == status
    assert events == [StationUpdated("CP1")]


@pytest.mark.parametrize(
    "status",
    [
        "Downloaded",
        "DownloadFailed",
        "Downloading",
        "Idle",
        "InstallationFailed",
        "Installing",
        "Installed",
    ],
)
async def test_firmware_status_notification_is_recorded(start_central_system, connect_cp, status):
    store = MemoryStore()
    site, cs, _ = await start_central_system(store=store)
    charger = await connect_cp("CP1", cs=cs)

    await charger.call(call.FirmwareStatusNotification(status=status), suppress=False)

    assert site.stations["CP1"].firmware_status == status
    assert store.data["stations"]["CP1"]["firmware_status"] == status


async def test_any_frame_counts_as_a_sign_of_life(central_system, connect_cp):
    site, _, clock = central_system
    charger = await connect_cp("CP1")
    clock.advance(300)

    await charger.status(1, "Available")

    assert site.stations["CP1"].last_seen == T0 + timedelta(seconds=300)
    assert site.stations["CP1"].last_heartbeat is None
