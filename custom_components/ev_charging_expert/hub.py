"""The hub: runs the evcore site and central system inside HA and maps its events to HA."""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store

from .const import (
    CONF_HEARTBEAT_INTERVAL,
    CONF_NEW_CHARGER_POLICY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    DEFAULT_HEARTBEAT_INTERVAL,
    DOMAIN,
    EVENT_CARD_PRESENTED,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
    ISSUE_PENDING_CHARGER,
    connector_device_id,
    signal_connector,
    signal_new_connector,
    signal_new_station,
    signal_station,
    station_device_id,
)
from .evcore.clock import SystemClock
from .evcore.errors import EvcoreError
from .evcore.events import (
    CardPresented,
    SessionEnded,
    SessionStarted,
    SiteEvent,
    StationAccepted,
    StationAdded,
    StationPending,
    StationRemoved,
    StationUpdated,
)
from .evcore.model import BootInfo, NewChargerPolicy, Registration
from .evcore.ocpp.server import CentralSystem
from .evcore.site import Site, SiteSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant

    from .evcore.model import Transaction
    from .evcore.ocpp.v16 import ChargePointV16

_LOGGER = logging.getLogger(__name__)

type EvChargingConfigEntry = ConfigEntry[EvChargingHub]

STORAGE_VERSION = 1
_SAVE_DELAY = 2.0


class HaSiteStore:
    """evcore's SiteStore on top of HA's `Store` (atomic JSON in .storage)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}", atomic_writes=True
        )
        self._pending: Callable[[], dict[str, Any]] | None = None

    async def load(self) -> dict[str, Any] | None:
        """Load the registry."""
        return await self._store.async_load()

    def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save soon; HA flushes pending saves when it stops."""
        self._pending = data
        self._store.async_delay_save(data, _SAVE_DELAY)

    async def flush(self) -> None:
        """Write a pending save now (on unload)."""
        if self._pending is not None:
            await self._store.async_save(self._pending())
            self._pending = None

    async def remove(self) -> None:
        """Delete the file (entry removed)."""
        await self._store.async_remove()


