"""A raw OCPP-J 1.6 charger on one websocket, cheap enough to run a thousand in one process.

No `ocpp` library on the hot path: outgoing frames are pre-serialised strings, and only the
server's CALLs are parsed (to answer them from a table of canned answers: a CallResult for the
actions in it, a NotImplemented CallError for the others). A benchmark subclasses `RawCharger`
for its own traffic, and overrides `on_server_call` to record what the server sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from websockets.asyncio.client import ClientConnection

SUBPROTOCOL = "ocpp1.6"
CONNECT_CONCURRENCY = 64  # websocket handshakes (+ boot sequences) in flight at once


def compact(payload: Any) -> str:
    """JSON without spaces, as chargers send it."""
    return json.dumps(payload, separators=(",", ":"))


SMART_CHARGER_CONFIGURATION = compact(
    {
        "configurationKey": [
            {"key": "SupportedFeatureProfiles", "readonly": True, "value": "Core,SmartCharging"},
            {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "8"},
            {
                "key": "ChargingScheduleAllowedChargingRateUnit",
                "readonly": True,
                "value": "Current",
            },
            {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
        ]
    }
)
"""A GetConfiguration answer: a one-connector charger with Smart Charging, limits in A."""


async def connect(url: str, *, deflate: bool = False) -> ClientConnection:
    """Open one charger's websocket (subprotocol ocpp1.6) to `url`."""
    from websockets.asyncio.client import connect as ws_connect  # noqa: PLC0415

    return await ws_connect(
        url,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression="deflate" if deflate else None,  # most chargers offer none
        ping_interval=None,  # the server pings; the client answers on its own
        max_size=2**20,
        open_timeout=120,
        close_timeout=2,
    )


async def connect_all[T](
    count: int,
    start: Callable[[int], Awaitable[T]],
    *,
    concurrency: int = CONNECT_CONCURRENCY,
) -> tuple[list[T], list[str]]:
    """Run `start(0 .. count-1)` (connect and boot one charger), `concurrency` at a time.

    Returns the chargers started and the repr of each failure.
    """
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> T:
        async with semaphore:
            return await start(index)

    outcomes = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    started = [o for o in outcomes if not isinstance(o, BaseException)]
    failures = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    return started, failures


class RawCharger:
    """One charger: sends CALLs and waits for their results, answers the server's CALLs."""

    __slots__ = ("answers", "index", "seq", "server_calls", "timeout", "ws")

    def __init__(
        self, index: int, ws: ClientConnection, answers: Mapping[str, str], *, timeout: float
    ) -> None:
        self.index = index
        self.ws = ws
        self.answers = answers
        """Serialised CallResult payload per action the server may call."""
        self.timeout = timeout
        """s to wait for the result of a CALL (TimeoutError after)."""
        self.seq = 0
        self.server_calls = 0

    async def call(self, action: str, payload_json: str) -> bool:
        """Send one CALL, answer server CALLs meanwhile; True on its CallResult, False on a
        CallError. TimeoutError after `timeout` s."""
        self.seq += 1
        uid = str(self.seq)
        await self.ws.send(f'[2,"{uid}","{action}",{payload_json}]')
        ok, error = f'[3,"{uid}"', f'[4,"{uid}"'
        async with asyncio.timeout(self.timeout):
            while True:
                msg = await self.ws.recv()
                if not isinstance(msg, str):
                    continue
                if msg.startswith(ok):
                    return True
                if msg.startswith(error):
                    return False
                # A server CALL, or a late answer to an earlier (timed-out) CALL: ignored.
                await self.answer(msg)

    async def answer(self, msg: str) -> None:
        """Answer one server CALL from `answers` (other frames are ignored)."""
        received = time.monotonic()
        if not msg.startswith("[2,"):
            return
        _, unique_id, action, payload = json.loads(msg)
        self.server_calls += 1
        self.on_server_call(received, action, payload)
        uid = json.dumps(unique_id)
        result = self.answers.get(action)
        if result is not None:
            await self.ws.send(f"[3,{uid},{result}]")
        else:
            await self.ws.send(f'[4,{uid},"NotImplemented","{action} not simulated",{{}}]')

    def on_server_call(self, received: float, action: str, payload: Any) -> None:
        """Hook: a server CALL arrived at monotonic time `received` (before it is answered)."""

    async def serve(self) -> None:
        """Answer server CALLs until the connection closes."""
        with contextlib.suppress(Exception):
            async for msg in self.ws:
                await self.answer(msg)  # type: ignore[arg-type]
