"""The BMS register map, as data: one table from which the server, the docs and the point list come.

Numbering: every address here is the 0-based PDU address a Modbus frame carries. The 6-digit
Modicon reference a BMS tool may show is address + 400001 (holding registers, function 03) or
address + 300001 (input registers, function 04); both functions read the same map. Tools that
number registers from 1 (mbpoll) take address + 1.

Blocks repeat per slot: the zone in slot `s` (1-based) starts at `ZONE.start + (s - 1) *
ZONE.stride`. Registers of a block that no point uses read 0 ("reserved"); addresses outside
every block are unmapped (exception 02, illegal data address).

Encoding: 16-bit values are two's complement (int16) or unsigned (uint16); currents are A x 10;
32-bit values (power W, energy Wh) take two registers, most significant word first; strings are
ASCII, two characters per register, first character in the high byte, padded with NUL.
"Not available" is 0x8000 (int16), 0xFFFF (uint16), 0x80000000 (int32), 0xFFFFFFFF (uint32).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ..model import ConnectorStatus

MAP_VERSION: Final = 1


class PointType(StrEnum):
    """How a point is encoded."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    ASCII = "ascii"


NOT_AVAILABLE: Final = {
    PointType.INT16: -0x8000,
    PointType.UINT16: 0xFFFF,
    PointType.INT32: -0x80000000,
    PointType.UINT32: 0xFFFFFFFF,
}
"""The raw value a register holds when the value is not available."""


class Access(StrEnum):
    """Whether a BMS may write the point."""

    READ = "R"
    READ_WRITE = "RW"


@dataclass(frozen=True, slots=True)
class Block:
    """A block of registers, repeated `slots` times every `stride` registers."""

    name: str
    start: int
    stride: int
    slots: int
    description: str

    @property
    def end(self) -> int:
        """First address after the last slot."""
        return self.start + self.stride * self.slots

    def slot_start(self, slot: int) -> int:
        """First address of a 1-based slot."""
        return self.start + (slot - 1) * self.stride


@dataclass(frozen=True, slots=True)
class Point:
    """One value in a block: its offset, encoding, unit, scale and access."""

    block: Block
    offset: int
    name: str
    type: PointType
    unit: str
    scale: int
    """The register holds value x scale (A x 10: scale 10)."""
    access: Access
    description: str
    size: int = 0
    """Registers taken; 0 = the type's own (1 for 16-bit, 2 for 32-bit)."""

    @property
    def registers(self) -> int:
        """Number of registers the point takes."""
        if self.size:
            return self.size
        return 2 if self.type in (PointType.INT32, PointType.UINT32) else 1

    def address(self, slot: int = 1) -> int:
        """0-based PDU address of the point in a 1-based slot."""
        return self.block.slot_start(slot) + self.offset


SITE = Block("site", 0, 100, 1, "The whole site; one block.")
ZONE = Block("zone", 1000, 40, 64, "One block per zone slot (a switchboard).")
ZONE_NAME = Block("zone_name", 4000, 32, 64, "Which zone a zone slot holds: name and id.")
STATION = Block("station", 7000, 28, 1000, "One block per station slot: identity and state.")
CONNECTOR = Block("connector", 35000, 20, 1500, "One block per connector slot.")
BLOCKS: Final = (SITE, ZONE, ZONE_NAME, STATION, CONNECTOR)