def build_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """Server TLS context (OCPP security profile 2); blocking, run it in the executor."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


class EvChargingHub:
    """One per config entry: the site, its central system and their HA bindings."""

    def __init__(self, hass: HomeAssistant, entry: EvChargingConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.store = HaSiteStore(hass, entry.entry_id)
        settings = SiteSettings(
            new_charger_policy=NewChargerPolicy(
                entry.data.get(CONF_NEW_CHARGER_POLICY, NewChargerPolicy.ACCEPT)
            ),
            heartbeat_interval=int(
                entry.data.get(CONF_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL)
            ),
        )
        self.site = Site(SystemClock(), self.store, settings)
        self.central_system: CentralSystem | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._known_connectors: set[tuple[str, int]] = set()
        self._known_stations: set[str] = set()
        self._device_boot: dict[str, BootInfo | None] = {}

    async def async_load(self) -> None:
        """Load the registry; the stations it holds get entities when the platforms set up."""
        await self.site.load()
        for station_id in self.accepted_stations():
            self._known_stations.add(station_id)
            self._known_connectors.update(
                (station_id, cid) for cid in self.connectors_of(station_id)
            )
        self._unsubscribe = self.site.subscribe(self._on_site_event)

    async def async_start(self) -> None:
        """Open the port (after the platforms listen); raises OSError or ssl.SSLError."""
        ssl_context = None
        certfile = self.entry.data.get(CONF_SSL_CERTFILE)
        keyfile = self.entry.data.get(CONF_SSL_KEYFILE)
        if certfile and keyfile:
            ssl_context = await self.hass.async_add_executor_job(
                build_ssl_context, certfile, keyfile
            )
        self.central_system = CentralSystem(
            self.site,
            host=self.entry.data[CONF_HOST],
            port=self.entry.data[CONF_PORT],
            ssl_context=ssl_context,
        )
        await self.central_system.start()
        for station_id, station in self.site.stations.items():
            if station.registration is Registration.PENDING:
                self._create_pending_issue(station_id)

    async def async_stop(self) -> None:
        """Close every charger connection and the port, then flush the registry."""
        if self.central_system is not None:
            await self.central_system.stop()
            self.central_system = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.store.flush()

    # ------------------------------------------------------------------ entity bookkeeping
    def accepted_stations(self) -> list[str]:
        """Stations that have (or should have) entities."""
        return [
            sid for sid, s in self.site.stations.items() if s.registration is Registration.ACCEPTED
        ]

    def connectors_of(self, station_id: str) -> list[int]:
        """The connector ids (1..n) known for a station."""
        station = self.site.stations[station_id]
        return [c.connector_id for c in station.charge_points]

    # ------------------------------------------------------------------ site events
    def _on_site_event(self, event: SiteEvent) -> None:
        entry_id = self.entry.entry_id
        match event:
            case StationUpdated(station_id=sid, connector_id=cid):
                if not self.site.is_accepted(sid):
                    return
                self._ensure_entities(sid)
                # Connector 0 is the station itself.
                if not cid:
                    async_dispatcher_send(self.hass, signal_station(entry_id, sid))
                else:
                    async_dispatcher_send(self.hass, signal_connector(entry_id, sid, cid))
            case StationAdded(station_id=sid) | StationAccepted(station_id=sid):
                if isinstance(event, StationAccepted):
                    ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_PENDING_CHARGER}_{sid}")
                if self.site.is_accepted(sid):
                    self._ensure_entities(sid)
            case StationPending(station_id=sid):
                self._create_pending_issue(sid)
            case StationRemoved(station_id=sid):
                self._forget_devices(sid)
            case CardPresented() | SessionStarted() | SessionEnded():
                self._fire_bus_event(event)

    def _fire_bus_event(self, event: CardPresented | SessionStarted | SessionEnded) -> None:
        match event:
            case CardPresented():
                self.hass.bus.async_fire(
                    EVENT_CARD_PRESENTED,
                    {
                        "station_id": event.station_id,
                        "connector_id": event.connector_id,
                        "id_tag": event.id_tag,
                        "accepted": event.accepted,
                    },
                )
            case SessionStarted():
                self.hass.bus.async_fire(
                    EVENT_SESSION_STARTED, _session_event(event.station_id, event.transaction)
                )
            case SessionEnded():
                self.hass.bus.async_fire(
                    EVENT_SESSION_ENDED, _session_event(event.station_id, event.transaction)
                )

    def _ensure_entities(self, station_id: str) -> None:
        entry_id = self.entry.entry_id
        if station_id not in self._known_stations:
            self._known_stations.add(station_id)
            async_dispatcher_send(self.hass, signal_new_station(entry_id), station_id)
        for connector_id in self.connectors_of(station_id):
            if (station_id, connector_id) not in self._known_connectors:
                self._known_connectors.add((station_id, connector_id))
                async_dispatcher_send(
                    self.hass, signal_new_connector(entry_id), station_id, connector_id
                )
        self._update_device_info(station_id)

    def _update_device_info(self, station_id: str) -> None:
        boot = self.site.stations[station_id].boot
        if boot is None or self._device_boot.get(station_id) is boot:
            return
        self._device_boot[station_id] = boot
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(identifiers={station_device_id(station_id)})
        if device is not None:
            registry.async_update_device(
                device.id,
                manufacturer=boot.vendor,
                model=boot.model,
                serial_number=boot.serial,
                sw_version=boot.firmware_version,
            )

    def request_boot(self, station_id: str) -> None:
        """Ask a connected charger to boot again now (after it was accepted)."""
        handler = self.site.handlers.get(station_id)
        if handler is not None:
            handler.spawn(_trigger_boot(handler))

    def _forget_devices(self, station_id: str) -> None:
        registry = dr.async_get(self.hass)
        for station, connector_id in [k for k in self._known_connectors if k[0] == station_id]:
            device = registry.async_get_device(
                identifiers={connector_device_id(station, connector_id)}
            )
            if device is not None:
                registry.async_remove_device(device.id)
            self._known_connectors.discard((station, connector_id))
        self._known_stations.discard(station_id)
        self._device_boot.pop(station_id, None)

    def _create_pending_issue(self, station_id: str) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"{ISSUE_PENDING_CHARGER}_{station_id}",
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_PENDING_CHARGER,
            translation_placeholders={"station_id": station_id},
            data={"station_id": station_id},
        )


async def _trigger_boot(handler: ChargePointV16) -> None:
    try:
        await handler.trigger_message("BootNotification")
    except EvcoreError as err:
        _LOGGER.info("%s: could not trigger its boot: %s", handler.station_id, err)


def _session_event(station_id: str, transaction: Transaction) -> dict[str, Any]:
    return {
        "station_id": station_id,
        "connector_id": transaction.connector_id,
        "transaction_id": transaction.transaction_id,
        "id_tag": transaction.id_tag,
        "started_at": transaction.started_at.isoformat(),
        "stopped_at": transaction.stopped_at.isoformat() if transaction.stopped_at else None,
        "meter_start_wh": transaction.meter_start_wh,
        "meter_stop_wh": transaction.meter_stop_wh,
        "energy_wh": transaction.energy_wh(None),
        "reason": transaction.stop_reason,
    }
