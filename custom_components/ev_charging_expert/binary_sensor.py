"""Binary sensors: is the charger connected."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory

from .entity import EvChargingEntity, setup_platform_entities

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .hub import EvChargingConfigEntry, EvChargingHub

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="connected",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One connectivity sensor per station."""

    def station_entities(hub: EvChargingHub, station_id: str) -> list[BinarySensorEntity]:
        return [ConnectivitySensor(hub, station_id, None, CONNECTIVITY)]

    setup_platform_entities(entry, async_add_entities, station_entities=station_entities)


class ConnectivitySensor(EvChargingEntity, BinarySensorEntity):
    """On while the charger holds an OCPP connection."""

    _available_when_offline = True

    @property
    def is_on(self) -> bool:
        """Whether the charger is connected."""
        return self.station.connected
