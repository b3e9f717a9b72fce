"""The BMS Modbus slave in Home Assistant: options, lifecycle, repair, point list download.

The slave itself is `evcore.bms` (HA-free); this module builds its settings from the options
flow's "bms" section, keeps its slot table in HA's `Store`, starts and stops it with the entry
(and when the options change), raises a repair when its port cannot be bound, and serves the
point list CSV to logged-in users at `/api/ev_charging_expert/<entry_id>/bms_points.csv`.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.data_entry_flow import section
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.helpers.storage import Store
import voluptuous as vol

from .const import DOMAIN
from .evcore.bms import BmsServer, BmsSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.core import HomeAssistant

    from .coordinator import EvChargingConfigEntry
    from .evcore.controller import Controller

_LOGGER = logging.getLogger(__name__)

CONF_BMS = "bms"
CONF_BMS_ENABLED = "enabled"
CONF_BMS_HOST = "host"
CONF_BMS_PORT = "port"
CONF_BMS_UNIT_IDS = "unit_ids"
CONF_BMS_ALLOWED_CLIENTS = "allowed_clients"
CONF_BMS_ALLOW_CONTROL = "allow_control"
DEFAULT_BMS_HOST = "127.0.0.1"
DEFAULT_BMS_PORT = 502
ISSUE_BMS_CANNOT_LISTEN = "bms_cannot_listen"
STORAGE_VERSION = 1
_SAVE_DELAY = 2.0
_VIEW_REGISTERED = f"{DOMAIN}_bms_view"


def signal_bms(entry_id: str) -> str:
    """Dispatcher signal: the slave's status changed (or it was enabled)."""
    return f"{DOMAIN}_{entry_id}_bms"


# ---------------------------------------------------------------------- options
def bms_options_schema(options: Mapping[str, Any]) -> dict[Any, Any]:
    """The "bms" section of the options form (collapsed unless enabled)."""
    current = dict(options.get(CONF_BMS) or {})
    fields = vol.Schema(
        {
            vol.Required(
                CONF_BMS_ENABLED, default=bool(current.get(CONF_BMS_ENABLED, False))
            ): cv.boolean,
            vol.Required(
                CONF_BMS_HOST, default=current.get(CONF_BMS_HOST, DEFAULT_BMS_HOST)
            ): cv.string,
            vol.Required(
                CONF_BMS_PORT, default=current.get(CONF_BMS_PORT, DEFAULT_BMS_PORT)
            ): vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
            vol.Optional(
                CONF_BMS_UNIT_IDS,
                description={"suggested_value": current.get(CONF_BMS_UNIT_IDS, "")},
            ): cv.string,
            vol.Optional(
                CONF_BMS_ALLOWED_CLIENTS,
                description={"suggested_value": current.get(CONF_BMS_ALLOWED_CLIENTS, "")},
            ): cv.string,
            vol.Required(
                CONF_BMS_ALLOW_CONTROL, default=bool(current.get(CONF_BMS_ALLOW_CONTROL, False))
            ): cv.boolean,
        }
    )
    collapsed = not current.get(CONF_BMS_ENABLED, False)
    return {vol.Optional(CONF_BMS): section(fields, {"collapsed": collapsed})}


def _unit_ids(text: str) -> frozenset[int]:
    ids = frozenset(int(part) for part in _split(text))
    if any(not 0 <= i <= 255 for i in ids):  # noqa: PLR2004  # the unit id is one byte
        raise ValueError(text)
    return ids


def _clients(text: str) -> frozenset[str]:
    return frozenset(str(ipaddress.ip_address(part)) for part in _split(text))


def _split(text: str) -> list[str]:
    return [part.strip() for part in str(text or "").replace(";", ",").split(",") if part.strip()]


def bms_settings(options: Mapping[str, Any]) -> BmsSettings | None:
    """The slave's settings; None when it is off (or its options do not parse)."""
    data = dict(options.get(CONF_BMS) or {})
    if not data.get(CONF_BMS_ENABLED):
        return None
    try:
        return BmsSettings(
            host=str(data.get(CONF_BMS_HOST) or DEFAULT_BMS_HOST),
            port=int(data.get(CONF_BMS_PORT, DEFAULT_BMS_PORT)),
            unit_ids=_unit_ids(data.get(CONF_BMS_UNIT_IDS, "")),
            allowed_clients=_clients(data.get(CONF_BMS_ALLOWED_CLIENTS, "")),
            allow_control=bool(data.get(CONF_BMS_ALLOW_CONTROL, False)),
        )
    except ValueError:
        _LOGGER.error("BMS options cannot be read, the Modbus slave stays off: %s", data)  # noqa: TRY400
        return None


