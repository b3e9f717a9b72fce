"""Sensors of the card registry (on the hub) and of each station's authorization state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .cards_ha import signal_cards
from .entity import EvChargingEntity, EvChargingHubEntity, setup_platform_entities
from .evcore.auth.sync import ListStatus

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry

CARDS = SensorEntityDescription(
    key="cards",
    translation_key="cards",
    state_class=SensorStateClass.MEASUREMENT,
)
CARDS_PENDING = SensorEntityDescription(
    key="cards_awaiting_approval",
    translation_key="cards_awaiting_approval",
    state_class=SensorStateClass.MEASUREMENT,
)
AUTHORIZATION = SensorEntityDescription(
    key="authorization",
    translation_key="authorization",
    device_class=SensorDeviceClass.ENUM,
    options=[s.value for s in ListStatus],
    entity_category=EntityCategory.DIAGNOSTIC,
)


def async_setup_card_sensors(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The two registry counters, and one authorization sensor per station."""
    hub = entry.runtime_data
    async_add_entities([CardCountSensor(hub, CARDS), CardCountSensor(hub, CARDS_PENDING)])
    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=lambda hub, sid: [StationAuthSensor(hub, sid, None, AUTHORIZATION)],
    )


class CardCountSensor(EvChargingHubEntity, SensorEntity):
    """How many cards are registered, or wait for approval (seen at a charger)."""

    _shown: int | None = None

    @property
    def native_value(self) -> int:
        """From the registry."""
        cards = self.hub.controller.cards
        if self.entity_description.key == CARDS_PENDING.key:
            return cards.pending_count
        return len(cards) - cards.pending_count

    async def async_added_to_hass(self) -> None:
        """Follow the registry."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_cards(self.hub.entry.entry_id), self._changed
            )
        )

    @callback
    def _changed(self) -> None:
        # Every card sighting signals: write only when the count moved.
        value = self.native_value
        if value != self._shown:
            self._shown = value
            self.async_write_ha_state()


class StationAuthSensor(EvChargingEntity, SensorEntity):
    """The station's local list state; its mode, offline behaviour and keys as attributes."""

    _available_when_offline = True

    @property
    def native_value(self) -> str | None:
        """not_used, pending, in_sync, truncated, not_supported or failed."""
        state = self.hub.controller.auth.sync_state(self.station_id)
        return None if state is None else state.list_status.value

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Mode, offline behaviour, where they come from, each key's outcome, list version."""
        view = self.hub.controller.auth.station_view(self.station_id).to_dict()
        view.pop("station_id")
        view.pop("last_sync", None)  # diagnostics have it; as an attribute it churns
        keys = view.pop("keys", {})
        view["keys"] = {k: v["status"] for k, v in keys.items()}
        return view

    @callback
    def _handle_update(self) -> None:
        # The attributes change without the state: always write.
        self.async_write_ha_state()
