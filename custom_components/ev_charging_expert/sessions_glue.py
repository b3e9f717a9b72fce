"""Charge data records in HA: the session store of a config entry, its repair and totals.

The store lives beside the station registry: SQLite in the config folder by default (HA's
backups include it), or the database URL of the options. The recorder is fed by the
Controller's event stream; entities read the totals kept here; the export view serves the CSV
files `export_sessions` writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import logging
from pathlib import Path
import re
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from homeassistant.core import callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import DOMAIN, signal_connector, signal_station
from .evcore.events import SessionEnded
from .evcore.sessions import (
    RECORDER_EVENTS,
    SessionQueryError,
    SessionRecord,
    SessionRecorder,
    SessionStore,
    database_url,
)
from .issues import clear_issue, raise_issue

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.core import HomeAssistant

    from .coordinator import EvChargingCoordinator
    from .evcore.events import ControllerEvent

_LOGGER = logging.getLogger(__name__)

CONF_SESSIONS_DB_URL: Final = "sessions_db_url"
CONF_SESSIONS_RETENTION_DAYS: Final = "sessions_retention_days"
ISSUE_SESSIONS_DB: Final = "sessions_db_unreachable"
EXPORT_DIR: Final = "ev_charging_expert_exports"
EXPORT_URL: Final = f"/api/{DOMAIN}/sessions"
_EXPORT_NAME = re.compile(r"^sessions_[0-9A-Za-z_.-]+\.csv$")


def storage_dir(hass: HomeAssistant) -> Path:
    """Where the SQLite file, its write buffer and the exports live: the config folder."""
    return Path(hass.config.config_dir)


class SessionsHub:
    """The session store, recorder and per-connector totals of one config entry."""

    def __init__(self, hub: EvChargingCoordinator) -> None:
        self.hub = hub
        hass = hub.hass
        entry = hub.entry
        options = entry.options
        self.url = database_url(options.get(CONF_SESSIONS_DB_URL), storage_dir(hass))
        self.retention_days = int(options.get(CONF_SESSIONS_RETENTION_DAYS, 0) or 0)
        suffix = "" if not options.get(CONF_SESSIONS_DB_URL) else f".{entry.entry_id}"
        buffer = storage_dir(hass) / f"ev_charging_expert_sessions{suffix}.buffer.json"
        self.store = SessionStore(
            self.url,
            buffer_path=buffer,
            executor=hass.async_add_executor_job,
            on_state=self._state_from_thread,
        )
        controller = hub.controller
        self.recorder = SessionRecorder(
            hub.site,
            self.store,
            clock=controller.clock,
            tou=lambda: controller.tou,
            comment_of=controller.cards.comment_of,
        )
        self.today: dict[tuple[str, int], float] = {}
        self.month: dict[tuple[str, int], float] = {}
        self._day: tuple[int, int, int] | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle
    async def async_start(self) -> None:
        """Open the database (or buffer), resume open sessions, follow the event stream."""
        await self.recorder.restore()
        self.store.start()
        self._state_changed(self.store.available, self.store.error)
        await self._load_totals()
        controller = self.hub.controller
        self._unsubscribe = [
            controller.subscribe(self.recorder.on_event, kinds=RECORDER_EVENTS),
            self.recorder.subscribe(self._on_record),
            async_track_time_interval(self.hub.hass, self._housekeeping, timedelta(hours=1)),
        ]
        self._purge()

    async def async_stop(self) -> None:
        """Write what is queued and close the database."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self.store.async_close()

    # ------------------------------------------------------------------ database state
    def _state_from_thread(self, available: bool, error: str | None) -> None:
        self.hub.hass.loop.call_soon_threadsafe(self._state_changed, available, error)

    @callback
    def _state_changed(self, available: bool, error: str | None) -> None:
        issue = f"{ISSUE_SESSIONS_DB}_{self.hub.entry.entry_id}"
        if available:
            clear_issue(self.hub.hass, issue)
            return
        raise_issue(
            self.hub.hass,
            issue,
            ISSUE_SESSIONS_DB,
            {
                "url": self.url.render_as_string(hide_password=True),
                "error": error or "",
                "buffer": str(self.store._buffer_path),  # noqa: SLF001
            },
            error=True,
        )

    # ------------------------------------------------------------------ totals
    def _periods(self) -> tuple[datetime, datetime]:
        now = dt_util.now()
        day = dt_util.start_of_local_day(now)
        return day, day.replace(day=1)

    async def _load_totals(self) -> None:
        if not self.store.available:
            return
        day, month = self._periods()
        self.today, self.month = await self.store.run(
            lambda: (self.store.energy_since(day), self.store.energy_since(month))
        )
        self._day = (day.year, day.month, day.day)

    def _roll(self) -> None:
        """A new day (or month) empties its totals."""
        day, _ = self._periods()
        key = (day.year, day.month, day.day)
        if self._day is not None and key != self._day:
            self.today = {}
            if key[:2] != self._day[:2]:
                self.month = {}
        self._day = key

    def energy_today(self, station_id: str, connector_id: int | None) -> float:
        """Wh of the sessions ended today (local time), of a connector or a station."""
        self._roll()
        return _total(self.today, station_id, connector_id)

    def energy_month(self, station_id: str, connector_id: int | None) -> float:
        """Wh of the sessions ended this month (local time)."""
        self._roll()
        return _total(self.month, station_id, connector_id)

    def last(self, station_id: str, connector_id: int | None) -> SessionRecord | None:
        """The last ended session of a connector (or of any connector of the station)."""
        records = [
            r
            for (sid, cid), r in self.recorder.last.items()
            if sid == station_id and (connector_id is None or cid == connector_id)
        ]
        return max(records, key=lambda r: r.stopped_at or r.started_at, default=None)

    @callback
    def _on_record(self, record: SessionRecord) -> None:
        self._roll()
        key = (record.station_id, record.connector_id)
        energy = record.energy_wh or 0.0
        self.today[key] = self.today.get(key, 0.0) + energy
        self.month[key] = self.month.get(key, 0.0) + energy
        entry_id = self.hub.entry.entry_id
        async_dispatcher_send(self.hub.hass, signal_station(entry_id, record.station_id))
        async_dispatcher_send(
            self.hub.hass, signal_connector(entry_id, record.station_id, record.connector_id)
        )

    @callback
    def _housekeeping(self, _now: datetime) -> None:
        before = self._day
        self._roll()
        if before != self._day:
            for station_id in self.hub.site.stations:
                async_dispatcher_send(
                    self.hub.hass, signal_station(self.hub.entry.entry_id, station_id)
                )
            self._purge()

    def _purge(self) -> None:
        if self.retention_days > 0:
            self.store.purge_before(dt_util.utcnow() - timedelta(days=self.retention_days))

    # ------------------------------------------------------------------ export
    def export_dir(self) -> Path:
        """Where exports are written (inside the config folder)."""
        return storage_dir(self.hub.hass) / EXPORT_DIR


