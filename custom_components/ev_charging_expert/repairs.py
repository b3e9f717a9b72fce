"""Repairs: accept a charger that waits in the pending state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntryState

from .const import DOMAIN, ISSUE_PENDING_CHARGER

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.data_entry_flow import FlowResult


class AcceptChargerFlow(ConfirmRepairFlow):
    """Confirming the issue accepts the charger; it is let in at its next boot."""

    def __init__(self, station_id: str) -> None:
        super().__init__()
        self._station_id = station_id

    async def async_step_confirm(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Accept the charger on confirmation."""
        if user_input is not None:
            for entry in self.hass.config_entries.async_entries(DOMAIN):
                if entry.state is ConfigEntryState.LOADED:
                    hub = entry.runtime_data
                    hub.site.accept_station(self._station_id)
                    hub.request_boot(self._station_id)
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm", description_placeholders={"station_id": self._station_id}
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the fix flow of an issue."""
    if issue_id.startswith(f"{ISSUE_PENDING_CHARGER}_") and data:
        return AcceptChargerFlow(str(data["station_id"]))
    return ConfirmRepairFlow()
