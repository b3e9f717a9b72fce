"""evcore's site persistence on Home Assistant's `Store`, failing closed on a corrupt file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .evcore.errors import StoreCorruptError
from .security import registry_file_problem, set_aside_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant

STORAGE_VERSION = 1
_SAVE_DELAY = 2.0


class HaSiteStore:
    """evcore's SiteStore on top of HA's `Store` (atomic JSON in .storage)."""

    def __init__(self, hass: HomeAssistant, entry_id: str, name: str | None = None) -> None:
        """`name`: the file in .storage (the station registry's by default)."""
        self.hass = hass
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, name or f"{DOMAIN}.{entry_id}", atomic_writes=True
        )
        self._pending: Callable[[], dict[str, Any]] | None = None

    @property
    def path(self) -> str:
        """The registry file."""
        return str(self._store.path)

    async def load(self) -> dict[str, Any] | None:
        """Load the registry; a file that cannot be decoded is set aside (StoreCorruptError).

        Checked before HA's Store reads it: that one renames such a file and carries on as on
        a first start, which would let in every charger the lost registry refused.
        """
        try:
            problem = await self.hass.async_add_executor_job(registry_file_problem, self.path)
        except OSError as err:
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="store_unreadable",
                translation_placeholders={"error": str(err)},
            ) from err
        if problem is not None:
            try:
                kept_as = await self.set_aside()
            except OSError:
                kept_as = None
            raise StoreCorruptError(problem, kept_as)
        return await self._store.async_load()

    async def set_aside(self) -> str | None:
        """Rename the registry file (kept for the user); None when there is none."""
        return await self.hass.async_add_executor_job(set_aside_file, self.path, dt_util.utcnow())

    def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save soon; HA flushes pending saves when it stops."""
        self._pending = data
        self._store.async_delay_save(data, _SAVE_DELAY)

    async def flush(self) -> None:
        """Write a pending save now (on unload)."""
        if self._pending is not None:
            await self._store.async_save(self._pending())
            self._pending = None

    async def remove(self) -> None:
        """Delete the file (entry removed)."""
        await self._store.async_remove()
