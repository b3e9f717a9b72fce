"""The Modbus TCP slave a building management system (BMS) polls.

pymodbus does the networking and the frames (MBAP header, PDUs); this module decides what a
request gets. Two things differ from pymodbus' own request handler:

- Pipelining: pymodbus 3.8 handles only the first request of a TCP segment and leaves the rest
  in its buffer until more bytes arrive, so a BMS that sends several requests before reading
  the answers waits forever for all but the first. `_Connection.callback_data` answers every
  complete request of the buffer, in order.
- Refusals: a refused request gets a Modbus exception, is counted, and is logged once per
  client and cause (pymodbus logs every exception response it builds, at error level).

Reads come from `RegisterImage`; writes go to the Controller's remote-setpoint commands
(`set_zone_setpoint`, `clear_zone_setpoint`, `remote_heartbeat` with source MODBUS), which apply
the operating rules (enabled, controlling source, minimum period, range).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003  # a dataclass field type
import logging
import struct
from typing import TYPE_CHECKING, Any

from pymodbus.datastore import ModbusServerContext
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterRequest,
    WriteSingleRegisterResponse,
)
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from ..modbus.codec import RegisterFormat, decode
from ..rules import SetpointSource
from .image import RegisterImage
from .pointlist import point_list_csv
from .registers import (
    BLOCKS,
    CONNECTOR,
    NOT_AVAILABLE,
    SETPOINT_STATUS_CODES,
    STATION,
    ZONE,
    PointType,
    writable_at,
)
from .slots import SlotStore, SlotTable

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..controller import Controller

_LOGGER = logging.getLogger(__name__)

MAX_READ = 125  # registers per read (Modbus limit)
MAX_WRITE = 123

# Modbus exception codes.
ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
SERVER_FAILURE = 0x04
SERVER_BUSY = 0x06
GATEWAY_NO_RESPONSE = 0x0B

# Refusal cause -> exception code. The rules' codes first, then the slave's own.
EXCEPTION_OF: dict[str, int] = {
    "disabled": ILLEGAL_FUNCTION,
    "not_controlling_source": ILLEGAL_FUNCTION,
    "too_soon": SERVER_BUSY,
    "out_of_range": ILLEGAL_VALUE,
    "unknown_zone": ILLEGAL_ADDRESS,
    "control_off": ILLEGAL_FUNCTION,
    "client_not_allowed": ILLEGAL_FUNCTION,
    "unmapped": ILLEGAL_ADDRESS,
    "read_only": ILLEGAL_ADDRESS,
    "bad_count": ILLEGAL_VALUE,
    "malformed": ILLEGAL_VALUE,
    "unsupported_function": ILLEGAL_FUNCTION,
    "unknown_unit": GATEWAY_NO_RESPONSE,
}


@dataclass(frozen=True, slots=True)
class BmsSettings:
    """Where the slave listens and what it lets clients do."""

    host: str = "127.0.0.1"
    port: int = 502
    unit_ids: frozenset[int] = frozenset()
    """Unit ids answered; empty = any."""
    allowed_clients: frozenset[str] = frozenset()
    """Client IP addresses served; empty = any."""
    allow_control: bool = False
    """Whether writes (setpoints, heartbeat) are considered at all."""


@dataclass(slots=True)
class BmsStatus:
    """The slave's state, for HA entities and diagnostics."""

    listening: bool = False
    clients: int = 0
    last_write: datetime | None = None
    refused: int = 0
    refused_by_cause: dict[str, int] = field(default_factory=dict)
    port: int | None = None


class _Refusal(ModbusPDU):
    """An exception response, built without pymodbus' error log line (we log once per cause)."""

    def __init__(self, function_code: int, exception_code: int, dev_id: int, tid: int) -> None:
        super().__init__(dev_id=dev_id, transaction_id=tid)
        self.function_code = function_code | 0x80
        self.exception_code = exception_code

    def encode(self) -> bytes:
        """The exception code."""
        return self.exception_code.to_bytes(1, "big")

    def decode(self, data: bytes) -> None:
        """Never decoded: it is only sent."""
        self.exception_code = data[0]


