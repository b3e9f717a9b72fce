"""Injected time: evcore never reads the wall clock or sleeps on its own.

`SystemClock` is the real thing; `ManualClock` lets tests and simulations move time forward
without waiting. Timeouts are `asyncio.Timeout` objects whose deadline the clock controls, so a
test can expire a 30 s request timeout by advancing a manual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import heapq
import itertools
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable


class Cancelable(Protocol):
    """Something scheduled that can be cancelled."""

    def cancel(self) -> None:
        """Cancel it; cancelling twice is harmless."""


class Clock(Protocol):
    """The source of time for evcore."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes back."""

    def timeout(self, seconds: float) -> asyncio.Timeout:
        """Return an async context manager that cancels its body after `seconds`."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancelable:
        """Run `callback` after `seconds` on the event loop."""


class SystemClock:
    """Wall-clock time and the running event loop's timers."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Return the monotonic clock."""
        return time.monotonic()

    def timeout(self, seconds: float) -> asyncio.Timeout:
        """Return `asyncio.timeout(seconds)`."""
        return asyncio.timeout(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancelable:
        """Schedule on the running loop."""
        return asyncio.get_running_loop().call_later(seconds, callback)


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to; for tests, simulations and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        """Return the simulated UTC time."""
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        """Return simulated seconds since the clock was made."""
        return self._elapsed

    def timeout(self, seconds: float) -> asyncio.Timeout:
        """Return a timeout that expires when the clock is advanced past its deadline."""
        loop = asyncio.get_running_loop()
        cm = asyncio.timeout(None)

        def expire() -> None:
            # Expiring means moving the asyncio deadline to "now"; a timeout already left
            # (or never entered) refuses, which is what we want.
            with contextlib.suppress(RuntimeError):
                cm.reschedule(loop.time())

        self.call_later(seconds, expire)
        return cm

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancelable:
        """Schedule `callback` at simulated time now + `seconds`."""
        timer = _Timer(self._elapsed + max(seconds, 0.0), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, running every timer that falls due, in order."""
        target = self._elapsed + seconds
        while self._timers and self._timers[0].due <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._elapsed = max(self._elapsed, timer.due)
            timer.callback()
        self._elapsed = target


def parse_timestamp(value: str | None, default: datetime) -> datetime:
    """Parse an ISO 8601 timestamp; a missing or unreadable one becomes `default`."""
    if not value:
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
