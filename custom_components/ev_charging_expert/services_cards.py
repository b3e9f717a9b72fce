"""Service actions of the card registry and of the authorization modes.

Card management (add, update, remove, approve, bulk edit, import, export, list) is open to
every user, as the guide's User profile has it; the authorization modes and offline
behaviour are admin-only. Zones are named by their name or their id; an empty zone list means
every zone. Listing answers a page (the panel uses the same code).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .const import DOMAIN, parse_device_identifier
from .evcore.auth import (
    Card,
    CardError,
    CardFilter,
    CardImportError,
    UnknownCardError,
    export_csv,
    parse_csv,
)
from .evcore.auth.cards import COMMENT_MAX, ID_TAG_MAX, PreparedSwap
from .evcore.auth.csv_io import MAX_IMPORT_BYTES
from .evcore.auth.modes import AuthMode, OfflineBehaviour
from .evcore.errors import ConfigError, UnknownStationError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .coordinator import EvChargingCoordinator

INHERIT = "inherit"
_ID_TAG = vol.All(cv.string, vol.Length(min=1, max=ID_TAG_MAX + 10))  # checked again, by field
_ZONES = vol.All(cv.ensure_list, [cv.string])
_CARD_FIELDS = {
    vol.Optional("authorized"): cv.boolean,
    vol.Optional("vip"): cv.boolean,
    vol.Optional("comment"): vol.All(cv.string, vol.Length(max=COMMENT_MAX + 200)),
    vol.Optional("zones"): _ZONES,
    vol.Optional("expires_at"): vol.Any(None, cv.datetime),
    vol.Optional("parent_id_tag"): vol.Any(None, _ID_TAG),
}

type Handler = Callable[[EvChargingCoordinator, ServiceCall], Awaitable[ServiceResponse]]


def _error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _hub(hass: HomeAssistant) -> EvChargingCoordinator:
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            return entry.runtime_data  # type: ignore[no-any-return]
    raise _error("not_loaded")


def _zone_ids(hub: EvChargingCoordinator, names: list[str]) -> frozenset[str] | None:
    """Zone ids from names or ids; [] = every zone (None)."""
    if not names:
        return None
    by_name = {z.name.casefold(): z.zone_id for z in hub.zones.values()}
    ids = set()
    for name in names:
        zone_id = name if name in hub.zones else by_name.get(name.casefold())
        if zone_id is None:
            raise _error("invalid_card", field="zones", message=f"unknown zone {name!r}")
        ids.add(zone_id)
    return frozenset(ids)


def _changes(hub: EvChargingCoordinator, data: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {
        k: data[k] for k in ("authorized", "vip", "comment", "expires_at") if k in data
    }
    if "zones" in data:
        changes["zones"] = _zone_ids(hub, data["zones"])
    if "parent_id_tag" in data:
        changes["parent_id_tag"] = data["parent_id_tag"] or None
    return changes


def _card_errors[T](action: Callable[[], T]) -> T:
    try:
        return action()
    except UnknownCardError as err:
        raise _error("unknown_card", id_tag=err.id_tag) from err
    except CardError as err:
        raise _error("invalid_card", field=err.field, message=err.message) from err
    except ConfigError as err:
        raise _error("invalid_authorization", error=str(err)) from err


# ---------------------------------------------------------------------- cards
async def _add(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    data = dict(call.data)
    changes = _changes(hub, data)
    card = _card_errors(lambda: hub.controller.cards.add(Card(id_tag=data["id_tag"], **changes)))
    return card.to_dict()


async def _update(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    data = dict(call.data)
    changes = _changes(hub, data)
    card = _card_errors(lambda: hub.controller.cards.update(data["id_tag"], **changes))
    return card.to_dict()


async def _remove(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    _card_errors(lambda: hub.controller.cards.remove(call.data["id_tag"]))
    return {"removed": call.data["id_tag"]}


async def _approve(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    cards = hub.controller.cards
    tags: list[str] = call.data["id_tag"]
    for tag in tags:  # all known first: all or nothing
        if cards.get(tag) is None:
            raise _error("unknown_card", id_tag=tag)
    approved = [_card_errors(partial(cards.approve, tag)) for tag in tags]
    return {"cards": [c.to_dict() for c in approved]}


async def _bulk_edit(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    data = dict(call.data)
    changes: dict[str, Any] = {k: data[k] for k in ("authorized", "vip") if k in data}
    if "zones" in data:
        changes["zones"] = _zone_ids(hub, data["zones"])
    if not changes:
        raise _error("invalid_card", field="authorized", message="nothing to change")
    edited = _card_errors(lambda: hub.controller.cards.bulk_edit(data["id_tags"], **changes))
    return {"edited": len(edited)}


def _read_file(path: str) -> bytes:
    with Path(path).open("rb") as file:
        return file.read(MAX_IMPORT_BYTES + 1)


async def _import(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    data = dict(call.data)
    if ("csv" in data) == ("path" in data):
        raise _error("invalid_card_file", error="give either csv or path")
    content: str | bytes
    if "path" in data:
        path = data["path"]
        if not hub.hass.config.is_allowed_path(path):
            raise _error("invalid_card_file", error=f"{path} is not an allowed path")
        try:
            content = await hub.hass.async_add_executor_job(_read_file, path)
        except OSError as err:
            raise _error("invalid_card_file", error=str(err)) from err
    else:
        content = data["csv"]
    zones = {z.name: z.zone_id for z in hub.zones.values()}
    registry = hub.controller.cards
    add_only = data["mode"] == "add_update"

    def prepare() -> tuple[int, PreparedSwap]:
        cards = parse_csv(content, zones, file_format=data["format"])
        return len(cards), registry.prepare_swap(cards, add_only=add_only)

    try:
        # Validating and building 100,000 cards takes seconds: off the event loop, which
        # only swaps the result in.
        imported, prepared = await hub.hass.async_add_executor_job(prepare)
    except CardImportError as err:
        raise _error("invalid_card_file", error=str(err)) from err
    except CardError as err:
        raise _error("invalid_card_file", error=str(err)) from err
    return {"imported": imported, "total": registry.commit_swap(prepared)}


async def _export(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    del call
    names = {z.zone_id: z.name for z in hub.zones.values()}
    cards = list(hub.controller.cards.cards())
    text = await hub.hass.async_add_executor_job(export_csv, cards, names)
    return {"csv": text, "count": sum(not c.pending for c in cards)}


async def _list(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    data = dict(call.data)
    zone = None
    if data.get("zone"):
        zones = _zone_ids(hub, [data["zone"]])
        zone = next(iter(zones or ()))
    where = CardFilter(
        id_tag=data.get("id_tag"),
        comment=data.get("comment"),
        zone=zone,
        vip=data.get("vip"),
        authorized=data.get("authorized"),
        pending=data.get("pending"),
    )
    page = hub.controller.cards.query(where, data["offset"], data["limit"])
    return page.to_dict()


# ---------------------------------------------------------------------- authorization
async def _set_authorization(hub: EvChargingCoordinator, call: ServiceCall) -> ServiceResponse:
    data = dict(call.data)
    auth = hub.controller.auth
    mode = _inherit(data.get("mode"))
    offline = _inherit(data.get("offline"))
    targets = sum(k in data for k in ("zone", "device_id"))
    if targets > 1:
        raise _error("invalid_authorization", error="give a zone or a device, not both")

    def apply() -> None:
        if "zone" in data:
            zones = _zone_ids(hub, [data["zone"]]) or frozenset()
            auth.set_zone_mode(next(iter(zones)), mode=mode, offline=offline)
        elif "device_id" in data:
            auth.set_station_mode(_station(hub, data["device_id"]), mode=mode, offline=offline)
        else:
            auth.set_site_default(mode=mode or None, offline=offline or None)
        if data.get("site_id_tag"):
            auth.set_site_id_tag(data["site_id_tag"])

    try:
        _card_errors(apply)
    except UnknownStationError as err:
        raise _error("invalid_device", device_id=data["device_id"]) from err
    settings = auth.settings.to_dict()
    del settings["site_id_tag"]
    return settings


def _inherit(value: str | None) -> str | None:
    """Not given: unchanged (""); "inherit": None."""
    if value is None:
        return ""
    return None if value == INHERIT else value


def _station(hub: EvChargingCoordinator, device_id: str) -> str:
    device = dr.async_get(hub.hass).async_get(device_id)
    for domain, identifier in device.identifiers if device else ():
        named = parse_device_identifier(identifier) if domain == DOMAIN else None
        if named is not None and named[0] in hub.site.stations:
            return named[0]
    raise _error("invalid_device", device_id=device_id)


async def _check_admin(hass: HomeAssistant, call: ServiceCall) -> None:
    from .services import _check_admin as check  # noqa: PLC0415  # one admin check

    await check(hass, call)


async def _run(
    hass: HomeAssistant, handler: Handler, admin: bool, call: ServiceCall
) -> ServiceResponse:
    if admin:
        await _check_admin(hass, call)
    response = await handler(_hub(hass), call)
    return response if call.return_response else None


_MODES = vol.In([*AuthMode, INHERIT])
_OFFLINE = vol.In([*OfflineBehaviour, INHERIT])

SERVICES: dict[str, tuple[dict[Any, Any], Handler, bool, SupportsResponse]] = {
    "add_card": (
        {vol.Required("id_tag"): _ID_TAG, **_CARD_FIELDS},
        _add,
        False,
        SupportsResponse.OPTIONAL,
    ),
    "update_card": (
        {vol.Required("id_tag"): _ID_TAG, **_CARD_FIELDS},
        _update,
        False,
        SupportsResponse.OPTIONAL,
    ),
    "remove_card": ({vol.Required("id_tag"): _ID_TAG}, _remove, False, SupportsResponse.OPTIONAL),
    "approve_card": (
        {vol.Required("id_tag"): vol.All(cv.ensure_list, [_ID_TAG])},
        _approve,
        False,
        SupportsResponse.OPTIONAL,
    ),
    "bulk_edit_cards": (
        {
            vol.Required("id_tags"): vol.All(cv.ensure_list, [_ID_TAG], vol.Length(min=1)),
            vol.Optional("authorized"): cv.boolean,
            vol.Optional("vip"): cv.boolean,
            vol.Optional("zones"): _ZONES,
        },
        _bulk_edit,
        False,
        SupportsResponse.OPTIONAL,
    ),
    "import_cards": (
        {
            vol.Exclusive("csv", "source"): vol.All(cv.string, vol.Length(max=MAX_IMPORT_BYTES)),
            vol.Exclusive("path", "source"): cv.string,
            vol.Optional("format", default="auto"): vol.In(["auto", "ours", "charger"]),
            vol.Optional("mode", default="replace"): vol.In(["replace", "add_update"]),
        },
        _import,
        False,
        SupportsResponse.OPTIONAL,
    ),
    "export_cards": ({}, _export, False, SupportsResponse.ONLY),
    "list_cards": (
        {
            vol.Optional("id_tag"): cv.string,
            vol.Optional("comment"): cv.string,
            vol.Optional("zone"): cv.string,
            vol.Optional("vip"): cv.boolean,
            vol.Optional("authorized"): cv.boolean,
            vol.Optional("pending"): cv.boolean,
            vol.Optional("offset", default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
            vol.Optional("limit", default=100): vol.All(
                vol.Coerce(int), vol.Range(min=1, max=1000)
            ),
        },
        _list,
        False,
        SupportsResponse.ONLY,
    ),
    "set_authorization": (
        {
            vol.Optional("zone"): cv.string,
            vol.Optional("device_id"): cv.string,
            vol.Optional("mode"): _MODES,
            vol.Optional("offline"): _OFFLINE,
            vol.Optional("site_id_tag"): _ID_TAG,
        },
        _set_authorization,
        True,
        SupportsResponse.OPTIONAL,
    ),
}


def async_setup_card_services(hass: HomeAssistant) -> None:
    """Register the card and authorization service actions."""
    for name, (fields, handler, admin, response) in SERVICES.items():
        hass.services.async_register(
            DOMAIN,
            name,
            partial(_run, hass, handler, admin),
            schema=vol.Schema(fields),
            supports_response=response,
        )
