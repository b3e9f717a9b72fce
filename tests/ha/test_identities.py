"""Charge box identities are free text: `A`, `A#1`, `A_1`, `a/b c` or `Zürich %20` never see
each other's devices, entities or service calls (and, in evcore, leases: typed keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.helpers import device_registry as dr, entity_registry as er

from custom_components.ev_charging_expert.const import (
    DOMAIN,
    connector_device_id,
    parse_device_identifier,
    station_device_id,
    station_ref,
)

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.ev_charging_expert.evcore.clock import ManualClock

    from .conftest import ConnectCharger

IDENTITIES = ("A", "A#1", "A_1", "A%231", "a/b c", "Zürich %20")


def test_identifiers_of_different_identities_never_meet() -> None:
    station_ids = {station_device_id(s) for s in IDENTITIES}
    connector_ids = {connector_device_id(s, c) for s in IDENTITIES for c in (1, 2)}
    assert len(station_ids) == len(IDENTITIES)
    assert len(connector_ids) == 2 * len(IDENTITIES)
    assert not station_ids & connector_ids
    for station_id in IDENTITIES:
        assert parse_device_identifier(station_device_id(station_id)[1]) == (station_id, None)
        assert parse_device_identifier(connector_device_id(station_id, 2)[1]) == (station_id, 2)
        # Nor a zone's or a meter's device ("zone_<id>", "meter_<id>").
        assert "_" not in station_ref(station_id)


async def test_stations_named_alike_get_their_own_devices_entities_and_calls(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    clock: ManualClock,
    connect_charger: ConnectCharger,
) -> None:
    chargers = {sid: await connect_charger(sid, connectors=1) for sid in IDENTITIES}
    devices = dr.async_get(hass)
    entities = er.async_get(hass)

    station_devices = {
        sid: devices.async_get_device(identifiers={station_device_id(sid)}) for sid in IDENTITIES
    }
    connector_devices = {
        sid: devices.async_get_device(identifiers={connector_device_id(sid, 1)})
        for sid in IDENTITIES
    }
    assert all(station_devices.values())
    assert all(connector_devices.values())
    assert len({d.id for d in station_devices.values()}) == len(IDENTITIES)
    assert len({d.id for d in connector_devices.values()}) == len(IDENTITIES)
    for sid, device in station_devices.items():
        assert device.name == sid
        assert {e.unique_id for e in er.async_entries_for_device(entities, device.id)}
    # Each entity belongs to exactly one device: no identity merged into another's.
    ours = er.async_entries_for_config_entry(entities, init_integration.entry_id)
    assert len({e.unique_id for e in ours}) == len(ours)

    # A call aimed at A#1's connector reaches A#1, and only it.
    for charger in chargers.values():
        charger.requests.clear()
    await hass.services.async_call(
        DOMAIN,
        "unlock_connector",
        {"device_id": connector_devices["A#1"].id},
        blocking=True,
        return_response=True,
    )
    assert [sid for sid, c in chargers.items() if c.requests.get("UnlockConnector")] == ["A#1"]


async def test_devices_and_entities_named_before_escaping_are_migrated(
    hass: HomeAssistant, hass_storage: dict[str, Any], mock_config_entry: MockConfigEntry
) -> None:
    hass_storage[f"{DOMAIN}.{mock_config_entry.entry_id}"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{mock_config_entry.entry_id}",
        "data": {"version": 1, "next_transaction_id": 1, "stations": {"A_1": {}, "CP1": {}}},
    }
    mock_config_entry.add_to_hass(hass)
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    old_station = devices.async_get_or_create(
        config_entry_id=mock_config_entry.entry_id, identifiers={(DOMAIN, "A_1")}
    )
    old_connector = devices.async_get_or_create(
        config_entry_id=mock_config_entry.entry_id, identifiers={(DOMAIN, "A_1#2")}
    )
    entity = entities.async_get_or_create(
        "binary_sensor", DOMAIN, "A_1_connected", config_entry=mock_config_entry
    )
    untouched = entities.async_get_or_create(
        "binary_sensor", DOMAIN, "CP1_connected", config_entry=mock_config_entry
    )

    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert devices.async_get(old_station.id).identifiers == {station_device_id("A_1")}
    assert devices.async_get(old_connector.id).identifiers == {connector_device_id("A_1", 2)}
    assert entities.async_get(entity.entity_id).unique_id == "A%5F1_connected"
    assert entities.async_get(untouched.entity_id).unique_id == "CP1_connected"
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
