"""Constants of the EV Charging Expert integration."""

from __future__ import annotations

from typing import Final

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


def station_device_id(station_id: str) -> tuple[str, str]:
    """Device registry identifier of a station."""
    return (DOMAIN, station_id)


def connector_device_id(station_id: str, connector_id: int) -> tuple[str, str]:
    """Device registry identifier of a connector."""
    return (DOMAIN, f"{station_id}#{connector_id}")


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
DEFAULT_REEVALUATION_MINUTES: Final = 15
DEFAULT_NOMINAL_VOLTAGE: Final = 230

ISSUE_UNASSIGNED: Final = "unassigned_stations"
ISSUE_UNCONTROLLABLE: Final = "uncontrollable_charger"
ISSUE_ORPHAN_ZONE: Final = "orphan_zone"
ISSUE_DEGRADED_ZERO: Final = "degraded_zero"
ISSUE_NEGATIVE_BUILDING: Final = "negative_building_load"


def signal_zone(entry_id: str, zone_id: str) -> str:
    """Dispatcher signal: a zone's budget or allocation changed."""
    return f"{DOMAIN}_{entry_id}_zone_{zone_id}"


def signal_new_zone(entry_id: str) -> str:
    """Dispatcher signal: a zone needs entities."""
    return f"{DOMAIN}_{entry_id}_new_zone"


def zone_device_id(zone_id: str) -> tuple[str, str]:
    """Device registry identifier of a zone (its subentry id)."""
    return (DOMAIN, f"zone_{zone_id}")
