"""The config entry and its subentries read as evcore configuration."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from homeassistant.core import callback

from .const import (
    CONF_CONSUMPTION_OPTIMISATION,
    CONF_DEGRADED_SETPOINT,
    CONF_HEARTBEAT_INTERVAL,
    CONF_MAX_CURRENT,
    CONF_METER,
    CONF_MINIMUM_STANDARD,
    CONF_MODE,
    CONF_NEW_CHARGER_POLICY,
    CONF_NOMINAL_VOLTAGE,
    CONF_PARENT,
    CONF_REEVALUATION_MINUTES,
    CONF_SAFETY_MARGIN,
    CONF_SHED_PRIORITY,
    CONF_ZONE_NAME,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_NOMINAL_VOLTAGE,
    DEFAULT_REEVALUATION_MINUTES,
    DEFAULT_SAFETY_MARGIN,
    NO_METER,
    NO_PARENT,
    SUBENTRY_METER,
    SUBENTRY_METER_MODEL,
    SUBENTRY_ZONE,
)
from .evcore.allocation.model import MinimumStandard, ShedPriority
from .evcore.config import LoadSettings, ZoneConfig, ZoneMode
from .evcore.errors import ConfigError
from .evcore.meters import ModelRegistry
from .evcore.meters.catalog import model_from_data
from .evcore.model import NewChargerPolicy
from .evcore.site import SiteSettings

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry, ConfigSubentry
    from homeassistant.core import HomeAssistant


def site_settings(entry: ConfigEntry) -> SiteSettings:
    """Site settings (new-charger policy, heartbeat) from the entry's data."""
    return SiteSettings(
        new_charger_policy=NewChargerPolicy(
            entry.data.get(CONF_NEW_CHARGER_POLICY, NewChargerPolicy.PENDING)
        ),
        heartbeat_interval=int(entry.data.get(CONF_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL)),
    )


def load_settings(entry: ConfigEntry) -> LoadSettings:
    """Site load-management settings from the entry's options."""
    options = entry.options
    return LoadSettings(
        minimum_standard=MinimumStandard(
            options.get(CONF_MINIMUM_STANDARD, MinimumStandard.IEC_61851)
        ),
        shed_priority=ShedPriority(options.get(CONF_SHED_PRIORITY, ShedPriority.ENERGY)),
        reevaluation_period=60.0
        * float(options.get(CONF_REEVALUATION_MINUTES, DEFAULT_REEVALUATION_MINUTES)),
        nominal_voltage=float(options.get(CONF_NOMINAL_VOLTAGE, DEFAULT_NOMINAL_VOLTAGE)),
        safety_margin=float(options.get(CONF_SAFETY_MARGIN, DEFAULT_SAFETY_MARGIN)),
        consumption_optimisation=bool(options.get(CONF_CONSUMPTION_OPTIMISATION, False)),
    )


def zone_from_subentry(zone_id: str, data: Any) -> ZoneConfig:
    """A zone from its subentry data."""
    parent = data.get(CONF_PARENT)
    return ZoneConfig(
        zone_id=zone_id,
        name=str(data[CONF_ZONE_NAME]),
        max_current=float(data[CONF_MAX_CURRENT]),
        parent_id=None if parent in (None, "", NO_PARENT) else str(parent),
        mode=ZoneMode(data.get(CONF_MODE, ZoneMode.STATIC)),
        degraded_setpoint=float(data.get(CONF_DEGRADED_SETPOINT, 0.0)),
    )


def zones_from_entry(entry: ConfigEntry) -> tuple[dict[str, ZoneConfig], list[str]]:
    """The zones of the entry, minus those cut off from the tree (their names returned).

    A zone whose parent (or an ancestor's parent) was deleted is left out with all its
    sub-zones: it is no longer known what limits it, so it gets no current.
    """
    zones = {
        sid: zone_from_subentry(sid, sub.data)
        for sid, sub in entry.subentries.items()
        if sub.subentry_type == SUBENTRY_ZONE
    }
    orphans: list[str] = []
    valid: dict[str, ZoneConfig] = {}
    for zone in zones.values():
        node: ZoneConfig | None = zone
        seen: set[str] = set()
        while node is not None and node.parent_id is not None and node.zone_id not in seen:
            seen.add(node.zone_id)
            node = zones.get(node.parent_id)
        if node is None or (node.parent_id is not None):
            orphans.append(zone.name)
        else:
            valid[zone.zone_id] = zone
    return valid, orphans


def meter_subentries(entry: ConfigEntry) -> dict[str, ConfigSubentry]:
    """The entry's meters (subentries), by id."""
    return {
        sid: sub for sid, sub in entry.subentries.items() if sub.subentry_type == SUBENTRY_METER
    }


def model_subentries(entry: ConfigEntry) -> dict[str, ConfigSubentry]:
    """The entry's custom meter models (subentries), by id."""
    return {
        sid: sub
        for sid, sub in entry.subentries.items()
        if sub.subentry_type == SUBENTRY_METER_MODEL
    }


def models_from_entry(entry: ConfigEntry) -> tuple[ModelRegistry, list[tuple[str, str]]]:
    """Built-in plus the entry's custom models; and the (title, error) of unusable ones."""
    registry = ModelRegistry()
    broken: list[tuple[str, str]] = []
    for subentry in model_subentries(entry).values():
        try:
            registry.add(model_from_data(subentry.data))
        except ConfigError as err:
            broken.append((subentry.title, str(err)))
    return registry, broken


@callback
def rename_model_in_meters(hass: HomeAssistant, entry: ConfigEntry, old: str, new: str) -> None:
    """Point the meters that use model `old` at its new name."""
    if old == new:
        return
    for subentry in meter_subentries(entry).values():
        if subentry.data.get("model") == old:
            hass.config_entries.async_update_subentry(
                entry, subentry, data={**subentry.data, "model": new}
            )


def zone_meter_ids(entry: ConfigEntry) -> dict[str, str]:
    """Zone id -> the id of the meter its data names (the meter may no longer exist)."""
    return {
        sid: str(sub.data[CONF_METER])
        for sid, sub in entry.subentries.items()
        if sub.subentry_type == SUBENTRY_ZONE
        and sub.data.get(CONF_METER) not in (None, "", NO_METER)
    }


def build_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """Server TLS context (OCPP security profile 2); blocking, run it in the executor."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context
