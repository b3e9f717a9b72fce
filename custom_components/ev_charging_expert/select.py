"""Selects: the zone a station is in, and how each connector is wired."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import UNASSIGNED, signal_new_zone
from .entity import EvChargingSettingEntity, setup_platform_entities
from .evcore.allocation.phases import Wiring
from .evcore.config import terminal_zones
from .select_auth import async_setup_auth_selects

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.config import StationConfig, ZoneConfig

PARALLEL_UPDATES = 0

type Zones = Mapping[str, ZoneConfig]


@dataclass(frozen=True, kw_only=True)
class SettingSelectDescription(SelectEntityDescription):
    """A choice in the station's configuration; `int` is the setting's connector."""

    current_fn: Callable[[StationConfig, int, Zones], str]
    set_fn: Callable[[StationConfig, int, Zones, str], StationConfig]
    options_fn: Callable[[Zones], list[str]] | None = None
    """Options that follow the zones (else the description's `options`)."""


def _zone_options(zones: Zones) -> list[str]:
    """Unassigned, then every zone without sub-zones, by name."""
    return [UNASSIGNED, *sorted(zones[z].name for z in terminal_zones(zones))]


def _zone_option(config: StationConfig, zones: Zones) -> str:
    """The zone's name; unassigned when none or when its zone is gone."""
    zone = zones.get(config.zone_id or "")
    return zone.name if zone is not None else UNASSIGNED


def _with_zone(config: StationConfig, zones: Zones, option: str) -> StationConfig:
    zone_id = next((z.zone_id for z in zones.values() if z.name == option), None)
    return replace(config, zone_id=zone_id)


# Which zone (switchboard without sub-zones) the station is wired to.
ZONE = SettingSelectDescription(
    key="zone",
    translation_key="zone",
    entity_category=EntityCategory.CONFIG,
    options_fn=_zone_options,
    current_fn=lambda config, _, zones: _zone_option(config, zones),
    set_fn=lambda config, _, zones, option: _with_zone(config, zones, option),
)
# How the connector's phases are wired to the grid's (phase rotation); TRI123 until set.
WIRING = SettingSelectDescription(
    key="wiring",
    translation_key="wiring",
    entity_category=EntityCategory.CONFIG,
    options=[w.value for w in Wiring],
    current_fn=lambda config, connector, _: config.connector(connector).wiring.value,
    set_fn=lambda config, connector, _, option: config.with_connector(
        connector, wiring=Wiring(option)
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A zone select per station, a wiring select per connector."""

    def station_entities(hub: EvChargingCoordinator, station_id: str) -> list[SelectEntity]:
        return [SettingSelect(hub, station_id, None, ZONE)]

    def connector_entities(
        hub: EvChargingCoordinator, station_id: str, connector_id: int
    ) -> list[SelectEntity]:
        return [SettingSelect(hub, station_id, connector_id, WIRING)]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )
    async_setup_auth_selects(entry, async_add_entities)


class SettingSelect(EvChargingSettingEntity, SelectEntity):
    """A choice setting; changing it re-runs the allocation."""

    entity_description: SettingSelectDescription

    @property
    def options(self) -> list[str]:
        """The description's options, or those the zones give."""
        options_fn = self.entity_description.options_fn
        return super().options if options_fn is None else options_fn(self.hub.zones)

    @property
    def current_option(self) -> str:
        """From the station's configuration."""
        return self.entity_description.current_fn(
            self.station.config, self.setting_connector, self.hub.zones
        )

    async def async_select_option(self, option: str) -> None:
        """Store the choice."""
        self.configure(
            self.entity_description.set_fn(
                self.station.config, self.setting_connector, self.hub.zones, option
            )
        )

    async def async_added_to_hass(self) -> None:
        """Options that follow the zones also refresh when zones are added."""
        await super().async_added_to_hass()
        if self.entity_description.options_fn is not None:
            self.async_on_remove(
                async_dispatcher_connect(
                    self.hass, signal_new_zone(self.hub.entry.entry_id), self._zone_added
                )
            )

    @callback
    def _zone_added(self, _zone_id: str) -> None:
        self.async_write_ha_state()
