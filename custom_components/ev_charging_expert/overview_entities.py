"""The site at a glance (issue 15): hub sensors, zone headroom / at limit / offline holders.

Values come from the core's views (`Controller.site_view`, `ZoneView`), never recomputed here.
Measured values are rounded to their useful resolution (0.1 A, 10 W, 1 Wh) and written
quietly (quiet.py); counts and statuses are written at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfElectricCurrent, UnitOfEnergy, UnitOfPower
from homeassistant.core import Event, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import DOMAIN, signal_site
from .entity import EvChargingHubEntity, EvChargingZoneEntity, setup_zone_entities
from .evcore.config import ZoneMode
from .quiet import QuietWriter
from .site_overview import describe_reserve

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.helpers.entity import EntityDescription
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
    from homeassistant.helpers.typing import StateType

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.allocation.model import Phases
    from .evcore.config import ZoneConfig
    from .evcore.overview import SiteView
    from .evcore.view import ZoneView

AT_LIMIT_HEADROOM = 1.0
"""A: a zone with less than this left on a phase is at its limit."""
_LISTED = 10  # offline stations named in an attribute


def round_amps(value: float | None) -> float | None:
    """0.1 A: what a clamp meter shows; finer is noise."""
    return None if value is None else round(value, 1)


def round_watts(value: float | None) -> float | None:
    """10 W."""
    return None if value is None else float(round(value, -1))


# ---------------------------------------------------------------------- site (hub device)
@dataclass(frozen=True, kw_only=True)
class SiteSensorDescription(SensorEntityDescription):
    """A sensor of the whole site, on the hub device."""

    value_fn: Callable[[SiteView], StateType]


def _site_phase(key: str, attr: str, phase: int) -> SiteSensorDescription:
    def value(view: SiteView) -> float | None:
        phases: Phases | None = getattr(view, attr)
        return None if phases is None else round_amps(phases[phase])

    return SiteSensorDescription(
        key=f"{key}_l{phase + 1}",
        translation_key=f"site_{key}_l{phase + 1}",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=value,
    )


def _count(key: str, fn: Callable[[SiteView], int]) -> SiteSensorDescription:
    return SiteSensorDescription(
        key=key, translation_key=key, state_class=SensorStateClass.MEASUREMENT, value_fn=fn
    )


SITE_SENSORS: tuple[SiteSensorDescription, ...] = (
    *(_site_phase("current", "current", p) for p in range(3)),
    SiteSensorDescription(
        key="power",
        translation_key="site_power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        value_fn=lambda v: round_watts(v.power_w),
    ),
    *(_site_phase("headroom", "headroom", p) for p in range(3)),
    _count("evs_charging", lambda v: v.evs_charging),
    _count("evs_suspended", lambda v: v.evs_suspended),
    _count("stations_online", lambda v: v.stations_online),
    _count("stations_offline", lambda v: v.stations_offline),
    _count("stations_pending", lambda v: v.stations_pending),
)

SITE_ENERGY = SensorEntityDescription(
    key="energy",
    translation_key="site_energy",
    device_class=SensorDeviceClass.ENERGY,
    state_class=SensorStateClass.TOTAL_INCREASING,
    native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
    suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    suggested_display_precision=2,
)

PROBLEMS = BinarySensorEntityDescription(
    key="problems", translation_key="problems", device_class=BinarySensorDeviceClass.PROBLEM
)


class EvChargingSiteEntity(EvChargingHubEntity):
    """An entity of the hub device that follows the site's totals (written quietly)."""

    def __init__(self, hub: EvChargingCoordinator, description: EntityDescription) -> None:
        super().__init__(hub, description)
        self._writer = QuietWriter()

    async def async_added_to_hass(self) -> None:
        """Follow the site's (coalesced) signal."""
        self.async_on_remove(self._writer.stop)
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_site(self.hub.entry.entry_id), self._handle_update
            )
        )

    @callback
    def _handle_update(self) -> None:
        self._writer.update(self, self.hub.quiet_interval)


class SiteSensor(EvChargingSiteEntity, SensorEntity):
    """A site total."""

    entity_description: SiteSensorDescription

    @property
    def native_value(self) -> StateType:
        """From the site view."""
        return self.entity_description.value_fn(self.hub.overview.view)

    @property
    def available(self) -> bool:
        """Start clean: no headroom before the first allocation run (or without zones)."""
        return self.native_value is not None


class SiteEnergySensor(EvChargingSiteEntity, RestoreSensor):
    """Energy delivered by every charger of the site, for the Energy dashboard.

    Not the sum of the registers: a charger that joins (or a meter that is replaced) would
    add its whole register at once. Each connector's register increases are added up from
    the second reading on; the total is restored at start.
    """

    _attr_native_value: float = 0.0

    def __init__(self, hub: EvChargingCoordinator, description: EntityDescription) -> None:
        super().__init__(hub, description)
        self._registers: dict[str, float] = {}

    async def async_added_to_hass(self) -> None:
        """Restore the total, then follow the registers."""
        last = await self.async_get_last_sensor_data()
        if last is not None and isinstance(last.native_value, int | float):
            self._attr_native_value = float(last.native_value)
        self._registers = dict(self.hub.overview.view.registers)
        await super().async_added_to_hass()

    @callback
    def _handle_update(self) -> None:
        total = self._attr_native_value
        for key, value in self.hub.overview.view.registers.items():
            previous = self._registers.get(key)
            if previous is not None and value > previous:
                total += value - previous
            self._registers[key] = value
        self._attr_native_value = round(total)
        super()._handle_update()


