"""The injected clocks: ManualClock moves only when told to; SystemClock is the real time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock, SystemClock


def test_manual_clock_runs_due_timers_in_order_and_skips_cancelled_ones():
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    ran = []
    clock.call_later(5, lambda: ran.append(("b", clock.monotonic())))
    clock.call_later(2, lambda: ran.append(("a", clock.monotonic())))
    clock.call_later(3, lambda: ran.append(("x", clock.monotonic()))).cancel()
    clock.call_later(10, lambda: ran.append(("late", clock.monotonic())))

    clock.advance(6)

    assert ran == [("a", 2.0), ("b", 5.0)]
    assert clock.monotonic() == 6.0
    assert clock.now() == datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=6)


async def test_manual_timeout_expires_only_when_the_clock_passes_it():
    clock = ManualClock()
    never = asyncio.Event()

    async def wait() -> None:
        async with clock.timeout(30):
            await never.wait()

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    clock.advance(29)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1)

    with pytest.raises(TimeoutError):
        await task


async def test_manual_timeout_left_early_is_harmless_to_expire():
    clock = ManualClock()
    async with clock.timeout(1):
        pass

    clock.advance(5)  # the expired timer finds the timeout already left


async def test_system_clock_is_utc_and_schedules_on_the_loop():
    clock = SystemClock()
    fired = asyncio.Event()

    handle = clock.call_later(0, fired.set)
    async with clock.timeout(10):
        await fired.wait()

    assert clock.now().tzinfo is UTC
    assert clock.monotonic() > 0
    handle.cancel()
