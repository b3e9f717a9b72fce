"""Fixtures for the HA tests: the integration on a loopback port and real OCPP charge points."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from typing import Any
from urllib.parse import quote

from ocpp_peer import Charger
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from custom_components.ev_charging_expert.const import (
    CONF_HEARTBEAT_INTERVAL,
    CONF_NEW_CHARGER_POLICY,
    DOMAIN,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ in every test."""


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Allow socket creation; the HA plugin still only lets tests connect to 127.0.0.1."""


@pytest.fixture
def port(unused_tcp_port: int) -> int:
    """A free loopback port for the OCPP server."""
    return unused_tcp_port


@pytest.fixture
def entry_data(port: int) -> dict[str, Any]:
    """Config entry data: loopback, accept new chargers."""
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: port,
        CONF_NEW_CHARGER_POLICY: "accept",
        CONF_HEARTBEAT_INTERVAL: 300,
    }


@pytest.fixture
def mock_config_entry(entry_data: dict[str, Any]) -> MockConfigEntry:
    """The integration's config entry."""
    return MockConfigEntry(domain=DOMAIN, title="EV Charging Expert", data=entry_data)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """Set up the integration; unload it at the end so no port or task is left behind."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    yield mock_config_entry
    if mock_config_entry.state.recoverable:
        await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()


type ConnectCharger = Callable[..., Awaitable[Charger]]


async def wait_for(hass: HomeAssistant, predicate: Callable[[], Any]) -> None:
    """Let the loop run until `predicate()` holds (event-driven code settles in a few turns)."""
    async with asyncio.timeout(10):
        while not predicate():
            await hass.async_block_till_done()
            await asyncio.sleep(0)


@pytest.fixture
async def connect_charger(
    hass: HomeAssistant, init_integration: MockConfigEntry, port: int
) -> AsyncIterator[ConnectCharger]:
    """Factory: connect (and by default boot) a real OCPP 1.6J charge point."""
    chargers: list[Charger] = []

    async def _connect(
        station_id: str = "CP1",
        *,
        boot: bool = True,
        connectors: int = 1,
        headers: dict[str, str] | None = None,
    ) -> Charger:
        ws = await connect(
            f"ws://127.0.0.1:{port}/ocpp/{quote(station_id)}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=headers,
            ping_interval=None,
        )
        charger = Charger(station_id, ws)
        charger.task = asyncio.create_task(charger.start())
        chargers.append(charger)
        if boot:
            await charger.boot(charge_point_serial_number="SN-1", firmware_version="1.2.3")
            for connector_id in range(connectors + 1):
                await charger.status(connector_id)
            hub = init_integration.runtime_data
            await wait_for(hass, lambda: hub.site.stations[station_id].configuration)
            await hass.async_block_till_done()
        return charger

    yield _connect
    for charger in chargers:
        await charger._connection.close()
        if charger.task is not None:
            with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
                await charger.task
    await hass.async_block_till_done()
