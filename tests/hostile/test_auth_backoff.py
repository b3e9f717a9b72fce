"""Password guessing: checked off the loop, a bounded number at a time, backed off on failures."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading

from ocpp.v16 import call
from ocpp_peer import FAILSAFE_S
import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.evcore.admission import AdmissionLimits
from custom_components.ev_charging_expert.evcore.events import (
    StationAuthFailing,
    StationAuthRecovered,
)

PASSWORD = "right-password-0123"


def auth(station_id: str, password: str) -> dict[str, dict[str, str]]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"additional_headers": {"Authorization": f"Basic {token}"}}


async def attempt(connect_raw, cs, station_id: str, password: str | None) -> tuple[int, str]:
    """One handshake; (101, "") when let in, else the refusal's status and Retry-After."""
    kwargs = auth(station_id, password) if password is not None else {}
    try:
        ws = await connect_raw(f"/ocpp/{station_id}", cs=cs, **kwargs)
    except InvalidStatus as err:
        return err.response.status_code, err.response.headers.get("Retry-After", "")
    await ws.close()
    return 101, ""


async def with_passwords(start_central_system, **kwargs):
    """A central system where CP1..CP6 have PASSWORD: (site, cs, clock)."""
    site, cs, clock = await start_central_system(**kwargs)
    for i in range(1, 7):
        site.accept_station(f"CP{i}")
        site.set_password(f"CP{i}", PASSWORD)
    return site, cs, clock


@pytest.fixture
async def protected(start_central_system):
    """A central system where CP1..CP6 have PASSWORD, with the default limits."""
    return await with_passwords(start_central_system)


async def test_five_wrong_passwords_back_off_60_s_doubling_up_to_15_min(
    start_central_system, connect_raw
):
    # One identity only: the per-address back-off (20 failures) is not what is tested here.
    _, cs, clock = await with_passwords(
        start_central_system, limits=AdmissionLimits(address_failures=1000)
    )
    backoffs = []
    for _ in range(6):
        for _ in range(5):
            assert (await attempt(connect_raw, cs, "CP1", "guess"))[0] == 401
        status, retry_after = await attempt(connect_raw, cs, "CP1", PASSWORD)
        assert status == 429  # the right password too: it is not even checked
        backoffs.append(int(retry_after))
        clock.advance(backoffs[-1] - 1)
        assert (await attempt(connect_raw, cs, "CP1", PASSWORD))[0] == 429
        clock.advance(1)

    assert backoffs == [60, 120, 240, 480, 900, 900]
    assert (await attempt(connect_raw, cs, "CP1", PASSWORD))[0] == 101


async def test_success_and_quiet_time_forgive_the_failures(protected, connect_raw):
    _, cs, clock = protected
    for _ in range(4):
        await attempt(connect_raw, cs, "CP1", "guess")
    assert (await attempt(connect_raw, cs, "CP1", PASSWORD))[0] == 101
    for _ in range(4):
        await attempt(connect_raw, cs, "CP1", "guess")
    clock.advance(900)  # 15 min without a failure

    assert (await attempt(connect_raw, cs, "CP1", "guess"))[0] == 401  # counts from 1 again


async def test_missing_credentials_are_refused_but_not_counted(protected, connect_raw):
    _, cs, _ = protected
    for _ in range(10):
        assert (await attempt(connect_raw, cs, "CP1", None))[0] == 401

    assert (await attempt(connect_raw, cs, "CP1", PASSWORD))[0] == 101


async def test_twenty_failures_from_one_address_back_off_every_password_from_it(
    protected, connect_raw, connect_cp
):
    site, cs, clock = protected
    site.accept_station("OPEN")  # no password
    for i in range(1, 6):
        for _ in range(4):  # below the per-identity threshold
            assert (await attempt(connect_raw, cs, f"CP{i}", "guess"))[0] == 401

    assert await attempt(connect_raw, cs, "CP6", PASSWORD) == (429, "60")
    await connect_cp("OPEN", cs=cs)  # no password to check: not concerned
    clock.advance(60)
    assert (await attempt(connect_raw, cs, "CP6", PASSWORD))[0] == 101


