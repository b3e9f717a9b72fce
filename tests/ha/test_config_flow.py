"""Config flow: user step, validation of port and TLS files, single instance, reconfigure."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.ev_charging_expert.const import (
    CONF_HEARTBEAT_INTERVAL,
    CONF_NEW_CHARGER_POLICY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    DOMAIN,
)
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy

from .conftest import ConnectCharger, open_websocket

if TYPE_CHECKING:
    from collections.abc import Iterator

    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """The user step only creates the entry; setting it up is tested elsewhere."""
    with patch("custom_components.ev_charging_expert.async_setup_entry", return_value=True) as mock:
        yield mock


@pytest.fixture
def occupied_port(unused_tcp_port_factory: Any) -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as sock:
        port = unused_tcp_port_factory()
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield port


def _input(port: int, **extra: Any) -> dict[str, Any]:
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: port,
        CONF_NEW_CHARGER_POLICY: "pending",
        CONF_HEARTBEAT_INTERVAL: 120,
        **extra,
    }


async def _start_user_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result["flow_id"]


async def test_user_step_creates_the_entry_with_the_data(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, port: int
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, _input(port))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "EV Charging Expert"
    assert result["data"] == {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: port,
        CONF_NEW_CHARGER_POLICY: "pending",
        CONF_HEARTBEAT_INTERVAL: 120,
    }
    assert len(mock_setup_entry.mock_calls) == 1


async def test_empty_tls_fields_are_left_out_of_the_entry(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, port: int
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(port, **{CONF_SSL_CERTFILE: "", CONF_SSL_KEYFILE: ""})
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_SSL_CERTFILE not in result["data"]
    assert CONF_SSL_KEYFILE not in result["data"]


async def test_port_in_use_is_refused_on_the_port_field_until_a_free_one_is_given(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, occupied_port: int, port: int
) -> None:
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, _input(occupied_port))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PORT: "port_in_use"}

    result = await hass.config_entries.flow.async_configure(flow_id, _input(port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PORT] == port


async def test_certificate_without_key_is_refused_as_tls_pair(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, port: int, tls_pair: tuple[str, str]
) -> None:
    certfile, _ = tls_pair
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(port, **{CONF_SSL_CERTFILE: certfile})
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "tls_pair"}


@pytest.mark.parametrize("broken", ["missing", "garbage", "swapped"])
async def test_unreadable_tls_files_are_refused_as_tls_invalid(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    mock_setup_entry: AsyncMock,
    port: int,
    tls_pair: tuple[str, str],
    tmp_path: Any,
    broken: str,
) -> None:
    certfile, keyfile = tls_pair
    if broken == "missing":
        certfile = str(tmp_path / "nowhere.pem")
    elif broken == "garbage":
        garbage = tmp_path / "garbage.pem"
        garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        certfile = str(garbage)
    else:
        certfile, keyfile = keyfile, certfile
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(port, **{CONF_SSL_CERTFILE: certfile, CONF_SSL_KEYFILE: keyfile})
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "tls_invalid"}


async def test_valid_self_signed_certificate_is_accepted(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, port: int, tls_pair: tuple[str, str]
) -> None:
    certfile, keyfile = tls_pair
    flow_id = await _start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, _input(port, **{CONF_SSL_CERTFILE: certfile, CONF_SSL_KEYFILE: keyfile})
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SSL_CERTFILE] == certfile
    assert result["data"][CONF_SSL_KEYFILE] == keyfile


async def test_second_instance_is_aborted(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


async def test_reconfigure_keeps_its_own_port_and_reloads_with_the_new_data(
    hass: HomeAssistant, init_integration: MockConfigEntry, port: int
) -> None:
    old_hub = init_integration.runtime_data
    result = await init_integration.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    # Our own server holds the port: keeping it must not count as "in use".
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**init_integration.data, CONF_NEW_CHARGER_POLICY: "pending", CONF_HEARTBEAT_INTERVAL: 60},
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.data[CONF_NEW_CHARGER_POLICY] == "pending"
    assert init_integration.data[CONF_HEARTBEAT_INTERVAL] == 60
    assert init_integration.state is ConfigEntryState.LOADED
    hub = init_integration.runtime_data
    assert hub is not old_hub
    assert hub.site.settings.new_charger_policy is NewChargerPolicy.PENDING
    assert hub.site.settings.heartbeat_interval == 60
    assert hub.controller.central_system is not None
    assert hub.controller.port == port


async def test_reconfigure_to_another_host_on_the_same_port_is_not_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry, port: int
) -> None:
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**init_integration.data, CONF_HOST: "localhost"}
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.data[CONF_HOST] == "localhost"
    assert init_integration.state is ConfigEntryState.LOADED


async def test_reconfigure_refuses_a_port_in_use_and_moves_to_a_free_one(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
    occupied_port: int,
    unused_tcp_port_factory: Any,
    port: int,
) -> None:
    await connect_charger("CP1")
    result = await init_integration.start_reconfigure_flow(hass)
    flow_id = result["flow_id"]

    result = await hass.config_entries.flow.async_configure(
        flow_id, {**init_integration.data, CONF_PORT: occupied_port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PORT: "port_in_use"}
    assert init_integration.data[CONF_PORT] == port

    new_port = unused_tcp_port_factory()
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**init_integration.data, CONF_PORT: new_port}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.data[CONF_PORT] == new_port

    # The old port is closed, the new one takes chargers, and the station is still known.
    with socket.socket() as sock:
        # As a server binds: the closed charger connection may linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
    ws = await open_websocket(new_port, "CP1")
    await ws.close()
    assert "CP1" in init_integration.runtime_data.site.stations


async def test_reconfigure_checks_the_tls_files(
    hass: HomeAssistant, init_integration: MockConfigEntry, tls_pair: tuple[str, str]
) -> None:
    certfile, _ = tls_pair
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**init_integration.data, CONF_SSL_CERTFILE: certfile}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "tls_pair"}