class _Registers(ModbusPDU):
    """A read answer (function 03 or 04), encoded in one `struct.pack`.

    pymodbus' own response appends one `struct.pack` per register to a growing bytes object:
    a tenth of a millisecond for 120 registers, paid by every poll of every BMS.
    """

    def __init__(self, function_code: int, registers: list[int], dev_id: int, tid: int) -> None:
        super().__init__(dev_id=dev_id, transaction_id=tid)
        self.function_code = function_code
        self.registers = registers

    def encode(self) -> bytes:
        """Byte count, then the registers (big-endian)."""
        count = len(self.registers)
        return struct.pack(f">B{count}H", 2 * count, *self.registers)

    def decode(self, data: bytes) -> None:
        """Never decoded: it is only sent."""
        count = data[0] // 2
        self.registers = list(struct.unpack(f">{count}H", data[1 : 1 + 2 * count]))


class _Connection(ServerRequestHandler):
    """One client connection: answers every complete request it receives, in order."""

    def __init__(self, owner: _Server) -> None:
        super().__init__(owner)  # type: ignore[no-untyped-call]
        self.bms = owner.bms
        self.peer = ""

    def callback_connected(self) -> None:
        super().callback_connected()
        peer = self.transport.get_extra_info("peername") if self.transport else None
        self.peer = str(peer[0]) if peer else ""
        self.bms.connection_changed(+1)

    def callback_disconnected(self, call_exc: Exception | None) -> None:
        super().callback_disconnected(call_exc)
        self.bms.connection_changed(-1)

    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        used = 0
        while used < len(data):
            size, dev_id, tid, frame = self.framer.decode(data[used:])
            if not size:
                break  # an incomplete request: wait for the rest
            used += size
            if not frame:
                continue
            try:
                response = self.bms.handle_frame(self.peer, dev_id, tid, frame)
            except Exception:
                # A bug must not end the connection (nor the other clients'): answer and log.
                _LOGGER.exception("BMS request from %s failed", self.peer or "?")
                response = _Refusal(frame[0], SERVER_FAILURE, dev_id, tid)
            if response is not None:
                self.pdu_send(response)
        return used


class _Server(ModbusTcpServer):
    def __init__(self, bms: BmsServer, address: tuple[str, int]) -> None:
        super().__init__(ModbusServerContext(single=True), address=address)  # type: ignore[no-untyped-call]
        self.bms = bms

    def callback_new_connection(self) -> _Connection:
        return _Connection(self)


