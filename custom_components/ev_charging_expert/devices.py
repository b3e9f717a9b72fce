"""Stations and connectors as devices: announce new ones, keep their info, forget removed ones.

As in plugwise: devices appear and disappear at runtime. A station that is accepted (or comes
back from storage) gets its entities through a dispatcher signal that the platforms listen to;
a connector the charger reports later gets its own; a removed station's devices go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import (
    DOMAIN,
    MANUFACTURER,
    connector_device_id,
    signal_new_connector,
    signal_new_station,
    station_device_id,
    station_ref,
    zone_device_id,
)
from .evcore.keys import ConnectorKey
from .evcore.model import Registration

if TYPE_CHECKING:
    from collections.abc import Iterable

    from homeassistant.core import HomeAssistant

    from .evcore.config import ZoneConfig
    from .evcore.model import BootInfo
    from .evcore.site import Site


class DeviceSync:
    """Which stations and connectors have entities, and their devices' info."""

    def __init__(self, hass: HomeAssistant, entry_id: str, site: Site) -> None:
        self.hass = hass
        self._entry_id = entry_id
        self._site = site
        self._stations: set[str] = set()
        self._connectors: set[ConnectorKey] = set()
        self._boot: dict[str, BootInfo] = {}

    def accepted_stations(self) -> list[str]:
        """Stations that have (or should have) entities."""
        return [
            sid for sid, s in self._site.stations.items() if s.registration is Registration.ACCEPTED
        ]

    def connectors_of(self, station_id: str) -> list[int]:
        """The connector ids (1..n) known for a station."""
        return [c.connector_id for c in self._site.stations[station_id].charge_points]

    def migrate_identifiers(self) -> None:
        """Devices and entities named before identities were escaped get today's names.

        Only stations whose identity holds '%', '#' or '_' are concerned; the longest
        identity that prefixes an old unique id wins.
        """
        renamed = sorted(
            (sid for sid in self._site.stations if station_ref(sid) != sid), key=len, reverse=True
        )
        if not renamed:
            return
        devices = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(devices, self._entry_id):
            old = next((i for d, i in device.identifiers if d == DOMAIN), "")
            for sid in renamed:
                if old == sid or (old.startswith(f"{sid}#") and old[len(sid) + 1 :].isdecimal()):
                    new = station_ref(sid) + old[len(sid) :]
                    devices.async_update_device(device.id, new_identifiers={(DOMAIN, new)})
                    break
        entities = er.async_get(self.hass)
        for entity in er.async_entries_for_config_entry(entities, self._entry_id):
            for sid in renamed:
                if entity.unique_id.startswith(f"{sid}_"):
                    new_id = station_ref(sid) + entity.unique_id[len(sid) :]
                    if entities.async_get_entity_id(entity.domain, DOMAIN, new_id) is None:
                        entities.async_update_entity(entity.entity_id, new_unique_id=new_id)
                    break

    def restore(self) -> None:
        """The stations in storage get their entities when the platforms set up."""
        for station_id in self.accepted_stations():
            self._stations.add(station_id)
            self._connectors.update(
                ConnectorKey(station_id, cid) for cid in self.connectors_of(station_id)
            )

    def ensure(self, station_id: str) -> None:
        """Announce a station or connector that has no entities yet; refresh device info."""
        if station_id not in self._stations:
            self._stations.add(station_id)
            async_dispatcher_send(self.hass, signal_new_station(self._entry_id), station_id)
        for connector_id in self.connectors_of(station_id):
            key = ConnectorKey(station_id, connector_id)
            if key not in self._connectors:
                self._connectors.add(key)
                async_dispatcher_send(
                    self.hass, signal_new_connector(self._entry_id), station_id, connector_id
                )
        self._update_info(station_id)

    def _update_info(self, station_id: str) -> None:
        boot = self._site.stations[station_id].boot
        if boot is None or self._boot.get(station_id) is boot:
            return
        self._boot[station_id] = boot
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(identifiers={station_device_id(station_id)})
        if device is not None:
            registry.async_update_device(
                device.id,
                manufacturer=boot.vendor,
                model=boot.model,
                serial_number=boot.serial,
                sw_version=boot.firmware_version,
            )

    def forget(self, station_id: str) -> None:
        """A station was removed: its connectors' devices go (HA removes the station's)."""
        registry = dr.async_get(self.hass)
        for key in [k for k in self._connectors if k.station_id == station_id]:
            device = registry.async_get_device(
                identifiers={connector_device_id(key.station_id, key.connector_id)}
            )
            if device is not None:
                registry.async_remove_device(device.id)
            self._connectors.discard(key)
        self._stations.discard(station_id)
        self._boot.pop(station_id, None)

    def rename_zones(self, zones: Iterable[ZoneConfig]) -> None:
        """Zone devices follow their zone's name."""
        registry = dr.async_get(self.hass)
        for zone in zones:
            device = registry.async_get_device(identifiers={zone_device_id(zone.zone_id)})
            if device is not None and device.name != zone.name:
                registry.async_update_device(device.id, name=zone.name)


def sync_hierarchy(
    hass: HomeAssistant, entry_id: str, site: Site, zones: Iterable[ZoneConfig]
) -> None:
    """Zones hang off their parent zone (or the hub), stations off their zone (issue 15).

    Zone devices are created here, parents first, so the devices that name them as
    `via_device` always find them; moved zones and stations follow.
    """
    registry = dr.async_get(hass)
    hub = registry.async_get_or_create(
        config_entry_id=entry_id,
        identifiers={(DOMAIN, entry_id)},
        name="EV Charging Expert",
        manufacturer=MANUFACTURER,
        model="OCPP central system",
        entry_type=dr.DeviceEntryType.SERVICE,
    )
    by_id = {zone.zone_id: zone for zone in zones}
    ids: dict[str, str] = {}

    def device_of(zone_id: str, seen: frozenset[str] = frozenset()) -> str:
        if zone_id in ids:
            return ids[zone_id]
        zone = by_id[zone_id]
        parent = hub.id
        if zone.parent_id in by_id and zone.parent_id not in seen:
            parent = device_of(zone.parent_id, seen | {zone_id})
        device = registry.async_get_or_create(
            config_entry_id=entry_id,
            config_subentry_id=zone_id,
            identifiers={zone_device_id(zone_id)},
            name=zone.name,
            manufacturer=MANUFACTURER,
            model="Zone",
        )
        if device.via_device_id != parent:
            registry.async_update_device(device.id, via_device_id=parent)
        ids[zone_id] = device.id
        return device.id

    for zone_id in sorted(by_id):
        device_of(zone_id)
    for station_id, station in site.stations.items():
        device = registry.async_get_device(identifiers={station_device_id(station_id)})
        if device is None:
            continue
        parent = ids.get(station.config.zone_id or "", hub.id)
        if device.via_device_id != parent:
            registry.async_update_device(device.id, via_device_id=parent)
