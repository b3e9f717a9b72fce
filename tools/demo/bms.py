"""The demo's BMS Modbus slave: turned on in the integration's options, on 127.0.0.1.

Called by one line of the scenario after the zones are set up: it enables the slave (on the
first free port from 5021: 5020 is the meter simulator's), reads the site block back once with
a pymodbus client, and says how to look at it (mbpoll, a pymodbus one-liner).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from pymodbus.client import AsyncModbusTcpClient

from tools.demo.ha_process import DemoError

if TYPE_CHECKING:
    from tools.demo.rest import HaApi

BMS_HOST = "127.0.0.1"
BMS_PORT = 5021
_TRIES = 20


def _free_port(first: int) -> int:
    for port in range(first, first + _TRIES):
        with socket.socket() as sock:
            try:
                sock.bind((BMS_HOST, port))
            except OSError:
                continue
        return port
    msg = f"no free port for the BMS slave in {first}..{first + _TRIES - 1}"
    raise DemoError(msg)


def _defaults(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The form's current values (its defaults and suggested values)."""
    values: dict[str, Any] = {}
    for field in fields:
        if field.get("type") == "expandable":
            values[field["name"]] = _defaults(field.get("schema", []))
        elif "default" in field:
            values[field["name"]] = field["default"]
        elif (suggested := (field.get("description") or {}).get("suggested_value")) is not None:
            values[field["name"]] = suggested
    return values


async def _enable(api: HaApi, entry_id: str) -> int:
    form = await api.request(
        "POST", "/api/config/config_entries/options/flow", json_body={"handler": entry_id}
    )
    values = _defaults(form.get("data_schema") or [])
    bms = values.get("bms") or {}
    if bms.get("enabled"):
        await api.request("DELETE", f"/api/config/config_entries/options/flow/{form['flow_id']}")
        return int(bms.get("port", BMS_PORT))
    port = _free_port(BMS_PORT)
    values["bms"] = bms | {"enabled": True, "host": BMS_HOST, "port": port}
    result = await api.request(
        "POST", f"/api/config/config_entries/options/flow/{form['flow_id']}", json_body=values
    )
    if result.get("type") != "create_entry":
        msg = f"the options flow refused the BMS settings: {result.get('errors')}"
        raise DemoError(msg)
    return port


async def enable(api: HaApi, entry_id: str) -> int | None:
    """Turn the slave on (keeping every other option) unless it is on; returns its port."""
    try:
        port = await _enable(api, entry_id)
    except DemoError as err:
        print(f"demo: warning: could not turn on the BMS Modbus slave: {err}")
        return None
    print(
        f"demo: BMS Modbus slave on {BMS_HOST}:{port}; read the site block with\n"
        f"  mbpoll -m tcp -p {port} -a 1 -t 4 -r 1 -c 30 -1 {BMS_HOST}\n"
        f'  python -c "from pymodbus.client import ModbusTcpClient as C; '
        f"c=C('{BMS_HOST}',port={port}); c.connect(); "
        f'print(c.read_holding_registers(0,count=30).registers)"\n'
        "  (register map: docs/bms-modbus.md)",
        flush=True,
    )
    return port


async def check(port: int | None) -> bool:
    """Read the site block once: map version, stations, connectors charging."""
    if port is None:
        return True  # not turned on: said so already
    client = AsyncModbusTcpClient(BMS_HOST, port=port, timeout=5, retries=1)
    try:
        if not await client.connect():
            print(f"demo: BMS check FAILED: cannot connect to {BMS_HOST}:{port}")
            return False
        response = await client.read_holding_registers(0, count=30)
    finally:
        client.close()
    if response.isError():
        print(f"demo: BMS check FAILED: {response}")
        return False
    registers = response.registers
    print(
        f"demo: BMS check passed: map version {registers[0]}, {registers[2]} stations, "
        f"{registers[8]} connectors charging, EV current L1 {registers[16] / 10:g} A"
    )
    return registers[0] > 0
