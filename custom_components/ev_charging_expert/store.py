"""evcore's site persistence on Home Assistant's `Store`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.helpers.storage import Store

from .const import DOMAIN

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant

STORAGE_VERSION = 1
_SAVE_DELAY = 2.0


class HaSiteStore:
    """evcore's SiteStore on top of HA's `Store` (atomic JSON in .storage)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}", atomic_writes=True
        )
        self._pending: Callable[[], dict[str, Any]] | None = None

    async def load(self) -> dict[str, Any] | None:
        """Load the registry."""
        return await self._store.async_load()

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
