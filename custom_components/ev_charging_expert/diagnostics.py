"""Diagnostics: the entry, the site settings, every station's and meter's state; redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from homeassistant.components.diagnostics import async_redact_data

from .const import DOMAIN
from .evcore.meters.catalog import model_to_data
from .power_meters import meter_device_id
from .security import admission_diagnostics

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.device_registry import DeviceEntry

    from .hub import EvChargingConfigEntry, EvChargingHub

# Password hashes, RFID identifiers (personal data) and the charger's own secret key.
TO_REDACT = {"password_hash", "id_tag", "stop_id_tag", "AuthorizationKey", "iccid", "imsi"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: EvChargingConfigEntry
) -> dict[str, Any]:
    """Diagnostics of the whole site."""
    hub = entry.runtime_data
    return {
        "entry": async_redact_data(dict(entry.data), TO_REDACT),
        "listening_port": hub.central_system.port if hub.central_system else None,
        "stations": {
            sid: async_redact_data(station.to_dict(), TO_REDACT)
            for sid, station in hub.site.stations.items()
        },
        "load_management": _load_diagnostics(hub),
        "meters": {
            meter_id: async_redact_data(hub.meter_diagnostics(meter_id), TO_REDACT)
            for meter_id in hub.meter_ids()
        },
        "zone_meters": {
            zone_id: source.meter_id for zone_id, source in sorted(hub.zone_meters.items())
        },
        "meter_models": [model_to_data(model) for model in hub.meter_models.custom.values()],
        "admission": admission_diagnostics(hub.site, hub.central_system),
    }


def _load_diagnostics(hub: EvChargingHub) -> dict[str, Any]:
    load = hub.load
    last = load.last
    return {
        "settings": asdict(load.settings),
        "zones": {zid: asdict(zone) for zid, zone in hub.zones.items()},
        "runs": load.runs,
        "guard_violations": load.guard_violations,
        "controls": {sid: c.control.value for sid, c in sorted(load.controls.items())},
        "bases": {
            sid: {
                "held": c.base.held,
                "sent": c.base.sent,
                "planned": load.degraded.per_connector.get(sid),
            }
            for sid, c in sorted(load.controls.items())
        },
        "connectors": [
            {
                "station_id": key.station_id,
                "connector_id": key.connector_id,
                "setpoint": last.allocation.setpoints.get(key) if last else None,
                "reason": reason.value
                if last and (reason := last.allocation.reasons.get(key))
                else None,
                "lease": {"held": lease.held, "sent": lease.sent}
                if (lease := load.leases.get(key))
                else None,
            }
            for key in sorted(set(load.leases) | (set(last.allocation.reasons) if last else set()))
        ],
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: EvChargingConfigEntry, device: DeviceEntry
) -> dict[str, Any]:
    """Diagnostics of one station (or the station of a connector device), or of a meter."""
    hub = entry.runtime_data
    for meter_id in hub.meter_ids():
        if meter_device_id(meter_id) in device.identifiers:
            return async_redact_data(hub.meter_diagnostics(meter_id), TO_REDACT)
    for domain, identifier in device.identifiers:
        station_id = identifier.partition("#")[0]
        if domain == DOMAIN and station_id in hub.site.stations:
            return async_redact_data(hub.site.stations[station_id].to_dict(), TO_REDACT)
    return {}