# Codes of the enumerated points; the numbers are part of the map (never renumber, only add).
STATUS_CODES: Final = {
    ConnectorStatus.UNKNOWN: 0,
    ConnectorStatus.AVAILABLE: 1,
    ConnectorStatus.PREPARING: 2,
    ConnectorStatus.CHARGING: 3,
    ConnectorStatus.SUSPENDED_EVSE: 4,
    ConnectorStatus.SUSPENDED_EV: 5,
    ConnectorStatus.FINISHING: 6,
    ConnectorStatus.RESERVED: 7,
    ConnectorStatus.UNAVAILABLE: 8,
    ConnectorStatus.FAULTED: 9,
}
REASON_CODES: Final = {
    None: 0,
    "allocated": 1,
    "capped_by_zone": 2,
    "suspended_priority": 3,
    "suspended_no_capacity": 4,
    "not_charging": 5,
    "below_minimum": 6,
    "uncontrolled": 7,
}
LIMITED_BY_CODES: Final = {
    "nominal": 0,
    "dynamic": 1,
    "meter_lost": 2,
    "tou": 3,
    "input": 4,
    "remote": 5,
}
MODE_CODES: Final = {"static": 0, "dynamic": 1}
SETPOINT_STATUS_CODES: Final = {
    "none": 0,
    "accepted": 1,
    "disabled": 2,
    "not_controlling_source": 3,
    "too_soon": 4,
    "out_of_range": 5,
    "unknown_zone": 6,
    "control_off": 7,
    "client_not_allowed": 8,
}
REMOTE_STATUS_BITS: Final = {
    "bms_control_allowed": 0,
    "remote_setpoint_enabled": 1,
    "modbus_is_source": 2,
    "heartbeat_lapsed": 3,
    "writes_accepted": 4,
}
CODE_TABLES: Final[dict[str, dict[str, int]]] = {
    "status": {str(k): v for k, v in STATUS_CODES.items()},
    "reason": {str(k or "none"): v for k, v in REASON_CODES.items()},
    "limited_by": dict(LIMITED_BY_CODES),
    "mode": dict(MODE_CODES),
    "setpoint_status": dict(SETPOINT_STATUS_CODES),
    "remote_control (bit)": dict(REMOTE_STATUS_BITS),
}

_R, _RW = Access.READ, Access.READ_WRITE
_I16, _U16, _I32, _U32, _STR = (
    PointType.INT16,
    PointType.UINT16,
    PointType.INT32,
    PointType.UINT32,
    PointType.ASCII,
)
_PHASES = ("l1", "l2", "l3")


def _phases(block: Block, offset: int, name: str, description: str) -> list[Point]:
    return [
        Point(block, offset + i, f"{name}_{p}", _I16, "A", 10, _R, f"{description}, {p.upper()}")
        for i, p in enumerate(_PHASES)
    ]


_STATUS_COUNTS = [
    Point(
        SITE,
        5 + code,
        f"connectors_{status.value}",
        _U16,
        "",
        1,
        _R,
        f"Connectors in status {status.value}",
    )
    for status, code in STATUS_CODES.items()
]

