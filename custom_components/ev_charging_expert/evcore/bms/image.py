"""The register image: the map's values, computed from the Controller's views on demand.

Blocks are rebuilt when read after an event touched them (a MeterValues marks one connector,
an allocation run its zones and connectors), so a BMS polling every second costs the blocks
that changed, not the whole site.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pymodbus.client.mixin import ModbusClientMixin

from ..allocation.phases import Wiring
from ..events import AllocationUpdated, MeterUpdated, StationUpdated
from ..modbus.codec import RegisterFormat, encode
from ..model import PHASES, ConnectorStatus, Registration
from ..rules import SetpointSource
from .registers import (
    BLOCKS,
    CONNECTOR,
    LIMITED_BY_CODES,
    MAP_VERSION,
    MODE_CODES,
    NOT_AVAILABLE,
    REASON_CODES,
    REMOTE_STATUS_BITS,
    SETPOINT_STATUS_CODES,
    SITE,
    STATION,
    STATUS_CODES,
    ZONE,
    ZONE_NAME,
    Block,
    Point,
    PointType,
    points_of,
)
from .slots import SlotTable, connector_key

if TYPE_CHECKING:
    from ..controller import Controller
    from ..events import ControllerEvent
    from ..model import ConnectorState, StationState

ADDRESS_SPACE = 0x10000
_FORMATS = {
    PointType.INT16: RegisterFormat.INT16,
    PointType.UINT16: RegisterFormat.UINT16,
    PointType.INT32: RegisterFormat.INT32,
    PointType.UINT32: RegisterFormat.UINT32,
}
_SINGLE = frozenset({PointType.INT16, PointType.UINT16})
_LIMITS = {
    PointType.INT16: (-0x7FFF, 0x7FFF),
    PointType.UINT16: (0, 0xFFFE),
    PointType.INT32: (-0x7FFFFFFF, 0x7FFFFFFF),
    PointType.UINT32: (0, 0xFFFFFFFE),
}


def encode_point(point: Point, value: Any) -> list[int]:
    """The registers of `point` holding `value` (None = not available; clamped to the type)."""
    if point.type is PointType.ASCII:
        text = str(value or "").encode("ascii", "replace")[: point.registers * 2]
        text = text.ljust(point.registers * 2, b"\0")
        return ModbusClientMixin.convert_to_registers(
            text.decode("ascii"), ModbusClientMixin.DATATYPE.STRING
        )
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raw = NOT_AVAILABLE[point.type]
    else:
        low, high = _LIMITS[point.type]
        raw = min(max(round(value * point.scale), low), high)
    if point.type in _SINGLE:
        return [raw & 0xFFFF]  # one register: two's complement is all there is to it
    return encode(raw, _FORMATS[point.type])


class RegisterImage:
    """Every served register, kept up to date lazily from the Controller."""

    def __init__(self, controller: Controller, slots: SlotTable) -> None:
        self.controller = controller
        self.slots = slots
        self.registers = [0] * ADDRESS_SPACE
        self.heartbeat_value = 0
        self.refused_writes = 0
        self.setpoint_status: dict[str, str] = {}
        """Per zone id: the code of the last setpoint write."""
        self.bms_control_allowed = False
        self.started_at = controller.clock.monotonic()
        self._dirty_zones = True
        self._dirty_stations: set[str] | None = None
        """Station ids to rebuild; None = all of them."""
        self._dirty_connectors: set[str] | None = None
        """Connector keys to rebuild; None = all of them."""
        self._slots_dirty = True
        self._dirty_site = True
        """The site's totals (a walk over every station) are recomputed only after a change."""
        self._points = {block.name: points_of(block) for block in BLOCKS}
        self._live = [p for p in self._points[SITE.name] if p.name in _LIVE_SITE_POINTS]

    # ------------------------------------------------------------------ invalidation
    def on_event(self, event: ControllerEvent) -> None:
        """Mark what `event` changed."""
        self._dirty_site = True
        match event:
            case StationUpdated(station_id=sid, connector_id=cid) if cid:
                key = connector_key(sid, cid)
                self._mark_connector(key)
                if self.slots.connectors.slot(key) is None:
                    self._slots_dirty = True
                self._mark_station(sid)
            case AllocationUpdated():
                self._dirty_zones = True
                for ckey in event.connectors:
                    self._mark_connector(connector_key(ckey.station_id, ckey.connector_id))
            case MeterUpdated():
                self._dirty_zones = True
            case _ if isinstance(station_id := getattr(event, "station_id", None), str):
                # Station-level news (added, removed, configured, booted...): its slots,
                # its block and its connectors.
                self._slots_dirty = True
                self._mark_station(station_id)
                station = self.controller.site.stations.get(station_id)
                for connector in station.charge_points if station else ():
                    self._mark_connector(connector_key(station_id, connector.connector_id))
            case _:
                self.invalidate()

    def invalidate(self) -> None:
        """Rebuild everything at the next read (slots included)."""
        self._slots_dirty = self._dirty_zones = self._dirty_site = True
        self._dirty_connectors = self._dirty_stations = None

    def invalidate_zones(self) -> None:
        """Rebuild the zone blocks at the next read (a setpoint was written)."""
        self._dirty_zones = True

    def _mark_station(self, station_id: str) -> None:
        if self._dirty_stations is not None:
            self._dirty_stations.add(station_id)

    def _mark_connector(self, key: str) -> None:
        if self._dirty_connectors is not None:
            self._dirty_connectors.add(key)

    # ------------------------------------------------------------------ reading
    def read(self, address: int, count: int) -> list[int]:
        """Registers `address`..`address + count - 1`, the blocks they cover refreshed first."""
        end = address + count
        self.refresh(
            site=address < SITE.end,
            zones=address < ZONE_NAME.end and end > ZONE.start,
            stations=address < STATION.end and end > STATION.start,
            connectors=end > CONNECTOR.start,
        )
        return self.registers[address:end]

    def refresh(
        self,
        *,
        site: bool = True,
        zones: bool = True,
        stations: bool = True,
        connectors: bool = True,
    ) -> None:
        """Rebuild what changed since the last read (of the blocks asked for).

        The site block has a clock (the alive counter): it is written at every read of it.
        """
        # The zone tree changes without an event of its own: compare (a few dozen keys).
        if self._slots_dirty or self._zones_moved():
            self._sync_slots()
        if zones and self._dirty_zones:
            self._dirty_zones = False
            self._write_zones()
        if stations and self._dirty_stations != set():
            dirty_stations, self._dirty_stations = self._dirty_stations, set()
            self._write_stations(dirty_stations)
        if connectors and self._dirty_connectors != set():
            dirty, self._dirty_connectors = self._dirty_connectors, set()
            self._write_connectors(dirty)
        if not site:
            return
        if self._dirty_site:
            self._dirty_site = False
            self._write_site()
        else:
            self._write_live()

    def _zones_moved(self) -> bool:
        zones = self.controller.load.zones
        return zones.keys() != self.slots.zones.by_key.keys() and not (
            len(self.slots.zones.by_key) == self.slots.zones.capacity
            and self.slots.zones.by_key.keys() <= zones.keys()
        )

    def _sync_slots(self) -> None:
        self._slots_dirty = False
        site = self.controller.site
        accepted = [sid for sid, s in site.stations.items() if s.registration is _ACCEPTED]
        changed = self.slots.sync(
            zones=self.controller.load.zones,
            stations=accepted,
            connectors=[
                connector_key(sid, c.connector_id)
                for sid in accepted
                for c in site.stations[sid].charge_points
            ],
        )
        if changed:
            self._dirty_zones = self._dirty_site = True
            self._dirty_connectors = self._dirty_stations = None

    # ------------------------------------------------------------------ blocks
    def _write(self, block: Block, slot: int, values: dict[str, Any]) -> None:
        start = block.slot_start(slot)
        regs = self.registers
        regs[start : start + block.stride] = [0] * block.stride
        for point in self._points[block.name]:
            address = start + point.offset
            words = encode_point(point, values.get(point.name))
            regs[address : address + len(words)] = words

    def _clear(self, block: Block, used: set[int]) -> None:
        for slot in range(1, block.slots + 1):
            start = block.slot_start(slot)
            if slot not in used and self.registers[start]:
                self.registers[start : start + block.stride] = [0] * block.stride

    def _live_values(self) -> dict[str, Any]:
        """What changes without an event: the clock, the slave's own counters, the rules."""
        return {
            "alive_counter": int(self.controller.clock.monotonic() - self.started_at) % 0x10000,
            "refused_writes": self.refused_writes % 0x10000,
            "bms_heartbeat": self.heartbeat_value,
            **self._rules_values(),
        }

    def _write_live(self) -> None:
        values = self._live_values()
        start = SITE.start
        for point in self._live:
            words = encode_point(point, values.get(point.name))
            self.registers[start + point.offset : start + point.offset + len(words)] = words

    def _write_site(self) -> None:
        site = self.controller.site
        values: dict[str, Any] = {
            "map_version": MAP_VERSION,
            **self._live_values(),
            "zone_slots_used": len(self.slots.zones.by_key),
            "station_slots_used": len(self.slots.stations.by_key),
            "connector_slots_used": len(self.slots.connectors.by_key),
        }
        counts = dict.fromkeys(ConnectorStatus, 0)
        current = [0.0, 0.0, 0.0]
        power = 0.0
        stations = online = connectors = 0
        for station in site.stations.values():
            if station.registration is not _ACCEPTED:
                continue
            stations += 1
            online += station.connected
            for connector in station.charge_points:
                connectors += 1
                counts[connector.status] += 1
                power += connector.power_w or 0.0
                _add_grid_currents(station, connector, current)
        values |= {
            "stations": stations,
            "stations_online": online,
            "connectors": connectors,
            "power": power,
            **{f"connectors_{status.value}": n for status, n in counts.items()},
            **{f"current_l{i + 1}": current[i] for i in range(3)},
        }
        roots = [v for v in self.controller.zone_views().values() if v.parent_id is None]
        values["evs_charging"] = sum(v.charging for v in roots)
        values["evs_suspended"] = sum(v.suspended for v in roots)
        self._write(SITE, 1, values)

    def _rules_values(self) -> dict[str, Any]:
        bits = 1 << REMOTE_STATUS_BITS["bms_control_allowed"] if self.bms_control_allowed else 0
        view = self.controller.rules_view()
        is_source = view.remote_source == SetpointSource.MODBUS
        flags = {
            "remote_setpoint_enabled": view.remote_enabled,
            "modbus_is_source": is_source,
            "heartbeat_lapsed": view.heartbeat_lapsed,
            "writes_accepted": (self.bms_control_allowed and view.remote_enabled and is_source),
        }
        for name, on in flags.items():
            if on:
                bits |= 1 << REMOTE_STATUS_BITS[name]
        tou = 0
        if view.tou_period is not None:
            periods = list(self.controller.tou.periods())
            tou = periods.index(view.tou_period) + 1 if view.tou_period in periods else 0
        return {
            "remote_control": bits,
            "tou_period": tou,
            "active_inputs": len(view.active_inputs),
        }

    def _write_zones(self) -> None:
        views = self.controller.zone_views()
        zones = self.controller.load.zones
        used: set[int] = set()
        for zone_id, slot in self.slots.zones.by_key.items():
            config = zones.get(zone_id)
            if config is None:
                continue
            used.add(slot)
            parent = self.slots.zones.slot(config.parent_id) if config.parent_id else None
            values: dict[str, Any] = {
                "in_use": 1,
                "parent_slot": parent or 0,
                "mode": MODE_CODES.get(str(config.mode), 0),
                "max_current": config.max_current,
                "setpoint_status": SETPOINT_STATUS_CODES.get(
                    self.setpoint_status.get(zone_id, "none"), 0
                ),
                "remote_setpoint": None,
            }
            view = views.get(zone_id)
            if view is not None:
                limit = view.effective_limit
                limited_by = view.limited_by.split(":", 1)[0]
                values |= {
                    "degraded": int(view.degraded),
                    "limited_by": LIMITED_BY_CODES.get(limited_by, 0),
                    "evs_charging": view.charging,
                    "evs_suspended": view.suspended,
                    "remote_setpoint": view.remote_setpoint,
                }
                for name, phases in (
                    ("effective_limit", limit),
                    ("budget", view.budget),
                    ("allocated", view.allocated),
                    ("measured", view.measured),
                    ("fixed", view.fixed),
                ):
                    for i in range(3):
                        values[f"{name}_l{i + 1}"] = None if phases is None else phases[i]
            self._write(ZONE, slot, values)
            self._write(ZONE_NAME, slot, {"zone_name": config.name, "zone_id": zone_id})
        self._clear(ZONE, used)
        self._clear_names(used)

    def _clear_names(self, used: set[int]) -> None:
        for slot in range(1, ZONE_NAME.slots + 1):
            if slot not in used:
                start = ZONE_NAME.slot_start(slot)
                if any(self.registers[start : start + ZONE_NAME.stride]):
                    self.registers[start : start + ZONE_NAME.stride] = [0] * ZONE_NAME.stride

    def _write_stations(self, ids: set[str] | None) -> None:
        stations = self.controller.site.stations
        by_key = self.slots.stations.by_key
        if ids is None:
            self._clear(STATION, set(by_key.values()))
            ids = set(by_key)
        for station_id in ids:
            slot = by_key.get(station_id)
            station = stations.get(station_id)
            if slot is None or station is None:
                continue
            zone_slot = self.slots.zones.slot(station.config.zone_id or "")
            self._write(
                STATION,
                slot,
                {
                    "in_use": 1,
                    "online": int(station.connected),
                    "connector_count": len(station.charge_points),
                    "zone_slot": zone_slot or 0,
                    "station_id": station_id,
                },
            )

    def _write_connectors(self, keys: set[str] | None) -> None:
        by_key = self.slots.connectors.by_key
        if keys is None:
            self._clear(CONNECTOR, set(by_key.values()))
            keys = set(by_key)
        stations = self.controller.site.stations
        for key in keys:
            slot = by_key.get(key)
            if slot is None:
                continue
            station_id, _, number = key.rpartition("/")
            station = stations.get(station_id)
            connector = station.connectors.get(int(number)) if station else None
            if station is None or connector is None:
                continue
            self._write(CONNECTOR, slot, self._connector_values(station, connector))

    def _connector_values(self, station: StationState, connector: ConnectorState) -> dict[str, Any]:
        from ..keys import ConnectorKey  # noqa: PLC0415  # a tiny import, cached

        zone_slot = self.slots.zones.slot(station.config.zone_id or "")
        allocation = self.controller.allocation(
            ConnectorKey(station.station_id, connector.connector_id)
        )
        reason = allocation.reason if allocation else None
        return {
            "in_use": 1,
            "station_slot": self.slots.stations.slot(station.station_id) or 0,
            "connector_id": connector.connector_id,
            "zone_slot": zone_slot or 0,
            "status": STATUS_CODES.get(connector.status, 0),
            "online": int(station.connected),
            "fault": int(connector.error_code not in ("NoError", "")),
            "reason": REASON_CODES.get(None if reason is None else str(reason), 0),
            "setpoint": allocation.setpoint if allocation else None,
            "held": allocation.held if allocation else None,
            "current_l1": connector.current("L1"),
            "current_l2": connector.current("L2"),
            "current_l3": connector.current("L3"),
            "power": connector.power_w,
            "session_energy": connector.session_energy_wh,
            "energy_register": connector.energy_wh,
        }


_ACCEPTED = Registration.ACCEPTED
_LIVE_SITE_POINTS = frozenset(
    {
        "alive_counter",
        "refused_writes",
        "bms_heartbeat",
        "remote_control",
        "tou_period",
        "active_inputs",
    }
)


def _add_grid_currents(station: StationState, connector: ConnectorState, out: list[float]) -> None:
    wiring = station.config.connector(connector.connector_id).wiring
    for number, phase in enumerate(PHASES, start=1):
        value = connector.current(phase)
        if value is None:
            continue
        if not wiring.three_phase and number != 1:
            continue
        out[Wiring(wiring).grid_phase(number) - 1] += value
