"""Base entity and the platform plumbing shared by every platform."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import (
    CONNECTOR_MODEL,
    DOMAIN,
    MANUFACTURER,
    connector_device_id,
    connector_unique_id,
    meter_device_id,
    signal_connector,
    signal_meter,
    signal_new_connector,
    signal_new_station,
    signal_new_zone,
    signal_station,
    signal_zone,
    station_device_id,
    station_unique_id,
    zone_device_id,
)
from .quiet import QuietWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.config import StationConfig
    from .evcore.model import ConnectorState, StationState
    from .evcore.view import MeterView


HUB_MODEL = "OCPP central system"


def hub_device_info(entry_id: str) -> DeviceInfo:
    """The hub device: the site as a whole (one per HA instance)."""
    return DeviceInfo(identifiers={(DOMAIN, entry_id)}, manufacturer=MANUFACTURER, model=HUB_MODEL)


class EvChargingHubEntity(Entity):
    """An entity of the hub device (site totals, rules, cards, BMS, MQTT).

    Its unique id is `site_<key>`: the integration is single-entry, so the id is stable across
    re-installs (like the stations'), and no station can take it ('_' is escaped in station refs).
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, hub: EvChargingCoordinator, description: EntityDescription) -> None:
        self.hub = hub
        self.entity_description = description
        self._attr_unique_id = f"site_{description.key}"
        self._attr_device_info = hub_device_info(hub.entry.entry_id)


class EvChargingEntity(Entity):
    """An entity of a station (connector_id None) or of one of its connectors.

    Entities are pushed: the hub sends a dispatcher signal per station and per connector, so a
    meter value on one connector refreshes that connector's entities only.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    # The connectivity sensor stays available to say the charger is offline.
    _available_when_offline = False
    _quiet = False
    """Measured values: written at most every `quiet_interval` (settings: at once)."""
    _quiet_writer: QuietWriter | None = None

    def __init__(
        self,
        hub: EvChargingCoordinator,
        station_id: str,
        connector_id: int | None,
        description: EntityDescription,
    ) -> None:
        self.hub = hub
        self.station_id = station_id
        self.connector_id = connector_id
        self.entity_description = description
        if connector_id is None:
            self._attr_unique_id = station_unique_id(station_id, description.key)
            boot = hub.site.stations[station_id].boot
            self._attr_device_info = DeviceInfo(
                identifiers={station_device_id(station_id)},
                name=station_id,
                manufacturer=boot.vendor if boot else None,
                model=boot.model if boot else None,
                serial_number=boot.serial if boot else None,
                sw_version=boot.firmware_version if boot else None,
                via_device=station_parent(hub, station_id),
            )
        else:
            self._attr_unique_id = connector_unique_id(station_id, connector_id, description.key)
            self._attr_device_info = DeviceInfo(
                identifiers={connector_device_id(station_id, connector_id)},
                name=f"{station_id} connector {connector_id}",
                translation_key="connector",
                translation_placeholders={
                    "station_id": station_id,
                    "connector_id": str(connector_id),
                },
                manufacturer=boot.vendor if (boot := hub.site.stations[station_id].boot) else None,
                model=CONNECTOR_MODEL,
                via_device=station_device_id(station_id),
            )

    @property
    def station(self) -> StationState:
        """The station's live state."""
        return self.hub.site.stations[self.station_id]

    @property
    def connector(self) -> ConnectorState:
        """The connector's live state (connector entities only)."""
        assert self.connector_id is not None  # noqa: S101
        return self.station.connector(self.connector_id)

    @property
    def available(self) -> bool:
        """Unavailable while the charger is disconnected (its values would be stale)."""
        station = self.hub.site.stations.get(self.station_id)
        if station is None:
            return False
        return self._available_when_offline or station.connected

    async def async_added_to_hass(self) -> None:
        """Follow the station's signal, and the connector's for connector entities."""
        entry_id = self.hub.entry.entry_id
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_station(entry_id, self.station_id), self._handle_update
            )
        )
        if self.connector_id is not None:
            self.async_on_remove(
                async_dispatcher_connect(
                    self.hass,
                    signal_connector(entry_id, self.station_id, self.connector_id),
                    self._handle_update,
                )
            )

    @callback
    def _handle_update(self) -> None:
        # A connector's signal fires on every MeterValues; most of its entities did not
        # change. Writing only those that did is most of the cost of a message inside HA;
        # measured values are also coalesced (quiet.py).
        if self._quiet_writer is None:
            self._quiet_writer = QuietWriter()
            self.async_on_remove(self._quiet_writer.stop)
        self._quiet_writer.update(self, self.hub.quiet_interval if self._quiet else 0)


class EvChargingSettingEntity(EvChargingEntity):
    """A setting kept in the station's configuration on our side, not in the charger.

    It can be changed while the charger is offline; load management applies it at once.
    """

    _available_when_offline = True

    @property
    def setting_connector(self) -> int:
        """The connector the setting is about; 0 (OCPP's whole station) for a station's."""
        return self.connector_id or 0

    def configure(self, config: StationConfig) -> None:
        """Store the station's new configuration."""
        self.hub.site.configure_station(self.station_id, config)


