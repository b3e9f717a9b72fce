"""Service actions: every OCPP operation of the central system, targeted at a device.

The target is a station device or a connector device; a connector device supplies its station
and connector id. Operations that change a charger's configuration or software, or disrupt it,
are admin-only. Over 400 lines on purpose: one schema and one short handler per service
action (charger operations and meter models), in one table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from homeassistant.config_entries import ConfigEntry, ConfigEntryState, ConfigSubentry
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import DOMAIN, SUBENTRY_METER_MODEL, parse_device_identifier
from .entry_data import model_subentries, models_from_entry, rename_model_in_meters
from .evcore.charger import TriggerMessage
from .evcore.errors import ConfigError, InvalidIdentityError, RegistryLockedError
from .evcore.meters.catalog import model_to_data
from .helpers import call_charger
from .services_rules import async_setup_rules_services

if TYPE_CHECKING:
    from datetime import datetime

    from .coordinator import EvChargingCoordinator
    from .evcore.charger import Charger
    from .evcore.meters import MeterModel

ATTR_DEVICE_ID = "device_id"
ATTR_CONNECTOR_ID = "connector_id"

_DEVICE = {vol.Required(ATTR_DEVICE_ID): cv.string}
_CONNECTOR = {vol.Optional(ATTR_CONNECTOR_ID): vol.All(vol.Coerce(int), vol.Range(min=1))}
_RETRIES = {
    vol.Optional("retries"): vol.All(vol.Coerce(int), vol.Range(min=0, max=100)),
    vol.Optional("retry_interval"): vol.All(vol.Coerce(int), vol.Range(min=0, max=86400)),
}
_CI_STRING_50 = vol.All(cv.string, vol.Length(min=1, max=50))
# Chargers fetch firmware and upload diagnostics over FTP as often as over HTTP; cv.url only
# takes http(s).
_LOCATION_SCHEMES = frozenset({"http", "https", "ftp", "ftps"})


def _location(value: Any) -> str:
    location = cv.string(value)
    parts = urlsplit(location)
    if parts.scheme not in _LOCATION_SCHEMES or not parts.netloc:
        raise vol.Invalid("expected an http, https, ftp or ftps URL")
    return location


@dataclass(frozen=True, slots=True)
class Target:
    """The station (and connector) a service call is for."""

    hub: EvChargingCoordinator
    station_id: str
    connector_id: int | None

    @property
    def charger(self) -> Charger:
        """The live connection (raises ChargerNotConnectedError)."""
        return self.hub.site.charger(self.station_id)


def _validation_error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


@callback
def resolve_target(hass: HomeAssistant, call: ServiceCall) -> Target:
    """Find the station (and connector) behind the call's device_id."""
    device_id = call.data[ATTR_DEVICE_ID]
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise _validation_error("invalid_device", device_id=device_id)
    identifier = next((i for d, i in device.identifiers if d == DOMAIN), None)
    hub = next(
        (
            entry.runtime_data
            for entry in hass.config_entries.async_entries(DOMAIN)
            if entry.entry_id in device.config_entries and entry.state is ConfigEntryState.LOADED
        ),
        None,
    )
    if identifier is None or hub is None:
        raise _validation_error("invalid_device", device_id=device_id)
    named = parse_device_identifier(identifier)
    if named is None or named[0] not in hub.site.stations:
        raise _validation_error("invalid_device", device_id=device_id)
    station_id, connector_id = named
    if ATTR_CONNECTOR_ID in call.data:
        connector_id = call.data[ATTR_CONNECTOR_ID]
    return Target(hub, station_id, connector_id)


def _require_connector(target: Target) -> int:
    if target.connector_id is None:
        raise _validation_error("connector_required", station_id=target.station_id)
    return target.connector_id


def _utc(value: datetime | None) -> datetime | None:
    # A naive time comes from HA's date-time selector and is in HA's time zone.
    return None if value is None else dt_util.as_utc(value)


type Handler = Callable[[Target, dict[str, Any]], Awaitable[ServiceResponse]]


async def _remote_start(target: Target, data: dict[str, Any]) -> ServiceResponse:
    status = await target.charger.remote_start(data["id_tag"], target.connector_id)
    return {"status": status}


async def _remote_stop(target: Target, data: dict[str, Any]) -> ServiceResponse:
    transaction_id = data.get("transaction_id")
    if transaction_id is None:
        station = target.hub.site.stations[target.station_id]
        running = [
            c.transaction
            for c in station.charge_points
            if c.transaction is not None
            and (target.connector_id is None or c.connector_id == target.connector_id)
        ]
        if len(running) != 1:
            raise _validation_error("no_single_transaction", station_id=target.station_id)
        transaction_id = running[0].transaction_id
    status = await target.charger.remote_stop(transaction_id)
    return {"status": status, "transaction_id": transaction_id}


async def _reset(target: Target, data: dict[str, Any]) -> ServiceResponse:
    return {"status": await target.charger.reset(hard=data["type"] == "hard")}


