"""Switches: availability (Operative / Inoperative) of a station and of each connector."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory

from .entity import EvChargingEntity, setup_platform_entities
from .evcore.model import ConnectorStatus
from .helpers import call_charger

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .hub import EvChargingConfigEntry, EvChargingHub

PARALLEL_UPDATES = 1

AVAILABILITY = SwitchEntityDescription(
    key="availability", translation_key="availability", entity_category=EntityCategory.CONFIG
)
VIP = SwitchEntityDescription(
    key="vip", translation_key="vip", entity_category=EntityCategory.CONFIG
)
PAUSE = SwitchEntityDescription(key="pause", translation_key="pause")
DC = SwitchEntityDescription(key="dc", translation_key="dc", entity_category=EntityCategory.CONFIG)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """An availability switch per station and per connector."""

    def station_entities(hub: EvChargingHub, station_id: str) -> list[SwitchEntity]:
        return [
            AvailabilitySwitch(hub, station_id, None, AVAILABILITY),
            VipSwitch(hub, station_id, None, VIP),
            DcSwitch(hub, station_id, None, DC),
        ]

    def connector_entities(
        hub: EvChargingHub, station_id: str, connector_id: int
    ) -> list[SwitchEntity]:
        return [
            AvailabilitySwitch(hub, station_id, connector_id, AVAILABILITY),
            PauseSwitch(hub, station_id, connector_id, PAUSE),
        ]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )


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


class VipSwitch(EvChargingEntity, SwitchEntity):
    """A VIP station is served first, up to its maximum."""

    _available_when_offline = True

    @property
    def is_on(self) -> bool:
        """Whether the station is VIP."""
        return self.station.config.vip

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Make it VIP."""
        self._set(vip=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Make it ordinary."""
        self._set(vip=False)

    def _set(self, *, vip: bool) -> None:
        self.hub.site.configure_station(self.station_id, replace(self.station.config, vip=vip))


class PauseSwitch(EvChargingEntity, SwitchEntity):
    """On: load management gives this connector no current (its EV waits)."""

    _available_when_offline = True

    @property
    def is_on(self) -> bool:
        """Whether the connector is paused."""
        assert self.connector_id is not None  # noqa: S101
        return self.station.config.connector(self.connector_id).paused

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Pause."""
        self._set(paused=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Resume."""
        self._set(paused=False)

    def _set(self, *, paused: bool) -> None:
        assert self.connector_id is not None  # noqa: S101
        self.hub.site.configure_station(
            self.station_id, self.station.config.with_connector(self.connector_id, paused=paused)
        )


class DcSwitch(EvChargingEntity, SwitchEntity):
    """A DC station has no degraded mode: offline, it is counted at its last setpoint."""

    _available_when_offline = True

    @property
    def is_on(self) -> bool:
        """Whether the station is DC."""
        return self.station.config.dc

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Mark it DC."""
        self._set(dc=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Mark it AC."""
        self._set(dc=False)

    def _set(self, *, dc: bool) -> None:
        self.hub.site.configure_station(self.station_id, replace(self.station.config, dc=dc))
