"""Time for the simulator: every wait goes through a clock object.

The clock has the shape of evcore's `Clock` (now, monotonic, call_later), so a test can drive
simulated chargers with evcore's `ManualClock` and never wait on the wall clock.
`ScaledClock` is real time, optionally sped up.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable


class Cancelable(Protocol):
    """A scheduled callback."""

    def cancel(self) -> None:
        """Cancel it."""


class SimClock(Protocol):
    """What the simulator needs from a clock."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds that never go back (energy is integrated over these)."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancelable:
        """Run `callback` after `seconds` (of this clock's time)."""


class ScaledClock:
    """Real time, `speed` times faster: sleeping 60 s takes 60/speed real seconds.

    With speed > 1 the simulated time (and the timestamps the chargers send) runs ahead of the
    wall clock.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._wall0 = datetime.now(UTC)
        self._mono0 = time.monotonic()

    def monotonic(self) -> float:
        """Simulated seconds since the clock was made."""
        return (time.monotonic() - self._mono0) * self.speed

    def now(self) -> datetime:
        """Simulated wall time."""
        return self._wall0 + timedelta(seconds=self.monotonic())

    def call_later(self, seconds: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """Schedule on the running loop, scaled."""
        return asyncio.get_running_loop().call_later(max(seconds, 0.0) / self.speed, callback)


async def sleep(clock: SimClock, seconds: float) -> None:
    """Sleep `seconds` of the clock's time."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    handle = clock.call_later(seconds, wake)
    try:
        await future
    finally:
        handle.cancel()


class Napper:
    """A sleep that can be cut short: `poke()` wakes the current `nap()` early."""

    __slots__ = ("_clock", "_future")

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._future: asyncio.Future[None] | None = None

    async def nap(self, seconds: float) -> None:
        """Sleep until `seconds` pass or `poke()` is called."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._future = future

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = self._clock.call_later(seconds, wake)
        try:
            await future
        finally:
            handle.cancel()
            if self._future is future:
                self._future = None

    def poke(self) -> None:
        """Wake the sleeper now (no-op when nobody sleeps)."""
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
