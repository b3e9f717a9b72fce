"""Constants of the EV Charging Expert integration."""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

from .evcore.allocation.model import Reason

DOMAIN: Final = "ev_charging_expert"

CONF_NEW_CHARGER_POLICY: Final = "new_charger_policy"
CONF_HEARTBEAT_INTERVAL: Final = "heartbeat_interval"
CONF_SSL_CERTFILE: Final = "ssl_certfile"
CONF_SSL_KEYFILE: Final = "ssl_keyfile"

DEFAULT_HOST: Final = "0.0.0.0"  # noqa: S104  # chargers reach HA over the site's LAN
DEFAULT_PORT: Final = 9000
DEFAULT_HEARTBEAT_INTERVAL: Final = 300

# HA bus events.
EVENT_CARD_PRESENTED: Final = f"{DOMAIN}_card_presented"
EVENT_SESSION_STARTED: Final = f"{DOMAIN}_session_started"
EVENT_SESSION_ENDED: Final = f"{DOMAIN}_session_ended"

ISSUE_PENDING_CHARGER: Final = "pending_charger"


def signal_station(entry_id: str, station_id: str) -> str:
    """Dispatcher signal for changes of a station as a whole (connectivity, boot...)."""
    return f"{DOMAIN}_{entry_id}_station_{station_id}"


def signal_connector(entry_id: str, station_id: str, connector_id: int) -> str:
    """Dispatcher signal for changes of one connector (status, meter values...)."""
    return f"{DOMAIN}_{entry_id}_connector_{station_id}_{connector_id}"


def signal_new_station(entry_id: str) -> str:
    """Dispatcher signal: a station needs entities."""
    return f"{DOMAIN}_{entry_id}_new_station"


def signal_new_connector(entry_id: str) -> str:
    """Dispatcher signal: a connector needs entities."""
    return f"{DOMAIN}_{entry_id}_new_connector"


# A charge box identity is free text. Inside HA identifiers it is written with '%', '#' and '_'
# percent-encoded: '#' separates a connector and '_' a key (and starts "zone_"/"meter_"), so no
# identity can produce another station's, a connector's, a zone's or a meter's identifier.
_STATION_ESCAPES = str.maketrans({"%": "%25", "#": "%23", "_": "%5F"})


def station_ref(station_id: str) -> str:
    """A station's identity as written in device identifiers and unique ids."""
    return station_id.translate(_STATION_ESCAPES)


def station_device_id(station_id: str) -> tuple[str, str]:
    """Device registry identifier of a station."""
    return (DOMAIN, station_ref(station_id))


def connector_device_id(station_id: str, connector_id: int) -> tuple[str, str]:
    """Device registry identifier of a connector."""
    return (DOMAIN, f"{station_ref(station_id)}#{connector_id}")


def station_unique_id(station_id: str, key: str) -> str:
    """Unique id of a station's entity."""
    return f"{station_ref(station_id)}_{key}"


def connector_unique_id(station_id: str, connector_id: int, key: str) -> str:
    """Unique id of a connector's entity."""
    return f"{station_ref(station_id)}_{connector_id}_{key}"


def parse_device_identifier(identifier: str) -> tuple[str, int | None] | None:
    """The station (and connector) a device identifier names; None for other devices."""
    ref, separator, connector = identifier.partition("#")
    if "_" in ref or (separator and not connector.isdecimal()):
        return None  # a zone's or a meter's device, or not ours
    return unquote(ref), int(connector) if separator else None


# Load management.
SUBENTRY_ZONE: Final = "zone"
CONF_ZONE_NAME: Final = "name"
CONF_PARENT: Final = "parent_id"
CONF_MAX_CURRENT: Final = "max_current"
CONF_MODE: Final = "mode"
CONF_DEGRADED_SETPOINT: Final = "degraded_setpoint"
NO_PARENT: Final = "none"

CONF_MINIMUM_STANDARD: Final = "minimum_standard"
CONF_SHED_PRIORITY: Final = "shed_priority"
CONF_REEVALUATION_MINUTES: Final = "reevaluation_minutes"
CONF_NOMINAL_VOLTAGE: Final = "nominal_voltage"
CONF_SAFETY_MARGIN: Final = "safety_margin"
DEFAULT_SAFETY_MARGIN: Final = 1.0
CONF_CONSUMPTION_OPTIMISATION: Final = "consumption_optimisation"
DEFAULT_REEVALUATION_MINUTES: Final = 15
DEFAULT_NOMINAL_VOLTAGE: Final = 230

ISSUE_UNASSIGNED: Final = "unassigned_stations"
ISSUE_UNCONTROLLABLE: Final = "uncontrollable_charger"
ISSUE_ORPHAN_ZONE: Final = "orphan_zone"
ISSUE_DEGRADED_ZERO: Final = "degraded_zero"
ISSUE_NEGATIVE_BUILDING: Final = "negative_building_load"

# A station in no zone: the zone select's option, a name no zone may take.
UNASSIGNED: Final = "unassigned"
# The allocation reasons that count an EV as suspended (held at 0 A for others).
SUSPENDED_REASONS: Final = frozenset({Reason.SUSPENDED_PRIORITY, Reason.SUSPENDED_NO_CAPACITY})


def signal_zone(entry_id: str, zone_id: str) -> str:
    """Dispatcher signal: a zone's budget or allocation changed."""
    return f"{DOMAIN}_{entry_id}_zone_{zone_id}"


