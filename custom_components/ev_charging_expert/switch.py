"""Switches: a station's and its connectors' availability; on/off settings (VIP, DC, pause)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory

from .entity import EvChargingEntity, EvChargingSettingEntity, setup_platform_entities
from .evcore.model import ConnectorStatus
from .helpers import call_charger
from .switch_rules import async_setup_rules_switches

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.config import StationConfig

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class SettingSwitchDescription(SwitchEntityDescription):
    """An on/off setting of the station's configuration; `int` is the setting's connector."""

    is_on_fn: Callable[[StationConfig, int], bool]
    set_fn: Callable[[StationConfig, int, bool], StationConfig]


AVAILABILITY = SwitchEntityDescription(
    key="availability", translation_key="availability", entity_category=EntityCategory.CONFIG
)
# A VIP station is served first, up to its maximum.
VIP = SettingSwitchDescription(
    key="vip",
    translation_key="vip",
    entity_category=EntityCategory.CONFIG,
    is_on_fn=lambda config, _: config.vip,
    set_fn=lambda config, _, on: replace(config, vip=on),
)
# On: load management gives this connector no current (its EV waits).
PAUSE = SettingSwitchDescription(
    key="pause",
    translation_key="pause",
    is_on_fn=lambda config, connector: config.connector(connector).paused,
    set_fn=lambda config, connector, on: config.with_connector(connector, paused=on),
)
# A DC station has no degraded mode: offline, it is counted at its last setpoint.
DC = SettingSwitchDescription(
    key="dc",
    translation_key="dc",
    entity_category=EntityCategory.CONFIG,
    is_on_fn=lambda config, _: config.dc,
    set_fn=lambda config, _, on: replace(config, dc=on),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """An availability switch per station and per connector."""

    def station_entities(hub: EvChargingCoordinator, station_id: str) -> list[SwitchEntity]:
        return [
            AvailabilitySwitch(hub, station_id, None, AVAILABILITY),
            SettingSwitch(hub, station_id, None, VIP),
            SettingSwitch(hub, station_id, None, DC),
        ]

    def connector_entities(
        hub: EvChargingCoordinator, station_id: str, connector_id: int
    ) -> list[SwitchEntity]:
        return [
            AvailabilitySwitch(hub, station_id, connector_id, AVAILABILITY),
            SettingSwitch(hub, station_id, connector_id, PAUSE),
        ]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )
    async_setup_rules_switches(entry, async_add_entities)


class AvailabilitySwitch(EvChargingEntity, SwitchEntity):
    """On = Operative. The state follows the status the charger reports."""

    @property
    def _ocpp_connector(self) -> int:
        return self.connector_id or 0

    @property
    def is_on(self) -> bool | None:
        """Operative unless the charger reports the connector (or station) Unavailable."""
        connector = self.station.connectors.get(self._ocpp_connector)
        if connector is None or connector.status is ConnectorStatus.UNKNOWN:
            return None
        return connector.status is not ConnectorStatus.UNAVAILABLE

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Make it Operative."""
        await self._change(available=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Make it Inoperative (a running session finishes first: Scheduled)."""
        await self._change(available=False)

    async def _change(self, *, available: bool) -> None:
        site = self.hub.site
        await call_charger(
            lambda: site.charger(self.station_id).set_availability(
                self._ocpp_connector, available=available
            )
        )


class SettingSwitch(EvChargingSettingEntity, SwitchEntity):
    """A setting that is on or off."""

    entity_description: SettingSwitchDescription

    @property
    def is_on(self) -> bool:
        """From the station's configuration."""
        return self.entity_description.is_on_fn(self.station.config, self.setting_connector)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn the setting on."""
        self._set(on=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn the setting off."""
        self._set(on=False)

    def _set(self, *, on: bool) -> None:
        self.configure(
            self.entity_description.set_fn(self.station.config, self.setting_connector, on)
        )
