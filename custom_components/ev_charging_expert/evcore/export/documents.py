"""State documents: what an exporter (MQTT) publishes per site, zone, station and connector.

Built from the Controller's views and the site's state only, as plain JSON-friendly dicts with
the unit in every field name (`_a` amperes, `_w` watts, `_wh` watt-hours); per-phase values are
`[L1, L2, L3]` lists on the grid's phases for zones and the connector's own phases for
connectors. No time stamp inside: a document changes only when the state does, so an exporter
can publish "on change" by comparing documents. Card identifiers (personal data) are never in a
document. `SCHEMAS` is the JSON Schema of each document (docs/mqtt.md shows them; a test checks
every built document against its schema).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..keys import ConnectorKey
from ..model import PHASES, ConnectorStatus, Registration

if TYPE_CHECKING:
    from ..controller import Controller
    from ..model import ConnectorState, StationState
    from ..view import ZoneView

SCHEMA_VERSION = 1
"""Bumped when a field changes meaning or goes away (new fields do not bump it)."""


def _phases(values: tuple[float, float, float] | None) -> list[float] | None:
    return None if values is None else [round(v, 2) for v in values]


def _opt(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def site_document(controller: Controller) -> dict[str, Any]:
    """Counts of stations and connectors by state, and the EVs' current per grid phase."""
    site = controller.site
    stations = [s for s in site.stations.values() if s.registration is Registration.ACCEPTED]
    by_status = {status.value: 0 for status in ConnectorStatus}
    for station in stations:
        for connector in station.charge_points:
            by_status[connector.status.value] += 1
    zones = controller.zone_views()
    roots = [z for z in zones.values() if z.parent_id is None]
    allocated = [0.0, 0.0, 0.0]
    charging = suspended = 0
    for zone in roots:
        allocated = [a + b for a, b in zip(allocated, zone.allocated, strict=True)]
        charging += zone.charging
        suspended += zone.suspended
    power = sum(
        c.power_w or 0.0
        for s in stations
        if s.connected
        for c in s.charge_points
        if c.status is ConnectorStatus.CHARGING
    )
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "stations_total": len(stations),
        "stations_connected": sum(s.connected for s in stations),
        "connectors_by_status": by_status,
        "evs_charging": charging,
        "evs_suspended": suspended,
        "allocated_a": _phases((allocated[0], allocated[1], allocated[2])),
        "power_w": round(power, 1),
        "zones": sorted(zones),
        "rules": controller.rules_view().to_dict(),
    }
    return document


