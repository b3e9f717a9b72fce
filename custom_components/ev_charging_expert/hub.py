"""The hub: runs the evcore site and central system inside HA and maps its events to HA."""

from __future__ import annotations

from dataclasses import dataclass
import logging
import ssl
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store

from .const import (
    CONF_DEGRADED_SETPOINT,
    CONF_HEARTBEAT_INTERVAL,
    CONF_MAX_CURRENT,
    CONF_MINIMUM_STANDARD,
    CONF_MODE,
    CONF_NEW_CHARGER_POLICY,
    CONF_NOMINAL_VOLTAGE,
    CONF_PARENT,
    CONF_REEVALUATION_MINUTES,
    CONF_SHED_PRIORITY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    CONF_ZONE_NAME,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_NOMINAL_VOLTAGE,
    DEFAULT_REEVALUATION_MINUTES,
    DOMAIN,
    EVENT_CARD_PRESENTED,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
    ISSUE_ORPHAN_ZONE,
    ISSUE_PENDING_CHARGER,
    ISSUE_UNASSIGNED,
    ISSUE_UNCONTROLLABLE,
    NO_PARENT,
    SUBENTRY_ZONE,
    connector_device_id,
    signal_connector,
    signal_new_connector,
    signal_new_station,
    signal_new_zone,
    signal_station,
    signal_zone,
    station_device_id,
    zone_device_id,
)
from .evcore.allocation.model import MinimumStandard, Phases, Reason, ShedPriority
from .evcore.clock import SystemClock
from .evcore.config import (
    LoadSettings,
    ZoneConfig,
    ZoneMode,
    terminal_zones,
    validate_zones,
)
from .evcore.errors import ConfigError, EvcoreError
from .evcore.events import (
    CardPresented,
    SessionEnded,
    SessionStarted,
    SiteEvent,
    StationAccepted,
    StationAdded,
    StationBooted,
    StationConfigured,
    StationPending,
    StationRemoved,
    StationUncontrollable,
    StationUpdated,
)
from .evcore.loadmanager import LoadManager, LoadUpdate, connector_key
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
_LISTED = 10  # stations named in a repair; the count says the rest


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


SUSPENDED_REASONS = frozenset({Reason.SUSPENDED_PRIORITY, Reason.SUSPENDED_NO_CAPACITY})


