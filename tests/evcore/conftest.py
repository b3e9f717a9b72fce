"""Fixtures for evcore: a real central system on loopback and real OCPP charge points.

Sockets under the Home Assistant test plugin: pytest-homeassistant-custom-component (autoloaded)
calls pytest-socket before every test with `socket_allow_hosts(["127.0.0.1"])` and then
`disable_socket()`, so creating any non-unix socket raises SocketBlockedError. The autouse
fixture `_loopback_sockets` below requests pytest-socket's `socket_enabled` fixture, which
re-enables socket *creation* for the test; the plugin's connect guard stays in place, so the
tests can still only connect to 127.0.0.1. Without the HA plugin (or without pytest-socket) the
fixture does nothing.

Time: every central system here runs on a `ManualClock`; request timeouts expire when a test
advances it, never by waiting. Waits for things to happen are event-driven (site events,
`Charger.wait_request`) with a generous failsafe that a passing test never reaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from typing import Any
from urllib.parse import quote

from ocpp_peer import Charger, close_charger, wait_until
import pytest
from websockets.asyncio.client import ClientConnection, connect

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy
from custom_components.ev_charging_expert.evcore.ocpp.server import CentralSystem
from custom_components.ev_charging_expert.evcore.site import MemoryStore, Site, SiteSettings

type CentralSystemParts = tuple[Site, CentralSystem, ManualClock]


@pytest.fixture(autouse=True)
def _loopback_sockets(request: pytest.FixtureRequest) -> None:
    """Allow socket creation when pytest-socket blocks it (loopback connects only)."""
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("socket_enabled")


class CentralSystemFactory:
    """Starts central systems (and their sites) and stops them all at teardown."""

    def __init__(self) -> None:
        self.started: list[CentralSystem] = []

    async def __call__(
        self,
        *,
        store: MemoryStore | None = None,
        policy: NewChargerPolicy = NewChargerPolicy.ACCEPT,
        heartbeat_interval: int = 300,
        clock: ManualClock | None = None,
        **cs_kwargs: Any,
    ) -> CentralSystemParts:
        clock = clock or ManualClock()
        site = Site(
            clock,
            store if store is not None else MemoryStore(),
            SiteSettings(new_charger_policy=policy, heartbeat_interval=heartbeat_interval),
        )
        await site.load()
        cs_kwargs.setdefault("ping_interval", None)
        cs = CentralSystem(site, host="127.0.0.1", port=0, **cs_kwargs)
        await cs.start()
        self.started.append(cs)
        return site, cs, clock

    async def stop_all(self) -> None:
        for cs in self.started:
            await cs.stop()


@pytest.fixture
async def start_central_system() -> AsyncIterator[CentralSystemFactory]:
    """Factory: `await start_central_system(policy=..., store=..., ssl_context=...)`."""
    factory = CentralSystemFactory()
    yield factory
    await factory.stop_all()


@pytest.fixture
async def central_system(start_central_system: CentralSystemFactory) -> CentralSystemParts:
    """A started central system with default settings: (site, cs, clock)."""
    return await start_central_system()


type ConnectCp = Callable[..., Awaitable[Charger]]


@pytest.fixture
async def connect_cp(central_system: CentralSystemParts) -> AsyncIterator[ConnectCp]:
    """Factory connecting `Charger` peers to `central_system` (or to `cs=` another one).

    `await connect_cp("CP1")` connects to /ocpp/CP1, boots, and (when accepted) waits until the
    central system has read the charger's configuration, so no request is in flight.
    Options: path, subprotocols, headers, ssl (client context; switches to wss), user_info
    ("user:password" in the URL), cs, boot (False: connect only), charger_cls.
    """
    _, default_cs, _ = central_system
    chargers: list[Charger] = []

    async def connect_cp_(
        station_id: str,
        *,
        path: str | None = None,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
        ssl: Any = None,
        user_info: str | None = None,
        cs: CentralSystem | None = None,
        boot: bool = True,
        charger_cls: type[Charger] = Charger,
    ) -> Charger:
        cs = cs or default_cs
        site = cs._site
        scheme = "wss" if ssl is not None else "ws"
        auth = f"{user_info}@" if user_info else ""
        path = path if path is not None else f"/ocpp/{quote(station_id)}"
        ws = await connect(
            f"{scheme}://{auth}127.0.0.1:{cs.port}{path}",
            subprotocols=subprotocols if subprotocols is not None else ["ocpp1.6"],  # type: ignore[arg-type]
            additional_headers=headers,
            ssl=ssl,
            ping_interval=None,
            max_size=None,
        )
        charger = charger_cls(station_id, ws)
        charger.task = asyncio.create_task(charger.start())
        chargers.append(charger)
        if boot:
            answer = await charger.boot()
            if answer.status == "Accepted":
                await wait_until(site, lambda: site.stations[station_id].configuration)
        return charger

    yield connect_cp_
    for charger in chargers:
        await close_charger(charger)


type ConnectRaw = Callable[..., Awaitable[ClientConnection]]


@pytest.fixture
async def connect_raw(central_system: CentralSystemParts) -> AsyncIterator[ConnectRaw]:
    """Factory of plain websocket clients (no OCPP library), for handshakes and raw frames.

    `await connect_raw("/ocpp/CP1")`; options: subprotocols (default ["ocpp1.6"], None: none
    offered), cs (another central system), and any `websockets` connect() keyword.
    """
    _, default_cs, _ = central_system
    opened: list[ClientConnection] = []

    async def connect_raw_(
        path: str,
        *,
        subprotocols: list[str] | None = ["ocpp1.6"],  # noqa: B006
        cs: CentralSystem | None = None,
        **kwargs: Any,
    ) -> ClientConnection:
        cs = cs or default_cs
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("max_size", None)
        ws = await connect(
            f"ws://127.0.0.1:{cs.port}{path}",
            subprotocols=subprotocols,  # type: ignore[arg-type]
            **kwargs,
        )
        opened.append(ws)
        return ws

    yield connect_raw_
    for ws in opened:
        await ws.close()


@pytest.fixture
async def good(connect_cp):
    """A well-behaved charger GOOD, booted, connected beside the one under test."""
    return await connect_cp("GOOD")


@pytest.fixture
async def bad(central_system, connect_raw, good):
    """A raw websocket from charger BAD (accepted, never booted: nothing is asked of it)."""
    site, _, _ = central_system
    site.accept_station("BAD")  # by the user: an unknown identity must boot first
    return await connect_raw("/ocpp/BAD")
