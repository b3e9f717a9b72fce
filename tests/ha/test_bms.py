"""The BMS Modbus slave in HA: options, hub entities, repair, point list, diagnostics."""

from __future__ import annotations

import csv
import io
import socket
from typing import TYPE_CHECKING, Any

from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pymodbus.client import AsyncModbusTcpClient
import pytest

from custom_components.ev_charging_expert.bms import ISSUE_BMS_CANNOT_LISTEN
from custom_components.ev_charging_expert.const import DOMAIN
from custom_components.ev_charging_expert.evcore.bms.registers import MAP_VERSION, ZONE
from custom_components.ev_charging_expert.evcore.bms.server import ILLEGAL_FUNCTION

from .conftest import ConnectCharger, entity_id, wait_for, zone_subentry

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator

pytestmark = pytest.mark.parametrize("zone_subentries", [[zone_subentry("main", "Main", 32)]])


@pytest.fixture
def bms_port(unused_tcp_port_factory: Any) -> int:
    """A free loopback port for the slave."""
    return int(unused_tcp_port_factory())


def bms_options(port: int, **changes: Any) -> dict[str, Any]:
    return {
        "bms": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": port,
            "unit_ids": "",
            "allowed_clients": "",
            "allow_control": False,
        }
        | changes
    }


async def configure(hass: HomeAssistant, entry: MockConfigEntry, options: dict[str, Any]) -> Any:
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    assert flow["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(flow["flow_id"], options)
    await hass.async_block_till_done()
    return result


async def read(port: int, address: int, count: int) -> Any:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
    assert await client.connect()
    try:
        return await client.read_holding_registers(address, count=count)
    finally:
        client.close()


async def test_off_by_default(hass: HomeAssistant, hub: EvChargingCoordinator) -> None:
    assert hub.bms.server is None
    assert not [e for e in hass.states.async_entity_ids("binary_sensor") if "bms" in e]


async def test_enabled_in_the_options_it_serves_the_site(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    bms_port: int,
) -> None:
    await connect_charger("CP1")
    result = await configure(hass, init_integration, bms_options(bms_port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hub.bms.server is not None
    assert init_integration.runtime_data is hub  # applied live, no reload

    listening = entity_id(hass, "binary_sensor", "site_bms_listening")
    assert hass.states.get(listening).state == "on"
    response = await read(bms_port, 0, 10)
    assert response.registers[0] == MAP_VERSION
    assert response.registers[2] == 1  # one station
    zone = await read(bms_port, ZONE.start, 5)
    assert zone.registers[0] == 1
    assert zone.registers[4] == 320  # 32.0 A
    await hass.async_block_till_done()
    clients = entity_id(hass, "sensor", "site_bms_clients")
    await wait_for(hass, lambda: hass.states.get(clients).state == "0")

    # A write while control is off: refused, counted.
    client = AsyncModbusTcpClient("127.0.0.1", port=bms_port, timeout=5, retries=0)
    assert await client.connect()
    await wait_for(hass, lambda: hass.states.get(clients).state == "1")
    answer = await client.write_register(ZONE.start + 20, 100)
    assert answer.exception_code == ILLEGAL_FUNCTION
    client.close()
    refused = entity_id(hass, "sensor", "site_bms_refused")
    await wait_for(hass, lambda: hass.states.get(refused).state == "1")

    # Off again: the port closes.
    await configure(hass, init_integration, {"bms": {"enabled": False}})
    assert hub.bms.server is None
    assert hass.states.get(listening).state == "off"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", bms_port)) != 0


async def test_a_taken_port_raises_a_repair_until_it_is_changed(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    init_integration: MockConfigEntry,
    bms_port: int,
    unused_tcp_port_factory: Any,
) -> None:
    issues = ir.async_get(hass)
    issue_id = f"{ISSUE_BMS_CANNOT_LISTEN}_{init_integration.entry_id}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", bms_port))
        taken.listen()
        # The options flow checks the port first.
        result = await configure(hass, init_integration, bms_options(bms_port))
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "bms_port_in_use"}
        # Taken after it was saved (at start-up, say): a repair, HA keeps running.
        hass.config_entries.async_update_entry(init_integration, options=bms_options(bms_port))
        await hass.async_block_till_done()
        assert hub.bms.server is None
        issue = issues.async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.translation_key == ISSUE_BMS_CANNOT_LISTEN
        listening = entity_id(hass, "binary_sensor", "site_bms_listening")
        assert hass.states.get(listening).state == "off"
    other = int(unused_tcp_port_factory())
    result = await configure(hass, init_integration, bms_options(other))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hub.bms.server is not None
    assert issues.async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"unit_ids": "1, x"}, "bms_unit_ids"),
        ({"unit_ids": "300"}, "bms_unit_ids"),
        ({"allowed_clients": "10.0.0.5, nobody"}, "bms_allowed_clients"),
    ],
)
async def test_options_refuse_bad_lists(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    bms_port: int,
    changes: dict[str, Any],
    error: str,
) -> None:
    result = await configure(hass, init_integration, bms_options(bms_port, **changes))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}


