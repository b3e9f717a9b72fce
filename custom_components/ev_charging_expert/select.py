"""Selects: the zone a station is in, and how each connector is wired."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import UNASSIGNED, signal_new_zone
from .entity import EvChargingEntity, setup_platform_entities
from .evcore.allocation.phases import Wiring
from .evcore.config import terminal_zones

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .hub import EvChargingConfigEntry, EvChargingHub

PARALLEL_UPDATES = 0

ZONE = SelectEntityDescription(
    key="zone", translation_key="zone", entity_category=EntityCategory.CONFIG
)
WIRING = SelectEntityDescription(
    key="wiring",
    translation_key="wiring",
    entity_category=EntityCategory.CONFIG,
    options=[w.value for w in Wiring],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A zone select per station, a wiring select per connector."""

    def station_entities(hub: EvChargingHub, station_id: str) -> list[SelectEntity]:
        return [ZoneSelect(hub, station_id, None, ZONE)]

    def connector_entities(
        hub: EvChargingHub, station_id: str, connector_id: int
    ) -> list[SelectEntity]:
        return [WiringSelect(hub, station_id, connector_id, WIRING)]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )


class ZoneSelect(EvChargingEntity, SelectEntity):
    """Which zone (switchboard without sub-zones) the station is wired to."""

    # Assigning a station is configuration: it works while the charger is offline too.
    _available_when_offline = True

    @property
    def options(self) -> list[str]:
        """Unassigned, then every zone without sub-zones, by name."""
        zones = self.hub.zones
        names = sorted(zones[z].name for z in terminal_zones(zones))
        return [UNASSIGNED, *names]

    @property
    def current_option(self) -> str | None:
        """The zone's name; unassigned when none or when its zone is gone."""
        zone = self.hub.zones.get(self.station.config.zone_id or "")
        return zone.name if zone is not None else UNASSIGNED

    async def async_select_option(self, option: str) -> None:
        """Move the station; the allocation follows at once."""
        zone_id = next((z.zone_id for z in self.hub.zones.values() if z.name == option), None)
        self.hub.site.configure_station(
            self.station_id, replace(self.station.config, zone_id=zone_id)
        )

    async def async_added_to_hass(self) -> None:
        """Also refresh when zones are added (new options)."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_new_zone(self.hub.entry.entry_id), self._zone_added
            )
        )

    @callback
    def _zone_added(self, _zone_id: str) -> None:
        self.async_write_ha_state()


class WiringSelect(EvChargingEntity, SelectEntity):
    """How the connector's phases are wired to the grid's (phase rotation)."""

    _available_when_offline = True

    @property
    def current_option(self) -> str:
        """The configured wiring (TRI123 until set)."""
        assert self.connector_id is not None  # noqa: S101
        return self.station.config.connector(self.connector_id).wiring.value

    async def async_select_option(self, option: str) -> None:
        """Change the wiring."""
        assert self.connector_id is not None  # noqa: S101
        self.hub.site.configure_station(
            self.station_id,
            self.station.config.with_connector(self.connector_id, wiring=Wiring(option)),
        )