def _total(
    totals: dict[tuple[str, int], float], station_id: str, connector_id: int | None
) -> float:
    return sum(
        wh
        for (sid, cid), wh in totals.items()
        if sid == station_id and (connector_id is None or cid == connector_id)
    )


# ---------------------------------------------------------------------- coordinator hooks
async def async_setup_sessions(hub: EvChargingCoordinator) -> SessionsHub:
    """Build and start the sessions hub of a coordinator (from `async_load`)."""
    # Built in the executor: the engine imports its database driver on creation.
    sessions = await hub.hass.async_add_executor_job(SessionsHub, hub)
    await sessions.async_start()
    _register_view(hub.hass)
    return sessions


def session_event_data(hub: EvChargingCoordinator, event: ControllerEvent) -> dict[str, Any]:
    """Extra data of the session-ended bus event: the charge data record."""
    sessions: SessionsHub | None = getattr(hub, "sessions", None)
    if sessions is None or not isinstance(event, SessionEnded):
        return {}
    return {"record": sessions.recorder.record_of(event.station_id, event.transaction).to_dict()}


def sessions_of(hub: EvChargingCoordinator) -> SessionsHub | None:
    """The sessions hub of a coordinator (None while it starts)."""
    return getattr(hub, "sessions", None)


# ---------------------------------------------------------------------- download view
def _register_view(hass: HomeAssistant) -> None:
    if getattr(hass, "http", None) is None or hass.data.get(f"{DOMAIN}_export_view"):
        return
    hass.http.register_view(SessionsExportView())
    hass.data[f"{DOMAIN}_export_view"] = True


class SessionsExportView(HomeAssistantView):
    """Download of an exported CSV file; any authenticated user (admins and users)."""

    url = EXPORT_URL + "/{filename}"
    name = f"api:{DOMAIN}:sessions"
    requires_auth = True

    async def get(self, request: web.Request, filename: str) -> web.StreamResponse:
        """The file, if it is an export."""
        hass = request.app[KEY_HASS]
        if not _EXPORT_NAME.match(filename):
            return web.Response(status=404)
        path = storage_dir(hass) / EXPORT_DIR / filename
        if not await hass.async_add_executor_job(path.is_file):
            return web.Response(status=404)
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )


# ---------------------------------------------------------------------- options
def sessions_options_schema(options: Mapping[str, Any]) -> dict[Any, Any]:
    """The session options of the options form (database URL, retention)."""
    return {
        vol.Optional(
            CONF_SESSIONS_DB_URL,
            description={"suggested_value": options.get(CONF_SESSIONS_DB_URL, "")},
        ): cv.string,
        vol.Optional(
            CONF_SESSIONS_RETENTION_DAYS,
            description={"suggested_value": options.get(CONF_SESSIONS_RETENTION_DAYS, 0)},
        ): vol.All(vol.Coerce(int), vol.Range(min=0, max=36500)),
    }


def sessions_options_errors(user_input: Mapping[str, Any]) -> dict[str, str]:
    """Errors of the session options (a URL SQLAlchemy cannot parse)."""
    url = user_input.get(CONF_SESSIONS_DB_URL)
    if not url:
        return {}
    try:
        database_url(url, ".")
    except SessionQueryError:
        return {CONF_SESSIONS_DB_URL: "invalid_db_url"}
    return {}


async def async_sessions_options_changed(hub: EvChargingCoordinator) -> None:
    """A new database URL or retention: reopen the store (open sessions resume from it)."""
    current = sessions_of(hub)
    if current is None:
        return
    options = hub.entry.options
    url = database_url(options.get(CONF_SESSIONS_DB_URL), storage_dir(hub.hass))
    retention = int(options.get(CONF_SESSIONS_RETENTION_DAYS, 0) or 0)
    if url == current.url and retention == current.retention_days:
        return
    await current.async_stop()
    hub.sessions = await async_setup_sessions(hub)


def sessions_diagnostics(hub: EvChargingCoordinator) -> dict[str, Any]:
    """The session store's state (no password, no session data)."""
    sessions = sessions_of(hub)
    if sessions is None:
        return {"running": False}
    store = sessions.store
    return {
        "running": True,
        "database": (
            f"sqlite: {Path(store.url.database or '').name}"
            if store.url.get_backend_name() == "sqlite"
            else store.url.render_as_string(hide_password=True)
        ),
        "available": store.available,
        "error": store.error,
        "schema_found": store.schema_found,
        "buffered": store.buffered,
        "dropped": store.dropped,
        "retention_days": sessions.retention_days,
    }
