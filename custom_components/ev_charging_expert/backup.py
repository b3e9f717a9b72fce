"""HA backups: the session database (SQLite in the config folder) is saved consistent.

Before a backup every queued session is written and SQLite's write-ahead log is folded into the
database file, so the file in the backup holds every session recorded until then. PostgreSQL
is the user's to back up (see docs/sessions.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntryState

from .const import DOMAIN
from .sessions_glue import sessions_of

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant


async def async_pre_backup(hass: HomeAssistant) -> None:
    """Write the queued sessions and checkpoint SQLite."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is not ConfigEntryState.LOADED:
            continue
        sessions = sessions_of(entry.runtime_data)
        if sessions is None:
            continue
        await sessions.store.flush()
        await hass.async_add_executor_job(sessions.store.checkpoint)


async def async_post_backup(hass: HomeAssistant) -> None:
    """Nothing to resume: the store never stopped."""