def zone_document(view: ZoneView) -> dict[str, Any]:
    """A zone (switchboard) as the last allocation run saw it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "zone_id": view.zone_id,
        "name": view.name,
        "parent_id": view.parent_id,
        "mode": view.mode.value,
        "max_current_a": view.max_current,
        "degraded_setpoint_a": view.degraded_setpoint,
        "budget_a": _phases(view.budget),
        "effective_limit_a": _phases(view.effective_limit),
        "limited_by": view.limited_by,
        "remote_setpoint_a": _opt(view.remote_setpoint),
        "allocated_a": _phases(view.allocated),
        "fixed_a": _phases(view.fixed),
        "measured_a": _phases(view.measured),
        "building_a": _phases(view.building),
        "evs_charging": view.charging,
        "evs_suspended": view.suspended,
        "degraded": view.degraded,
        "degraded_problem": view.degraded_problem,
    }


def station_document(controller: Controller, station: StationState) -> dict[str, Any]:
    """A charger: identity, connection, zone and how load management holds it."""
    load = controller.station_load(station.station_id)
    boot = station.boot
    return {
        "schema_version": SCHEMA_VERSION,
        "station_id": station.station_id,
        "name": station.config.display_name,
        "zone_id": station.config.zone_id,
        "connected": station.connected,
        "vendor": boot.vendor if boot else None,
        "model": boot.model if boot else None,
        "firmware_version": boot.firmware_version if boot else None,
        "last_heartbeat": station.last_heartbeat.isoformat() if station.last_heartbeat else None,
        "control": load.control.value if load else None,
        "degraded_current_a": _opt(load.degraded_current if load else None),
        "connectors": [c.connector_id for c in station.charge_points],
    }


def connector_document(
    controller: Controller, station: StationState, connector: ConnectorState
) -> dict[str, Any]:
    """A connector: status, what it draws, its session and what load management gives it."""
    allocation = controller.allocation(ConnectorKey(station.station_id, connector.connector_id))
    settings = station.config.connector(connector.connector_id)
    transaction = connector.transaction
    currents = [connector.current(phase) for phase in PHASES]
    return {
        "schema_version": SCHEMA_VERSION,
        "station_id": station.station_id,
        "connector_id": connector.connector_id,
        "status": connector.status.value,
        "error_code": connector.error_code,
        "online": station.connected,
        "current_a": None if all(c is None for c in currents) else [_opt(c) for c in currents],
        "power_w": _opt(connector.power_w, 1),
        "energy_register_wh": _opt(connector.energy_wh, 1),
        "session": None
        if transaction is None
        else {
            "transaction_id": transaction.transaction_id,
            "started_at": transaction.started_at.isoformat(),
            "energy_wh": _opt(transaction.energy_wh(), 1),
        },
        "setpoint_a": _opt(allocation.setpoint if allocation else None),
        "held_a": _opt(allocation.held if allocation else None),
        "reason": allocation.reason.value if allocation and allocation.reason else None,
        "limited_by": allocation.limited_by if allocation else None,
        "rating_a": settings.rating,
        "user_limit_a": settings.user_limit,
        "paused": settings.paused,
    }


# ---------------------------------------------------------------------- JSON Schemas
_NUM = {"type": "number"}
_OPT_NUM = {"type": ["number", "null"]}
_OPT_STR = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_PHASES = {"type": "array", "items": _NUM, "minItems": 3, "maxItems": 3}
_OPT_PHASES = {"type": ["array", "null"], "items": _NUM, "minItems": 3, "maxItems": 3}
_VERSION = {"const": SCHEMA_VERSION}


def _object(properties: dict[str, Any], title: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": True,  # new fields may appear without a version bump
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "site": _object(
        {
            "schema_version": _VERSION,
            "stations_total": _COUNT,
            "stations_connected": _COUNT,
            "connectors_by_status": {
                "type": "object",
                "properties": {s.value: _COUNT for s in ConnectorStatus},
                "additionalProperties": _COUNT,
            },
            "evs_charging": _COUNT,
            "evs_suspended": _COUNT,
            "allocated_a": _PHASES,
            "power_w": _NUM,
            "zones": {"type": "array", "items": {"type": "string"}},
            "rules": {
                "description": "Operating rules: remote setpoints, time-of-use, inputs.",
                "type": "object",
                "properties": {
                    "remote_enabled": {"type": "boolean"},
                    "remote_source": {"enum": ["ha", "modbus", "mqtt"]},
                    "heartbeat_lapsed": {"type": "boolean"},
                    "setpoints": {"type": "object", "additionalProperties": _NUM},
                    "tou_enabled": {"type": "boolean"},
                    "tou_period": _OPT_STR,
                    "active_inputs": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["remote_enabled", "remote_source", "heartbeat_lapsed", "setpoints"],
            },
        },
        "Site state",
    ),
    "zone": _object(
        {
            "schema_version": _VERSION,
            "zone_id": {"type": "string"},
            "name": {"type": "string"},
            "parent_id": _OPT_STR,
            "mode": {"enum": ["static", "dynamic"]},
            "max_current_a": _NUM,
            "degraded_setpoint_a": _NUM,
            "budget_a": _PHASES,
            "effective_limit_a": _PHASES,
            "limited_by": {
                "description": "nominal, dynamic, meter_lost, tou:<period>, input:<name>, remote",
                "type": "string",
            },
            "remote_setpoint_a": _OPT_NUM,
            "allocated_a": _PHASES,
            "fixed_a": _PHASES,
            "measured_a": _OPT_PHASES,
            "building_a": _OPT_PHASES,
            "evs_charging": _COUNT,
            "evs_suspended": _COUNT,
            "degraded": {"type": "boolean"},
            "degraded_problem": _OPT_STR,
        },
        "Zone state",
    ),
    "station": _object(
        {
            "schema_version": _VERSION,
            "station_id": {"type": "string"},
            "name": _OPT_STR,
            "zone_id": _OPT_STR,
            "connected": {"type": "boolean"},
            "vendor": _OPT_STR,
            "model": _OPT_STR,
            "firmware_version": _OPT_STR,
            "last_heartbeat": {"type": ["string", "null"], "format": "date-time"},
            "control": {
                "enum": ["unknown", "controlled", "no_smart_charging", "rejected", None],
            },
            "degraded_current_a": _OPT_NUM,
            "connectors": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        },
        "Station state",
    ),
    "connector": _object(
        {
            "schema_version": _VERSION,
            "station_id": {"type": "string"},
            "connector_id": {"type": "integer", "minimum": 1},
            "status": {"enum": [s.value for s in ConnectorStatus]},
            "error_code": {"type": "string"},
            "online": {"type": "boolean"},
            "current_a": {
                "type": ["array", "null"],
                "items": _OPT_NUM,
                "minItems": 3,
                "maxItems": 3,
            },
            "power_w": _OPT_NUM,
            "energy_register_wh": _OPT_NUM,
            "session": {
                "type": ["object", "null"],
                "properties": {
                    "transaction_id": {"type": "integer"},
                    "started_at": {"type": "string", "format": "date-time"},
                    "energy_wh": _OPT_NUM,
                },
                "required": ["transaction_id", "started_at", "energy_wh"],
            },
            "setpoint_a": _OPT_NUM,
            "held_a": _OPT_NUM,
            "reason": _OPT_STR,
            "limited_by": _OPT_STR,
            "rating_a": _NUM,
            "user_limit_a": _OPT_NUM,
            "paused": {"type": "boolean"},
        },
        "Connector state",
    ),
}
