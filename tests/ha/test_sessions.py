"""Charge data records in HA: sensors, list/export/force-stop services, download, repair."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.core import Context
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
import sqlalchemy as sa

from custom_components.ev_charging_expert.backup import async_post_backup, async_pre_backup
from custom_components.ev_charging_expert.const import DOMAIN, station_device_id
from custom_components.ev_charging_expert.sessions_glue import (
    CONF_SESSIONS_DB_URL,
    ISSUE_SESSIONS_DB,
    _register_view,
)

from .conftest import START, ConnectCharger, entity_id, wait_for

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

    from .conftest import HaCharger


def _register(wh: float) -> list[dict[str, Any]]:
    return [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]


async def _session(
    hass: HomeAssistant, charger: HaCharger, clock: ManualClock, *, energy: int = 12500
) -> int:
    tx = await charger.start_session(1, "TAG1", meter_start=1000)
    clock.advance(1800)
    await charger.meter_values(
        1, _register(1000 + energy / 2), transaction_id=tx, timestamp="2026-01-01T10:30:00+00:00"
    )
    clock.advance(1800)
    await charger.stop_transaction(
        tx, 1000 + energy, timestamp="2026-01-01T11:00:00+00:00", reason="EVDisconnected"
    )
    await hass.async_block_till_done()
    return tx


def _wal_size(database: Path) -> int:
    wal = Path(f"{database}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def _call(hass: HomeAssistant, service: str, data: dict[str, Any], **kw: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, **kw
    )


async def test_a_session_updates_the_sensors_and_is_listed(
    hass: HomeAssistant,
    clock: ManualClock,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    tx = await _session(hass, charger, clock)

    energy = entity_id(hass, "sensor", "CP1_1_last_session_energy")
    duration = entity_id(hass, "sensor", "CP1_1_last_session_duration")
    today = entity_id(hass, "sensor", "CP1_energy_today")
    await wait_for(hass, lambda: hass.states.get(energy).state == "12.5")
    assert hass.states.get(duration).state == "60.0"
    assert hass.states.get(today).state == "12.5"
    assert hass.states.get(today).attributes["state_class"] == "total_increasing"

    answer = await _call(hass, "list_sessions", {})
    [record] = answer["sessions"]
    assert record["transaction_id"] == tx
    assert record["energy_wh"] == 12500
    assert record["status"] == "closed"
    assert record["started_at"] == START
    assert answer["next_offset"] is None


async def test_export_writes_a_csv_downloadable_by_users(  # noqa: PLR0917  # fixtures
    hass: HomeAssistant,
    clock: ManualClock,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    hass_read_only_user: MockUser,
) -> None:
    charger = await connect_charger("CP1")
    tx = await _session(hass, charger, clock)
    answer = await _call(
        hass,
        "export_sessions",
        {"start": "2026-01-01T00:00:00+00:00", "end": "2026-01-02T00:00:00+00:00"},
        context=Context(user_id=hass_read_only_user.id),
    )
    assert answer["rows"] == 1
    assert hub.sessions is not None
    path = hub.sessions.export_dir() / answer["url"].rsplit("/", 1)[1]
    assert answer["path"] == str(path)
    with path.open(newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["Transaction number"] == str(tx)
    assert row["Energy consumed (kWh)"] == "12.500"
    assert row["Start datetime"] == "2026-01-01T10:00:00Z"
    assert row["NoPeriod"] == "12.500"

    assert await async_setup_component(hass, "http", {})
    _register_view(hass)
    client = await hass_client()
    response = await client.get(answer["url"])
    assert response.status == 200
    assert (await response.text()).startswith("Transaction number,")
    assert (await client.get("/api/ev_charging_expert/sessions/secrets.yaml")).status == 404
    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(answer["url"])).status == 401


async def test_export_of_a_period_that_ends_before_it_starts_is_refused(
    hass: HomeAssistant, hub: EvChargingCoordinator
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "export_sessions",
            {"start": "2026-01-02T00:00:00+00:00", "end": "2026-01-01T00:00:00+00:00"},
        )
    assert err.value.translation_key == "invalid_session_query"
    assert err.value.translation_placeholders["field"] == "end"


async def test_force_stop_of_a_gone_station(
    hass: HomeAssistant,
    clock: ManualClock,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    hass_read_only_user: MockUser,
) -> None:
    charger = await connect_charger("CP1")
    tx = await charger.start_session(1, "TAG1", meter_start=1000)
    clock.advance(1800)
    await charger.meter_values(
        1, _register(4000), transaction_id=tx, timestamp="2026-01-01T10:30:00+00:00"
    )
    device = dr.async_get(hass).async_get_device(identifiers={station_device_id("CP1")})
    assert device is not None
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "force_stop_session", {"device_id": device.id})
    assert err.value.translation_key == "force_stop_connected"
    await charger.close()
    await wait_for(hass, lambda: not hub.site.stations["CP1"].connected)
    with pytest.raises(Unauthorized):
        await _call(
            hass,
            "force_stop_session",
            {"device_id": device.id},
            context=Context(user_id=hass_read_only_user.id),
        )

    record = await _call(hass, "force_stop_session", {"device_id": device.id})

    assert record["ended_by"] == "forced"
    assert record["energy_wh"] == 3000
    assert hub.site.stations["CP1"].connectors[1].transaction is None
    [listed] = (await _call(hass, "list_sessions", {"device_id": device.id}))["sessions"]
    assert listed["ended_by"] == "forced"


@pytest.mark.parametrize(
    "entry_options", [{CONF_SESSIONS_DB_URL: "postgresql://evce@127.0.0.1:1/nowhere"}]
)
async def test_an_unreachable_database_is_a_repair_and_sessions_are_buffered(
    hass: HomeAssistant,
    clock: ManualClock,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
) -> None:
    issue_id = f"{ISSUE_SESSIONS_DB}_{init_integration.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_SESSIONS_DB
    charger = await connect_charger("CP1")
    await _session(hass, charger, clock)  # the charger is served as usual
    assert hub.sessions is not None
    assert not await hub.sessions.store.flush()
    assert hub.sessions.store.buffered == 1
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "list_sessions", {})
    assert err.value.translation_key == "sessions_unavailable"


async def test_options_refuse_a_url_that_is_not_one(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    flow = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], {CONF_SESSIONS_DB_URL: "not a url at all"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_SESSIONS_DB_URL: "invalid_db_url"}


async def test_backup_writes_the_queued_sessions_into_the_sqlite_file(
    hass: HomeAssistant,
    clock: ManualClock,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    await _session(hass, charger, clock)
    assert hub.sessions is not None
    database = Path(hub.sessions.url.database or "")

    await async_pre_backup(hass)
    await async_post_backup(hass)

    assert _wal_size(database) == 0
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM evce_sessions")).scalar_one() == 1
    engine.dispose()


async def test_a_session_survives_a_reload_of_the_integration(
    hass: HomeAssistant,
    clock: ManualClock,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    charger = await connect_charger("CP1")
    tx = await charger.start_session(1, "TAG1", meter_start=1000)
    await charger.close()
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()

    again = await connect_charger("CP1")
    clock.advance(3600)
    await again.stop_transaction(
        tx, 8000, timestamp="2026-01-01T11:00:00+00:00", reason="EVDisconnected"
    )
    await hass.async_block_till_done()

    [record] = (await _call(hass, "list_sessions", {}))["sessions"]
    assert record["transaction_id"] == tx
    assert record["status"] == "closed"
    assert record["energy_wh"] == 7000
    assert record["plugged_s"] == 3600
