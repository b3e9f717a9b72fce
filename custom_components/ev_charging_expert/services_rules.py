"""Service actions of the operating rules.

Remote zone setpoints with HA as the controlling source, and the time-of-use summary.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .const import DOMAIN
from .evcore.rules import SetpointSource
from .number_rules import setpoint_error

if TYPE_CHECKING:
    from .coordinator import EvChargingCoordinator

ATTR_DEVICE_ID = "device_id"
ATTR_AMPS = "amps"
ATTR_CONFIG_ENTRY = "config_entry_id"
_ZONE_PREFIX = "zone_"


def _error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _zone_target(hass: HomeAssistant, call: ServiceCall) -> tuple[EvChargingCoordinator, str]:
    """The hub and zone id behind the call's zone device."""
    device_id = call.data[ATTR_DEVICE_ID]
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise _error("invalid_zone_device", device_id=device_id)
    identifier = next((i for d, i in device.identifiers if d == DOMAIN), "")
    for entry in hass.config_entries.async_entries(DOMAIN):
        if (
            entry.entry_id not in device.config_entries
            or entry.state is not ConfigEntryState.LOADED
        ):
            continue
        hub: EvChargingCoordinator = entry.runtime_data
        zone_id = identifier.removeprefix(_ZONE_PREFIX)
        if identifier.startswith(_ZONE_PREFIX) and zone_id in hub.zones:
            return hub, zone_id
    raise _error("invalid_zone_device", device_id=device_id)


def _hub(hass: HomeAssistant, call: ServiceCall) -> EvChargingCoordinator:
    wanted = call.data.get(ATTR_CONFIG_ENTRY)
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED and wanted in (None, entry.entry_id):
            hub: EvChargingCoordinator = entry.runtime_data
            return hub
    raise _error("not_loaded")


async def _set_zone_setpoint(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub, zone_id = _zone_target(hass, call)
    result = hub.controller.set_zone_setpoint(
        zone_id, float(call.data[ATTR_AMPS]), source=SetpointSource.HA
    )
    if not result.accepted:
        raise setpoint_error(result)
    return {"code": result.code, "message": result.message}


async def _clear_zone_setpoint(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub, zone_id = _zone_target(hass, call)
    result = hub.controller.clear_zone_setpoint(zone_id, source=SetpointSource.HA)
    if not result.accepted:
        raise setpoint_error(result)
    return {"code": result.code, "message": result.message}


async def _remote_heartbeat(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    result = _hub(hass, call).controller.remote_heartbeat(SetpointSource.HA)
    if not result.accepted:
        raise setpoint_error(result)
    return {"code": result.code, "message": result.message}


async def _get_tou_summary(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub = _hub(hass, call)
    summary = hub.controller.tou_summary()
    view = hub.controller.rules_view()
    return {**summary, "active_period": view.tou_period}  # type: ignore[dict-item]


_ZONE = {vol.Required(ATTR_DEVICE_ID): cv.string}
_ENTRY = {vol.Optional(ATTR_CONFIG_ENTRY): cv.string}


def async_setup_rules_services(hass: HomeAssistant) -> None:
    """Register the rules' service actions."""
    hass.services.async_register(
        DOMAIN,
        "set_zone_setpoint",
        partial(_set_zone_setpoint, hass),
        schema=vol.Schema(
            {**_ZONE, vol.Required(ATTR_AMPS): vol.All(vol.Coerce(float), vol.Range(min=0))}
        ),
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "clear_zone_setpoint",
        partial(_clear_zone_setpoint, hass),
        schema=vol.Schema(_ZONE),
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "remote_setpoint_heartbeat",
        partial(_remote_heartbeat, hass),
        schema=vol.Schema(_ENTRY),
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "get_tou_summary",
        partial(_get_tou_summary, hass),
        schema=vol.Schema(_ENTRY),
        supports_response=SupportsResponse.ONLY,
    )
