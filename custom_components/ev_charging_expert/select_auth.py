"""Selects of authorization: each zone's and each station's mode and offline behaviour.

"inherit" follows the parent zone (for a station: its zone; for a top zone: the site
default). Changing one is admin-only, as in the guide, even though any user sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.exceptions import Unauthorized
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .cards_ha import signal_cards
from .entity import (
    EvChargingSettingEntity,
    EvChargingZoneEntity,
    setup_platform_entities,
    setup_zone_entities,
)
from .evcore.auth.modes import AuthMode, OfflineBehaviour

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.auth.modes import AuthSettings

INHERIT = "inherit"


@dataclass(frozen=True, kw_only=True)
class AuthSelectDescription(SelectEntityDescription):
    """One of the two settings; `table_fn` picks the zone's or station's table."""

    table_fn: Callable[[AuthSettings], dict[str, str]]
    field: str
    """The keyword of `set_zone_mode` / `set_station_mode`."""


def _description(
    key: str, values: list[str], table_fn: Callable[[AuthSettings], dict[str, str]], field: str
) -> AuthSelectDescription:
    return AuthSelectDescription(
        key=key,
        translation_key=key,
        entity_category=EntityCategory.CONFIG,
        options=[INHERIT, *values],
        table_fn=table_fn,
        field=field,
    )


ZONE_MODE = _description("auth_mode", list(AuthMode), lambda s: s.zone_mode, "mode")
ZONE_OFFLINE = _description(
    "offline_behaviour", list(OfflineBehaviour), lambda s: s.zone_offline, "offline"
)
STATION_MODE = _description("auth_mode", list(AuthMode), lambda s: s.station_mode, "mode")
STATION_OFFLINE = _description(
    "offline_behaviour", list(OfflineBehaviour), lambda s: s.station_offline, "offline"
)


async def _require_admin(entity: SelectEntity) -> None:
    context = entity._context  # noqa: SLF001  # the service call's context, set by HA
    if context is None or context.user_id is None:
        return
    user = await entity.hass.auth.async_get_user(context.user_id)
    if user is None or not user.is_admin:
        raise Unauthorized(context=context, permission="admin")


def async_setup_auth_selects(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Two selects per zone and two per station."""

    def zone_entities(hub: EvChargingCoordinator, zone_id: str) -> list[SelectEntity]:
        return [ZoneAuthSelect(hub, zone_id, d) for d in (ZONE_MODE, ZONE_OFFLINE)]

    def station_entities(hub: EvChargingCoordinator, station_id: str) -> list[SelectEntity]:
        return [
            StationAuthSelect(hub, station_id, None, d) for d in (STATION_MODE, STATION_OFFLINE)
        ]

    setup_zone_entities(entry, async_add_entities, zone_entities)
    setup_platform_entities(entry, async_add_entities, station_entities=station_entities)


class ZoneAuthSelect(EvChargingZoneEntity, SelectEntity):
    """A zone's mode or offline behaviour."""

    entity_description: AuthSelectDescription

    @property
    def current_option(self) -> str:
        """The zone's own setting, or inherit."""
        table = self.entity_description.table_fn(self.hub.controller.auth.settings)
        return str(table.get(self.zone_id, INHERIT))

    async def async_select_option(self, option: str) -> None:
        """Store it; the zone's chargers get their keys again."""
        await _require_admin(self)
        value = None if option == INHERIT else option
        self.hub.controller.auth.set_zone_mode(
            self.zone_id, **{self.entity_description.field: value}
        )

    async def async_added_to_hass(self) -> None:
        """Also follow authorization changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_cards(self.hub.entry.entry_id), self.async_write_ha_state
            )
        )


class StationAuthSelect(EvChargingSettingEntity, SelectEntity):
    """A station's own mode or offline behaviour (inherit: its zone's)."""

    entity_description: AuthSelectDescription

    @property
    def current_option(self) -> str:
        """The station's own setting, or inherit."""
        table = self.entity_description.table_fn(self.hub.controller.auth.settings)
        return str(table.get(self.station_id, INHERIT))

    async def async_select_option(self, option: str) -> None:
        """Store it; the charger gets its keys again."""
        await _require_admin(self)
        value = None if option == INHERIT else option
        self.hub.controller.auth.set_station_mode(
            self.station_id, **{self.entity_description.field: value}
        )
