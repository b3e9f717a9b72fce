"""The BMS Modbus slave, through a real pymodbus client over loopback.

A site with zones, simulated OCPP chargers and EVs (the `env` of the load tests) is served by
the slave; the client reads every block and compares with the Controller's own state, decoding
with the register table (types, scales, word order).
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass, replace
import io
import itertools
import logging
import struct
from typing import TYPE_CHECKING, Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse
import pytest

from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.bms import (
    BmsServer,
    BmsSettings,
    MemorySlotStore,
)
from custom_components.ev_charging_expert.evcore.bms.pointlist import map_rows
from custom_components.ev_charging_expert.evcore.bms.registers import (
    CONNECTOR,
    LIMITED_BY_CODES,
    MAP_VERSION,
    NOT_AVAILABLE,
    POINTS,
    SETPOINT_STATUS_CODES,
    SITE,
    STATION,
    STATUS_CODES,
    ZONE,
    ZONE_NAME,
    Point,
    PointType,
    points_of,
)
from custom_components.ev_charging_expert.evcore.config import ZoneConfig
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey
from custom_components.ev_charging_expert.evcore.modbus.codec import RegisterFormat, decode
from custom_components.ev_charging_expert.evcore.model import ConnectorStatus
from custom_components.ev_charging_expert.evcore.rules import RemoteSettings, SetpointSource
from tools import gen_bms_docs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

ZONES = (
    ZoneConfig("A", "Building A", 63.0),
    ZoneConfig("A1", "A car park", 32.0, parent_id="A"),
    ZoneConfig("B", "Building B", 40.0),
)
_FORMATS = {
    PointType.INT16: RegisterFormat.INT16,
    PointType.UINT16: RegisterFormat.UINT16,
    PointType.INT32: RegisterFormat.INT32,
    PointType.UINT32: RegisterFormat.UINT32,
}


def value_of(point: Point, block_registers: list[int]) -> Any:
    """Decode a point from a block's registers with the map's own description."""
    words = block_registers[point.offset : point.offset + point.registers]
    if point.type is PointType.ASCII:
        return b"".join(struct.pack(">H", w) for w in words).rstrip(b"\0").decode("ascii")
    raw = decode(words, _FORMATS[point.type])
    if raw == NOT_AVAILABLE[point.type]:
        return None
    return raw / point.scale


async def read_block(client: AsyncModbusTcpClient, block: Any, slot: int = 1) -> dict[str, Any]:
    response = await client.read_holding_registers(block.slot_start(slot), count=block.stride)
    assert not response.isError(), response
    return {p.name: value_of(p, response.registers) for p in points_of(block)}


@dataclass
class Fixture:
    env: LoadEnv
    bms: BmsServer
    store: MemorySlotStore
    client: AsyncModbusTcpClient


async def start_bms(env: LoadEnv, store: MemorySlotStore, **settings: Any) -> BmsServer:
    bms = BmsServer(
        env.controller, store=store, settings=BmsSettings(host="127.0.0.1", port=0, **settings)
    )
    await bms.start()
    return bms


async def connect(bms: BmsServer) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=bms.port, timeout=5, retries=0)
    assert await client.connect()
    return client


@pytest.fixture
async def site(env: LoadEnv) -> AsyncIterator[Fixture]:
    """Zones A > A1 and B; S1 (TRI231) in A1 charging, S2 (two connectors) in B, one charging."""
    env.set_zones(*ZONES)
    await env.add_charger("S1")
    await env.add_charger("S2", connectors=2)
    env.place("S1", "A1", {1: Wiring.TRI231})
    env.place("S2", "B")
    await env.plug("S1")
    await env.plug("S2", 2, phases=1)
    await env.converge()
    store = MemorySlotStore()
    bms = await start_bms(env, store)
    client = await connect(bms)
    yield Fixture(env, bms, store, client)
    client.close()
    await bms.stop()


def _slot(bms: BmsServer, kind: str, key: str) -> int:
    slot = getattr(bms.slots, kind).slot(key)
    assert slot is not None
    return slot


async def test_every_block_reads_what_the_controller_holds(site: Fixture) -> None:  # noqa: PLR0915
    controller, client, bms = site.env.controller, site.client, site.bms
    # Site block.
    values = await read_block(client, SITE)
    assert values["map_version"] == MAP_VERSION
    assert values["stations"] == 2
    assert values["stations_online"] == 2
    assert values["connectors"] == 3
    assert values["connectors_charging"] == 2
    assert values["connectors_available"] == 1
    assert values["zone_slots_used"] == 3
    assert values["connector_slots_used"] == 3
    assert values["evs_charging"] == 2
    s1 = controller.site.stations["S1"].connectors[1]
    s2 = controller.site.stations["S2"].connectors[2]
    # S1 is TRI231: its L1 lands on grid L2, L2 on L3, L3 on L1; S2/2 charges one phase (L1).
    assert values["current_l1"] == pytest.approx(s1.current("L3") + s2.current("L1"), abs=0.1)
    assert values["current_l2"] == pytest.approx(s1.current("L1"), abs=0.1)
    assert values["power"] == pytest.approx(s1.power_w + s2.power_w, abs=1)
    # Zone blocks and the zone slot table.
    for zone in ZONES:
        slot = _slot(bms, "zones", zone.zone_id)
        view = controller.zone_view(zone.zone_id)
        assert view is not None
        values = await read_block(client, ZONE, slot)
        assert values["in_use"] == 1
        parent = _slot(bms, "zones", zone.parent_id) if zone.parent_id else 0
        assert values["parent_slot"] == parent
        assert values["max_current"] == zone.max_current
        for i, phase in enumerate(("l1", "l2", "l3")):
            assert values[f"budget_{phase}"] == pytest.approx(view.budget[i], abs=0.05)
            assert values[f"allocated_{phase}"] == pytest.approx(view.allocated[i], abs=0.05)
            assert values[f"measured_{phase}"] is None  # static zones have no meter
        assert values["evs_charging"] == view.charging
        assert values["remote_setpoint"] is None
        names = await read_block(client, ZONE_NAME, slot)
        assert names == {"zone_name": zone.name, "zone_id": zone.zone_id}
    # Station and connector blocks.
    for station_id, station in controller.site.stations.items():
        values = await read_block(client, STATION, _slot(bms, "stations", station_id))
        assert values["station_id"] == station_id
        assert values["online"] == 1
        assert values["zone_slot"] == _slot(bms, "zones", station.config.zone_id)
        for connector in station.charge_points:
            key = f"{station_id}/{connector.connector_id}"
            values = await read_block(client, CONNECTOR, _slot(bms, "connectors", key))
            allocation = controller.allocation(ConnectorKey(station_id, connector.connector_id))
            assert allocation is not None
            assert values["station_slot"] == _slot(bms, "stations", station_id)
            assert values["connector_id"] == connector.connector_id
            assert values["status"] == STATUS_CODES[connector.status]
            assert values["setpoint"] == pytest.approx(allocation.setpoint, abs=0.05)
            assert values["held"] == pytest.approx(allocation.held, abs=0.05)
            for phase in ("L1", "L2", "L3"):
                expected = connector.current(phase)
                got = values[f"current_{phase.lower()}"]
                assert got == (None if expected is None else pytest.approx(expected, abs=0.05))
            for name, expected in (
                ("power", connector.power_w),
                ("energy_register", connector.energy_wh),
            ):
                assert values[name] == (
                    None if expected is None else pytest.approx(expected, abs=1)
                )
            if connector.status is ConnectorStatus.CHARGING:
                assert values["session_energy"] == pytest.approx(connector.session_energy_wh, abs=1)
    # An empty slot reads zeros.
    assert (await read_block(client, CONNECTOR, 50))["in_use"] == 0


async def test_values_follow_the_site_between_reads(site: Fixture) -> None:
    key = f"S2/{1}"
    slot = _slot(site.bms, "connectors", key)
    assert (await read_block(site.client, CONNECTOR, slot))["status"] == STATUS_CODES[
        ConnectorStatus.AVAILABLE
    ]
    await site.env.plug("S2", 1)
    await site.env.converge()
    values = await read_block(site.client, CONNECTOR, slot)
    assert values["status"] == STATUS_CODES[ConnectorStatus.CHARGING]
    assert values["setpoint"] > 0
    assert (await read_block(site.client, SITE))["connectors_charging"] == 3


async def test_unmapped_reads_and_oversized_reads_are_refused(site: Fixture) -> None:
    for address, count in ((500, 1), (SITE.end - 1, 2), (ZONE.end, 1), (0xFFFF, 1)):
        response = await site.client.read_holding_registers(address, count=count)
        assert isinstance(response, ExceptionResponse), (address, count)
        assert response.exception_code == ExceptionResponse.ILLEGAL_ADDRESS
    # Reads up to 125 registers, across adjacent blocks, and input registers (function 04).
    response = await site.client.read_holding_registers(CONNECTOR.start - 60, count=125)
    assert len(response.registers) == 125
    response = await site.client.read_input_registers(0, count=100)
    assert response.registers[0] == MAP_VERSION
    # 126 registers: a raw request, the client refuses to build it.
    reader, writer = await asyncio.open_connection("127.0.0.1", site.bms.port)
    writer.write(struct.pack(">HHHBBHH", 7, 0, 6, 1, 3, 0, 126))
    header = await reader.readexactly(9)
    assert header[7] == 0x83
    assert header[8] == ExceptionResponse.ILLEGAL_VALUE
    writer.close()


async def test_pipelined_requests_on_one_connection_are_all_answered(site: Fixture) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", site.bms.port)
    requests = [(tid, SITE.start, 10) for tid in range(1, 6)]
    requests.append((6, ZONE.start, 40))
    requests.append((7, 500, 1))  # refused, in its turn
    requests.append((8, CONNECTOR.start, 20))
    # One write: every request in one TCP segment, before reading any answer.
    writer.write(b"".join(struct.pack(">HHHBBHH", t, 0, 6, 1, 3, a, c) for t, a, c in requests))
    await writer.drain()
    answers = []
    for _ in requests:
        header = await reader.readexactly(7)
        tid, _, length, _ = struct.unpack(">HHHB", header)
        answers.append((tid, await reader.readexactly(length - 1)))
    assert [tid for tid, _ in answers] == [t for t, _, _ in requests]
    for (_, address, count), (_, pdu) in zip(requests, answers, strict=True):
        if address == 500:
            assert pdu == bytes([0x83, ExceptionResponse.ILLEGAL_ADDRESS])
        else:
            assert pdu[0] == 3
            assert pdu[1] == count * 2
    # A request split over two segments is answered once complete.
    frame = struct.pack(">HHHBBHH", 9, 0, 6, 1, 3, 0, 1)
    writer.write(frame[:5])
    await writer.drain()
    await asyncio.sleep(0)
    writer.write(frame[5:])
    header = await reader.readexactly(7)
    assert struct.unpack(">H", header[:2])[0] == 9
    writer.close()


async def test_malformed_requests_are_answered_and_the_connection_keeps_serving(
    site: Fixture,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", site.bms.port)
    garbage = [
        struct.pack(">HHHBB", 1, 0, 3, 1, 3) + b"\x00",  # function 03, 1 byte of its 4
        struct.pack(">HHHBB", 2, 0, 2, 1, 0x5A),  # no such function
        struct.pack(">HHHBBHHB", 3, 0, 8, 1, 16, 1000, 2, 4) + b"\x00",  # 16, data missing
    ]
    writer.write(b"".join(garbage) + struct.pack(">HHHBBHH", 4, 0, 6, 1, 3, 0, 1))
    answers = []
    for _ in range(4):
        header = await reader.readexactly(7)
        answers.append(await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1))
    assert [a[0] & 0x80 for a in answers[:3]] == [0x80, 0x80, 0x80]
    assert answers[3] == bytes([3, 2]) + struct.pack(">H", MAP_VERSION)
    writer.close()
    assert (await read_block(site.client, SITE))["map_version"] == MAP_VERSION


async def test_two_clients_at_once(site: Fixture) -> None:
    other = await connect(site.bms)
    try:
        first, second = await asyncio.gather(
            site.client.read_holding_registers(ZONE.start, count=40),
            other.read_holding_registers(ZONE.start, count=40),
        )
        assert first.registers == second.registers
        assert site.bms.status.clients == 2
    finally:
        other.close()
    await asyncio.sleep(0)


async def test_slots_stay_across_restart_and_removal(site: Fixture) -> None:
    before = {
        kind: dict(getattr(site.bms.slots, kind).by_key)
        for kind in ("zones", "stations", "connectors")
    }
    site.client.close()
    await site.bms.stop()
    # A restart with the saved table: the same slots.
    site.bms = await start_bms(site.env, site.store)
    site.client = await connect(site.bms)
    for kind, slots in before.items():
        assert getattr(site.bms.slots, kind).by_key == slots
    # S1 leaves: S2 keeps its slots, S1's are empty; a newcomer does not take them.
    await site.env.stop_charger("S1")
    await site.env.controller.site.remove_station("S1")
    s1_connector = before["connectors"]["S1/1"]
    assert (await read_block(site.client, CONNECTOR, s1_connector))["in_use"] == 0
    assert site.bms.slots.connectors.by_key == {
        k: v for k, v in before["connectors"].items() if not k.startswith("S1/")
    }
    await site.env.add_charger("S3")
    assert (await read_block(site.client, SITE))["station_slots_used"] == 2
    new_slot = _slot(site.bms, "connectors", "S3/1")
    assert new_slot not in before["connectors"].values()
    values = await read_block(site.client, CONNECTOR, new_slot)
    assert values["in_use"] == 1
    assert values["station_slot"] == _slot(site.bms, "stations", "S3")


async def test_zones_added_and_removed_take_and_free_their_slots(site: Fixture) -> None:
    before = dict(site.bms.slots.zones.by_key)
    site.env.set_zones(*ZONES, ZoneConfig("C", "Building C", 20.0))
    site.env.lm.request_run()
    await site.env.settle()
    assert (await read_block(site.client, SITE))["zone_slots_used"] == 4
    new_slot = _slot(site.bms, "zones", "C")
    assert new_slot not in before.values()
    assert (await read_block(site.client, ZONE_NAME, new_slot))["zone_name"] == "Building C"
    assert {k: v for k, v in site.bms.slots.zones.by_key.items() if k != "C"} == before
    site.env.set_zones(*ZONES)
    site.env.lm.request_run()
    await site.env.settle()
    assert (await read_block(site.client, SITE))["zone_slots_used"] == 3
    assert (await read_block(site.client, ZONE, new_slot))["in_use"] == 0
    assert (await read_block(site.client, ZONE_NAME, new_slot))["zone_name"] == ""
    assert site.bms.slots.zones.by_key == before


async def test_writes_are_refused_while_control_is_off(
    site: Fixture, caplog: pytest.LogCaptureFixture
) -> None:
    slot = _slot(site.bms, "zones", "A1")
    setpoint = ZONE.slot_start(slot) + 20
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        response = await site.client.write_register(setpoint, 100)
        assert response.exception_code == ExceptionResponse.ILLEGAL_FUNCTION
    refusals = [r for r in caplog.records if "control_off" in r.getMessage()]
    assert len(refusals) == 1  # once per client and cause
    assert site.bms.status.refused == 3
    assert (await read_block(site.client, SITE))["refused_writes"] == 3
    assert site.bms.status.last_write is None


async def restart_with_control(site: Fixture, **settings: Any) -> AsyncModbusTcpClient:
    site.client.close()
    await site.bms.stop()
    site.bms = await start_bms(site.env, site.store, allow_control=True, **settings)
    site.client = await connect(site.bms)
    return site.client


def remote(env: LoadEnv, **changes: Any) -> None:
    settings = {"enabled": True, "source": SetpointSource.MODBUS, "min_period": 60.0} | changes
    env.controller.set_remote_settings(RemoteSettings(**settings))


@pytest.mark.parametrize(
    ("settings", "value", "exception", "code"),
    [
        ({"enabled": False}, 100, ExceptionResponse.ILLEGAL_FUNCTION, "disabled"),
        (
            {"source": SetpointSource.HA},
            100,
            ExceptionResponse.ILLEGAL_FUNCTION,
            "not_controlling_source",
        ),
        ({}, 330, ExceptionResponse.ILLEGAL_VALUE, "out_of_range"),  # above A1's 32 A
        ({}, 0xFFFE, ExceptionResponse.ILLEGAL_VALUE, "out_of_range"),  # -0.2 A
    ],
)
async def test_rule_refusals_become_modbus_exceptions(
    site: Fixture, settings: dict[str, Any], value: int, exception: int, code: str
) -> None:
    remote(site.env, **settings)
    client = await restart_with_control(site)
    slot = _slot(site.bms, "zones", "A1")
    response = await client.write_register(ZONE.slot_start(slot) + 20, value)
    assert response.exception_code == exception
    values = await read_block(client, ZONE, slot)
    assert values["setpoint_status"] == SETPOINT_STATUS_CODES[code]
    assert values["remote_setpoint"] is None
    assert site.env.controller.rules_view().setpoints == {}


async def test_a_setpoint_write_lowers_the_zone_at_the_next_run(site: Fixture) -> None:
    remote(site.env)
    client = await restart_with_control(site)
    slot = _slot(site.bms, "zones", "A1")
    setpoint = ZONE.slot_start(slot) + 20
    assert not (await client.write_register(SITE.start + 40, 7)).isError()  # heartbeat
    assert not (await client.write_register(setpoint, 125)).isError()
    await site.env.converge()
    view = site.env.controller.zone_view("A1")
    assert view is not None
    assert view.effective_limit == (12.5, 12.5, 12.5)
    assert view.limited_by == "remote"
    values = await read_block(client, ZONE, slot)
    assert values["remote_setpoint"] == 12.5
    assert values["effective_limit_l1"] == 12.5
    assert values["limited_by"] == LIMITED_BY_CODES["remote"]
    assert values["setpoint_status"] == SETPOINT_STATUS_CODES["accepted"]
    assert values["allocated_l1"] <= 12.5
    site_values = await read_block(client, SITE)
    assert site_values["bms_heartbeat"] == 7
    assert site_values["remote_control"] == 0b10111  # allowed, enabled, source, accepted
    assert site.bms.status.last_write is not None
    # A second write within the minimum period: server busy, nothing changes.
    response = await client.write_register(setpoint, 100)
    assert response.exception_code == ExceptionResponse.SLAVE_BUSY
    assert site.env.controller.rules_view().setpoints == {"A1": 12.5}
    # After it, 0x8000 clears the setpoint (function 16 this time).
    await site.env.advance(60)
    assert not (await client.write_registers(setpoint, [0x8000])).isError()
    await site.env.converge()
    assert site.env.controller.rules_view().setpoints == {}
    assert (await read_block(client, ZONE, slot))["remote_setpoint"] is None


async def test_the_heartbeat_lapses_when_the_bms_stops_writing(site: Fixture) -> None:
    remote(site.env, heartbeat=60.0, min_period=0.0)
    client = await restart_with_control(site)
    slot = _slot(site.bms, "zones", "A1")
    assert not (await client.write_register(SITE.start + 40, 1)).isError()
    assert not (await client.write_register(ZONE.slot_start(slot) + 20, 100)).isError()
    await site.env.advance(61)
    assert site.env.controller.rules_view().heartbeat_lapsed
    bits = (await read_block(client, SITE))["remote_control"]
    assert int(bits) & (1 << 3)


async def test_slave_refusals(site: Fixture, caplog: pytest.LogCaptureFixture) -> None:
    remote(site.env, min_period=0.0)
    client = await restart_with_control(site)
    slot = _slot(site.bms, "zones", "A1")
    zone_start = ZONE.slot_start(slot)
    cases = [
        (zone_start + 4, [320], ExceptionResponse.ILLEGAL_ADDRESS),  # read-only max current
        (500, [1], ExceptionResponse.ILLEGAL_ADDRESS),  # unmapped
        (ZONE.slot_start(40) + 20, [100], ExceptionResponse.ILLEGAL_ADDRESS),  # empty slot
        (zone_start + 19, [0, 100], ExceptionResponse.ILLEGAL_ADDRESS),  # spans read-only
    ]
    caplog.set_level(logging.WARNING)
    for address, values, exception in cases * 2:
        if len(values) == 1:
            response = await client.write_register(address, values[0])
        else:
            response = await client.write_registers(address, values)
        assert response.exception_code == exception, address
    assert site.env.controller.rules_view().setpoints == {}
    causes = [r.getMessage() for r in caplog.records if "request refused" in r.getMessage()]
    assert len(causes) == 3  # read_only, unmapped, unknown_zone: each once for this client
    # Other functions (here: read coils) are not served.
    response = await client.read_coils(0, count=1)
    assert response.exception_code == ExceptionResponse.ILLEGAL_FUNCTION


async def test_unknown_clients_and_units_are_refused(site: Fixture) -> None:
    remote(site.env, min_period=0.0)
    client = await restart_with_control(site, allowed_clients=frozenset({"127.0.0.2"}))
    response = await client.read_holding_registers(0, count=1)
    assert response.exception_code == ExceptionResponse.ILLEGAL_FUNCTION
    response = await client.write_register(SITE.start + 40, 1)
    assert response.exception_code == ExceptionResponse.ILLEGAL_FUNCTION
    assert not site.env.controller.rules_view().heartbeat_lapsed
    assert site.bms.image.heartbeat_value == 0
    site.client.close()
    await site.bms.stop()
    site.bms = await start_bms(site.env, site.store, unit_ids=frozenset({5}))
    site.client = await connect(site.bms)
    response = await site.client.read_holding_registers(0, count=1, slave=1)
    assert response.exception_code == ExceptionResponse.GATEWAY_NO_RESPONSE
    response = await site.client.read_holding_registers(0, count=1, slave=5)
    assert response.registers == [MAP_VERSION]


async def test_port_taken_raises_oserror(site: Fixture) -> None:
    other = BmsServer(
        site.env.controller,
        store=MemorySlotStore(),
        settings=BmsSettings(host="127.0.0.1", port=site.bms.port or 0),
    )
    with pytest.raises(OSError):  # noqa: PT011  # any bind error
        await other.start()
    await other.stop()


def test_register_map_is_consistent() -> None:
    """Points fit their block's stride without overlap; blocks do not overlap."""
    for block in (SITE, ZONE, ZONE_NAME, STATION, CONNECTOR):
        taken: set[int] = set()
        for point in points_of(block):
            span = set(range(point.offset, point.offset + point.registers))
            assert not span & taken, point.name
            assert max(span) < block.stride, point.name
            taken |= span
    spans = sorted((b.start, b.end) for b in (SITE, ZONE, ZONE_NAME, STATION, CONNECTOR))
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    assert spans[-1][1] <= 0x10000
    names = [(p.block.name, p.name) for p in POINTS]
    assert len(names) == len(set(names))


