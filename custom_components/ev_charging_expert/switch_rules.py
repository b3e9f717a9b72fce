"""The site's time-of-use switch: off keeps the periods but no zone is limited by them.

It writes the entry's option (the same as the *Configure* form), so the setting survives
restarts and the update listener applies it live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import CONF_TOU_ENABLED, DOMAIN, signal_rules

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator

TOU_SWITCH = SwitchEntityDescription(
    key="tou_enabled", translation_key="tou_enabled", entity_category=EntityCategory.CONFIG
)


class TouSwitch(SwitchEntity):
    """Time-of-use on or off for the whole site."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, hub: EvChargingCoordinator) -> None:
        self.hub = hub
        self.entity_description = TOU_SWITCH
        self._attr_unique_id = f"site_{TOU_SWITCH.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, hub.entry.entry_id)})

    @property
    def is_on(self) -> bool:
        """Whether the periods limit the zones."""
        return self.hub.controller.rules_view().tou_enabled

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Time-of-use on."""
        self._set(on=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Time-of-use off (the periods stay)."""
        self._set(on=False)

    def _set(self, *, on: bool) -> None:
        entry = self.hub.entry
        self.hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_TOU_ENABLED: on}
        )

    async def async_added_to_hass(self) -> None:
        """Follow the rules' signal."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_rules(self.hub.entry.entry_id), self.async_write_ha_state
            )
        )


def async_setup_rules_switches(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The site's time-of-use switch."""
    async_add_entities([TouSwitch(entry.runtime_data)])
