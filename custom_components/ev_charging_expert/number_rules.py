"""The remote setpoint of each zone as a number entity (HA as the controlling source)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import UnitOfElectricCurrent
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import DOMAIN, signal_rules
from .entity import EvChargingZoneEntity, setup_zone_entities
from .evcore.rules import SetpointSource

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry
    from .evcore.rules import SetpointResult

REMOTE_SETPOINT = NumberEntityDescription(
    key="remote_setpoint",
    translation_key="remote_setpoint",
    device_class=NumberDeviceClass.CURRENT,
    native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
    native_min_value=0,
    native_step=0.5,
    mode=NumberMode.BOX,
)


def setpoint_error(result: SetpointResult) -> ServiceValidationError:
    """A refused remote command as a translated error (the reason code is the key)."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=f"setpoint_{result.code}",
        translation_placeholders={"message": result.message},
    )


class RemoteSetpointNumber(EvChargingZoneEntity, NumberEntity):
    """A zone's remote setpoint; available while remote setpoints are on with HA in control."""

    @property
    def available(self) -> bool:
        """Only while HA is the controlling source of enabled remote setpoints."""
        view = self.hub.controller.rules_view()
        return super().available and view.remote_enabled and view.remote_source == SetpointSource.HA

    @property
    def native_max_value(self) -> float:
        """The zone's max current."""
        zone = self.hub.zones.get(self.zone_id)
        return zone.max_current if zone is not None else 0.0

    @property
    def native_value(self) -> float | None:
        """The setpoint in force (None: none)."""
        return self.hub.controller.rules_view().setpoints.get(self.zone_id)

    async def async_set_native_value(self, value: float) -> None:
        """Send it like any source would (minimum period, range)."""
        result = self.hub.controller.set_zone_setpoint(
            self.zone_id, float(value), source=SetpointSource.HA
        )
        if not result.accepted:
            raise setpoint_error(result)

    async def async_added_to_hass(self) -> None:
        """Follow the zone's and the rules' signals."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_rules(self.hub.entry.entry_id), self.async_write_ha_state
            )
        )


def async_setup_rules_numbers(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """A remote setpoint number per zone, now and for new zones."""
    setup_zone_entities(
        entry,
        async_add_entities,
        lambda hub, zone_id: [RemoteSetpointNumber(hub, zone_id, REMOTE_SETPOINT)],
    )
