"""The hub: runs the evcore site and central system inside HA and maps its events to HA."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from functools import partial
import logging
import ssl
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import (
    CONF_HOST,
    CONF_PORT,
)
from homeassistant.core import callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
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
    CONF_SAFETY_MARGIN,
    CONF_SHED_PRIORITY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    CONF_ZONE_NAME,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_NOMINAL_VOLTAGE,
    DEFAULT_REEVALUATION_MINUTES,
    DEFAULT_SAFETY_MARGIN,
    DOMAIN,
    EVENT_CARD_PRESENTED,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
    ISSUE_DEGRADED_ZERO,
    ISSUE_NEGATIVE_BUILDING,
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
from .evcore.charger import TriggerMessage
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
    AllocationUpdated,
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
from .evcore.keys import ConnectorKey
from .evcore.load import LoadManager
from .evcore.meters import (
    Meter,
    MeterConfig,
    MeterEvent,
    MeterModel,
    MeterPool,
    MeterReading,
    MeterState,
    MeterStateChanged,
    ModelRegistry,
    Quantity,
)
from .evcore.meters.catalog import model_from_data
from .evcore.model import BootInfo, NewChargerPolicy, Registration
from .evcore.ocpp.server import CentralSystem
from .evcore.site import Site, SiteSettings
from .power_meters import (
    CONF_METER,
    CONF_METER_KIND,
    CONF_REPORTING_ONLY,
    ISSUE_METER_INVALID,
    ISSUE_ZONE_WITHOUT_METER,
    METER_BASE_ENTITIES,
    METER_DISPLAY_INTERVAL,
    METER_KIND_HA_SENSORS,
    NO_METER,
    SUBENTRY_METER,
    SUBENTRY_METER_MODEL,
    HaSensorMeter,
    HaSensorMeterConfig,
    HubClock,
    MeterView,
    meter_device_id,
    signal_meter,
    signal_new_meter,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.core import (
        HomeAssistant,
    )

    from .evcore.charger import Charger
    from .evcore.clock import Cancelable
    from .evcore.meters.external import (
        MeterSource,
    )
    from .evcore.model import Transaction

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
        self._degraded_issues: set[str] = set()
        self._building_issues: set[str] = set()
        self.central_system: CentralSystem | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._known_connectors: set[tuple[str, int]] = set()
        self._known_stations: set[str] = set()
        self._device_boot: dict[str, BootInfo | None] = {}
        # Power meters: Modbus ones in the pool, HA-sensor ones fed from entities.
        self.meter_clock = HubClock(self.site)
        self.meter_pool = MeterPool(self.meter_clock)
        self.meter_models = ModelRegistry()
        self.modbus_meters: dict[str, Meter] = {}
        self.ha_meters: dict[str, HaSensorMeter] = {}
        self.meter_errors: dict[str, str] = {}
        """Meters whose configuration cannot be used (e.g. their model was deleted): why."""
        self.meter_entities: dict[str, set[str]] = {}
        """Keys of the entities the sensor platform made for each meter."""
        self.zone_meters: dict[str, MeterSource] = {}
        self._meter_lock = asyncio.Lock()
        self._meter_shown: dict[str, float] = {}
        self._meter_display_timers: dict[str, Cancelable] = {}
        self._unsubscribe_meters: Callable[[], None] | None = None

    async def async_load(self) -> None:
        """Load the registry; the stations it holds get entities when the platforms set up."""
        await self.site.load()
        for station_id in self.accepted_stations():
            self._known_stations.add(station_id)
            self._known_connectors.update(
                (station_id, cid) for cid in self.connectors_of(station_id)
            )
        self._unsubscribe = self.site.subscribe(self._on_site_event)
        self._unsubscribe_meters = self.meter_pool.subscribe(self._on_meter_event)
        await self.async_sync_meters()
        self.meter_pool.start()
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
        if self._unsubscribe_meters is not None:
            self._unsubscribe_meters()
            self._unsubscribe_meters = None
        await self.meter_pool.stop()
        for meter in self.ha_meters.values():
            meter.stop()
        for timer in self._meter_display_timers.values():
            timer.cancel()
        self._meter_display_timers.clear()
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
        self._sync_zone_meter_issue()
        self._push_zone_meters()

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
        key = ConnectorKey(station_id, connector_id)
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

    def _on_load_update(self, update: AllocationUpdated) -> None:
        previous = self._zone_status
        self._refresh_zone_status()
        entry_id = self.entry.entry_id
        for station_id in update.stations:
            async_dispatcher_send(self.hass, signal_station(entry_id, station_id))
        if update.degraded_problems_changed:
            self._sync_degraded_issues()
        if update.building_warnings_changed:
            self._sync_building_issues()
        for key in update.connectors:
            async_dispatcher_send(
                self.hass, signal_connector(entry_id, key.station_id, key.connector_id)
            )
        # The EV counts are ours, not the allocator's: a zone whose allocation stayed the same
        # (32 A to one EV, then 16 A to each of two) still shows a new count.
        changed = update.zones | {
            z
            for z in previous.keys() | self._zone_status.keys()
            if previous.get(z) != self._zone_status.get(z)
        }
        for zone_id in changed:
            async_dispatcher_send(self.hass, signal_zone(entry_id, zone_id))

    def _sync_degraded_issues(self) -> None:
        problems = self.load.degraded.problems
        for zone_id in self._degraded_issues - problems.keys():
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_DEGRADED_ZERO}_{zone_id}")
        for zone_id, reason in problems.items():
            zone = self.zones.get(zone_id)
            self._raise_issue(
                f"{ISSUE_DEGRADED_ZERO}_{zone_id}",
                ISSUE_DEGRADED_ZERO,
                {
                    "zone": zone.name if zone else zone_id,
                    "reason": reason,
                },
            )
        self._degraded_issues = set(problems)

    def _sync_building_issues(self) -> None:
        warnings = self.load.negative_building_loads
        for zone_id in self._building_issues - warnings.keys():
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_NEGATIVE_BUILDING}_{zone_id}")
        for zone_id, warning in warnings.items():
            zone = self.zones.get(zone_id)
            self._raise_issue(
                f"{ISSUE_NEGATIVE_BUILDING}_{zone_id}",
                ISSUE_NEGATIVE_BUILDING,
                {"zone": zone.name if zone else zone_id, "figures": warning.summary()},
            )
        self._building_issues = set(warnings)

    def _sync_orphan_issue(self, orphans: list[str]) -> None:
        if orphans:
            self._raise_issue(
                ISSUE_ORPHAN_ZONE,
                ISSUE_ORPHAN_ZONE,
                {"zones": ", ".join(sorted(orphans))},
                error=True,
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
            self._raise_issue(
                ISSUE_UNASSIGNED,
                ISSUE_UNASSIGNED,
                {"count": str(len(unassigned)), "stations": shown},
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_UNASSIGNED)

    # ------------------------------------------------------------------ power meters
    async def async_sync_meters(self) -> None:
        """Make the running meters match the meter and meter-model subentries (live)."""
        async with self._meter_lock:
            await self._sync_meters()

    async def _sync_meters(self) -> None:
        entry = self.entry
        self.meter_models, broken = models_from_entry(entry)
        for title, error in broken:
            _LOGGER.warning("Meter model %r cannot be used: %s", title, error)
        self.meter_pool.models = self.meter_models
        wanted = meter_subentries(entry)
        errors: dict[str, str] = {}
        modbus: dict[str, tuple[MeterConfig, MeterModel]] = {}
        sensors: dict[str, HaSensorMeterConfig] = {}
        for meter_id, subentry in wanted.items():
            try:
                if subentry.data.get(CONF_METER_KIND) == METER_KIND_HA_SENSORS:
                    sensors[meter_id] = HaSensorMeterConfig.from_dict(subentry.data)
                else:
                    config = MeterConfig.from_dict(meter_id, subentry.data)
                    modbus[meter_id] = (config, self.meter_models.get(config.model))
            except ConfigError as err:
                errors[meter_id] = str(err)
        errors |= await self._sync_modbus_meters(modbus)
        self._sync_ha_meters(sensors)
        previous_errors, self.meter_errors = self.meter_errors, errors
        self._sync_meter_issues(wanted, previous_errors)
        self._refresh_meter_devices(wanted)
        self._push_zone_meters()

    async def _sync_modbus_meters(
        self, wanted: Mapping[str, tuple[MeterConfig, MeterModel]]
    ) -> dict[str, str]:
        """Re-create the meters whose config or model changed; the errors of those refused."""
        # Remove first: a changed meter may free the slave id another one takes.
        for meter_id, meter in list(self.modbus_meters.items()):
            if wanted.get(meter_id) != (meter.config, meter.model):
                del self.modbus_meters[meter_id]
                await self.meter_pool.remove(meter_id)
        errors: dict[str, str] = {}
        for meter_id, (config, _) in wanted.items():
            if meter_id not in self.modbus_meters:
                try:
                    self.modbus_meters[meter_id] = self.meter_pool.add(config)
                except ConfigError as err:
                    errors[meter_id] = str(err)
        return errors

    def _sync_ha_meters(self, wanted: Mapping[str, HaSensorMeterConfig]) -> None:
        for meter_id, ha_meter in list(self.ha_meters.items()):
            if wanted.get(meter_id) != ha_meter.config:
                ha_meter.stop()
                del self.ha_meters[meter_id]
        for meter_id, config in wanted.items():
            if meter_id not in self.ha_meters:
                ha_meter = HaSensorMeter(
                    self.hass, meter_id, config, self.meter_clock, self._on_ha_meter
                )
                self.ha_meters[meter_id] = ha_meter
                ha_meter.start()

    def meter_ids(self) -> list[str]:
        """Every configured meter (its subentry id), usable or not."""
        return list(meter_subentries(self.entry))

    def meter_source(self, meter_id: str) -> MeterSource | None:
        """What the load manager reads for a meter; None when it cannot be used."""
        if (meter := self.modbus_meters.get(meter_id)) is not None:
            return meter
        if (ha_meter := self.ha_meters.get(meter_id)) is not None:
            return ha_meter.source
        return None

    def meter_view(self, meter_id: str) -> MeterView | None:
        """State, reason, last success and reading of a meter; None when it is not configured."""
        if (meter := self.modbus_meters.get(meter_id)) is not None:
            connected = meter.state is MeterState.CONNECTED
            return MeterView(
                meter.state, meter.reason, meter.last_success, meter.reading if connected else None
            )
        if (ha_meter := self.ha_meters.get(meter_id)) is not None:
            connected = ha_meter.state is MeterState.CONNECTED
            return MeterView(
                ha_meter.state,
                ha_meter.reason,
                ha_meter.last_success,
                ha_meter.source.reading if connected else None,
            )
        if meter_id in self.meter_errors:
            return MeterView(MeterState.ERROR, self.meter_errors[meter_id], None, None)
        return None

    def meter_entity_keys(self, meter_id: str) -> set[str]:
        """The entities a meter should have: the base ones plus what it reports."""
        caps: set[str] = set()
        if (meter := self.modbus_meters.get(meter_id)) is not None:
            model = meter.model
            if model.spec(Quantity.ENERGY_DELIVERED) is not None:
                caps.add("energy")
            phase_powers = (Quantity.POWER_L1, Quantity.POWER_L2, Quantity.POWER_L3)
            if model.spec(Quantity.POWER_TOTAL) is not None or all(
                model.spec(q) is not None for q in phase_powers
            ):
                caps.add("power")
        elif (ha_meter := self.ha_meters.get(meter_id)) is not None:
            caps = ha_meter.capabilities
        return set(METER_BASE_ENTITIES) | caps

    def meter_device(self, meter_id: str) -> tuple[str, str]:
        """Name and model of a meter's device."""
        subentry = self.entry.subentries[meter_id]
        if subentry.data.get(CONF_METER_KIND) == METER_KIND_HA_SENSORS:
            return subentry.title, "Home Assistant sensors"
        return subentry.title, str(subentry.data.get("model", ""))

    def _refresh_meter_devices(self, wanted: Mapping[str, ConfigSubentry]) -> None:
        """Rename devices, drop entities a meter no longer reports, announce new ones."""
        for meter_id in set(self.meter_entities) - set(wanted):
            # Deleted: HA removed its device and entities with the subentry.
            self.meter_entities.pop(meter_id, None)
            self._meter_shown.pop(meter_id, None)
            if (timer := self._meter_display_timers.pop(meter_id, None)) is not None:
                timer.cancel()
        devices = dr.async_get(self.hass)
        entities = er.async_get(self.hass)
        for meter_id in wanted:
            name, model = self.meter_device(meter_id)
            device = devices.async_get_device(identifiers={meter_device_id(meter_id)})
            if device is not None and (device.name, device.model) != (name, model):
                devices.async_update_device(device.id, name=name, model=model)
            made = self.meter_entities.setdefault(meter_id, set())
            keys = self.meter_entity_keys(meter_id)
            for key in made - keys:
                entity_id = entities.async_get_entity_id(
                    "sensor", DOMAIN, f"meter_{meter_id}_{key}"
                )
                if entity_id is not None:
                    entities.async_remove(entity_id)
                made.discard(key)
            if keys - made:
                async_dispatcher_send(self.hass, signal_new_meter(self.entry.entry_id), meter_id)
            # A reconfigured meter is a new object: its entities must read it again.
            self._show_meter(meter_id, immediate=True)

    def _sync_meter_issues(
        self, wanted: Mapping[str, ConfigSubentry], previous: Mapping[str, str]
    ) -> None:
        for meter_id in previous.keys() - self.meter_errors.keys():
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_METER_INVALID}_{meter_id}")
        for meter_id, error in self.meter_errors.items():
            name = wanted[meter_id].title
            if previous.get(meter_id) != error:
                _LOGGER.error("Meter %s cannot be used: %s", name, error)
            self._raise_issue(
                f"{ISSUE_METER_INVALID}_{meter_id}",
                ISSUE_METER_INVALID,
                {"meter": name, "error": error},
                error=True,
            )

    def _sync_zone_meter_issue(self) -> None:
        """A dynamic zone whose meter was deleted (or never set) runs on its degraded setpoint."""
        usable = {
            meter_id
            for meter_id, subentry in meter_subentries(self.entry).items()
            if not subentry.data.get(CONF_REPORTING_ONLY)
        }
        zone_meters = zone_meter_ids(self.entry)
        missing = sorted(
            zone.name
            for zone_id, zone in self.zones.items()
            if zone.mode is ZoneMode.DYNAMIC and zone_meters.get(zone_id) not in usable
        )
        if missing:
            self._raise_issue(
                ISSUE_ZONE_WITHOUT_METER,
                ISSUE_ZONE_WITHOUT_METER,
                {"zones": ", ".join(missing)},
                error=True,
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_ZONE_WITHOUT_METER)

    def _push_zone_meters(self) -> None:
        """Tell the load manager which meter drives which dynamic zone."""
        reporting_only = {
            meter_id
            for meter_id, subentry in meter_subentries(self.entry).items()
            if subentry.data.get(CONF_REPORTING_ONLY)
        }
        mapping: dict[str, MeterSource] = {}
        for zone_id, meter_id in zone_meter_ids(self.entry).items():
            zone = self.zones.get(zone_id)
            source = self.meter_source(meter_id)
            # A static zone's meter is ignored (the flow refuses one; this is a hand edit).
            if (
                zone is not None
                and zone.mode is ZoneMode.DYNAMIC
                and source is not None
                and meter_id not in reporting_only
            ):
                mapping[zone_id] = source
        self.zone_meters = mapping
        # The load manager learns meters in a change being made alongside this one.
        set_zone_meters = getattr(self.load, "set_zone_meters", None)
        if set_zone_meters is not None:
            set_zone_meters(dict(mapping))

    def _meter_changed(self, meter_id: str, *, immediate: bool) -> None:
        meter_updated = getattr(self.load, "meter_updated", None)
        if meter_updated is not None:
            meter_updated(meter_id)
        self._show_meter(meter_id, immediate=immediate)

    def _on_meter_event(self, event: MeterEvent) -> None:
        if event.meter_id in self.modbus_meters:
            self._meter_changed(event.meter_id, immediate=isinstance(event, MeterStateChanged))

    def _on_ha_meter(self, meter_id: str, state_changed: bool) -> None:
        if meter_id in self.ha_meters:
            self._meter_changed(meter_id, immediate=state_changed)

    def _show_meter(self, meter_id: str, *, immediate: bool) -> None:
        """Refresh a meter's entities now, or at the end of its display interval."""
        now = self.meter_clock.monotonic()
        last = self._meter_shown.get(meter_id)
        # A clock swapped for another (simulations, tests) may run behind: show at once.
        if immediate or last is None or not 0 <= now - last < METER_DISPLAY_INTERVAL:
            if (timer := self._meter_display_timers.pop(meter_id, None)) is not None:
                timer.cancel()
            self._meter_shown[meter_id] = now
            async_dispatcher_send(self.hass, signal_meter(self.entry.entry_id, meter_id))
        elif meter_id not in self._meter_display_timers:
            self._meter_display_timers[meter_id] = self.meter_clock.call_later(
                last + METER_DISPLAY_INTERVAL - now, partial(self._show_meter_due, meter_id)
            )

    def _show_meter_due(self, meter_id: str) -> None:
        self._meter_display_timers.pop(meter_id, None)
        if meter_id in self.meter_entities:
            self._show_meter(meter_id, immediate=True)

    def meter_diagnostics(self, meter_id: str) -> dict[str, Any]:
        """A meter's configuration, state and last reading."""
        subentry = self.entry.subentries[meter_id]
        view = self.meter_view(meter_id)
        result: dict[str, Any] = {
            "name": subentry.title,
            "config": dict(subentry.data),
            "zone": next((z for z, m in zone_meter_ids(self.entry).items() if m == meter_id), None),
            "state": view.state.value if view else None,
            "reason": view.reason if view else None,
            "last_success": view.last_success.isoformat() if view and view.last_success else None,
        }
        reading: MeterReading | None = None
        if (meter := self.modbus_meters.get(meter_id)) is not None:
            reading = meter.reading
            result["polls"] = meter.polls
            result["successes"] = meter.successes
            result["skipped"] = meter.skipped
            result["reading_valid"] = meter.reading_valid()
            result["gateway"] = {
                "key": meter.gateway.key,
                "connected": meter.gateway.connected,
                "users": sorted(meter.gateway.users),
            }
        elif (ha_meter := self.ha_meters.get(meter_id)) is not None:
            reading = ha_meter.source.reading
            result["reading_valid"] = ha_meter.source.valid_reading() is not None
        if reading is not None:
            data = asdict(reading)
            data["timestamp"] = reading.timestamp.isoformat()
            result["last_reading"] = data
        else:
            result["last_reading"] = None
        return result

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
                self._raise_issue(
                    f"{ISSUE_UNCONTROLLABLE}_{sid}",
                    ISSUE_UNCONTROLLABLE,
                    {"station_id": sid, "reason": reason},
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
        charger = self.site.chargers.get(station_id)
        if charger is not None:
            charger.spawn(_trigger_boot(charger))

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

    def _raise_issue(
        self, issue_id: str, key: str, placeholders: dict[str, str], *, error: bool = False
    ) -> None:
        """A repair the user must act on (not fixable from the repairs dialog)."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR if error else ir.IssueSeverity.WARNING,
            translation_key=key,
            translation_placeholders=placeholders,
        )

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
        safety_margin=float(options.get(CONF_SAFETY_MARGIN, DEFAULT_SAFETY_MARGIN)),
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


def meter_subentries(entry: ConfigEntry) -> dict[str, ConfigSubentry]:
    """The entry's meters (subentries), by id."""
    return {
        sid: sub for sid, sub in entry.subentries.items() if sub.subentry_type == SUBENTRY_METER
    }


def model_subentries(entry: ConfigEntry) -> dict[str, ConfigSubentry]:
    """The entry's custom meter models (subentries), by id."""
    return {
        sid: sub
        for sid, sub in entry.subentries.items()
        if sub.subentry_type == SUBENTRY_METER_MODEL
    }


def models_from_entry(entry: ConfigEntry) -> tuple[ModelRegistry, list[tuple[str, str]]]:
    """Built-in plus the entry's custom models; and the (title, error) of unusable ones."""
    registry = ModelRegistry()
    broken: list[tuple[str, str]] = []
    for subentry in model_subentries(entry).values():
        try:
            registry.add(model_from_data(subentry.data))
        except ConfigError as err:
            broken.append((subentry.title, str(err)))
    return registry, broken


@callback
def rename_model_in_meters(hass: HomeAssistant, entry: ConfigEntry, old: str, new: str) -> None:
    """Point the meters that use model `old` at its new name."""
    if old == new:
        return
    for subentry in meter_subentries(entry).values():
        if subentry.data.get("model") == old:
            hass.config_entries.async_update_subentry(
                entry, subentry, data={**subentry.data, "model": new}
            )


def zone_meter_ids(entry: ConfigEntry) -> dict[str, str]:
    """Zone id -> the id of the meter its data names (the meter may no longer exist)."""
    return {
        sid: str(sub.data[CONF_METER])
        for sid, sub in entry.subentries.items()
        if sub.subentry_type == SUBENTRY_ZONE
        and sub.data.get(CONF_METER) not in (None, "", NO_METER)
    }


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
        "energy_wh": transaction.energy_wh(None),
        "reason": transaction.stop_reason,
    }
