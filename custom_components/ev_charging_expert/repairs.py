"""Repairs: accept a charger that waits in the pending state; an unreadable registry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, ISSUE_OFFLINE_RESERVE, ISSUE_PENDING_CHARGER
from .repairs_offline import RemoveOfflineStationsFlow
from .security import ISSUE_REGISTRY_UNREADABLE, sync_registry_issue

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


class RegistryUnreadableFlow(RepairsFlow):
    """The registry could not be read: restore a backup, or explicitly start an empty one."""

    def __init__(self, placeholders: dict[str, str]) -> None:
        super().__init__()
        self._placeholders = placeholders

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Offer the two ways out."""
        return self.async_show_menu(
            step_id="init",
            menu_options=["restore", "start_empty"],
            description_placeholders=self._placeholders,
        )

    async def async_step_restore(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Restoring is done outside: say how, change nothing."""
        return self.async_abort(reason="restore", description_placeholders=self._placeholders)

    async def async_step_start_empty(self, user_input: dict[str, str] | None = None) -> FlowResult:
        """Forget the unreadable registry (and its passwords) once the user confirms."""
        if user_input is None:
            return self.async_show_form(
                step_id="start_empty", description_placeholders=self._placeholders
            )
        for entry in self.hass.config_entries.async_entries(DOMAIN):
            if entry.state is ConfigEntryState.LOADED:
                hub = entry.runtime_data
                await hub.site.start_empty()
                sync_registry_issue(self.hass, hub.site, hub.store.path)
        ir.async_delete_issue(self.hass, DOMAIN, ISSUE_REGISTRY_UNREADABLE)
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the fix flow of an issue."""
    if issue_id.startswith(f"{ISSUE_PENDING_CHARGER}_") and data:
        return AcceptChargerFlow(str(data["station_id"]))
    if issue_id.startswith(f"{ISSUE_OFFLINE_RESERVE}_") and data:
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        placeholders = dict(issue.translation_placeholders or {}) if issue else {}
        return RemoveOfflineStationsFlow(
            [str(s) for s in json.loads(str(data["stations"]))], placeholders
        )
    if issue_id == ISSUE_REGISTRY_UNREADABLE:
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        placeholders = dict(issue.translation_placeholders or {}) if issue else {}
        return RegistryUnreadableFlow(placeholders)
    return ConfirmRepairFlow()