class BmsServer:
    """The slave: its register image, its slot table and its listening socket."""

    def __init__(
        self,
        controller: Controller,
        *,
        store: SlotStore,
        settings: BmsSettings | None = None,
    ) -> None:
        self.controller = controller
        self.settings = settings or BmsSettings()
        self.slots = SlotTable(
            store,
            zones=ZONE.slots,
            stations=STATION.slots,
            connectors=CONNECTOR.slots,
        )
        self.image = RegisterImage(controller, self.slots)
        self.image.bms_control_allowed = self.settings.allow_control
        self.status = BmsStatus()
        self._server: _Server | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._logged: set[tuple[str, str]] = set()
        self._mapped = _intervals()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Restore the slots and listen; OSError when the port cannot be bound."""
        if self._server is not None:
            return
        await self.slots.load()
        if self._unsubscribe is None:
            self._unsubscribe = self.controller.subscribe(self.image.on_event)
        self.image.invalidate()
        self.image.refresh()
        server = _Server(self, (self.settings.host, self.settings.port))
        await server.serve_forever(background=True)
        listener = server.transport
        if listener is None:
            msg = f"cannot listen on {self.settings.host}:{self.settings.port}"
            raise OSError(msg)
        self._server = server
        self.status.port = int(listener.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        self.status.listening = True
        _LOGGER.info("BMS Modbus slave listening on %s:%s", self.settings.host, self.status.port)
        self._notify()

    async def stop(self) -> None:
        """Close the port and every client connection. Idempotent."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
            await asyncio.sleep(0)  # let the transports report their closing
        self.status.listening = False
        self.status.clients = 0
        self._notify()

    @property
    def port(self) -> int | None:
        """The port bound, once listening."""
        return self.status.port if self.status.listening else None

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when the status changes; returns unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                _LOGGER.exception("BMS status listener failed")

    def connection_changed(self, delta: int) -> None:
        """A client connected (+1) or left (-1)."""
        self.status.clients = max(self.status.clients + delta, 0)
        self._notify()

    # ------------------------------------------------------------------ requests
    def handle_frame(  # noqa: PLR0911  # one answer per kind of request or refusal
        self, peer: str, dev_id: int, tid: int, frame: bytes
    ) -> ModbusPDU | None:
        """The answer to one request PDU (`frame`: function code and data)."""
        function_code = frame[0]
        try:
            pdu = self._server.decoder.decode(frame) if self._server is not None else None
        except (struct.error, ValueError, IndexError):
            return self._refuse(peer, "malformed", function_code, dev_id, tid)
        if pdu is None:
            return self._refuse(peer, "unsupported_function", function_code, dev_id, tid)
        pdu.dev_id, pdu.transaction_id = dev_id, tid
        if self.settings.unit_ids and dev_id not in self.settings.unit_ids:
            return self._refuse(peer, "unknown_unit", function_code, dev_id, tid)
        if self.settings.allowed_clients and peer not in self.settings.allowed_clients:
            return self._refuse(peer, "client_not_allowed", function_code, dev_id, tid)
        match pdu:
            case ReadHoldingRegistersRequest() | ReadInputRegistersRequest():
                return self._read(peer, pdu)
            case WriteSingleRegisterRequest():
                return self._write(peer, pdu, pdu.address, list(pdu.registers))
            case WriteMultipleRegistersRequest():
                return self._write(peer, pdu, pdu.address, list(pdu.registers))
        return self._refuse(peer, "unsupported_function", function_code, dev_id, tid)

    def _read(self, peer: str, pdu: ModbusPDU) -> ModbusPDU:
        address, count = pdu.address, pdu.count
        if not 1 <= count <= MAX_READ:
            return self._refuse_pdu(peer, "bad_count", pdu)
        if not self._is_mapped(address, count):
            return self._refuse_pdu(peer, "unmapped", pdu)
        registers = self.image.read(address, count)
        return _Registers(pdu.function_code, registers, pdu.dev_id, pdu.transaction_id)

    def _write(  # noqa: PLR0911  # one return per refusal cause
        self, peer: str, pdu: ModbusPDU, address: int, values: list[int]
    ) -> ModbusPDU:
        if not 1 <= len(values) <= MAX_WRITE:
            return self._refuse_pdu(peer, "bad_count", pdu)
        if not self._is_mapped(address, len(values)):
            return self._refuse_pdu(peer, "unmapped", pdu)
        targets = []
        for offset, value in enumerate(values):
            found = writable_at(address + offset)
            if found is None:
                return self._refuse_pdu(peer, "read_only", pdu)
            targets.append((found[0].name, found[1], value))
        if not self.settings.allow_control:
            return self._refuse_pdu(peer, "control_off", pdu)
        for name, slot, value in targets:
            code = self._apply(name, slot, value)
            if code != "accepted":
                return self._refuse_pdu(peer, code, pdu)
        self.status.last_write = self.controller.clock.now()
        self._logged = {(p, c) for p, c in self._logged if p != peer}
        self._notify()
        if isinstance(pdu, WriteSingleRegisterRequest):
            return WriteSingleRegisterResponse(
                address=address,
                registers=values,
                dev_id=pdu.dev_id,
                transaction_id=pdu.transaction_id,
            )
        return WriteMultipleRegistersResponse(
            address=address, count=len(values), dev_id=pdu.dev_id, transaction_id=pdu.transaction_id
        )

    def _apply(self, name: str, slot: int, raw: int) -> str:
        """Apply one register write through the operating rules; returns the outcome's code."""
        control = self.controller
        if name == "bms_heartbeat":
            result = control.remote_heartbeat(SetpointSource.MODBUS)
            if result.accepted:
                self.image.heartbeat_value = raw
            return result.code
        # The zone's remote setpoint.
        zone_id = next((z for z, s in self.slots.zones.by_key.items() if s == slot), None)
        if zone_id is None or zone_id not in self.controller.load.zones:
            return "unknown_zone"
        value = int(decode([raw], RegisterFormat.INT16))
        if value == NOT_AVAILABLE[PointType.INT16]:
            code = control.clear_zone_setpoint(zone_id, source=SetpointSource.MODBUS).code
        elif value < 0:
            code = "out_of_range"
        else:
            code = control.set_zone_setpoint(zone_id, value / 10, source=SetpointSource.MODBUS).code
        if code not in SETPOINT_STATUS_CODES:
            code = "disabled"  # an unknown refusal reads as a refusal
        self.image.setpoint_status[zone_id] = code
        self.image.invalidate_zones()
        return code

    def _is_mapped(self, address: int, count: int) -> bool:
        end = address + count
        return any(start <= address and end <= stop for start, stop in self._mapped)

    def _refuse_pdu(self, peer: str, cause: str, pdu: ModbusPDU) -> ModbusPDU:
        return self._refuse(peer, cause, pdu.function_code, pdu.dev_id, pdu.transaction_id)

    def _refuse(
        self, peer: str, cause: str, function_code: int, dev_id: int, tid: int
    ) -> ModbusPDU:
        status = self.status
        status.refused += 1
        status.refused_by_cause[cause] = status.refused_by_cause.get(cause, 0) + 1
        self.image.refused_writes = status.refused
        if (peer, cause) not in self._logged:
            self._logged.add((peer, cause))
            _LOGGER.warning(
                "BMS client %s: request refused (%s, function %d); "
                "further refusals of this client for this cause are not logged",
                peer or "?",
                cause,
                function_code,
            )
        self._notify()
        return _Refusal(function_code, EXCEPTION_OF.get(cause, ILLEGAL_FUNCTION), dev_id, tid)

    # ------------------------------------------------------------------ point list
    def slot_labels(self) -> dict[str, dict[int, str]]:
        """What each slot in use holds (block name -> slot -> label), slots refreshed first."""
        self.image.refresh()
        zones = self.controller.load.zones
        zone_labels = {
            slot: f"{zones[z].name} ({z})" if z in zones else z
            for z, slot in self.slots.zones.by_key.items()
        }
        return {
            "zone": zone_labels,
            "zone_name": dict(zone_labels),
            "station": {slot: s for s, slot in self.slots.stations.by_key.items()},
            "connector": {slot: c for c, slot in self.slots.connectors.by_key.items()},
        }

    def point_list_csv(self) -> str:
        """Every register of the slots in use, named (the CSV a BMS integrator imports)."""
        return point_list_csv(self.slot_labels())

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict[str, Any]:
        """Settings, status and the slot table."""
        return {
            "settings": {
                "host": self.settings.host,
                "port": self.settings.port,
                "unit_ids": sorted(self.settings.unit_ids),
                "allowed_clients": sorted(self.settings.allowed_clients),
                "allow_control": self.settings.allow_control,
            },
            "status": {
                "listening": self.status.listening,
                "port": self.status.port,
                "clients": self.status.clients,
                "last_write": self.status.last_write.isoformat()
                if self.status.last_write
                else None,
                "refused": self.status.refused,
                "refused_by_cause": dict(self.status.refused_by_cause),
            },
            "slots": self.slots.to_dict(),
        }


def _intervals() -> list[tuple[int, int]]:
    """The mapped address ranges, adjacent blocks merged."""
    merged: list[tuple[int, int]] = []
    for block in sorted(BLOCKS, key=lambda b: b.start):
        if merged and merged[-1][1] == block.start:
            merged[-1] = (merged[-1][0], block.end)
        else:
            merged.append((block.start, block.end))
    return merged
