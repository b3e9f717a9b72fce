"""Numbers: a connector's rating (installer) and current limit (user cap); degraded mode."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import EntityCategory, UnitOfElectricCurrent

from .entity import EvChargingSettingEntity, setup_platform_entities
from .number_rules import async_setup_rules_numbers

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.config import StationConfig

PARALLEL_UPDATES = 0

MAX_RATING = 500.0  # A: covers DC chargers; a bigger value is a typo


@dataclass(frozen=True, kw_only=True)
class SettingNumberDescription(NumberEntityDescription):
    """A number of the station's configuration; `int` is the setting's connector."""

    value_fn: Callable[[StationConfig, int], float | None]
    set_fn: Callable[[StationConfig, int, float], StationConfig]
    max_fn: Callable[[StationConfig, int], float] | None = None
    """The maximum when it depends on the configuration (else `native_max_value`)."""


def _limit(config: StationConfig, connector: int) -> float:
    settings = config.connector(connector)
    return settings.rating if settings.user_limit is None else settings.user_limit


def _set_rating(config: StationConfig, connector: int, rating: float) -> StationConfig:
    limit = config.connector(connector).user_limit
    # A limit at or above the rating is no limit.
    if (limit or 0.0) >= rating:
        limit = None
    return config.with_connector(connector, rating=float(rating), user_limit=limit)


def _set_limit(config: StationConfig, connector: int, limit: float) -> StationConfig:
    rating = config.connector(connector).rating
    return config.with_connector(connector, user_limit=None if limit >= rating else float(limit))


CONNECTOR_NUMBERS = (
    SettingNumberDescription(
        key="rating",
        translation_key="rating",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.CONFIG,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=lambda config, connector: config.connector(connector).rating,
        set_fn=_set_rating,
    ),
    SettingNumberDescription(
        key="current_limit",
        translation_key="current_limit",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=0.5,
        mode=NumberMode.SLIDER,
        value_fn=_limit,
        set_fn=_set_limit,
        # A limit above the rating means nothing: the rating caps the slider.
        max_fn=lambda config, connector: config.connector(connector).rating,
    ),
)


# Degraded mode: 0 clears the setting (the computed value applies).
STATION_NUMBERS = (
    SettingNumberDescription(
        key="minimum_override",
        translation_key="minimum_override",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.CONFIG,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=0.5,
        mode=NumberMode.BOX,
        value_fn=lambda config, _: config.minimum_override or 0.0,
        set_fn=lambda config, _, value: replace(config, minimum_override=value or None),
    ),
    SettingNumberDescription(
        key="degraded_override",
        translation_key="degraded_override",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.CONFIG,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=0.5,
        mode=NumberMode.BOX,
        value_fn=lambda config, _: config.degraded_override or 0.0,
        set_fn=lambda config, _, value: replace(config, degraded_override=value or None),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Degraded-mode settings per station; rating and current limit per connector."""

    def station_entities(hub: EvChargingCoordinator, station_id: str) -> list[NumberEntity]:
        return [SettingNumber(hub, station_id, None, d) for d in STATION_NUMBERS]

    def connector_entities(
        hub: EvChargingCoordinator, station_id: str, connector_id: int
    ) -> list[NumberEntity]:
        return [SettingNumber(hub, station_id, connector_id, d) for d in CONNECTOR_NUMBERS]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )
    async_setup_rules_numbers(entry, async_add_entities)


class SettingNumber(EvChargingSettingEntity, NumberEntity):
    """A number setting; changing it re-runs the allocation."""

    entity_description: SettingNumberDescription

    @property
    def native_max_value(self) -> float:
        """The description's maximum, or the one the configuration sets."""
        max_fn = self.entity_description.max_fn
        if max_fn is None:
            return super().native_max_value
        return max_fn(self.station.config, self.setting_connector)

    @property
    def native_value(self) -> float | None:
        """The stored value."""
        return self.entity_description.value_fn(self.station.config, self.setting_connector)

    async def async_set_native_value(self, value: float) -> None:
        """Store it; HA has already checked it against min and max."""
        self.configure(
            self.entity_description.set_fn(self.station.config, self.setting_connector, value)
        )