class ProblemsSensor(EvChargingSiteEntity, BinarySensorEntity):
    """On while any repair of the integration is open (Settings > Repairs says which)."""

    async def async_added_to_hass(self) -> None:
        """Follow the issue registry."""
        await super().async_added_to_hass()

        @callback
        def _issues_changed(event: Event[ir.EventIssueRegistryUpdatedData]) -> None:
            if event.data["domain"] == DOMAIN:
                self.async_write_ha_state()

        self.async_on_remove(
            self.hass.bus.async_listen(ir.EVENT_REPAIRS_ISSUE_REGISTRY_UPDATED, _issues_changed)
        )

    def _issues(self) -> list[str]:
        registry = ir.async_get(self.hass)
        return sorted(
            issue.translation_key or issue_id
            for (domain, issue_id), issue in registry.issues.items()
            if domain == DOMAIN and issue.active and issue.dismissed_version is None
        )

    @property
    def is_on(self) -> bool:
        """Whether a repair is open."""
        return bool(self._issues())

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Which kinds of repair are open (their keys; the repairs dashboard has the text)."""
        return {"issues": sorted(set(self._issues()))}


# ---------------------------------------------------------------------- zones
@dataclass(frozen=True, kw_only=True)
class ZoneOverviewDescription(SensorEntityDescription):
    """A zone sensor from its view; `has_fn` says whether the zone has it."""

    value_fn: Callable[[ZoneView], StateType]
    has_fn: Callable[[ZoneConfig], bool] = lambda _: True


def _zone_phase(key: str, phase: int, *, dynamic_only: bool = False) -> ZoneOverviewDescription:
    def value(view: ZoneView) -> float | None:
        phases: Phases | None = getattr(view, key)
        return None if phases is None else round_amps(phases[phase])

    return ZoneOverviewDescription(
        key=f"{key}_l{phase + 1}",
        translation_key=f"{key}_l{phase + 1}",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=value,
        has_fn=(lambda z: z.mode is ZoneMode.DYNAMIC) if dynamic_only else (lambda _: True),
    )


ZONE_OVERVIEW_SENSORS: tuple[ZoneOverviewDescription, ...] = (
    *(_zone_phase("headroom", p) for p in range(3)),
    *(_zone_phase("measured", p, dynamic_only=True) for p in range(3)),
    ZoneOverviewDescription(
        key="offline_held",
        translation_key="offline_held",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=lambda v: round_amps(sum(r.amps for r in v.offline_reserve)),
    ),
)

ZONE_AT_LIMIT = BinarySensorEntityDescription(key="at_limit", translation_key="at_limit")


def at_limit(view: ZoneView) -> bool:
    """No room for one more EV: a phase has less than 1 A left, or an EV waits for room."""
    return view.suspended > 0 or min(view.headroom) < AT_LIMIT_HEADROOM


class ZoneOverviewSensor(EvChargingZoneEntity, SensorEntity):
    """A zone figure from its last allocation run."""

    entity_description: ZoneOverviewDescription
    _quiet = True

    @property
    def available(self) -> bool:
        """Available once the zone has been allocated (and its meter read, for `measured`)."""
        view = self.hub.zone_view(self.zone_id)
        return view is not None and self.entity_description.value_fn(view) is not None

    @property
    def native_value(self) -> StateType:
        """From the zone's view."""
        view = self.hub.zone_view(self.zone_id)
        return None if view is None else self.entity_description.value_fn(view)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The offline stations that hold it and how much (offline_held only)."""
        if self.entity_description.key != "offline_held":
            return None
        view = self.hub.zone_view(self.zone_id)
        reserves = view.offline_reserve if view is not None else ()
        shown = [describe_reserve(r) for r in reserves[:_LISTED]]
        if len(reserves) > _LISTED:
            shown.append(f"+{len(reserves) - _LISTED}")
        return {"stations": shown}


class ZoneAtLimitSensor(EvChargingZoneEntity, BinarySensorEntity):
    """On while the zone has no room for one more EV; names its parent zone."""

    @property
    def available(self) -> bool:
        """Available once the zone has been allocated."""
        return self.hub.zone_view(self.zone_id) is not None

    @property
    def is_on(self) -> bool | None:
        """From the zone's view."""
        view = self.hub.zone_view(self.zone_id)
        return None if view is None else at_limit(view)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The parent zone's name (None: a root zone)."""
        zone = self.hub.zones.get(self.zone_id)
        parent = self.hub.zones.get(zone.parent_id) if zone and zone.parent_id else None
        return {"parent": parent.name if parent else None}


# ---------------------------------------------------------------------- platform setup
def setup_overview_sensors(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The site's sensors on the hub device and the zones' overview sensors."""
    hub = entry.runtime_data
    async_add_entities(
        [*(SiteSensor(hub, d) for d in SITE_SENSORS), SiteEnergySensor(hub, SITE_ENERGY)]
    )

    def zone_entities(hub: EvChargingCoordinator, zone_id: str) -> list[SensorEntity]:
        zone = hub.zones[zone_id]
        return [
            ZoneOverviewSensor(hub, zone_id, d) for d in ZONE_OVERVIEW_SENSORS if d.has_fn(zone)
        ]

    setup_zone_entities(entry, async_add_entities, zone_entities)


def setup_overview_binary_sensors(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The site's problems sensor and each zone's at-limit sensor."""
    hub = entry.runtime_data
    async_add_entities([ProblemsSensor(hub, PROBLEMS)])
    setup_zone_entities(
        entry,
        async_add_entities,
        lambda hub, zone_id: [ZoneAtLimitSensor(hub, zone_id, ZONE_AT_LIMIT)],
    )