def signal_new_zone(entry_id: str) -> str:
    """Dispatcher signal: a zone needs entities."""
    return f"{DOMAIN}_{entry_id}_new_zone"


def zone_device_id(zone_id: str) -> tuple[str, str]:
    """Device registry identifier of a zone (its subentry id)."""
    return (DOMAIN, f"zone_{zone_id}")


# Power meters.
SUBENTRY_METER: Final = "meter"
SUBENTRY_METER_MODEL: Final = "meter_model"
CONF_METER: Final = "meter_id"  # in a zone's data: the meter that drives it
NO_METER: Final = "none"
CONF_METER_KIND: Final = "kind"
METER_KIND_MODBUS: Final = "modbus"
METER_KIND_HA_SENSORS: Final = "ha_sensors"
CONF_REPORTING_ONLY: Final = "reporting_only"
# HA-sensor meters.
CONF_CURRENTS: Final = ("current_l1", "current_l2", "current_l3")
CONF_POWERS: Final = ("power_l1", "power_l2", "power_l3")
CONF_VOLTAGE: Final = "voltage"
CONF_POWER_TOTAL: Final = "power_total"
CONF_ENERGY: Final = "energy"
CONF_MAX_AGE: Final = "max_age"
MIN_MAX_AGE: Final = 1.0
MAX_MAX_AGE: Final = 3600.0
MIN_VOLTAGE: Final = 100.0
MAX_VOLTAGE: Final = 300.0

ISSUE_ZONE_WITHOUT_METER: Final = "zone_without_meter"
ISSUE_METER_INVALID: Final = "meter_invalid"

METER_DISPLAY_INTERVAL: Final = 5.0
"""s. Meters are polled every 0.5 s for load management; their entities show at most one new
value per meter this often (state changes at once), so the recorder is not flooded."""

# Entities every meter has; "power" and "energy" exist only when the meter reports them.
METER_BASE_ENTITIES: Final = frozenset(
    {"current_l1", "current_l2", "current_l3", "connection", "last_read"}
)


def signal_meter(entry_id: str, meter_id: str) -> str:
    """Dispatcher signal: a meter's reading or state changed."""
    return f"{DOMAIN}_{entry_id}_meter_{meter_id}"


def signal_new_meter(entry_id: str) -> str:
    """Dispatcher signal: a meter needs (more) entities."""
    return f"{DOMAIN}_{entry_id}_new_meter"


def meter_device_id(meter_id: str) -> tuple[str, str]:
    """Device registry identifier of a meter (its subentry id)."""
    return (DOMAIN, f"meter_{meter_id}")


# Meter subentries: Modbus fields, and the sections of the HA-sensor form.
CONF_PROTOCOL: Final = "protocol"
CONF_SLAVE_ID: Final = "slave_id"
CONF_MODEL: Final = "model"
CONF_POLLING_PERIOD: Final = "polling_period"
CONF_TIMEOUT: Final = "timeout"
CONF_SERIAL: Final = "serial"
CONF_SERIAL_PORT: Final = "serial_port"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
SECTION_CURRENTS: Final = "currents"
SECTION_POWERS: Final = "powers"
SECTION_TOTALS: Final = "totals"

# Meter model subentries: one section per quantity, with these fields.
CONF_NUMBERING: Final = "numbering"
CONF_MAX_GAP: Final = "max_gap"
CONF_ADDRESS: Final = "address"
CONF_FORMAT: Final = "format"
CONF_WORD_ORDER: Final = "word_order"
CONF_REGISTER_TYPE: Final = "register_type"
CONF_SCALE: Final = "scale"
CONF_INVALID: Final = "invalid"

# Operating rules (issue 11): time-of-use periods and digital inputs are subentries; the TOU
# switch and the remote-setpoint settings are options.
SUBENTRY_TOU_PERIOD: Final = "tou_period"
SUBENTRY_DIGITAL_INPUT: Final = "digital_input"
CONF_PERIOD_NAME: Final = "name"
CONF_PERCENT: Final = "percent"
CONF_SLOTS: Final = "slots"
CONF_SOURCE_ENTITY: Final = "source_entity"
CONF_EXCLUDED_ZONES: Final = "excluded_zones"
CONF_INPUT_NAME: Final = "name"
CONF_INPUT_ENTITY: Final = "entity_id"
CONF_INPUT_ENABLED: Final = "enabled"
CONF_TOU_ENABLED: Final = "tou_enabled"
CONF_REMOTE_ENABLED: Final = "remote_enabled"
CONF_REMOTE_SOURCE: Final = "remote_source"
CONF_REMOTE_MIN_PERIOD: Final = "remote_min_period"
CONF_REMOTE_HEARTBEAT: Final = "remote_heartbeat"
CONF_REMOTE_FALLBACK: Final = "remote_fallback"
EVENT_TOU_PERIOD_CHANGED: Final = f"{DOMAIN}_tou_period_changed"
EVENT_REMOTE_SETPOINT_LAPSED: Final = f"{DOMAIN}_remote_setpoint_lapsed"
ISSUE_INPUT_UNAVAILABLE: Final = "digital_input_unavailable"
ISSUE_REMOTE_LAPSED: Final = "remote_setpoint_lapsed"
ISSUE_RULES_INVALID: Final = "rules_invalid"


def signal_rules(entry_id: str) -> str:
    """Dispatcher signal: the operating rules' state changed (period, inputs, setpoints)."""
    return f"{DOMAIN}_{entry_id}_rules"