async def _unlock(target: Target, _: dict[str, Any]) -> ServiceResponse:
    return {"status": await target.charger.unlock(_require_connector(target))}


async def _change_availability(target: Target, data: dict[str, Any]) -> ServiceResponse:
    status = await target.charger.set_availability(
        target.connector_id or 0, available=data["operative"]
    )
    return {"status": status}


async def _trigger(target: Target, data: dict[str, Any]) -> ServiceResponse:
    status = await target.charger.trigger(TriggerMessage(data["message"]), target.connector_id)
    return {"status": status}


async def _update_firmware(target: Target, data: dict[str, Any]) -> ServiceResponse:
    retrieve = _utc(data.get("retrieve_date")) or target.hub.site.clock.now()
    await target.charger.update_firmware(
        data["location"],
        retrieve,
        retries=data.get("retries"),
        retry_interval=data.get("retry_interval"),
    )
    return {"status": "Accepted"}


async def _get_diagnostics(target: Target, data: dict[str, Any]) -> ServiceResponse:
    file_name = await target.charger.get_diagnostics(
        data["location"],
        retries=data.get("retries"),
        retry_interval=data.get("retry_interval"),
        start=_utc(data.get("start_time")),
        stop=_utc(data.get("stop_time")),
    )
    return {"file_name": file_name}


async def _get_configuration(target: Target, data: dict[str, Any]) -> ServiceResponse:
    result = await target.charger.get_configuration(data.get("keys"))
    # The charger's secret: write-only in OCPP, but some chargers report it anyway.
    keys: list[Any] = [
        {**key, "value": "**REDACTED**"} if key.get("key") == "AuthorizationKey" else key
        for key in result.keys
    ]
    unknown: list[Any] = list(result.unknown_keys)
    return {"configuration_key": keys, "unknown_key": unknown}


async def _change_configuration(target: Target, data: dict[str, Any]) -> ServiceResponse:
    status = await target.charger.set_configuration(data["key"], data["value"])
    return {"status": status}


async def _clear_cache(target: Target, _: dict[str, Any]) -> ServiceResponse:
    return {"status": await target.charger.clear_cache()}


async def _data_transfer(target: Target, data: dict[str, Any]) -> ServiceResponse:
    status, answer = await target.charger.data_transfer(
        data["vendor_id"], data.get("message_id"), data.get("data")
    )
    return {"status": status, "data": answer}


async def _set_password(target: Target, data: dict[str, Any]) -> ServiceResponse:
    password: str = data["password"]
    if data["send_to_charger"]:
        # The charger must know the new key before we require it, or it is locked out.
        await target.charger.set_configuration("AuthorizationKey", password)
    target.hub.site.set_password(target.station_id, password)
    return {"status": "Accepted"}


# service name -> (extra schema, handler, admin only)
SERVICES: dict[str, tuple[dict[Any, Any], Handler, bool]] = {
    "remote_start_transaction": (
        {vol.Required("id_tag"): vol.All(cv.string, vol.Length(min=1, max=20)), **_CONNECTOR},
        _remote_start,
        False,
    ),
    "remote_stop_transaction": (
        {vol.Optional("transaction_id"): vol.Coerce(int), **_CONNECTOR},
        _remote_stop,
        False,
    ),
    "reset": ({vol.Optional("type", default="soft"): vol.In(["soft", "hard"])}, _reset, True),
    "unlock_connector": (_CONNECTOR, _unlock, False),
    "change_availability": (
        {vol.Required("operative"): cv.boolean, **_CONNECTOR},
        _change_availability,
        True,
    ),
    "trigger_message": (
        {vol.Required("message"): vol.In([m.value for m in TriggerMessage]), **_CONNECTOR},
        _trigger,
        False,
    ),
    "update_firmware": (
        {
            vol.Required("location"): _location,
            vol.Optional("retrieve_date"): cv.datetime,
            **_RETRIES,
        },
        _update_firmware,
        True,
    ),
    "get_diagnostics": (
        {
            vol.Required("location"): _location,
            vol.Optional("start_time"): cv.datetime,
            vol.Optional("stop_time"): cv.datetime,
            **_RETRIES,
        },
        _get_diagnostics,
        True,
    ),
    "get_configuration": (
        {vol.Optional("keys"): vol.All(cv.ensure_list, [_CI_STRING_50])},
        _get_configuration,
        False,
    ),
    "change_configuration": (
        {
            vol.Required("key"): _CI_STRING_50,
            vol.Required("value"): vol.All(cv.string, vol.Length(max=500)),
        },
        _change_configuration,
        True,
    ),
    "clear_cache": ({}, _clear_cache, True),
    "data_transfer": (
        {
            vol.Required("vendor_id"): vol.All(cv.string, vol.Length(min=1, max=255)),
            vol.Optional("message_id"): vol.All(cv.string, vol.Length(max=50)),
            vol.Optional("data"): cv.string,
        },
        _data_transfer,
        True,
    ),
    "set_charger_password": (
        {
            # OCPP's AuthorizationKey: 16 to 40 characters.
            vol.Required("password"): vol.All(cv.string, vol.Length(min=16, max=40)),
            vol.Optional("send_to_charger", default=True): cv.boolean,
        },
        _set_password,
        True,
    ),
}


