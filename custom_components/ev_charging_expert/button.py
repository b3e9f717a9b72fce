"""Buttons: soft and hard reset of a station, unlock of a connector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.const import EntityCategory

from .entity import EvChargingEntity, setup_platform_entities
from .helpers import call_charger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.charger import Charger

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class ChargerButtonDescription(ButtonEntityDescription):
    """A button that sends one request; `connector_id` is None for station buttons."""

    press_fn: Callable[[Charger, int | None], Awaitable[Any]]


STATION_BUTTONS = (
    ChargerButtonDescription(
        key="soft_reset",
        translation_key="soft_reset",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda cp, _: cp.reset(hard=False),
    ),
    ChargerButtonDescription(
        key="hard_reset",
        translation_key="hard_reset",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        entity_registry_enabled_default=False,
        press_fn=lambda cp, _: cp.reset(hard=True),
    ),
)
UNLOCK = ChargerButtonDescription(
    key="unlock",
    translation_key="unlock",
    entity_registry_enabled_default=False,  # rarely needed: a stuck cable
    press_fn=lambda cp, cid: cp.unlock(cid or 1),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Reset buttons per station, an unlock button per connector."""

    def station_entities(hub: EvChargingCoordinator, station_id: str) -> list[ButtonEntity]:
        return [ChargerButton(hub, station_id, None, d) for d in STATION_BUTTONS]

    def connector_entities(
        hub: EvChargingCoordinator, station_id: str, connector_id: int
    ) -> list[ButtonEntity]:
        return [ChargerButton(hub, station_id, connector_id, UNLOCK)]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )


class ChargerButton(EvChargingEntity, ButtonEntity):
    """Sends its request to the charger when pressed."""

    entity_description: ChargerButtonDescription

    async def async_press(self) -> None:
        """Send the request; errors surface as translated HomeAssistantErrors."""
        site = self.hub.site
        await call_charger(
            lambda: self.entity_description.press_fn(
                site.charger(self.station_id), self.connector_id
            )
        )
