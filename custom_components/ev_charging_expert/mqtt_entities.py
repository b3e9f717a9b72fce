"""The hub's MQTT export sensors: the export's state, messages sent and commands refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .entity import EvChargingHubEntity
from .mqtt_export import MqttExport, MqttExportState, signal_mqtt

if TYPE_CHECKING:
    from collections.abc import Callable

    from .coordinator import EvChargingCoordinator


@dataclass(frozen=True, kw_only=True)
class MqttSensorDescription(SensorEntityDescription):
    """A sensor of the MQTT export."""

    value_fn: Callable[[MqttExport], str | int | None]


MQTT_SENSORS = (
    MqttSensorDescription(
        key="mqtt_export",
        translation_key="mqtt_export",
        device_class=SensorDeviceClass.ENUM,
        options=[s.value for s in MqttExportState],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda export: export.state.value,
    ),
    # Counters: polled (every 30 s), not pushed once per message.
    MqttSensorDescription(
        key="mqtt_messages",
        translation_key="mqtt_messages",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda export: export.messages,
    ),
    MqttSensorDescription(
        key="mqtt_commands_refused",
        translation_key="mqtt_commands_refused",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda export: export.commands.refused if export.commands else 0,
    ),
)


def mqtt_sensors(hub: EvChargingCoordinator) -> list[SensorEntity]:
    """The hub device's MQTT sensors."""
    return [MqttSensor(hub, description) for description in MQTT_SENSORS]


class MqttSensor(EvChargingHubEntity, SensorEntity):
    """A sensor of the hub device about the MQTT export."""

    entity_description: MqttSensorDescription

    def __init__(self, hub: EvChargingCoordinator, description: MqttSensorDescription) -> None:
        super().__init__(hub, description)
        self._attr_should_poll = description.state_class is not None

    async def async_added_to_hass(self) -> None:
        """Follow the export's state changes."""
        self.async_on_remove(
            async_dispatcher_connect(self.hass, signal_mqtt(self.hub.entry.entry_id), self._refresh)
        )

    @callback
    def _refresh(self) -> None:
        self.async_write_ha_state()

    @property
    def native_value(self) -> str | int | None:
        """From the export."""
        return self.entity_description.value_fn(self.hub.mqtt)
