"""Service actions of the charge data records: export, list, force stop.

Registered once from `services.async_setup_services`. Export and list are open to every user
(the facility manager need not be an admin); force stop changes state and is admin-only.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import DOMAIN
from .evcore.errors import ChargerInputError
from .evcore.sessions import (
    SessionFilter,
    SessionQueryError,
    SessionStatus,
    StationInfo,
    StoreUnavailableError,
    write_csv,
)
from .sessions_glue import EXPORT_URL, SessionsHub, sessions_of

if TYPE_CHECKING:
    from datetime import datetime

    from .coordinator import EvChargingCoordinator

_FILTER = {
    vol.Optional("config_entry_id"): cv.string,
    vol.Optional("device_id"): cv.string,
    vol.Optional("connector_id"): vol.All(vol.Coerce(int), vol.Range(min=1)),
    vol.Optional("start"): cv.datetime,
    vol.Optional("end"): cv.datetime,
    vol.Optional("id_tag"): vol.All(cv.string, vol.Length(min=1, max=64)),
    vol.Optional("zone_id"): cv.string,
    vol.Optional("status"): vol.In([s.value for s in SessionStatus]),
}
EXPORT_SCHEMA = vol.Schema({**_FILTER, vol.Optional("local_time", default=False): cv.boolean})
LIST_SCHEMA = vol.Schema(
    {
        **_FILTER,
        vol.Optional("offset", default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
        vol.Optional("limit", default=50): vol.All(vol.Coerce(int), vol.Range(min=1, max=500)),
    }
)
FORCE_STOP_SCHEMA = vol.Schema(
    {
        vol.Required("device_id"): cv.string,
        vol.Optional("connector_id"): vol.All(vol.Coerce(int), vol.Range(min=1)),
    }
)


def _error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _hub(hass: HomeAssistant, call: ServiceCall) -> tuple[EvChargingCoordinator, SessionFilter]:
    """The coordinator the call is for, and the filter its fields describe."""
    from .services import resolve_target  # noqa: PLC0415  # services imports this module

    data = call.data
    station_id = None
    connector_id = data.get("connector_id")
    if "device_id" in data:
        target = resolve_target(hass, call)
        hub, station_id, connector_id = target.hub, target.station_id, target.connector_id
    else:
        loaded = [
            e
            for e in hass.config_entries.async_entries(DOMAIN)
            if e.state is ConfigEntryState.LOADED
            and data.get("config_entry_id") in (None, e.entry_id)
        ]
        if not loaded:
            raise _error("not_loaded")
        hub = loaded[0].runtime_data
    query = SessionFilter(
        start=_utc(data.get("start")),
        end=_utc(data.get("end")),
        station_id=station_id,
        connector_id=connector_id,
        id_tag=data.get("id_tag"),
        zone_id=data.get("zone_id"),
        status=SessionStatus(data["status"]) if "status" in data else None,
    )
    try:
        query.check()
    except SessionQueryError as err:
        raise _error("invalid_session_query", field=err.field, problem=err.message) from err
    return hub, query


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt_util.get_default_time_zone())
    return dt_util.as_utc(value)


def _sessions(hub: EvChargingCoordinator) -> SessionsHub:
    sessions = sessions_of(hub)
    if sessions is None:
        raise _error("not_loaded")
    return sessions


def _unavailable(err: StoreUnavailableError) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="sessions_unavailable",
        translation_placeholders={"error": str(err)},
    )


async def _export(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub, query = _hub(hass, call)
    sessions = _sessions(hub)
    tz = dt_util.get_default_time_zone() if call.data["local_time"] else None
    stations = {
        sid: StationInfo(name=sid, charge_type="DC" if s.config.dc else "AC")
        for sid, s in hub.site.stations.items()
    }
    periods = sessions.recorder.calendar.periods()
    stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    name = f"sessions_{stamp}.csv"
    path = sessions.export_dir() / name
    await sessions.store.flush()
    store = sessions.store

    def write() -> int:
        return write_csv(path, store.iter_export(query), periods=periods, tz=tz, stations=stations)

    try:
        rows = await hass.async_add_executor_job(write)
    except StoreUnavailableError as err:
        raise _unavailable(err) from err
    response: ServiceResponse = {"path": str(path), "url": f"{EXPORT_URL}/{name}", "rows": rows}
    return response if call.return_response else None


async def _list(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    hub, query = _hub(hass, call)
    sessions = _sessions(hub)
    offset, limit = call.data["offset"], call.data["limit"]
    try:
        page, more = await sessions.store.async_list_page(query, offset=offset, limit=limit)
    except StoreUnavailableError as err:
        raise _unavailable(err) from err
    # Open sessions: their live figures rather than the last written ones.
    live = [sessions.recorder.open_record(r.station_id, r.transaction_id) or r for r in page]
    return {
        "sessions": [_public(r.to_dict()) for r in live],
        "next_offset": offset + limit if more else None,
    }


def _public(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("updated_at", None)
    return data


async def _force_stop(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    from .services import _check_admin, resolve_target  # noqa: PLC0415

    await _check_admin(hass, call)
    target = resolve_target(hass, call)
    station = target.hub.site.stations[target.station_id]
    connector_id = target.connector_id
    if connector_id is None:
        open_on = [c.connector_id for c in station.charge_points if c.transaction is not None]
        if len(open_on) != 1:
            raise _error("no_single_transaction", station_id=target.station_id)
        connector_id = open_on[0]
    try:
        transaction = target.hub.site.force_stop_session(target.station_id, connector_id)
    except ChargerInputError as err:
        key = "force_stop_connected" if err.field == "connected" else "no_session"
        raise _error(key, station_id=target.station_id, connector_id=str(connector_id)) from err
    sessions = sessions_of(target.hub)
    if sessions is None or not call.return_response:
        return None
    return sessions.recorder.record_of(target.station_id, transaction).to_dict()


def async_setup_session_services(hass: HomeAssistant) -> None:
    """Register the session service actions (once, from `async_setup_services`)."""
    hass.services.async_register(
        DOMAIN,
        "export_sessions",
        partial(_export, hass),
        schema=EXPORT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "list_sessions",
        partial(_list, hass),
        schema=LIST_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        "force_stop_session",
        partial(_force_stop, hass),
        schema=FORCE_STOP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
