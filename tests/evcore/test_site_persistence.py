"""Persistence of the site registry, and the site's own bookkeeping (events, passwords)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
import logging

from ocpp.v16 import call
import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.errors import UnknownStationError
from custom_components.ev_charging_expert.evcore.events import (
    SessionEnded,
    StationAccepted,
    StationAdded,
    StationUpdated,
)
from custom_components.ev_charging_expert.evcore.model import (
    BootInfo,
    ConnectorStatus,
    NewChargerPolicy,
    Registration,
)
from custom_components.ev_charging_expert.evcore.site import (
    STORAGE_VERSION,
    MemoryStore,
    Site,
    check_password,
    hash_password,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


AUTH = {"user_info": "CP-A:s3cret"}


@pytest.fixture
async def first_life(start_central_system, connect_cp) -> tuple[dict, Site, int]:
    """Run a central system, then stop it: (saved data as JSON would keep it, site, open tx id).

    CP-A: accepted, booted, password, configuration, firmware status, one closed and one open
    session. CP-P: pending (in memory only). CP-R: removed.
    """
    store = MemoryStore()
    site, cs, clock = await start_central_system(store=store, policy=NewChargerPolicy.PENDING)
    site.accept_station("CP-A")
    site.set_password("CP-A", "s3cret")
    a = await connect_cp("CP-A", cs=cs, **AUTH)
    await a.boot(charge_point_vendor="Acme", charge_point_model="Duo", firmware_version="2.0")
    clock.advance(60)
    await a.call(call.Heartbeat(), suppress=False)
    await a.call(call.FirmwareStatusNotification(status="Installed"), suppress=False)
    closed = await a.start_transaction(connector_id=2, id_tag="OLD", meter_start=0)
    await a.call(
        call.StopTransaction(
            meter_stop=10, timestamp="2026-01-01T10:30:00Z", transaction_id=closed.transaction_id
        ),
        suppress=False,
    )
    open_tx = await a.start_transaction(
        connector_id=1, id_tag="TAG1", meter_start=1500, reservation_id=4
    )
    p = await connect_cp("CP-P", cs=cs)
    await connect_cp("CP-R", cs=cs)
    site.accept_station("CP-R")
    await site.remove_station("CP-R")
    for charger in (a, p):
        await charger.ws.close()
    await cs.stop()
    # What HA's Store writes and reads back: JSON.
    return json.loads(json.dumps(store.data)), site, open_tx.transaction_id


async def test_reloaded_site_keeps_the_registry_and_open_transactions(first_life):
    data, before, open_tx_id = first_life
    assert data["version"] == STORAGE_VERSION

    site = Site(ManualClock(T0 + timedelta(hours=1)), MemoryStore(data))
    await site.load()

    assert set(site.stations) == {"CP-A", "CP-R"}  # a pending identity is never stored
    station = site.stations["CP-A"]
    assert station.registration is Registration.ACCEPTED
    assert station.boot == BootInfo(vendor="Acme", model="Duo", firmware_version="2.0")
    assert station.last_boot == T0
    assert station.last_heartbeat == T0 + timedelta(seconds=60)
    assert station.firmware_status == "Installed"
    assert station.configuration == before.stations["CP-A"].configuration != {}
    assert check_password("s3cret", site.password_hash("CP-A"))
    assert not station.connected  # live values come back from the charger
    tx = station.connectors[1].transaction
    assert (tx.transaction_id, tx.connector_id, tx.id_tag, tx.meter_start_wh) == (
        open_tx_id,
        1,
        "TAG1",
        1500.0,
    )
    assert tx.started_at == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert tx.reservation_id == 4
    assert station.connectors[2].transaction is None
    assert site.stations["CP-R"].registration is Registration.REMOVED
    assert site.pending == {}


async def test_reloaded_site_ends_old_sessions_and_keeps_counting_transaction_ids(
    first_life, start_central_system, connect_cp
):
    data, _, open_tx_id = first_life
    site, cs, _ = await start_central_system(
        store=MemoryStore(data), clock=ManualClock(T0 + timedelta(hours=1))
    )
    events = []
    site.subscribe(events.append)
    a = await connect_cp("CP-A", cs=cs, **AUTH)

    await a.call(
        call.StopTransaction(
            meter_stop=4000, timestamp="2026-01-01T11:00:00Z", transaction_id=open_tx_id
        ),
        suppress=False,
    )
    again = await a.start_transaction(connector_id=1)

    ended = next(e for e in events if isinstance(e, SessionEnded))
    assert ended.transaction.energy_wh() == 2500.0
    assert again.transaction_id == open_tx_id + 1


async def test_reloaded_site_keeps_refusing_and_holding_chargers(
    first_life, start_central_system, connect_cp, connect_raw
):
    data, _, _ = first_life
    _, cs, _ = await start_central_system(store=MemoryStore(data), policy=NewChargerPolicy.PENDING)

    with pytest.raises(InvalidStatus) as err:
        await connect_raw("/ocpp/CP-R", cs=cs)
    assert err.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as err:
        await connect_raw("/ocpp/CP-A", cs=cs)  # the password is still required
    assert err.value.response.status_code == 401
    pending = await connect_cp("CP-P", cs=cs, boot=False)
    assert (await pending.boot()).status == "Pending"


@pytest.mark.parametrize("data", [None, {}])
async def test_first_start_has_no_stations(data):
    site = Site(ManualClock(), MemoryStore(data))

    await site.load()

    assert site.stations == {}


async def test_loading_tolerates_missing_optional_fields():
    site = Site(
        ManualClock(),
        MemoryStore({"stations": {"CP1": {}, "CP2": {"registration": "pending", "boot": None}}}),
    )

    await site.load()

    assert site.stations["CP1"].registration is Registration.ACCEPTED
    assert site.stations["CP1"].boot is None
    # A pending station saved by an earlier version moves to memory (and out of the file).
    assert site.pending["CP2"].registration is Registration.PENDING
    assert "CP2" not in site.stations


async def test_every_registry_change_is_saved():
    store = MemoryStore()
    site = Site(ManualClock(), store)

    site.accept_station("CP1")
    assert store.saves == 1
    site.set_password("CP1", "pw")
    assert store.saves == 2
    await site.remove_station("CP1")
    assert store.saves == 3
    assert store.data["stations"]["CP1"]["registration"] == "removed"


# ---------------------------------------------------------------------- events
def test_subscribers_get_events_until_they_unsubscribe():
    site = Site(ManualClock(), MemoryStore())
    seen = []
    unsubscribe = site.subscribe(seen.append)

    site.accept_station("CP1")
    unsubscribe()
    site.accept_station("CP2")

    assert seen == [StationAdded("CP1"), StationAccepted("CP1"), StationUpdated("CP1")]


def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    site = Site(ManualClock(), MemoryStore())
    seen = []

    def broken(_event):
        raise RuntimeError("listener bug")

    site.subscribe(broken)
    site.subscribe(seen.append)
    with caplog.at_level(logging.ERROR):
        site.accept_station("CP1")

    assert len(seen) == 3
    assert "Site event listener failed" in caplog.text


# ---------------------------------------------------------------------- registry
def test_unknown_station_raises_unknown_station_error():
    site = Site(ManualClock(), MemoryStore())

    with pytest.raises(UnknownStationError):
        site.station("nope")
    with pytest.raises(UnknownStationError):
        site.set_password("nope", "pw")
    assert not site.is_accepted("nope")
    assert not site.password_required("nope")
    assert site.admission_refusal("nope") is None


async def test_boot_of_a_removed_station_is_refused_and_not_recorded():
    site = Site(ManualClock(), MemoryStore())
    site.accept_station("CP1")
    await site.remove_station("CP1")

    registration = site.station_booted("CP1", BootInfo(vendor="Acme", model="X"))

    assert registration is Registration.REMOVED
    assert site.stations["CP1"].boot is None


def test_password_hash_round_trip_and_malformed_hashes():
    stored = hash_password("pw", salt=b"0123456789abcdef")

    assert stored == hash_password("pw", salt=b"0123456789abcdef")
    assert check_password("pw", stored)
    assert not check_password("pw2", stored)
    assert not check_password("pw", "not-a-hash")
    assert not check_password("pw", "pbkdf2_sha256$many$zz$00")


def test_station_to_dict_lists_connectors_and_measurements():
    site = Site(ManualClock(), MemoryStore())
    site.accept_station("CP1")
    site.connector_status(
        "CP1",
        1,
        status=ConnectorStatus.CHARGING,
        error_code="NoError",
        info=None,
        vendor_id=None,
        vendor_error_code=None,
        timestamp=T0,
    )

    data = site.stations["CP1"].to_dict()

    assert data["station_id"] == "CP1"
    assert data["connectors"]["1"]["status"] == "charging"
    assert data["connectors"]["1"]["measurements"] == []