async def test_a_bms_setpoint_while_evs_charge_never_overloads_a_phase(env: LoadEnv) -> None:
    """The physical checker holds the zone to what was allowed before the write while the
    change is delivered (nothing rises before the decreases are confirmed), then to the new
    setpoint once the allocation converged."""
    env.set_zones(ZoneConfig("P", "Parking", 63.0), ZoneConfig("L", "Level", 48.0, parent_id="P"))
    for sid, wiring in (("C1", Wiring.TRI123), ("C2", Wiring.TRI231), ("C3", Wiring.MONO2)):
        await env.add_charger(sid)
        env.place(sid, "L", {1: wiring})
        await env.plug(sid, phases=1 if wiring is Wiring.MONO2 else 3)
    await env.converge()
    before = max(max(phases) for phases in [env.physical.loads()["L"]])
    env.physical.zones["L"] = replace(env.physical.zones["L"], max_current=before)
    remote(env, min_period=0.0)
    bms = await start_bms(env, MemorySlotStore(), allow_control=True)
    client = await connect(bms)
    try:
        assert (await read_block(client, SITE))["zone_slots_used"] == 2
        slot = _slot(bms, "zones", "L")
        assert not (await client.write_register(SITE.start + 40, 1)).isError()
        assert not (await client.write_register(ZONE.slot_start(slot) + 20, 200)).isError()
        await env.converge()
        env.physical.zones["L"] = replace(env.physical.zones["L"], max_current=20.0)
        env.check("converged under the BMS setpoint")
        assert max(env.physical.loads()["L"]) <= 20.0
        values = await read_block(client, ZONE, slot)
        assert max(values[f"allocated_l{i}"] for i in (1, 2, 3)) <= 20.0
    finally:
        client.close()
        await bms.stop()


