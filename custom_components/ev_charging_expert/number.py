"""Numbers: a connector's rating (installer) and its current limit (user cap)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import EntityCategory, UnitOfElectricCurrent

from .entity import EvChargingEntity, setup_platform_entities

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .evcore.config import ConnectorConfig
    from .hub import EvChargingConfigEntry, EvChargingHub

PARALLEL_UPDATES = 0

MAX_RATING = 500.0  # A: covers DC chargers; a bigger value is a typo


@dataclass(frozen=True, kw_only=True)
class ConnectorNumberDescription(NumberEntityDescription):
    """A number stored in the connector's configuration."""

    value_fn: Callable[[ConnectorConfig], float | None]
    field: str


NUMBERS = (
    ConnectorNumberDescription(
        key="rating",
        translation_key="rating",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.CONFIG,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=lambda c: c.rating,
        field="rating",
    ),
    ConnectorNumberDescription(
        key="current_limit",
        translation_key="current_limit",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=0.5,
        mode=NumberMode.SLIDER,
        value_fn=lambda c: c.rating if c.user_limit is None else c.user_limit,
        field="user_limit",
    ),
)


@dataclass(frozen=True, kw_only=True)
class StationNumberDescription(NumberEntityDescription):
    """An optional number of the station's configuration (cleared at 0)."""

    field: str


STATION_NUMBERS = (
    StationNumberDescription(
        key="minimum_override",
        translation_key="minimum_override",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.CONFIG,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=0.5,
        mode=NumberMode.BOX,
        field="minimum_override",
    ),
    StationNumberDescription(
        key="degraded_override",
        translation_key="degraded_override",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.CONFIG,
        native_min_value=0,
        native_max_value=MAX_RATING,
        native_step=0.5,
        mode=NumberMode.BOX,
        field="degraded_override",
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Rating and current limit per connector."""

    def connector_entities(
        hub: EvChargingHub, station_id: str, connector_id: int
    ) -> list[NumberEntity]:
        return [ConnectorNumber(hub, station_id, connector_id, d) for d in NUMBERS]

    def station_entities(hub: EvChargingHub, station_id: str) -> list[NumberEntity]:
        return [StationNumber(hub, station_id, None, d) for d in STATION_NUMBERS]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )


class ConnectorNumber(EvChargingEntity, NumberEntity):
    """A connector setting; changing it re-runs the allocation."""

    entity_description: ConnectorNumberDescription
    _available_when_offline = True

    @property
    def _config(self) -> ConnectorConfig:
        assert self.connector_id is not None  # noqa: S101
        return self.station.config.connector(self.connector_id)

    @property
    def native_max_value(self) -> float:
        """A limit above the rating means nothing: the rating caps the slider."""
        if self.entity_description.key == "current_limit":
            return self._config.rating
        return MAX_RATING

    @property
    def native_value(self) -> float | None:
        """The stored value."""
        return self.entity_description.value_fn(self._config)

    async def async_set_native_value(self, value: float) -> None:
        """Store it; HA has already checked it against min and max."""
        assert self.connector_id is not None  # noqa: S101
        changes: dict[str, Any] = {self.entity_description.field: float(value)}
        limit = value if self.entity_description.key == "current_limit" else None
        rating = value if self.entity_description.key == "rating" else self._config.rating
        if (limit if limit is not None else self._config.user_limit or 0.0) >= rating:
            changes["user_limit"] = None  # a limit at or above the rating is no limit
        self.hub.site.configure_station(
            self.station_id, self.station.config.with_connector(self.connector_id, **changes)
        )


class StationNumber(EvChargingEntity, NumberEntity):
    """A degraded-mode setting of the station; 0 clears it (the computed value applies)."""

    entity_description: StationNumberDescription
    _available_when_offline = True

    @property
    def native_value(self) -> float:
        """The stored value (0 when unset)."""
        value = getattr(self.station.config, self.entity_description.field)
        return 0.0 if value is None else float(value)

    async def async_set_native_value(self, value: float) -> None:
        """Store it; the degraded currents are computed again at once."""
        self.hub.site.configure_station(
            self.station_id,
            replace(self.station.config, **{self.entity_description.field: value or None}),
        )