async def test_lists_and_control_reach_the_slave(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    init_integration: MockConfigEntry,
    bms_port: int,
) -> None:
    options = bms_options(
        bms_port, unit_ids="1, 2", allowed_clients="10.0.0.5; 127.0.0.1", allow_control=True
    )
    await configure(hass, init_integration, options)
    assert hub.bms.server is not None
    settings = hub.bms.server.settings
    assert settings.unit_ids == {1, 2}
    assert settings.allowed_clients == {"10.0.0.5", "127.0.0.1"}
    assert settings.allow_control


async def test_point_list_download_needs_a_login(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    bms_port: int,
) -> None:
    url = f"/api/ev_charging_expert/{init_integration.entry_id}/bms_points.csv"
    client = await hass_client()
    assert (await client.get(url)).status == 404  # the slave is off
    await connect_charger("CP1")
    await configure(hass, init_integration, bms_options(bms_port))

    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(url)).status == 401
    response = await client.get(url)
    assert response.status == 200
    assert response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    labels = {(r["object"], r["label"]) for r in rows}
    assert ("zone", "Main (main)") in labels
    assert ("station", "CP1") in labels
    assert ("connector", "CP1/1") in labels
    max_current = next(r for r in rows if r["object"] == "zone" and r["point"] == "max_current")
    assert max_current["address"] == str(ZONE.start + 4)
    assert max_current["reference"] == str(ZONE.start + 4 + 400001)


async def test_diagnostics_hold_the_slot_table(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    bms_port: int,
) -> None:
    await connect_charger("CP1")
    await configure(hass, init_integration, bms_options(bms_port))
    await read(bms_port, 0, 1)  # slots follow the site as it is read
    diagnostics = hub.bms.diagnostics()
    assert diagnostics["status"]["listening"]
    assert diagnostics["slots"]["stations"]["slots"] == {"CP1": 1}
    assert diagnostics["slots"]["zones"]["slots"] == {"main": 1}


async def test_a_bms_setpoint_reaches_the_zone_through_the_rules(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    init_integration: MockConfigEntry,
    bms_port: int,
) -> None:
    """Options: remote setpoints on with Modbus as the source, BMS control allowed; a write
    lowers the zone, a write while the source is HA is refused and changes nothing."""
    options = {
        "remote_enabled": True,
        "remote_source": "modbus",
        "remote_min_period": 0,
        "remote_heartbeat": 600,
    } | bms_options(bms_port, allow_control=True)
    result = await configure(hass, init_integration, options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    client = AsyncModbusTcpClient("127.0.0.1", port=bms_port, timeout=5, retries=0)
    assert await client.connect()
    try:
        assert not (await client.write_register(40, 1)).isError()  # heartbeat
        assert not (await client.write_register(ZONE.start + 20, 100)).isError()  # 10.0 A
        await hass.async_block_till_done()
        assert hub.controller.rules_view().setpoints == {"main": 10.0}
        await wait_for(
            hass,
            lambda: (
                (view := hub.controller.zone_view("main")) is not None
                and view.effective_limit == (10.0, 10.0, 10.0)
            ),
        )
        last_write = entity_id(hass, "sensor", "site_bms_last_write")
        await wait_for(hass, lambda: hass.states.get(last_write).state not in ("unknown", None))
        # The source becomes HA: the BMS is refused, nothing changes.
        await configure(hass, init_integration, options | {"remote_source": "ha"})
        answer = await client.write_register(ZONE.start + 20, 50)
        assert answer.exception_code == ILLEGAL_FUNCTION
        assert hub.controller.rules_view().setpoints.get("main") != 5.0
    finally:
        client.close()