@dataclass(frozen=True, slots=True)
class ZoneStatus:
    """What a zone's entities show."""

    budget: Phases
    allocated: Phases
    fixed: Phases
    charging: int
    suspended: int


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
        self.load = LoadManager(self.site, settings=load_settings(entry))
        self.zones: dict[str, ZoneConfig] = {}
        self._known_zones: set[str] = set()
        self._unsubscribe_load: Callable[[], None] | None = None
        self._zone_status: dict[str, ZoneStatus] = {}
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
        self.apply_load_config()
        self._known_zones = set(self.zones)
        self._unsubscribe_load = self.load.subscribe(self._on_load_update)

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
        if self._unsubscribe_load is not None:
            self._unsubscribe_load()
            self._unsubscribe_load = None
        self.load.stop()
        await self.store.flush()

    # ------------------------------------------------------------------ load management
    def apply_load_config(self) -> None:
        """Push the zones (subentries) and site settings (options) into the load manager.

        Applied live: a zone change must not reload the entry, which would drop every charger
        connection.
        """
        zones, orphans = zones_from_entry(self.entry)
        try:
            validate_zones(zones.values())
        except ConfigError as err:
            # The flows validate every change, so this is a hand-edited or corrupt entry.
            # No zone, no current: the safe reading of a configuration we cannot trust.
            _LOGGER.error(  # noqa: TRY400  # a configuration problem, not a bug: no traceback
                "Zone configuration refused, no EV gets current: %s", err
            )
            zones = {}
        previous, self.zones = self.zones, zones
        self._refresh_zone_config(previous)
        self.load.set_zones(zones)
        settings = load_settings(self.entry)
        if settings != self.load.settings:
            self.load.set_settings(settings)
        self._sync_orphan_issue(orphans)
        self._sync_unassigned_issue()
        for zone_id in set(zones) - self._known_zones:
            self._known_zones.add(zone_id)
            async_dispatcher_send(self.hass, signal_new_zone(self.entry.entry_id), zone_id)
        # Forget only deleted zones: an orphan keeps its entities (unavailable) and gets them
        # back when it has a parent again, so it must not be announced as new a second time.
        self._known_zones &= set(self.entry.subentries)

    def _refresh_zone_config(self, previous: dict[str, ZoneConfig]) -> None:
        """Refresh what shows zone configuration after the zones changed."""
        changed = {
            z for z in previous.keys() | self.zones.keys() if previous.get(z) != self.zones.get(z)
        }
        if not changed:
            return
        entry_id = self.entry.entry_id
        registry = dr.async_get(self.hass)
        for zone_id in changed:
            zone = self.zones.get(zone_id)
            if zone is None:
                # Left the tree (orphaned): no budget any more. The allocator's update names
                # only the zones it still has, so its entities must be told here.
                self._zone_status.pop(zone_id, None)
            else:
                device = registry.async_get_device(identifiers={zone_device_id(zone_id)})
                if device is not None and device.name != zone.name:
                    registry.async_update_device(device.id, name=zone.name)
            async_dispatcher_send(self.hass, signal_zone(entry_id, zone_id))
        # The zone selects show zone names and the zones stations may be put in.
        for station_id in self.accepted_stations():
            async_dispatcher_send(self.hass, signal_station(entry_id, station_id))

    def connector_allocation(
        self, station_id: str, connector_id: int
    ) -> tuple[float | None, Reason | None]:
        """The connector's setpoint (A) and why, from the last run; None when not managed."""
        last = self.load.last
        if last is None:
            return None, None
        key = connector_key(station_id, connector_id)
        return last.allocation.setpoints.get(key), last.allocation.reasons.get(key)

    def zone_status(self, zone_id: str) -> ZoneStatus | None:
        """Budget, allocation and EV counts of a zone (sub-zones included)."""
        return self._zone_status.get(zone_id)

    def _refresh_zone_status(self) -> None:
        last = self.load.last
        if last is None:
            self._zone_status = {}
            return
        index = last.snapshot.zone_index
        charging = [0] * len(index.zones)
        suspended = [0] * len(index.zones)
        allocation = last.allocation
        for connector in last.snapshot.connectors:
            key = connector.connector_id
            reason = allocation.reasons.get(key)
            is_charging = allocation.setpoints.get(key, 0.0) > 0
            is_suspended = reason in SUSPENDED_REASONS
            for z in index.paths[index.position[connector.zone_id]]:
                charging[z] += is_charging
                suspended[z] += is_suspended
        self._zone_status = {
            zone.zone_id: ZoneStatus(
                budget=zone.budget,
                allocated=allocation.zones[zone.zone_id].allocated,
                fixed=allocation.zones[zone.zone_id].fixed,
                charging=charging[i],
                suspended=suspended[i],
            )
            for i, zone in enumerate(index.zones)
        }

    def _on_load_update(self, update: LoadUpdate) -> None:
        previous = self._zone_status
        self._refresh_zone_status()
        entry_id = self.entry.entry_id
        for key in update.changed_connectors:
            station_id, _, connector = key.rpartition("#")
            async_dispatcher_send(self.hass, signal_connector(entry_id, station_id, int(connector)))
        # The EV counts are ours, not the allocator's: a zone whose allocation stayed the same
        # (32 A to one EV, then 16 A to each of two) still shows a new count.
        changed = update.changed_zones | {
            z
            for z in previous.keys() | self._zone_status.keys()
            if previous.get(z) != self._zone_status.get(z)
        }
        for zone_id in changed:
            async_dispatcher_send(self.hass, signal_zone(entry_id, zone_id))

    def _sync_orphan_issue(self, orphans: list[str]) -> None:
        if orphans:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                ISSUE_ORPHAN_ZONE,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_ORPHAN_ZONE,
                translation_placeholders={"zones": ", ".join(sorted(orphans))},
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_ORPHAN_ZONE)

    def _sync_unassigned_issue(self) -> None:
        terminal = terminal_zones(self.zones)
        unassigned = sorted(
            sid
            for sid in self.accepted_stations()
            if self.site.stations[sid].config.zone_id not in terminal
        )
        if unassigned:
            shown = ", ".join(unassigned[:_LISTED]) + (" …" if len(unassigned) > _LISTED else "")
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                ISSUE_UNASSIGNED,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_UNASSIGNED,
                translation_placeholders={"count": str(len(unassigned)), "stations": shown},
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_UNASSIGNED)

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
                    self._sync_unassigned_issue()
            case StationPending(station_id=sid):
                self._create_pending_issue(sid)
            case StationRemoved() | StationConfigured() | StationUncontrollable() | StationBooted():
                self._on_station_change(event)
            case CardPresented() | SessionStarted() | SessionEnded():
                self._fire_bus_event(event)

    def _on_station_change(
        self, event: StationRemoved | StationConfigured | StationUncontrollable | StationBooted
    ) -> None:
        match event:
            case StationBooted(station_id=sid):
                # Load management tries again after a boot; it says so again if it must.
                ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_UNCONTROLLABLE}_{sid}")
            case StationRemoved(station_id=sid):
                self._forget_devices(sid)
                ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_UNCONTROLLABLE}_{sid}")
                self._sync_unassigned_issue()
            case StationConfigured():
                self._sync_unassigned_issue()
            case StationUncontrollable(station_id=sid, reason=reason):
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    f"{ISSUE_UNCONTROLLABLE}_{sid}",
                    is_fixable=False,
                    severity=ir.IssueSeverity.WARNING,
                    translation_key=ISSUE_UNCONTROLLABLE,
                    translation_placeholders={"station_id": sid, "reason": reason},
                )

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
