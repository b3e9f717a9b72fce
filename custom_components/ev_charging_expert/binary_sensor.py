"""Binary sensors: is the charger connected."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory

from .bms_entities import setup_bms_binary_sensors
from .entity import (
    EvChargingEntity,
    EvChargingZoneEntity,
    setup_platform_entities,
    setup_zone_entities,
)
from .overview_entities import setup_overview_binary_sensors

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="connected",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


# The allocation reason sensor says it, and why.
SUSPENDED = BinarySensorEntityDescription(
    key="suspended", translation_key="suspended", entity_registry_enabled_default=False
)
ZONE_DEGRADED = BinarySensorEntityDescription(
    key="degraded", translation_key="zone_degraded", device_class=BinarySensorDeviceClass.PROBLEM
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One connectivity sensor per station."""

    def station_entities(hub: EvChargingCoordinator, station_id: str) -> list[BinarySensorEntity]:
        return [ConnectivitySensor(hub, station_id, None, CONNECTIVITY)]

    def connector_entities(
        hub: EvChargingCoordinator, station_id: str, connector_id: int
    ) -> list[BinarySensorEntity]:
        return [SuspendedSensor(hub, station_id, connector_id, SUSPENDED)]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )
    setup_zone_entities(
        entry,
        async_add_entities,
        lambda hub, zone_id: [ZoneDegradedSensor(hub, zone_id, ZONE_DEGRADED)],
    )
    setup_bms_binary_sensors(entry, async_add_entities)
    setup_overview_binary_sensors(entry, async_add_entities)


class ConnectivitySensor(EvChargingEntity, BinarySensorEntity):
    """On while the charger holds an OCPP connection."""

    _available_when_offline = True

    @property
    def is_on(self) -> bool:
        """Whether the charger is connected."""
        return self.station.connected


class SuspendedSensor(EvChargingEntity, BinarySensorEntity):
    """On while load management holds this EV at 0 A to make room for others."""

    @property
    def is_on(self) -> bool:
        """Whether the last allocation suspended it."""
        assert self.connector_id is not None  # noqa: S101
        allocation = self.hub.allocation(self.station_id, self.connector_id)
        return allocation is not None and allocation.suspended


class ZoneDegradedSensor(EvChargingZoneEntity, BinarySensorEntity):
    """On while a dynamic zone runs on its degraded setpoint (its meter is lost)."""

    @property
    def is_on(self) -> bool | None:
        """From the last allocation's budgets."""
        view = self.hub.zone_view(self.zone_id)
        return None if view is None else view.degraded