async def _check_admin(hass: HomeAssistant, call: ServiceCall) -> None:
    if call.context.user_id is None:
        return  # automations and scripts run as the system
    user = await hass.auth.async_get_user(call.context.user_id)
    if user is None:
        raise Unauthorized(context=call.context)
    if not user.is_admin:
        raise Unauthorized(context=call.context, permission="admin")


async def _handle(
    hass: HomeAssistant, handler: Handler, admin: bool, call: ServiceCall
) -> ServiceResponse:
    if admin:
        await _check_admin(hass, call)
    target = resolve_target(hass, call)
    response = await call_charger(lambda: handler(target, dict(call.data)))
    return response if call.return_response else None


async def _accept_charger(hass: HomeAssistant, call: ServiceCall) -> None:
    await _check_admin(hass, call)
    station_id = call.data["charge_box_id"]
    entries = [
        e for e in hass.config_entries.async_entries(DOMAIN) if e.state is ConfigEntryState.LOADED
    ]
    if not entries:
        raise _validation_error("not_loaded")
    for entry in entries:
        hub = entry.runtime_data
        try:
            hub.site.accept_station(station_id)
        except InvalidIdentityError as err:
            raise _validation_error("invalid_identity", problem=err.problem) from err
        except RegistryLockedError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="registry_locked"
            ) from err
        # As the repair flow does: a connected pending charger comes in now, not at its next
        # boot retry.
        hub.request_boot(station_id)


def _loaded_entry(hass: HomeAssistant) -> ConfigEntry:
    entry = next(
        (
            e
            for e in hass.config_entries.async_entries(DOMAIN)
            if e.state is ConfigEntryState.LOADED
        ),
        None,
    )
    if entry is None:
        raise _validation_error("not_loaded")
    return entry


async def _export_meter_models(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """The custom meter models (all, or those named) as a JSON file's text and as data."""
    registry, _ = models_from_entry(_loaded_entry(hass))
    names: list[str] | None = call.data.get("names")
    try:
        text = registry.export_json(names)
    except ConfigError as err:
        raise _validation_error("unknown_meter_model", error=str(err)) from err
    models = registry.custom
    chosen = list(models) if names is None else names
    return {"json": text, "models": [model_to_data(models[name]) for name in chosen]}


async def _import_meter_models(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """Add every model of a JSON file as a meter model subentry, or none (admin only)."""
    await _check_admin(hass, call)
    entry = _loaded_entry(hass)
    registry, _ = models_from_entry(entry)
    try:
        models = registry.import_json(call.data["json"], replace=call.data["replace"])
    except ConfigError as err:
        raise _validation_error("invalid_meter_models", error=str(err)) from err
    _save_models(hass, entry, models)
    return {"imported": [model.name for model in models]} if call.return_response else None


@callback
def _save_models(hass: HomeAssistant, entry: ConfigEntry, models: list[MeterModel]) -> None:
    """Create a subentry per model; replace one of the same name (any case) in place."""
    existing = {sub.title.casefold(): sub for sub in model_subentries(entry).values()}
    for model in models:
        data = model_to_data(model)
        subentry = existing.get(model.name.casefold())
        if subentry is None:
            hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(data),
                    subentry_type=SUBENTRY_METER_MODEL,
                    title=model.name,
                    unique_id=None,
                ),
            )
        else:
            rename_model_in_meters(hass, entry, subentry.title, model.name)
            hass.config_entries.async_update_subentry(entry, subentry, title=model.name, data=data)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register every service action of the integration."""
    async_setup_rules_services(hass)
    for name, (fields, handler, admin) in SERVICES.items():
        hass.services.async_register(
            DOMAIN,
            name,
            partial(_handle, hass, handler, admin),
            schema=vol.Schema({**_DEVICE, **fields}),
            supports_response=SupportsResponse.OPTIONAL,
        )
    hass.services.async_register(
        DOMAIN,
        "accept_charger",
        partial(_accept_charger, hass),
        schema=vol.Schema({vol.Required("charge_box_id"): vol.All(cv.string, vol.Length(min=1))}),
    )
    hass.services.async_register(
        DOMAIN,
        "export_meter_models",
        partial(_export_meter_models, hass),
        schema=vol.Schema({vol.Optional("names"): vol.All(cv.ensure_list, [cv.string])}),
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        "import_meter_models",
        partial(_import_meter_models, hass),
        schema=vol.Schema(
            {
                # A models file is small; a megabyte is a pasted mistake, not a register map.
                vol.Required("json"): vol.All(cv.string, vol.Length(min=1, max=1_000_000)),
                vol.Optional("replace", default=False): cv.boolean,
            }
        ),
        supports_response=SupportsResponse.OPTIONAL,
    )
