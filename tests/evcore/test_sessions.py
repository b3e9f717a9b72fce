"""Charge data records: real chargers (ocpp library) over loopback, SQLite and PostgreSQL.

The site runs on a ManualClock that starts on 2026-01-03 12:00 UTC; chargers date their
messages on 2026-01-02, a Friday (the fake TOU calendar has weekday periods only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ocpp.v16 import call
import pytest
import sqlalchemy as sa

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.errors import ChargerInputError
from custom_components.ev_charging_expert.evcore.sessions import (
    NO_PERIOD,
    RECORDER_EVENTS,
    EndedBy,
    Flag,
    SessionFilter,
    SessionQueryError,
    SessionRecord,
    SessionRecorder,
    SessionStatus,
    SessionStore,
    StationInfo,
    split_energy,
    write_csv,
)
from custom_components.ev_charging_expert.evcore.sessions.schema import (
    SCHEMA_VERSION,
    create_v1,
    meta,
    sessions,
)
from custom_components.ev_charging_expert.evcore.site import MemoryStore, Site

if TYPE_CHECKING:
    from pathlib import Path

pytest_plugins = ("conftest_sessions",)


def dead_url() -> sa.URL:
    """A PostgreSQL URL where nothing listens (port 1: refused at once)."""
    return sa.URL.create(
        "postgresql+psycopg", username="evce", host="127.0.0.1", port=1, database="x"
    )


T0 = datetime(2026, 1, 3, 12, tzinfo=UTC)
FRIDAY = datetime(2026, 1, 2, tzinfo=UTC)


def at(hour: float) -> str:
    """A charger timestamp on Friday 2026-01-02 (hours may pass 24)."""
    return (FRIDAY + timedelta(hours=hour)).isoformat()


class FakeTou:
    """Weekdays: Peak 08:00-22:00, OffPeak 22:00-24:00; weekends and 00:00-08:00: no period."""

    def periods(self) -> tuple[str, ...]:
        return ("Peak", "OffPeak")

    def period_at(self, when: datetime) -> str | None:
        if when.weekday() >= 5:
            return None
        if 8 <= when.hour < 22:
            return "Peak"
        if when.hour >= 22:
            return "OffPeak"
        return None

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        out = []
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            for hour in (0, 8, 22):
                b = day + timedelta(hours=hour)
                if start < b < end:
                    out.append(b)
            day += timedelta(days=1)
        return out


@dataclass
class Rig:
    site: Site
    cs: Any
    clock: ManualClock
    store: SessionStore
    recorder: SessionRecorder

    async def records(self, **filters: Any) -> list[SessionRecord]:
        assert await self.store.flush()
        page, _ = await self.store.async_list_page(SessionFilter(**filters), limit=100)
        return page


type MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(start_central_system, db_url) -> AsyncIterator[MakeRig]:
    """Factory: a central system with a session recorder on `db_url` (or `url=`)."""
    stores: list[SessionStore] = []

    async def make(
        *,
        store: MemoryStore | None = None,
        url: sa.URL | None = None,
        tou: Any = None,
        comment_of: Any = None,
        buffer_path: Path | None = None,
    ) -> Rig:
        clock = ManualClock(T0)
        site, cs, clock = await start_central_system(store=store or MemoryStore(), clock=clock)
        session_store = SessionStore(url or db_url, buffer_path=buffer_path, retry_s=0.05)
        stores.append(session_store)
        recorder = SessionRecorder(
            site, session_store, clock=clock, tou=lambda: tou, comment_of=comment_of
        )
        await recorder.restore()
        session_store.start()
        site.subscribe(recorder.on_event)
        return Rig(site, cs, clock, session_store, recorder)

    yield make
    for store in stores:
        await store.async_close()


async def meter(cp: Any, tx: int, hour: float, wh: float, power: float | None = None) -> None:
    samples = [
        {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
    ]
    if power is not None:
        samples.append({"value": str(power), "measurand": "Power.Active.Import", "unit": "W"})
    await cp.call(
        call.MeterValues(
            connector_id=1,
            transaction_id=tx,
            meter_value=[{"timestamp": at(hour), "sampled_value": samples}],
        ),
        suppress=False,
    )


async def stop(cp: Any, tx: int, hour: float, wh: int, reason: str = "EVDisconnected") -> None:
    await cp.call(
        call.StopTransaction(
            meter_stop=wh, timestamp=at(hour), transaction_id=tx, reason=reason, id_tag="TAG1"
        ),
        suppress=False,
    )


async def test_a_session_is_recorded_at_start_and_completed_at_stop(make_rig, connect_cp):
    rig = await make_rig(comment_of=lambda tag: f"card {tag}")
    cp = await connect_cp("CP1", cs=rig.cs)
    started = await cp.start_transaction(meter_start=1000, timestamp=at(10))
    tx = started.transaction_id
    [open_record] = await rig.records()
    assert open_record.status is SessionStatus.OPEN
    assert (open_record.transaction_id, open_record.station_id, open_record.id_tag) == (
        tx,
        "CP1",
        "TAG1",
    )
    assert open_record.card_comment == "card TAG1"
    await meter(cp, tx, 10.5, 4000, power=7000)
    await meter(cp, tx, 11, 6000, power=3000)
    await meter(cp, tx, 11.5, 6010)  # the EV is full: 20 W on average is not charging
    await stop(cp, tx, 12, 6010)
    [record] = await rig.records()
    assert record.session_id == open_record.session_id
    assert record.status is SessionStatus.CLOSED
    assert record.ended_by is EndedBy.CHARGER
    assert record.stop_reason == "EVDisconnected"
    assert record.energy_wh == pytest.approx(5010)
    assert record.meter_start_wh == 1000
    assert record.meter_stop_wh == 6010
    assert record.plugged_s == 2 * 3600
    assert record.charging_s == 3600
    assert record.peak_power_w == 7000
    assert record.tou_wh == pytest.approx({NO_PERIOD: 5010})
    assert record.started_at == FRIDAY + timedelta(hours=10)
    assert record.stopped_at == FRIDAY + timedelta(hours=12)
    assert record.start_received_at == T0
    assert record.flags == frozenset()


async def test_restart_mid_session_then_completed_is_one_record(make_rig, connect_cp, db_url):
    registry = MemoryStore()
    first = await make_rig(store=registry)
    cp = await connect_cp("CP1", cs=first.cs)
    tx = (await cp.start_transaction(meter_start=0, timestamp=at(9))).transaction_id
    await meter(cp, tx, 10, 7000)
    assert await first.store.flush()
    await first.cs.stop()
    await first.store.async_close()

    second = await make_rig(store=registry, url=db_url)
    cp2 = await connect_cp("CP1", cs=second.cs)
    await meter(cp2, tx, 11, 14000)
    await stop(cp2, tx, 11, 14000)
    [record] = await second.records()
    assert record.transaction_id == tx
    assert record.status is SessionStatus.CLOSED
    assert record.energy_wh == pytest.approx(14000)
    assert record.plugged_s == 2 * 3600
    assert record.charging_s == 2 * 3600


async def test_replayed_start_after_a_restart_that_lost_the_registry_gets_the_same_id(
    make_rig, connect_cp, db_url
):
    first = await make_rig()
    cp = await connect_cp("CP1", cs=first.cs)
    tx = (await cp.start_transaction(meter_start=500, timestamp=at(9))).transaction_id
    assert await first.store.flush()
    await first.cs.stop()
    await first.store.async_close()

    # The station registry was saved before that session started: the site forgot it.
    second = await make_rig(url=db_url)
    cp2 = await connect_cp("CP1", cs=second.cs)
    again = await cp2.start_transaction(meter_start=500, timestamp=at(9))
    assert again.transaction_id == tx
    other = await cp2.start_transaction(connector_id=2, meter_start=0, timestamp=at(9.5))
    assert other.transaction_id > tx  # never an id the store has used
    await stop(cp2, tx, 10, 2500)
    records = await second.records()
    assert len(records) == 2
    [replayed] = [r for r in records if r.transaction_id == tx]
    assert replayed.energy_wh == pytest.approx(2000)
    assert replayed.status is SessionStatus.CLOSED


async def test_replayed_stop_changes_nothing_and_unknown_stop_is_an_orphan(make_rig, connect_cp):
    rig = await make_rig()
    cp = await connect_cp("CP1", cs=rig.cs)
    tx = (await cp.start_transaction(meter_start=0, timestamp=at(9))).transaction_id
    await stop(cp, tx, 10, 3000)
    [before] = await rig.records()
    await stop(cp, tx, 10, 3000)
    await stop(cp, tx, 11, 9000)  # a late, different replay: acknowledged, ignored
    await stop(cp, 4242, 12, 8000)
    records = await rig.records()
    assert len(records) == 2
    [kept] = [r for r in records if r.transaction_id == tx]
    assert kept == before
    [orphan] = [r for r in records if r.transaction_id == 4242]
    assert orphan.status is SessionStatus.ORPHAN
    assert orphan.meter_stop_wh == 8000
    assert orphan.energy_wh is None
    assert orphan.stopped_at == FRIDAY + timedelta(hours=12)


async def test_replayed_orphan_end_after_restart_is_not_recorded_twice(
    make_rig, connect_cp, db_url
):
    first = await make_rig()
    cp = await connect_cp("CP1", cs=first.cs)
    tx = (await cp.start_transaction(meter_start=0, timestamp=at(9))).transaction_id
    await stop(cp, tx, 10, 3000)
    assert await first.store.flush()
    await first.cs.stop()
    await first.store.async_close()
    second = await make_rig(url=db_url)
    cp2 = await connect_cp("CP1", cs=second.cs)
    await stop(cp2, tx, 10, 3000)  # the site forgot it; the store has it closed
    [record] = await second.records()
    assert record.status is SessionStatus.CLOSED
    # An orphan's id (the charger's choice) never moves the site's next transaction id.
    await stop(cp2, 2**31 - 1, 11, 10)
    assert await second.store.flush()
    assert await second.store.run(second.store.max_transaction_id) == tx


async def test_force_stop_of_a_gone_charger_closes_with_last_energy(make_rig, connect_cp):
    rig = await make_rig()
    cp = await connect_cp("CP1", cs=rig.cs)
    tx = (await cp.start_transaction(meter_start=100, timestamp=at(9))).transaction_id
    await meter(cp, tx, 10, 5100)
    with pytest.raises(ChargerInputError, match="connected"):
        rig.site.force_stop_session("CP1", 1)
    await cp.ws.close()
    from ocpp_peer import wait_until  # noqa: PLC0415

    await wait_until(rig.site, lambda: not rig.site.stations["CP1"].connected)
    rig.site.force_stop_session("CP1", 1)
    assert rig.site.stations["CP1"].connectors[1].transaction is None
    [record] = await rig.records()
    assert record.ended_by is EndedBy.FORCED
    assert record.energy_wh == pytest.approx(5000)
    assert record.meter_stop_wh == 5100
    with pytest.raises(ChargerInputError, match="no session"):
        rig.site.force_stop_session("CP1", 1)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_tou_split_across_a_boundary_and_midnight(make_rig, connect_cp):
    rig = await make_rig(tou=FakeTou())
    cp = await connect_cp("CP1", cs=rig.cs)
    # Friday 21:00 to Saturday 01:00 at 1 kW; samples straddle 22:00 and midnight.
    tx = (await cp.start_transaction(meter_start=0, timestamp=at(21))).transaction_id
    await meter(cp, tx, 21.5, 500)
    await meter(cp, tx, 22.5, 1500)
    await meter(cp, tx, 23.5, 2500)
    await meter(cp, tx, 24.5, 3500)
    await stop(cp, tx, 25, 4000)
    [record] = await rig.records()
    assert record.tou_wh == pytest.approx({"Peak": 1000, "OffPeak": 2000, NO_PERIOD: 1000})
    assert sum(record.tou_wh.values()) == pytest.approx(record.energy_wh)


def test_start_and_stop_only_is_split_in_proportion_to_time():
    into: dict[str, float] = {}
    split_energy(FakeTou(), FRIDAY + timedelta(hours=20), FRIDAY + timedelta(hours=26), 6000, into)
    assert into == pytest.approx({"Peak": 2000, "OffPeak": 2000, NO_PERIOD: 2000})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_export_content_field_by_field(make_rig, connect_cp, tmp_path):
    rig = await make_rig(tou=FakeTou(), comment_of={"TAG1": "Fleet van 3"}.get)
    cp = await connect_cp("CP1", cs=rig.cs)
    tx = (await cp.start_transaction(meter_start=1000, timestamp=at(21))).transaction_id
    await meter(cp, tx, 22, 4000, power=3000)
    await stop(cp, tx, 23, 5500, reason="Remote")
    path = tmp_path / "out" / "sessions.csv"
    assert await rig.store.flush()
    rows = await rig.store.run(
        lambda: write_csv(
            path,
            rig.store.iter_export(SessionFilter()),
            periods=FakeTou().periods(),
            stations={"CP1": StationInfo("Parking A1", "AC", "Type 2")},
        )
    )
    assert rows == 1
    with path.open(newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    [record] = await rig.records()
    assert row == {
        "Transaction number": str(tx),
        "Charging station ID": "CP1",
        "Socket outlet": "1",
        "User ID": "TAG1",
        "Type of charge": "AC",
        "Start datetime": "2026-01-02T21:00:00Z",
        "End datetime": "2026-01-02T23:00:00Z",
        "Energy consumed (kWh)": "4.500",
        "Socket type": "Type 2",
        "Transaction duration": "2:00:00",
        "Comment": "Fleet van 3",
        "Charge box identity": "CP1",
        "Station name": "Parking A1",
        "Effective charge duration": "2:00:00",
        "Session ID": record.session_id,
        "Zone": "",
        "Status": "closed",
        "Ended by": "remote",
        "Stop reason": "Remote",
        "Meter start (Wh)": "1000",
        "Meter stop (Wh)": "5500",
        "Peak power (kW)": "3.000",
        "Start received": "2026-01-03T12:00:00Z",
        "End received": "2026-01-03T12:00:00Z",
        "Flags": "",
        "Other periods (kWh)": "0.000",
        "Peak": "3.000",
        "OffPeak": "1.500",
        "NoPeriod": "0.000",
    }


async def test_bad_input_is_recorded_with_flags(make_rig, connect_cp):
    rig = await make_rig()
    cp = await connect_cp("CP1", cs=rig.cs)
    a = (await cp.start_transaction(meter_start=5000, timestamp=at(9))).transaction_id
    await stop(cp, a, 10, 4000)  # meter stop below meter start
    b = (await cp.start_transaction(meter_start=0, timestamp="1999-12-31T23:00:00Z")).transaction_id
    await stop(cp, b, 10, 1000)
    c = (await cp.start_transaction(meter_start=0, timestamp=at(11))).transaction_id
    await meter(cp, c, 11.5, 2000)
    await meter(cp, c, 12, 1_000_002_000)  # a 1e9 Wh jump in half an hour
    await meter(cp, c, 12.5, 1_000_003_000)
    await stop(cp, c, 13, 1_000_003_000)
    d = (await cp.start_transaction(meter_start=0, timestamp="2030-01-01T00:00:00Z")).transaction_id
    await stop(cp, d, 10, 10)
    records = {r.transaction_id: r for r in await rig.records()}
    assert Flag.METER_STOP_BELOW_START in records[a].flags
    assert records[a].energy_wh == 0
    assert Flag.TIME_BEFORE_2000 in records[b].flags
    assert Flag.ENERGY_JUMP in records[c].flags
    assert records[c].energy_wh == pytest.approx(3000)  # the jump is not counted
    assert Flag.TIME_IN_FUTURE in records[d].flags
    assert rig.site.stations["CP1"].connected  # the server went on serving


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_list_sessions_paged_filtered_and_bad_period(make_rig, connect_cp):
    rig = await make_rig()
    cp = await connect_cp("CP1", cs=rig.cs)
    for hour in range(5):
        tx = (await cp.start_transaction(meter_start=0, timestamp=at(hour))).transaction_id
        await stop(cp, tx, hour + 0.5, 100)
    assert await rig.store.flush()
    page, more = await rig.store.async_list_page(SessionFilter(), limit=2)
    assert [r.started_at.hour for r in page] == [4, 3]
    assert more
    page, more = await rig.store.async_list_page(SessionFilter(), offset=4, limit=2)
    assert [r.started_at.hour for r in page] == [0]
    assert not more
    period = SessionFilter(start=FRIDAY + timedelta(hours=1), end=FRIDAY + timedelta(hours=3))
    page, _ = await rig.store.async_list_page(period)
    assert [r.started_at.hour for r in page] == [2, 1]
    with pytest.raises(SessionQueryError) as err:
        await rig.store.async_list_page(SessionFilter(start=FRIDAY, end=FRIDAY - timedelta(1)))
    assert err.value.field == "end"
    assert await rig.store.run(lambda: rig.store.count(SessionFilter(station_id="CP9"))) == 0


async def test_migration_from_version_1(db_url):
    engine = sa.create_engine(db_url)
    create_v1(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO evce_sessions (id, transaction_id, station_id, connector_id, "
                "id_tag, status, stop_reason, started_at, stopped_at, meter_start_wh, "
                "meter_stop_wh, energy_wh) VALUES ('old1', 7, 'CP1', 1, 'TAG', 'closed', "
                "'Local', '2025-06-01 10:00:00', '2025-06-01 11:00:00', 0, 1500, 1500)"
            )
        )
    engine.dispose()
    store = SessionStore(db_url)
    assert store.open()
    assert store.schema_found == 1
    record = store.get("old1")
    assert record is not None
    assert record.energy_wh == 1500
    assert record.start_received_at == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert record.tou_wh == {}
    assert record.flags == frozenset()
    with store.engine.connect() as conn:
        version = conn.execute(sa.select(meta.c.value)).scalar_one()
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("evce_sessions")}
    assert version == str(SCHEMA_VERSION)
    assert {i.name for i in sessions.indexes} <= indexes
    store.close()
    again = SessionStore(db_url)
    assert again.open()
    assert again.schema_found == SCHEMA_VERSION
    again.close()


async def test_unreachable_database_buffers_then_writes_when_back(tmp_path, sqlite_url):
    buffer = tmp_path / "buffer.json"
    record = SessionRecord("s1", 1, "CP1", 1, "TAG", T0, T0, 0.0)
    down = SessionStore(dead_url(), buffer_path=buffer, retry_s=0.05)
    down.start()
    down.put(record)
    assert not await down.flush()
    assert not down.available
    assert down.error
    assert buffer.exists()
    assert down.buffered == 1
    await down.async_close()
    # HA restarts, the database is back (here: another URL, same buffer file).
    up = SessionStore(sqlite_url, buffer_path=buffer)
    up.start()
    assert await up.flush()
    assert not buffer.exists()
    assert up.get("s1") is not None
    await up.async_close()


def test_buffer_is_bounded(tmp_path):
    store = SessionStore(dead_url(), buffer_path=tmp_path / "b.json", max_buffer=3)
    for i in range(5):
        store._process([SessionRecord(f"s{i}", i, "CP1", 1, "T", T0, T0, 0.0).to_row()])
    assert store.buffered == 3
    assert store.dropped == 2
    store.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_retention_purges_old_closed_sessions_only(db_url):
    store = SessionStore(db_url)
    store.start()
    old = SessionRecord("old", 1, "CP1", 1, "T", T0 - timedelta(days=400), T0, 0.0)
    old.status = SessionStatus.CLOSED
    still_open = SessionRecord("open", 2, "CP1", 2, "T", T0 - timedelta(days=400), T0, 0.0)
    recent = SessionRecord("new", 3, "CP1", 1, "T", T0, T0, 0.0)
    recent.status = SessionStatus.CLOSED
    for r in (old, still_open, recent):
        store.put(r)
    store.purge_before(T0 - timedelta(days=365))
    assert await store.flush()
    assert {r.session_id for r in store.iter_records(SessionFilter())} == {"open", "new"}
    await store.async_close()


def test_recorder_events_are_the_ones_it_handles():
    assert {e.__name__ for e in RECORDER_EVENTS} == {
        "SessionStarted",
        "SessionEnded",
        "SessionEndUnknown",
        "StationUpdated",
    }


async def test_a_session_buffered_while_the_database_was_down_resumes_after_restart(
    tmp_path, sqlite_url
):
    buffer = tmp_path / "buffer.json"
    down = SessionStore(dead_url(), buffer_path=buffer, retry_s=0.05)
    down.start()
    down.put(SessionRecord("s1", 7, "CP1", 1, "TAG", T0, T0, 0.0))
    assert not await down.flush()
    await down.async_close()

    site = Site(ManualClock(T0), MemoryStore())
    up = SessionStore(sqlite_url, buffer_path=buffer)
    recorder = SessionRecorder(site, up, clock=site.clock)
    await recorder.restore()
    assert recorder.open_record("CP1", 7) is not None
    assert not buffer.exists()
    up.close()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_export_in_local_time_and_by_period(db_url, tmp_path):
    store = SessionStore(db_url)
    store.start()
    for day in (1, 2, 3):
        record = SessionRecord(f"s{day}", day, "CP1", 1, "T", FRIDAY.replace(day=day), T0, 0.0)
        record.status = SessionStatus.CLOSED
        record.stopped_at = record.started_at + timedelta(hours=1)
        record.energy_wh = 1000.0 * day
        record.tou_wh = {NO_PERIOD: record.energy_wh}
        store.put(record)
    assert await store.flush()
    path = tmp_path / "local.csv"
    period = SessionFilter(start=FRIDAY, end=FRIDAY + timedelta(days=1))
    rows = await store.run(
        lambda: write_csv(path, store.iter_export(period), tz=ZoneInfo("Europe/Paris"))
    )
    assert rows == 1
    with path.open(newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["Start datetime"] == "2026-01-02T01:00:00+01:00"
    assert row["End datetime"] == "2026-01-02T02:00:00+01:00"
    assert row["Energy consumed (kWh)"] == "2.000"
    assert row["NoPeriod"] == "2.000"
    await store.async_close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_open_session_has_live_figures(make_rig, connect_cp):
    rig = await make_rig()
    cp = await connect_cp("CP1", cs=rig.cs)
    tx = (await cp.start_transaction(meter_start=0, timestamp=at(9))).transaction_id
    await meter(cp, tx, 9.5, 3000, power=6000)
    live = rig.recorder.open_record("CP1", tx)
    assert live is not None
    assert live.energy_wh == pytest.approx(3000)
    assert live.peak_power_w == 6000
    assert live.status is SessionStatus.OPEN


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_export_keeps_the_energy_of_periods_the_calendar_no_longer_has(db_url, tmp_path):
    store = SessionStore(db_url)
    store.start()
    record = SessionRecord("s1", 1, "CP1", 1, "T", FRIDAY, T0, 0.0)
    record.status = SessionStatus.CLOSED
    record.stopped_at = FRIDAY + timedelta(hours=1)
    record.energy_wh = 1500.0
    record.tou_wh = {"Winter peak": 1000.0, "Peak": 250.0, NO_PERIOD: 250.0}
    store.put(record)
    assert await store.flush()
    path = tmp_path / "periods.csv"
    await store.run(lambda: write_csv(path, store.iter_export(SessionFilter()), periods=["Peak"]))
    with path.open(newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert (row["Other periods (kWh)"], row["Peak"], row["NoPeriod"]) == ("1.000", "0.250", "0.250")
    await store.async_close()