async def test_a_charger_already_connected_keeps_working_while_its_password_is_guessed(
    protected, connect_cp, connect_raw
):
    site, cs, _ = protected
    charger = await connect_cp("CP1", cs=cs, user_info=f"CP1:{PASSWORD}")
    events = []
    site.subscribe(events.append)

    for _ in range(7):
        await attempt(connect_raw, cs, "CP1", "guess")

    assert await charger.call(call.Heartbeat(), suppress=False)
    assert site.chargers["CP1"].station_id == "CP1"
    assert events.count(StationAuthFailing("CP1")) == 1


async def test_known_charger_failing_is_announced_then_cleared_when_it_gets_in(
    protected, connect_raw
):
    site, cs, clock = protected
    events = []
    site.subscribe(events.append)
    for _ in range(5):
        await attempt(connect_raw, cs, "CP1", "old-password")
    assert events == [StationAuthFailing("CP1")]

    clock.advance(60)
    await attempt(connect_raw, cs, "CP1", PASSWORD)

    assert StationAuthRecovered("CP1") in events


async def test_guessing_is_logged_once_per_window(protected, connect_raw, caplog):
    _, cs, clock = protected
    caplog.set_level(logging.INFO, logger="custom_components.ev_charging_expert")
    for backoff in (60, 120, 240):
        for _ in range(5):
            await attempt(connect_raw, cs, "CP1", "guess")
        for _ in range(10):
            await attempt(connect_raw, cs, "CP1", "guess")  # during the back-off
        clock.advance(backoff)
    clock.advance(600 - 420)  # 10 minutes after the first lines
    await attempt(connect_raw, cs, "CP1", "guess")

    messages = [r.getMessage() for r in caplog.records if "CP1" in r.getMessage()]
    backoffs = [m for m in messages if "wrong passwords in a row" in m]
    assert backoffs == [
        "'CP1': 5 wrong passwords in a row (last from 127.0.0.1); refused for 60 s",
        "'CP1': 5 wrong passwords in a row (last from 127.0.0.1); refused for 120 s",
        "'CP1': 5 wrong passwords in a row (last from 127.0.0.1); refused for 240 s",
    ]
    refusals = [m for m in messages if "refused (" in m]
    # Per reason, one line per 10 minutes: the next one says how many were not logged.
    assert refusals == [
        "'CP1' from 127.0.0.1: refused (401), wrong password",
        "'CP1' from 127.0.0.1: refused (429), too many wrong passwords, retry later",
        "'CP1' from 127.0.0.1: refused (401), wrong password (14 more since the last such line)",
    ]


class HeldExecutor:
    """An executor whose jobs wait until the test releases them (a slow or busy pool)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[object, asyncio.Future]] = []
        self._arrived = asyncio.Condition()

    def __call__(self, func):
        future = asyncio.get_running_loop().create_future()
        self.jobs.append((func, future))
        asyncio.get_running_loop().create_task(self._notify())
        return future

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_jobs(self, count: int) -> None:
        async with asyncio.timeout(FAILSAFE_S), self._arrived:
            await self._arrived.wait_for(lambda: len(self.jobs) >= count)

    def release(self) -> None:
        for func, future in self.jobs:
            future.set_result(func())


async def test_checks_in_flight_are_bounded_and_the_loop_serves_the_others_meanwhile(
    start_central_system, connect_cp, connect_raw
):
    executor = HeldExecutor()
    site, cs, _ = await start_central_system(executor=executor)
    good = await connect_cp("GOOD", cs=cs)
    for i in range(5):
        site.accept_station(f"CP{i}")
        site.set_password(f"CP{i}", PASSWORD)

    waiting = [asyncio.create_task(attempt(connect_raw, cs, f"CP{i}", PASSWORD)) for i in range(4)]
    await executor.wait_jobs(4)

    assert await attempt(connect_raw, cs, "CP4", PASSWORD) == (503, "5")
    assert await good.call(call.Heartbeat(), suppress=False)
    executor.release()
    assert [status for status, _ in await asyncio.gather(*waiting)] == [101] * 4
    assert AdmissionLimits().max_verifications == 4


async def test_passwords_are_checked_in_the_injected_executor(start_central_system, connect_cp):
    threads: list[int] = []

    def run_in_thread(func):
        def job():
            threads.append(threading.get_ident())
            return func()

        return asyncio.to_thread(job)

    site, cs, _ = await start_central_system(executor=run_in_thread)
    site.accept_station("CP1")
    site.set_password("CP1", PASSWORD)

    await connect_cp("CP1", cs=cs, user_info=f"CP1:{PASSWORD}")

    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