class EvChargingSubentryEntity(Entity):
    """An entity of a zone or a power meter: its device belongs to the subentry, below the hub.

    Pushed: the hub sends one dispatcher signal per zone and per meter.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    _quiet = False
    _quiet_writer: QuietWriter | None = None

    def __init__(
        self,
        hub: EvChargingCoordinator,
        description: EntityDescription,
        device_id: tuple[str, str],
        *,
        name: str,
        model: str,
        signal: str,
        via_device: tuple[str, str] | None = None,
    ) -> None:
        self.hub = hub
        self.entity_description = description
        self._signal = signal
        # The device id's identifier (zone_<id>, meter_<id>) is also the unique id's prefix.
        self._attr_unique_id = f"{device_id[1]}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={device_id},
            name=name,
            manufacturer=MANUFACTURER,
            model=model,
            via_device=via_device or (DOMAIN, hub.entry.entry_id),
        )

    async def async_added_to_hass(self) -> None:
        """Follow the zone's or meter's signal."""
        self.async_on_remove(async_dispatcher_connect(self.hass, self._signal, self._handle_update))

    @callback
    def _handle_update(self) -> None:
        if not self._quiet:
            self.async_write_ha_state()
            return
        if self._quiet_writer is None:
            self._quiet_writer = QuietWriter()
            self.async_on_remove(self._quiet_writer.stop)
        self._quiet_writer.update(self, self.hub.quiet_interval)


class EvChargingZoneEntity(EvChargingSubentryEntity):
    """An entity of a zone (switchboard)."""

    def __init__(
        self, hub: EvChargingCoordinator, zone_id: str, description: EntityDescription
    ) -> None:
        self.zone_id = zone_id
        super().__init__(
            hub,
            description,
            zone_device_id(zone_id),
            name=hub.zones[zone_id].name,
            model="Zone",
            signal=signal_zone(hub.entry.entry_id, zone_id),
            via_device=zone_parent(hub, zone_id),
        )

    @property
    def available(self) -> bool:
        """A deleted zone's entities go away with its subentry; until then, unavailable."""
        return self.zone_id in self.hub.zones


class EvChargingMeterEntity(EvChargingSubentryEntity):
    """An entity of a power meter."""

    def __init__(
        self, hub: EvChargingCoordinator, meter_id: str, description: EntityDescription
    ) -> None:
        self.meter_id = meter_id
        name, model = hub.meters.device(meter_id)
        super().__init__(
            hub,
            description,
            meter_device_id(meter_id),
            name=name,
            model=model,
            signal=signal_meter(hub.entry.entry_id, meter_id),
        )

    @property
    def meter_view(self) -> MeterView | None:
        """What the meter's entities show; None when the meter is not configured."""
        return self.hub.meters.view(self.meter_id)


def station_parent(hub: EvChargingCoordinator, station_id: str) -> tuple[str, str]:
    """The device a station hangs off: its zone's, else the hub's."""
    zone_id = hub.site.stations[station_id].config.zone_id
    if zone_id is not None and zone_id in hub.zones:
        return zone_device_id(zone_id)
    return (DOMAIN, hub.entry.entry_id)


def zone_parent(hub: EvChargingCoordinator, zone_id: str) -> tuple[str, str]:
    """The device a zone hangs off: its parent zone's, else the hub's."""
    zone = hub.zones.get(zone_id)
    if zone is not None and zone.parent_id is not None:
        return zone_device_id(zone.parent_id)
    return (DOMAIN, hub.entry.entry_id)


def setup_zone_entities(
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    zone_entities: Callable[[EvChargingCoordinator, str], Iterable[Entity]],
) -> None:
    """Add a platform's zone entities, each under its zone's subentry, now and for new zones."""
    hub = entry.runtime_data

    @callback
    def _add(zone_id: str) -> None:
        async_add_entities(zone_entities(hub, zone_id), config_subentry_id=zone_id)

    for zone_id in hub.zones:
        _add(zone_id)
    entry.async_on_unload(async_dispatcher_connect(hub.hass, signal_new_zone(entry.entry_id), _add))


def setup_platform_entities(
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    *,
    station_entities: Callable[[EvChargingCoordinator, str], Iterable[Entity]] | None = None,
    connector_entities: Callable[[EvChargingCoordinator, str, int], Iterable[Entity]] | None = None,
) -> None:
    """Add a platform's entities for known stations now and for new ones as they appear."""
    hub = entry.runtime_data
    entities: list[Entity] = []
    for station_id in hub.devices.accepted_stations():
        if station_entities is not None:
            entities.extend(station_entities(hub, station_id))
        if connector_entities is not None:
            for connector_id in hub.devices.connectors_of(station_id):
                entities.extend(connector_entities(hub, station_id, connector_id))
    async_add_entities(entities)

    if station_entities is not None:
        factory = station_entities

        @callback
        def _new_station(station_id: str) -> None:
            async_add_entities(factory(hub, station_id))

        entry.async_on_unload(
            async_dispatcher_connect(hub.hass, signal_new_station(entry.entry_id), _new_station)
        )
    if connector_entities is not None:
        connector_factory = connector_entities

        @callback
        def _new_connector(station_id: str, connector_id: int) -> None:
            async_add_entities(connector_factory(hub, station_id, connector_id))

        entry.async_on_unload(
            async_dispatcher_connect(hub.hass, signal_new_connector(entry.entry_id), _new_connector)
        )