POINTS: Final[tuple[Point, ...]] = (
    # --- site
    Point(SITE, 0, "map_version", _U16, "", 1, _R, f"Version of this register map ({MAP_VERSION})"),
    Point(SITE, 1, "alive_counter", _U16, "s", 1, _R, "Seconds since the slave started, wraps"),
    Point(SITE, 2, "stations", _U16, "", 1, _R, "Stations accepted on the site"),
    Point(SITE, 3, "stations_online", _U16, "", 1, _R, "Stations connected now"),
    Point(SITE, 4, "connectors", _U16, "", 1, _R, "Connectors of the accepted stations"),
    *_STATUS_COUNTS,
    *_phases(SITE, 16, "current", "EV current measured, per grid phase"),
    Point(SITE, 19, "power", _I32, "W", 1, _R, "EV active power, all connectors"),
    Point(SITE, 21, "tou_period", _U16, "", 1, _R, "Time-of-use period: 0 none, n = n-th period"),
    Point(SITE, 22, "active_inputs", _U16, "", 1, _R, "Digital inputs active now"),
    Point(SITE, 23, "remote_control", _U16, "", 1, _R, "Remote control status bits"),
    Point(SITE, 24, "zone_slots_used", _U16, "", 1, _R, "Zone slots holding a zone"),
    Point(SITE, 25, "station_slots_used", _U16, "", 1, _R, "Station slots holding a station"),
    Point(SITE, 26, "connector_slots_used", _U16, "", 1, _R, "Connector slots in use"),
    Point(SITE, 27, "evs_charging", _U16, "", 1, _R, "EVs given current"),
    Point(SITE, 28, "evs_suspended", _U16, "", 1, _R, "EVs waiting for room"),
    Point(SITE, 29, "refused_writes", _U16, "", 1, _R, "Writes refused since start, wraps"),
    Point(
        SITE,
        40,
        "bms_heartbeat",
        _U16,
        "",
        1,
        _RW,
        "Write any value within the remote-setpoint heartbeat; reads the last value written",
    ),
    # --- zones
    Point(ZONE, 0, "in_use", _U16, "", 1, _R, "1 when the slot holds a zone"),
    Point(ZONE, 1, "parent_slot", _U16, "", 1, _R, "Slot of the parent zone; 0 for a root"),
    Point(ZONE, 2, "mode", _U16, "", 1, _R, "Mode code"),
    Point(ZONE, 3, "degraded", _U16, "", 1, _R, "1 while a dynamic zone runs degraded"),
    Point(ZONE, 4, "max_current", _I16, "A", 10, _R, "Switchboard maximum current per phase"),
    *_phases(ZONE, 5, "effective_limit", "Limit after the operating rules"),
    Point(ZONE, 8, "limited_by", _U16, "", 1, _R, "What sets the limit (limited_by code)"),
    *_phases(ZONE, 9, "budget", "Budget of the zone"),
    *_phases(ZONE, 12, "allocated", "Current given to EVs below the zone"),
    *_phases(ZONE, 15, "measured", "Meter current (dynamic zones)"),
    Point(ZONE, 18, "evs_charging", _U16, "", 1, _R, "EVs given current below the zone"),
    Point(ZONE, 19, "evs_suspended", _U16, "", 1, _R, "EVs waiting for room below the zone"),
    Point(
        ZONE,
        20,
        "remote_setpoint",
        _I16,
        "A",
        10,
        _RW,
        "Remote setpoint per phase; write 0x8000 to clear; reads 0x8000 when none",
    ),
    Point(ZONE, 21, "setpoint_status", _U16, "", 1, _R, "Result of the last setpoint write"),
    *_phases(ZONE, 22, "fixed", "Load of uncontrolled chargers below the zone"),
    # --- zone slot table
    Point(ZONE_NAME, 0, "zone_name", _STR, "", 1, _R, "Zone name, 32 characters", 16),
    Point(ZONE_NAME, 16, "zone_id", _STR, "", 1, _R, "Zone id, 32 characters", 16),
    # --- stations
    Point(STATION, 0, "in_use", _U16, "", 1, _R, "1 when the slot holds a station"),
    Point(STATION, 1, "online", _U16, "", 1, _R, "1 while connected"),
    Point(STATION, 2, "connector_count", _U16, "", 1, _R, "Connectors known"),
    Point(STATION, 3, "zone_slot", _U16, "", 1, _R, "Slot of its zone; 0 when unassigned"),
    Point(STATION, 4, "station_id", _STR, "", 1, _R, "Charge box identity, 48 characters", 24),
    # --- connectors
    Point(CONNECTOR, 0, "in_use", _U16, "", 1, _R, "1 when the slot holds a connector"),
    Point(CONNECTOR, 1, "station_slot", _U16, "", 1, _R, "Slot of its station"),
    Point(CONNECTOR, 2, "connector_id", _U16, "", 1, _R, "Connector number on the station"),
    Point(CONNECTOR, 3, "zone_slot", _U16, "", 1, _R, "Slot of its zone; 0 when unassigned"),
    Point(CONNECTOR, 4, "status", _U16, "", 1, _R, "Status code"),
    Point(CONNECTOR, 5, "online", _U16, "", 1, _R, "1 while its station is connected"),
    Point(CONNECTOR, 6, "fault", _U16, "", 1, _R, "1 when the charger reports an error code"),
    Point(CONNECTOR, 7, "reason", _U16, "", 1, _R, "Why it got its setpoint (reason code)"),
    Point(CONNECTOR, 8, "setpoint", _I16, "A", 10, _R, "Setpoint per phase at the last run"),
    Point(CONNECTOR, 9, "held", _I16, "A", 10, _R, "Limit the charger confirmed"),
    *_phases(CONNECTOR, 10, "current", "Current drawn, connector phase"),
    Point(CONNECTOR, 13, "power", _I32, "W", 1, _R, "Active power"),
    Point(CONNECTOR, 15, "session_energy", _U32, "Wh", 1, _R, "Energy of the running session"),
    Point(CONNECTOR, 17, "energy_register", _U32, "Wh", 1, _R, "Energy meter register"),
)


def points_of(block: Block) -> tuple[Point, ...]:
    """The points of a block, in address order."""
    return tuple(sorted((p for p in POINTS if p.block is block), key=lambda p: p.offset))


def block_at(address: int) -> Block | None:
    """The block whose slots cover `address`; None when unmapped."""
    for block in BLOCKS:
        if block.start <= address < block.end:
            return block
    return None


def writable_at(address: int) -> tuple[Point, int] | None:
    """The writable point at `address` and its slot; None when the register is read-only."""
    block = block_at(address)
    if block is None:
        return None
    slot, offset = divmod(address - block.start, block.stride)
    for point in points_of(block):
        if point.access is Access.READ_WRITE and point.offset == offset:
            return point, slot + 1
    return None
