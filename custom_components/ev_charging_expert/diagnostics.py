"""Diagnostics: the entry, the site settings, every station's and meter's state; redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from homeassistant.components.diagnostics import async_redact_data

from .const import DOMAIN, meter_device_id, parse_device_identifier
from .evcore.load.optimise import optimisation_diagnostics
from .evcore.meters.catalog import model_to_data
from .security import admission_diagnostics

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.device_registry import DeviceEntry

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator

# Password hashes, RFID identifiers (personal data) and the charger's own secret key.
TO_REDACT = {"password_hash", "id_tag", "stop_id_tag", "AuthorizationKey", "iccid", "imsi"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: EvChargingConfigEntry
) -> dict[str, Any]:
    """Diagnostics of the whole site."""
    hub = entry.runtime_data
    return {
        "entry": async_redact_data(dict(entry.data), TO_REDACT),
        "listening_port": hub.controller.port,
        "stations": {
            sid: async_redact_data(station.to_dict(), TO_REDACT)
            for sid, station in hub.site.stations.items()
        },
        "load_management": _load_diagnostics(hub),
        "meters": {
            meter_id: async_redact_data(hub.meters.diagnostics(meter_id), TO_REDACT)
            for meter_id in hub.meters.ids()
        },
        "zone_meters": {
            zone_id: source.meter_id for zone_id, source in sorted(hub.meters.zone_meters.items())
        },
        "meter_models": [
            model_to_data(model) for model in hub.controller.meters.models.custom.values()
        ],
        "admission": admission_diagnostics(hub.site, hub.controller.central_system),
        "operating_rules": hub.rules.diagnostics(),
    }


def _load_diagnostics(hub: EvChargingCoordinator) -> dict[str, Any]:
    """Settings and zone tree as configured, then load management's view of the site."""
    view = hub.controller.load_view().to_dict()
    return {
        "settings": asdict(hub.controller.load.settings),
        "zone_config": {zid: asdict(zone) for zid, zone in hub.zones.items()},
        **view,
        "optimisation_caps": optimisation_diagnostics(hub.controller.load.optimiser),
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: EvChargingConfigEntry, device: DeviceEntry
) -> dict[str, Any]:
    """Diagnostics of one station (or the station of a connector device), or of a meter."""
    hub = entry.runtime_data
    for meter_id in hub.meters.ids():
        if meter_device_id(meter_id) in device.identifiers:
            return async_redact_data(hub.meters.diagnostics(meter_id), TO_REDACT)
    for domain, identifier in device.identifiers:
        named = parse_device_identifier(identifier) if domain == DOMAIN else None
        if named is not None and named[0] in hub.site.stations:
            return async_redact_data(hub.site.stations[named[0]].to_dict(), TO_REDACT)
    return {}
