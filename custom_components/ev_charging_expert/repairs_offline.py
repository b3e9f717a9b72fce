"""Repair: offline stations that still hold current in a zone; remove the ones gone for good.

Removal is the same path as deleting the station's device: the station is forgotten and
refused from then on, and its current is given back once its lease has ended (it may still run
on it until then; see safety rule 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .const import DOMAIN, station_device_id

if TYPE_CHECKING:
    from homeassistant.data_entry_flow import FlowResult

CONF_REMOVE = "remove"


class RemoveOfflineStationsFlow(RepairsFlow):
    """Pick the offline stations to remove (none: keep waiting for them)."""

    def __init__(self, stations: list[str], placeholders: dict[str, str]) -> None:
        super().__init__()
        self._stations = stations
        self._placeholders = placeholders

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """The repairs dashboard starts here (with the issue as input): show the list."""
        return await self.async_step_remove()

    async def async_step_remove(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """List the stations with their current; the chosen ones are removed."""
        if user_input is not None:
            chosen = [s for s in user_input.get(CONF_REMOVE, []) if s in self._stations]
            for entry in self.hass.config_entries.async_entries(DOMAIN):
                if entry.state is not ConfigEntryState.LOADED:
                    continue
                hub = entry.runtime_data
                registry = dr.async_get(self.hass)
                for station_id in chosen:
                    if station_id not in hub.site.stations:
                        continue
                    await hub.site.remove_station(station_id)
                    device = registry.async_get_device(identifiers={station_device_id(station_id)})
                    if device is not None:
                        registry.async_remove_device(device.id)
                hub.overview.sync_offline()
            return self.async_create_entry(data={})
        schema = vol.Schema(
            {vol.Optional(CONF_REMOVE, default=[]): cv.multi_select(self._stations)}
        )
        return self.async_show_form(
            step_id="remove", data_schema=schema, description_placeholders=self._placeholders
        )
