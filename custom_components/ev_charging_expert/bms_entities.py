"""Hub entities of the BMS Modbus slave: listening, clients connected, last write, refusals.

They belong to the hub device and appear once the slave is enabled in the options (added
then, without a reload); they follow the slave's status by push.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity

from .bms import signal_bms
from .entity import hub_device_info

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .bms import BmsBinding
    from .coordinator import EvChargingConfigEntry
    from .evcore.bms import BmsStatus


@dataclass(frozen=True, kw_only=True)
class BmsSensorDescription(SensorEntityDescription):
    """A sensor of the slave's status."""

    value_fn: Callable[[BmsStatus], int | datetime | None]


BMS_SENSORS = (
    BmsSensorDescription(
        key="bms_clients",
        translation_key="bms_clients",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda status: status.clients,
    ),
    BmsSensorDescription(
        key="bms_last_write",
        translation_key="bms_last_write",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda status: status.last_write,
    ),
    BmsSensorDescription(
        key="bms_refused",
        translation_key="bms_refused",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda status: status.refused,
    ),
)
BMS_LISTENING = BinarySensorEntityDescription(
    key="bms_listening",
    translation_key="bms_listening",
    device_class=BinarySensorDeviceClass.RUNNING,
    entity_category=EntityCategory.DIAGNOSTIC,
)


class BmsEntity(Entity):
    """An entity of the hub device that follows the slave's status."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, binding: BmsBinding, key: str) -> None:
        self.binding = binding
        self._attr_unique_id = f"site_{key}"  # one site per HA (single entry): see entity.py
        self._attr_device_info = hub_device_info(binding.entry.entry_id)

    async def async_added_to_hass(self) -> None:
        """Follow the slave's status."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_bms(self.binding.entry.entry_id), self._handle_update
            )
        )

    @callback
    def _handle_update(self) -> None:
        self.async_write_ha_state()


class BmsSensor(BmsEntity, SensorEntity):
    """Clients connected, last accepted write, refused requests."""

    entity_description: BmsSensorDescription

    def __init__(self, binding: BmsBinding, description: BmsSensorDescription) -> None:
        super().__init__(binding, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """While the slave listens."""
        return self.binding.server is not None

    @property
    def native_value(self) -> int | datetime | None:
        """From the slave's status."""
        server = self.binding.server
        return None if server is None else self.entity_description.value_fn(server.status)


class BmsListeningSensor(BmsEntity, BinarySensorEntity):
    """On while the slave listens; off when enabled but its port could not be bound."""

    entity_description = BMS_LISTENING

    def __init__(self, binding: BmsBinding) -> None:
        super().__init__(binding, BMS_LISTENING.key)

    @property
    def is_on(self) -> bool:
        """Whether the slave listens."""
        return self.binding.server is not None and self.binding.server.status.listening


def _setup(
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[BmsBinding], list[Entity]],
) -> None:
    """Add the entities when the slave is (or gets) enabled."""
    binding = entry.runtime_data.bms
    added = False

    @callback
    def _maybe_add() -> None:
        nonlocal added
        if binding.enabled and not added:
            added = True
            async_add_entities(build(binding))

    _maybe_add()
    entry.async_on_unload(
        async_dispatcher_connect(binding.hass, signal_bms(entry.entry_id), _maybe_add)
    )


def setup_bms_sensors(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The slave's sensors (one call from sensor.py)."""
    _setup(entry, async_add_entities, lambda b: [BmsSensor(b, d) for d in BMS_SENSORS])


def setup_bms_binary_sensors(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The slave's listening sensor (one call from binary_sensor.py)."""
    _setup(entry, async_add_entities, lambda b: [BmsListeningSensor(b)])