async def validate_bms_options(
    hass: HomeAssistant, entry: EvChargingConfigEntry, user_input: Mapping[str, Any]
) -> dict[str, str]:
    """Errors of the "bms" section: unit ids, allowed clients, a port that is taken."""
    data = dict(user_input.get(CONF_BMS) or {})
    if not data.get(CONF_BMS_ENABLED):
        return {}
    try:
        _unit_ids(data.get(CONF_BMS_UNIT_IDS, ""))
    except ValueError:
        return {"base": "bms_unit_ids"}
    try:
        _clients(data.get(CONF_BMS_ALLOWED_CLIENTS, ""))
    except ValueError:
        return {"base": "bms_allowed_clients"}
    binding: BmsBinding | None = getattr(entry.runtime_data, "bms", None)
    running = binding.server if binding is not None else None
    host, port = str(data.get(CONF_BMS_HOST)), int(data[CONF_BMS_PORT])
    if running is not None and running.port == port:
        return {}  # our own slave holds it
    from .config_flow import _port_is_free  # noqa: PLC0415  # the OCPP port's own check

    if not await hass.async_add_executor_job(_port_is_free, host, port):
        return {"base": "bms_port_in_use"}
    return {}


# ---------------------------------------------------------------------- slot store
class HaSlotStore:
    """The slot table in HA's `Store` (.storage/ev_charging_expert.<entry>.bms_slots)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.bms_slots", atomic_writes=True
        )

    async def load(self) -> dict[str, Any] | None:
        """The saved table (None on first start)."""
        return await self._store.async_load()

    def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save soon; HA flushes pending saves when it stops."""
        self._store.async_delay_save(data, _SAVE_DELAY)

    async def remove(self) -> None:
        """Delete the file (entry removed)."""
        await self._store.async_remove()


# ---------------------------------------------------------------------- the binding
class BmsBinding:
    """Starts, stops and restarts the slave as the options say."""

    def __init__(
        self, hass: HomeAssistant, entry: EvChargingConfigEntry, controller: Controller
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.controller = controller
        self.store = HaSlotStore(hass, entry.entry_id)
        self.server: BmsServer | None = None
        self.settings: BmsSettings | None = None
        self.enabled = False
        """Whether the options ask for the slave (running or not)."""
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def issue_id(self) -> str:
        """The repair raised when the port cannot be bound."""
        return f"{ISSUE_BMS_CANNOT_LISTEN}_{self.entry.entry_id}"

    async def async_start(self) -> None:
        """Start the slave when enabled; a port that is taken raises a repair, not an error."""
        _register_view(self.hass)
        await self._apply(bms_settings(self.entry.options))

    async def async_apply(self) -> None:
        """Options changed: restart the slave when its settings did."""
        settings = bms_settings(self.entry.options)
        if settings != self.settings or (settings is not None and self.server is None):
            await self._apply(settings)

    async def async_stop(self) -> None:
        """Stop the slave (unload)."""
        await self._stop()

    async def _apply(self, settings: BmsSettings | None) -> None:
        await self._stop()
        self.settings = settings
        self.enabled = settings is not None
        if settings is None:
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
            self._signal()
            return
        server = BmsServer(self.controller, store=self.store, settings=settings)
        try:
            await server.start()
        except OSError as err:
            await server.stop()
            _LOGGER.error(  # noqa: TRY400  # a configuration problem: no traceback
                "BMS Modbus slave cannot listen on %s:%s: %s", settings.host, settings.port, err
            )
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self.issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_BMS_CANNOT_LISTEN,
                translation_placeholders={
                    "host": settings.host,
                    "port": str(settings.port),
                    "error": str(err),
                },
            )
            self._signal()
            return
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        self.server = server
        self._unsubscribe = server.subscribe(self._signal)
        self._signal()

    async def _stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        server, self.server = self.server, None
        if server is not None:
            await server.stop()
            self._signal()

    def _signal(self) -> None:
        async_dispatcher_send(self.hass, signal_bms(self.entry.entry_id))

    def diagnostics(self) -> dict[str, Any]:
        """Settings, status and slots (no secrets here: addresses are the user's own)."""
        if self.server is None:
            return {"enabled": self.enabled, "listening": False}
        return {"enabled": self.enabled, **self.server.diagnostics()}


# ---------------------------------------------------------------------- point list download
def _register_view(hass: HomeAssistant) -> None:
    if hass.data.get(_VIEW_REGISTERED):
        return
    hass.data[_VIEW_REGISTERED] = True
    hass.http.register_view(BmsPointListView())


class BmsPointListView(HomeAssistantView):
    """The point list of the slots in use, as CSV; for logged-in users."""

    url = "/api/ev_charging_expert/{entry_id}/bms_points.csv"
    name = "api:ev_charging_expert:bms_points"
    requires_auth = True

    async def get(self, request: web.Request, entry_id: str) -> web.Response:
        """The CSV, or 404 when the entry or its slave is not there."""
        hass: HomeAssistant = request.app["hass"]
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            return web.Response(status=404, text="no such entry")
        binding: BmsBinding | None = getattr(entry.runtime_data, "bms", None)
        if binding is None or binding.server is None:
            return web.Response(status=404, text="the BMS Modbus slave is off")
        return web.Response(
            text=binding.server.point_list_csv(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="bms_points.csv"'},
        )
