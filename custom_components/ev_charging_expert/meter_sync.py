"""Power meters in HA: the meter and meter-model subentries made live, and shown.

Modbus meters are polled by the Controller's pool (which wires their readings to the zone
budgets); HA-sensor meters feed an evcore `ExternalMeter` and report to the Controller. This
module keeps both in step with the subentries, raises the repairs for meters that cannot be
used, keeps their devices and entities in step with what each meter reports, and refreshes
their entities at most once per display interval (a meter is polled twice a second).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from functools import partial
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import (
    CONF_METER_KIND,
    CONF_REPORTING_ONLY,
    DOMAIN,
    ISSUE_METER_INVALID,
    ISSUE_ZONE_WITHOUT_METER,
    METER_BASE_ENTITIES,
    METER_DISPLAY_INTERVAL,
    METER_KIND_HA_SENSORS,
    meter_device_id,
    signal_meter,
    signal_new_meter,
)
from .entry_data import meter_subentries, models_from_entry, zone_meter_ids
from .evcore.config import ZoneMode
from .evcore.errors import ConfigError
from .evcore.events import MeterUpdated
from .evcore.meters import MeterConfig, MeterState, Quantity
from .evcore.view import MeterView
from .ha_meters import HaSensorMeter, HaSensorMeterConfig
from .issues import clear_issue, raise_issue

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.config_entries import ConfigEntry, ConfigSubentry
    from homeassistant.core import HomeAssistant

    from .evcore.clock import Cancelable
    from .evcore.config import ZoneConfig
    from .evcore.controller import Controller
    from .evcore.events import ControllerEvent
    from .evcore.meters import Meter, MeterModel, MeterReading
    from .evcore.meters.external import MeterSource

_LOGGER = logging.getLogger(__name__)


class MeterSync:
    """The site's meters as the entry's subentries describe them."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, controller: Controller) -> None:
        self.hass = hass
        self.entry = entry
        self._controller = controller
        self.ha_meters: dict[str, HaSensorMeter] = {}
        self.errors: dict[str, str] = {}
        """Meters whose configuration cannot be used (e.g. their model was deleted): why."""
        self.entities: dict[str, set[str]] = {}
        """Keys of the entities the sensor platform made for each meter."""
        self.zone_meters: dict[str, MeterSource] = {}
        self._lock = asyncio.Lock()
        self._shown: dict[str, float] = {}
        self._timers: dict[str, Cancelable] = {}
        self._unsubscribe = controller.subscribe(self._on_meter_event, kinds=(MeterUpdated,))

    @property
    def modbus_meters(self) -> dict[str, Meter]:
        """The polled meters, by id."""
        return self._controller.meters.meters

    def stop(self) -> None:
        """Stop following HA sensors and refreshing entities."""
        self._unsubscribe()
        for meter in self.ha_meters.values():
            meter.stop()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # ------------------------------------------------------------------ subentries -> meters
    async def sync(self, zones: Mapping[str, ZoneConfig]) -> None:
        """Make the running meters match the meter and meter-model subentries (live)."""
        async with self._lock:
            models, broken = models_from_entry(self.entry)
            for title, error in broken:
                _LOGGER.warning("Meter model %r cannot be used: %s", title, error)
            self._controller.meters.models = models
            wanted = meter_subentries(self.entry)
            errors: dict[str, str] = {}
            modbus: dict[str, tuple[MeterConfig, MeterModel]] = {}
            sensors: dict[str, HaSensorMeterConfig] = {}
            for meter_id, subentry in wanted.items():
                try:
                    if subentry.data.get(CONF_METER_KIND) == METER_KIND_HA_SENSORS:
                        sensors[meter_id] = HaSensorMeterConfig.from_dict(subentry.data)
                    else:
                        config = MeterConfig.from_dict(meter_id, subentry.data)
                        modbus[meter_id] = (config, models.get(config.model))
                except ConfigError as err:
                    errors[meter_id] = str(err)
            errors |= await self._sync_modbus(modbus)
            self._sync_ha(sensors)
            previous, self.errors = self.errors, errors
            self._sync_issues(wanted, previous)
            self._refresh_devices(wanted)
            self.push_zone_meters(zones)

    async def _sync_modbus(
        self, wanted: Mapping[str, tuple[MeterConfig, MeterModel]]
    ) -> dict[str, str]:
        """Re-create the meters whose config or model changed; the errors of those refused."""
        pool = self._controller.meters
        # Remove first: a changed meter may free the slave id another one takes.
        for meter_id, meter in pool.meters.items():
            if wanted.get(meter_id) != (meter.config, meter.model):
                await pool.remove(meter_id)
        errors: dict[str, str] = {}
        running = pool.meters
        for meter_id, (config, _) in wanted.items():
            if meter_id not in running:
                try:
                    pool.add(config)
                except ConfigError as err:
                    errors[meter_id] = str(err)
        return errors

    def _sync_ha(self, wanted: Mapping[str, HaSensorMeterConfig]) -> None:
        for meter_id, ha_meter in list(self.ha_meters.items()):
            if wanted.get(meter_id) != ha_meter.config:
                ha_meter.stop()
                del self.ha_meters[meter_id]
        for meter_id, config in wanted.items():
            if meter_id not in self.ha_meters:
                ha_meter = HaSensorMeter(
                    self.hass, meter_id, config, self._controller.clock, self._on_ha_meter
                )
                self.ha_meters[meter_id] = ha_meter
                ha_meter.start()

    def push_zone_meters(self, zones: Mapping[str, ZoneConfig]) -> None:
        """Tell load management which meter drives which dynamic zone.

        A dynamic zone whose meter was deleted (or never set) runs on its degraded setpoint:
        a repair says so.
        """
        subentries = meter_subentries(self.entry)
        usable = {m for m, sub in subentries.items() if not sub.data.get(CONF_REPORTING_ONLY)}
        zone_meters = zone_meter_ids(self.entry)
        mapping: dict[str, MeterSource] = {}
        missing: list[str] = []
        for zone_id, zone in zones.items():
            if zone.mode is not ZoneMode.DYNAMIC:
                continue  # a static zone's meter is ignored (the flow refuses one)
            meter_id = zone_meters.get(zone_id)
            source = self.source(meter_id) if meter_id in usable else None
            if meter_id not in usable:
                missing.append(zone.name)
            elif source is not None:
                mapping[zone_id] = source
        self.zone_meters = mapping
        self._controller.set_zone_meters(mapping)
        if missing:
            raise_issue(
                self.hass,
                ISSUE_ZONE_WITHOUT_METER,
                ISSUE_ZONE_WITHOUT_METER,
                {"zones": ", ".join(sorted(missing))},
                error=True,
            )
        else:
            clear_issue(self.hass, ISSUE_ZONE_WITHOUT_METER)

    def _sync_issues(
        self, wanted: Mapping[str, ConfigSubentry], previous: Mapping[str, str]
    ) -> None:
        for meter_id in previous.keys() - self.errors.keys():
            clear_issue(self.hass, f"{ISSUE_METER_INVALID}_{meter_id}")
        for meter_id, error in self.errors.items():
            name = wanted[meter_id].title
            if previous.get(meter_id) != error:
                _LOGGER.error("Meter %s cannot be used: %s", name, error)
            raise_issue(
                self.hass,
                f"{ISSUE_METER_INVALID}_{meter_id}",
                ISSUE_METER_INVALID,
                {"meter": name, "error": error},
                error=True,
            )

    # ------------------------------------------------------------------ what is shown
    def ids(self) -> list[str]:
        """Every configured meter (its subentry id), usable or not."""
        return list(meter_subentries(self.entry))

    def source(self, meter_id: str) -> MeterSource | None:
        """What load management reads for a meter; None when it cannot be used."""
        if (meter := self.modbus_meters.get(meter_id)) is not None:
            return meter
        if (ha_meter := self.ha_meters.get(meter_id)) is not None:
            return ha_meter.source
        return None

    def view(self, meter_id: str) -> MeterView | None:
        """State, reason, last success and reading of a meter; None when not configured."""
        if (view := self._controller.meter_view(meter_id)) is not None:
            return view
        if (ha_meter := self.ha_meters.get(meter_id)) is not None:
            connected = ha_meter.state is MeterState.CONNECTED
            return MeterView(
                meter_id,
                ha_meter.state,
                ha_meter.reason,
                ha_meter.last_success,
                ha_meter.source.reading if connected else None,
            )
        if meter_id in self.errors:
            return MeterView(meter_id, MeterState.ERROR, self.errors[meter_id], None, None)
        return None

    def entity_keys(self, meter_id: str) -> set[str]:
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

    def device(self, meter_id: str) -> tuple[str, str]:
        """Name and model of a meter's device."""
        subentry = self.entry.subentries[meter_id]
        if subentry.data.get(CONF_METER_KIND) == METER_KIND_HA_SENSORS:
            return subentry.title, "Home Assistant sensors"
        return subentry.title, str(subentry.data.get("model", ""))

    def _refresh_devices(self, wanted: Mapping[str, ConfigSubentry]) -> None:
        """Rename devices, drop entities a meter no longer reports, announce new ones."""
        for meter_id in set(self.entities) - set(wanted):
            # Deleted: HA removed its device and entities with the subentry.
            self.entities.pop(meter_id, None)
            self._shown.pop(meter_id, None)
            if (timer := self._timers.pop(meter_id, None)) is not None:
                timer.cancel()
        devices = dr.async_get(self.hass)
        entities = er.async_get(self.hass)
        for meter_id in wanted:
            name, model = self.device(meter_id)
            device = devices.async_get_device(identifiers={meter_device_id(meter_id)})
            if device is not None and (device.name, device.model) != (name, model):
                devices.async_update_device(device.id, name=name, model=model)
            made = self.entities.setdefault(meter_id, set())
            keys = self.entity_keys(meter_id)
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
            self._show(meter_id, immediate=True)

    def _on_meter_event(self, event: ControllerEvent) -> None:
        if isinstance(event, MeterUpdated):
            self._show(event.meter_id, immediate=event.state_changed)

    def _on_ha_meter(self, meter_id: str, state_changed: bool) -> None:
        if meter_id in self.ha_meters:
            self._controller.external_meter_changed(meter_id, state_changed=state_changed)

    def _show(self, meter_id: str, *, immediate: bool) -> None:
        """Refresh a meter's entities now, or at the end of its display interval."""
        clock = self._controller.clock
        now = clock.monotonic()
        last = self._shown.get(meter_id)
        if immediate or last is None or not 0 <= now - last < METER_DISPLAY_INTERVAL:
            if (timer := self._timers.pop(meter_id, None)) is not None:
                timer.cancel()
            self._shown[meter_id] = now
            async_dispatcher_send(self.hass, signal_meter(self.entry.entry_id, meter_id))
        elif meter_id not in self._timers:
            self._timers[meter_id] = clock.call_later(
                last + METER_DISPLAY_INTERVAL - now, partial(self._show_due, meter_id)
            )

    def _show_due(self, meter_id: str) -> None:
        self._timers.pop(meter_id, None)
        if meter_id in self.entities:
            self._show(meter_id, immediate=True)

    def diagnostics(self, meter_id: str) -> dict[str, Any]:
        """A meter's configuration, state and last reading."""
        subentry = self.entry.subentries[meter_id]
        view = self.view(meter_id)
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
