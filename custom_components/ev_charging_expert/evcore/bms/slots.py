"""Stable slots: a zone, station or connector keeps its register block for good.

A new object takes a slot never used before while there are some left, then the lowest one
freed; an object that leaves frees its slot, and no one else's moves. The table is persisted
through an injected store (HA's `Store` in production), so slots survive restarts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION = 1


class SlotStore(Protocol):
    """Where the slot table is kept."""

    async def load(self) -> dict[str, Any] | None:
        """The saved data, or None on first start."""

    def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save `data()` soon; repeated calls may be coalesced."""


class MemorySlotStore:
    """A SlotStore in memory (tests, demo, bench)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = data
        self.saves = 0

    async def load(self) -> dict[str, Any] | None:
        """What was saved last."""
        return self.data

    def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save now (it is memory)."""
        self.data = data()
        self.saves += 1


class SlotKind:
    """The slots of one kind of object (zones, stations or connectors)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.by_key: dict[str, int] = {}
        self.high_water = 0
        """Slots 1..high_water have been used at some time."""
        self.full_refused: set[str] = set()

    def slot(self, key: str) -> int | None:
        """The slot of `key`, if it has one."""
        return self.by_key.get(key)

    def sync(self, keys: Iterable[str]) -> bool:
        """Give every key a slot and free the others' (in order); True when something changed."""
        wanted = list(dict.fromkeys(keys))
        wanted_set = set(wanted)
        changed = False
        for key in [k for k in self.by_key if k not in wanted_set]:
            del self.by_key[key]
            changed = True
        used = set(self.by_key.values())
        for key in wanted:
            if key in self.by_key:
                continue
            slot = self._free_slot(used)
            if slot is None:
                if key not in self.full_refused:
                    self.full_refused.add(key)
                    _LOGGER.warning(
                        "No BMS register slot left for %s (%d in use): it is not served",
                        key,
                        self.capacity,
                    )
                continue
            self.by_key[key] = slot
            used.add(slot)
            changed = True
        self.full_refused &= wanted_set
        return changed

    def _free_slot(self, used: set[int]) -> int | None:
        if self.high_water < self.capacity:
            self.high_water += 1
            return self.high_water
        return next((s for s in range(1, self.capacity + 1) if s not in used), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"slots": dict(self.by_key), "high_water": self.high_water}

    def restore(self, data: dict[str, Any]) -> None:
        """Load a saved form; slots beyond the capacity or taken twice are dropped."""
        taken: set[int] = set()
        for key, saved in dict(data.get("slots", {})).items():
            slot = int(saved)
            if 1 <= slot <= self.capacity and slot not in taken:
                self.by_key[str(key)] = slot
                taken.add(slot)
        self.high_water = min(
            max(int(data.get("high_water", 0)), max(taken, default=0)), self.capacity
        )


class SlotTable:
    """Zones, stations and connectors to slots; persisted."""

    def __init__(self, store: SlotStore, *, zones: int, stations: int, connectors: int) -> None:
        self._store = store
        self.zones = SlotKind(zones)
        self.stations = SlotKind(stations)
        self.connectors = SlotKind(connectors)

    async def load(self) -> None:
        """Restore the saved table; an unreadable one starts empty (slots are not safety data)."""
        data = await self._store.load()
        if not data:
            return
        try:
            for name, kind in self._kinds().items():
                kind.restore(dict(data.get(name, {})))
        except (AttributeError, TypeError, ValueError) as err:
            _LOGGER.warning("BMS slot table unreadable, slots are assigned anew: %r", err)
            for kind in self._kinds().values():
                kind.by_key.clear()
                kind.high_water = 0

    def sync(
        self, *, zones: Iterable[str], stations: Iterable[str], connectors: Iterable[str]
    ) -> bool:
        """Assign slots to what exists, free the rest; saves when something changed."""
        changed = self.zones.sync(zones)
        changed = self.stations.sync(stations) or changed
        changed = self.connectors.sync(connectors) or changed
        if changed:
            self._store.schedule_save(self.to_dict)
        return changed

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (persistence, diagnostics)."""
        return {"version": STORAGE_VERSION} | {
            name: kind.to_dict() for name, kind in self._kinds().items()
        }

    def _kinds(self) -> dict[str, SlotKind]:
        return {"zones": self.zones, "stations": self.stations, "connectors": self.connectors}


def connector_key(station_id: str, connector_id: int) -> str:
    """The slot key of a connector."""
    return f"{station_id}/{connector_id}"
