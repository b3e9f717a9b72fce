"""EV Charging Expert: an OCPP central system and site load manager inside Home Assistant."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from homeassistant.const import Platform
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr

from .bms import HaSlotStore
from .cards_ha import card_store
from .const import DOMAIN, parse_device_identifier
from .coordinator import EvChargingCoordinator
from .services import async_setup_services
from .store import HaSiteStore

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.typing import ConfigType

    from .coordinator import EvChargingConfigEntry

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the service actions once."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: EvChargingConfigEntry) -> bool:
    """Load the station registry, create the entities, then open the OCPP port."""
    hub = EvChargingCoordinator(hass, entry)
    await hub.async_load()
    entry.runtime_data = hub
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, entry.entry_id)},
        name="EV Charging Expert",
        manufacturer="EV Charging Expert",
        model="OCPP central system",
        entry_type=dr.DeviceEntryType.SERVICE,
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    try:
        await hub.async_start()
    except (OSError, ssl.SSLError) as err:
        await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
        await hub.async_stop()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_listen",
            translation_placeholders={"error": str(err)},
        ) from err
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def _async_update_listener(hass: HomeAssistant, entry: EvChargingConfigEntry) -> None:
    """Zones, meters, meter models (subentries) and site settings (options) apply live.

    No reload: that would drop every charger connection.
    """
    await entry.runtime_data.async_config_changed()


async def async_unload_entry(hass: HomeAssistant, entry: EvChargingConfigEntry) -> bool:
    """Close every charger connection and the port."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_stop()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: EvChargingConfigEntry) -> None:
    """Delete the station and card registries together with the entry."""
    await HaSiteStore(hass, entry.entry_id).remove()
    await card_store(hass, entry.entry_id).remove()
    await HaSlotStore(hass, entry.entry_id).remove()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: EvChargingConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Removing a station's device forgets the station and refuses it from then on."""
    hub = entry.runtime_data
    for domain, identifier in device_entry.identifiers:
        named = parse_device_identifier(identifier) if domain == DOMAIN else None
        if named is not None and named[1] is None and named[0] in hub.site.stations:
            await hub.site.remove_station(named[0])
            return True
    return False
