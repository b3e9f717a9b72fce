"""The coordinator: owns evcore's Controller for one config entry and maps it to HA.

Push, not poll (as heos): the Controller's one event stream becomes dispatcher signals for the
entities that changed, HA bus events for automations, device registry updates and repairs.
Entities read the Controller's views through the coordinator; commands go to the Controller.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import (
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    EVENT_CARD_PRESENTED,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
    signal_connector,
    signal_new_zone,
    signal_station,
    signal_zone,
)
from .devices import DeviceSync
from .entry_data import build_ssl_context, load_settings, site_settings, zones_from_entry
from .evcore.charger import TriggerMessage
from .evcore.clock import SystemClock
from .evcore.config import terminal_zones, validate_zones
from .evcore.controller import Controller
from .evcore.errors import ConfigError, EvcoreError
from .evcore.events import (
    AllocationUpdated,
    CardPresented,
    SessionEnded,
    SessionStarted,
    StationAccepted,
    StationAdded,
    StationBooted,
    StationConfigured,
    StationPending,
    StationRemoved,
    StationUncontrollable,
    StationUpdated,
)
from .evcore.keys import ConnectorKey
from .evcore.model import NewChargerPolicy, Registration
from .issues import (
    clear_pending,
    clear_uncontrollable,
    raise_pending,
    raise_uncontrollable,
    sync_building_warnings,
    sync_degraded,
    sync_orphans,
    sync_unassigned,
)
from .meter_sync import MeterSync
from .rules_ha import RulesSync
from .security import admission_listener, sync_registry_issue
from .store import HaSiteStore

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .evcore.charger import Charger
    from .evcore.config import ZoneConfig
    from .evcore.events import ControllerEvent
    from .evcore.model import Transaction
    from .evcore.site import Site
    from .evcore.view import AllocationView, ZoneView

_LOGGER = logging.getLogger(__name__)

type EvChargingConfigEntry = ConfigEntry[EvChargingCoordinator]


class EvChargingCoordinator:
    """One per config entry: the Controller and its bindings to HA."""

    def __init__(self, hass: HomeAssistant, entry: EvChargingConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.store = HaSiteStore(hass, entry.entry_id)
        self.controller = Controller(
            clock=SystemClock(),
            store=self.store,
            settings=site_settings(entry),
            load_settings=load_settings(entry),
            executor=hass.async_add_executor_job,
        )
        self.devices = DeviceSync(hass, entry.entry_id, self.controller.site)
        self.meters = MeterSync(hass, entry, self.controller)
        self.rules = RulesSync(hass, entry, self.controller)
        self.zones: dict[str, ZoneConfig] = {}
        self._known_zones: set[str] = set()
        self._degraded_issues: set[str] = set()
        self._building_issues: set[str] = set()
        self._unsubscribe = self.controller.subscribe(self._on_event)
        self._unsubscribe_admission = self.controller.subscribe(admission_listener(hass))

    @property
    def site(self) -> Site:
        """The stations, their connectors and sessions."""
        return self.controller.site

    # ------------------------------------------------------------------ lifecycle
    async def async_load(self) -> None:
        """Load the registry; the stations it holds get entities when the platforms set up."""
        await self.controller.restore()
        sync_registry_issue(self.hass, self.site, self.store.path)
        self.devices.migrate_identifiers()
        self.devices.restore()
        await self.meters.sync(self.zones)
        self.apply_load_config()
        self._known_zones = set(self.zones)

    async def async_start(self) -> None:
        """Open the port (after the platforms listen); raises OSError or ssl.SSLError."""
        ssl_context = None
        certfile = self.entry.data.get(CONF_SSL_CERTFILE)
        keyfile = self.entry.data.get(CONF_SSL_KEYFILE)
        if certfile and keyfile:
            ssl_context = await self.hass.async_add_executor_job(
                build_ssl_context, certfile, keyfile
            )
        await self.controller.start(
            host=self.entry.data[CONF_HOST],
            port=self.entry.data[CONF_PORT],
            ssl_context=ssl_context,
        )
        for station_id, station in self.site.stations.items():
            if station.registration is Registration.PENDING:
                raise_pending(self.hass, station_id)
        if self.site.settings.new_charger_policy is NewChargerPolicy.PENDING:
            for station_id in self.site.pending:
                raise_pending(self.hass, station_id)

    async def async_stop(self) -> None:
        """Close every charger connection and the port, then flush the registry."""
        self._unsubscribe()
        self._unsubscribe_admission()
        self.meters.stop()
        self.rules.stop()
        await self.controller.stop()
        await self.store.flush()

    async def async_config_changed(self) -> None:
        """Zones, meters, meter models (subentries) and site settings (options) apply live.

        No reload: that would drop every charger connection.
        """
        # One flow step may change several subentries (a renamed model and the meters that
        # use it): let it finish, so the meters never see half of the change.
        await asyncio.sleep(0)
        await self.meters.sync(self.zones)
        self.apply_load_config()

    # ------------------------------------------------------------------ zones and settings
    def apply_load_config(self) -> None:
        """Push the zones (subentries) and site settings (options) into load management."""
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
        self.controller.set_zones(zones)
        self.controller.set_load_settings(load_settings(self.entry))
        self._zones_changed(previous)
        sync_orphans(self.hass, orphans)
        self._sync_unassigned()
        for zone_id in set(zones) - self._known_zones:
            self._known_zones.add(zone_id)
            async_dispatcher_send(self.hass, signal_new_zone(self.entry.entry_id), zone_id)
        # Forget only deleted zones: an orphan keeps its entities (unavailable) and gets them
        # back when it has a parent again, so it must not be announced as new a second time.
        self._known_zones &= set(self.entry.subentries)
        self.meters.push_zone_meters(zones)
        self.rules.apply(zones)

    def _zones_changed(self, previous: dict[str, ZoneConfig]) -> None:
        changed = {
            z for z in previous.keys() | self.zones.keys() if previous.get(z) != self.zones.get(z)
        }
        if not changed:
            return
        entry_id = self.entry.entry_id
        self.devices.rename_zones(z for z in self.zones.values() if z.zone_id in changed)
        for zone_id in changed:
            async_dispatcher_send(self.hass, signal_zone(entry_id, zone_id))
        # The zone selects show zone names and the zones stations may be put in.
        for station_id in self.devices.accepted_stations():
            async_dispatcher_send(self.hass, signal_station(entry_id, station_id))

    def _sync_unassigned(self) -> None:
        terminal = terminal_zones(self.zones)
        sync_unassigned(
            self.hass,
            (
                sid
                for sid in self.devices.accepted_stations()
                if self.site.stations[sid].config.zone_id not in terminal
            ),
        )

    # ------------------------------------------------------------------ views
    def allocation(self, station_id: str, connector_id: int) -> AllocationView | None:
        """The connector's share at the last run; None when it is not managed."""
        return self.controller.allocation(ConnectorKey(station_id, connector_id))

    def zone_view(self, zone_id: str) -> ZoneView | None:
        """The zone's status at the last run (None once it left the tree)."""
        if zone_id not in self.zones:
            return None
        return self.controller.zone_view(zone_id)

    # ------------------------------------------------------------------ commands
    def request_boot(self, station_id: str) -> None:
        """Ask a connected charger to boot again now (after it was accepted)."""
        charger = self.site.chargers.get(station_id)
        if charger is not None:
            charger.spawn(_trigger_boot(charger))

    # ------------------------------------------------------------------ events
    def _on_event(self, event: ControllerEvent) -> None:  # noqa: C901, PLR0912  # one case per event
        entry_id = self.entry.entry_id
        match event:
            case StationUpdated(station_id=sid, connector_id=cid):
                if not self.site.is_accepted(sid):
                    return
                self.devices.ensure(sid)
                # Connector 0 is the station itself.
                if not cid:
                    async_dispatcher_send(self.hass, signal_station(entry_id, sid))
                else:
                    async_dispatcher_send(self.hass, signal_connector(entry_id, sid, cid))
            case StationAdded(station_id=sid) | StationAccepted(station_id=sid):
                if isinstance(event, StationAccepted):
                    clear_pending(self.hass, sid)
                if self.site.is_accepted(sid):
                    self.devices.ensure(sid)
                    self._sync_unassigned()
            case StationPending(station_id=sid):
                raise_pending(self.hass, sid)
            case StationBooted(station_id=sid):
                # Load management tries again after a boot; it says so again if it must.
                clear_uncontrollable(self.hass, sid)
            case StationRemoved(station_id=sid):
                self.devices.forget(sid)
                clear_uncontrollable(self.hass, sid)
                self._sync_unassigned()
            case StationConfigured():
                self._sync_unassigned()
            case StationUncontrollable(station_id=sid, reason=reason):
                raise_uncontrollable(self.hass, sid, reason)
            case AllocationUpdated():
                self._on_allocation(event)
            case CardPresented():
                data = event.to_dict()
                del data["kind"]
                self.hass.bus.async_fire(EVENT_CARD_PRESENTED, data)
            case SessionStarted() | SessionEnded():
                name = (
                    EVENT_SESSION_STARTED
                    if isinstance(event, SessionStarted)
                    else (EVENT_SESSION_ENDED)
                )
                self.hass.bus.async_fire(name, _session_event(event.station_id, event.transaction))

    def _on_allocation(self, update: AllocationUpdated) -> None:
        entry_id = self.entry.entry_id
        for station_id in update.stations:
            async_dispatcher_send(self.hass, signal_station(entry_id, station_id))
        if update.building_warnings_changed:
            self._building_issues = sync_building_warnings(
                self.hass,
                self.controller.load.negative_building_loads,
                self.zones,
                self._building_issues,
            )
        if update.degraded_problems_changed:
            self._degraded_issues = sync_degraded(
                self.hass, self.controller.degraded_problems(), self.zones, self._degraded_issues
            )
        for key in update.connectors:
            async_dispatcher_send(
                self.hass, signal_connector(entry_id, key.station_id, key.connector_id)
            )
        for zone_id in update.zones:
            async_dispatcher_send(self.hass, signal_zone(entry_id, zone_id))


async def _trigger_boot(charger: Charger) -> None:
    try:
        await charger.trigger(TriggerMessage.BOOT_NOTIFICATION)
    except EvcoreError as err:
        _LOGGER.info("%s: could not trigger its boot: %s", charger.station_id, err)


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
        "energy_wh": transaction.energy_wh(),
        "reason": transaction.stop_reason,
    }
