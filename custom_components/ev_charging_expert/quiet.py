"""Quiet writes: measured values reach the state machine (and the recorder) at most every N s.

A charger samples every 10 s and a dynamic zone's budget follows its meter every second; written
as they come, a 100-charger site records several state changes per second nobody charts. An
entity that uses `quiet_update` writes a new value at once when its *kind* changes (available or
not, unknown or known, zero or not, any non-numeric state such as a status) and otherwise at most
once per `quiet_interval` (site option), the latest value winning. Rounding the states to their
useful resolution (0.1 A, 10 W) is the other half: noise below it never makes a change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.event import async_call_later
import voluptuous as vol

from .const import (
    CONF_OFFLINE_REPAIR_MINUTES,
    CONF_QUIET_INTERVAL,
    DEFAULT_OFFLINE_REPAIR_MINUTES,
    DEFAULT_QUIET_INTERVAL,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from homeassistant.helpers.entity import Entity


def _kind(shown: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """What must be written at once when it changes."""
    if shown is None:
        return (None,)
    available, state, attributes = shown
    if isinstance(state, bool) or not isinstance(state, int | float):
        return available, state, attributes
    return available, state == 0, attributes


class QuietWriter:
    """Per entity: the last shown value, when it was written, and a pending write."""

    __slots__ = ("_cancel", "_shown", "_written_at")

    def __init__(self) -> None:
        self._shown: tuple[Any, ...] | None = None
        self._written_at: float | None = None
        self._cancel: CALLBACK_TYPE | None = None

    @callback
    def update(self, entity: Entity, interval: float) -> None:
        """Write the entity's state now, later (coalesced) or not at all (unchanged)."""
        shown = _shown(entity)
        if shown == self._shown:
            self._cancel_pending()
            return
        now = entity.hass.loop.time()
        if (
            interval <= 0
            or self._written_at is None
            or _kind(shown) != _kind(self._shown)
            or now - self._written_at >= interval
        ):
            self._write(entity, shown, now)
        elif self._cancel is None:

            @callback
            def _later(_now: datetime) -> None:
                self._cancel = None
                latest = _shown(entity)
                if latest != self._shown:
                    self._write(entity, latest, entity.hass.loop.time())

            self._cancel = async_call_later(entity.hass, self._written_at + interval - now, _later)

    @callback
    def _write(self, entity: Entity, shown: tuple[Any, ...], now: float) -> None:
        self._cancel_pending()
        self._shown = shown
        self._written_at = now
        entity.async_write_ha_state()

    def _cancel_pending(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None

    def stop(self) -> None:
        """The entity goes away."""
        self._cancel_pending()


def _shown(entity: Entity) -> tuple[Any, ...]:
    return entity.available, entity.state, entity.extra_state_attributes


def quiet_options_schema(options: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    """The site options of issue 15: write interval, when offline holders are reported."""
    return {
        vol.Required(
            CONF_QUIET_INTERVAL, default=options.get(CONF_QUIET_INTERVAL, DEFAULT_QUIET_INTERVAL)
        ): vol.All(vol.Coerce(int), vol.Range(min=0, max=3600)),
        vol.Required(
            CONF_OFFLINE_REPAIR_MINUTES,
            default=options.get(CONF_OFFLINE_REPAIR_MINUTES, DEFAULT_OFFLINE_REPAIR_MINUTES),
        ): vol.All(vol.Coerce(int), vol.Range(min=1, max=10080)),
    }