async def test_the_documented_map_is_the_served_map(site: Fixture) -> None:
    """docs/bms-register-map.csv and docs/bms-modbus.md are generated from the table, and every
    documented point is served where the docs say (first and last slot)."""
    assert gen_bms_docs.main(["--check"]) == 0
    rows = list(csv.DictReader(io.StringIO(gen_bms_docs.CSV.read_text(encoding="utf-8"))))
    assert rows == map_rows()
    for row in rows:
        address, registers = int(row["address"]), int(row["registers"])
        last = address + int(row["stride"]) * (int(row["slots"]) - 1)
        for start in (address, last):
            response = await site.client.read_holding_registers(start, count=registers)
            assert not response.isError(), row
    connector = await site.client.read_holding_registers(
        CONNECTOR.slot_start(_slot(site.bms, "connectors", "S1/1")), count=CONNECTOR.stride
    )
    by_name = {p.name: p for p in points_of(CONNECTOR)}
    documented = next(r for r in rows if r["block"] == "connector" and r["name"] == "setpoint")
    assert int(documented["offset"]) == by_name["setpoint"].offset
    value = connector.registers[int(documented["offset"])] / int(documented["scale"])
    allocation = site.env.controller.allocation(ConnectorKey("S1", 1))
    assert allocation is not None
    assert value == pytest.approx(allocation.setpoint, abs=0.05)
