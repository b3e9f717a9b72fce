"""Fixtures for the HA tests: the integration on a loopback port and real OCPP charge points."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
import ipaddress
from typing import TYPE_CHECKING, Any
from unittest.mock import PropertyMock, patch
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigSubentryDataWithId
from homeassistant.const import CONF_HOST, CONF_PORT, Platform
from homeassistant.helpers import entity_registry as er
from ocpp.v16 import call, call_result
from ocpp_peer import Charger, close_charger
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from websockets.asyncio.client import ClientConnection, connect

from custom_components.ev_charging_expert import PLATFORMS
from custom_components.ev_charging_expert.const import (
    CONF_DEGRADED_SETPOINT,
    CONF_HEARTBEAT_INTERVAL,
    CONF_MAX_CURRENT,
    CONF_MODE,
    CONF_NEW_CHARGER_POLICY,
    CONF_PARENT,
    CONF_ZONE_NAME,
    DOMAIN,
    NO_PARENT,
    SUBENTRY_METER,
    SUBENTRY_ZONE,
)
from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.meters import BUILTIN_MODELS, PM5320
from tools.sim.modbus_meter import MeterSimulator

if TYPE_CHECKING:
    from pathlib import Path

    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator

# The simulated time every test with the `clock` fixture starts at.
START = "2026-01-01T10:00:00+00:00"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ in every test."""


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Allow socket creation; the HA plugin still only lets tests connect to 127.0.0.1."""


@pytest.fixture(autouse=True)
def _write_every_change() -> Iterator[None]:
    """Entities write every change unless a test sets the quiet interval (test_quiet.py)."""
    with patch("custom_components.ev_charging_expert.coordinator.DEFAULT_QUIET_INTERVAL", 0):
        yield


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in HA's format, under tests/ha/snapshots/ (syrupy's own fixture wins else)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create entities that are disabled by default enabled (as HA core's fixture does)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


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
def zone_subentries() -> list[ConfigSubentryDataWithId]:
    """The entry's zones (config subentries); none unless a test module says otherwise."""
    return []


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """The entry's options (site load-management settings); defaults unless overridden."""
    return {}


@pytest.fixture
def mock_config_entry(
    entry_data: dict[str, Any],
    zone_subentries: list[ConfigSubentryDataWithId],
    entry_options: dict[str, Any],
) -> MockConfigEntry:
    """The integration's config entry."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="EV Charging Expert",
        # Fixed: the hub's own entities have it in their unique ids (stable snapshots).
        entry_id="01JEVCHARGINGEXPERTHUB0000",
        data=entry_data,
        options=entry_options,
        subentries_data=zone_subentries,
    )


def zone_subentry(
    zone_id: str,
    name: str,
    max_current: float,
    *,
    parent_id: str | None = None,
    mode: str = "static",
    degraded_setpoint: float = 0.0,
) -> ConfigSubentryDataWithId:
    """A zone subentry as the zone flow stores it, with a fixed id (stable unique ids)."""
    return ConfigSubentryDataWithId(
        subentry_id=zone_id,
        subentry_type=SUBENTRY_ZONE,
        title=name,
        unique_id=None,
        data={
            CONF_ZONE_NAME: name,
            CONF_PARENT: parent_id or NO_PARENT,
            CONF_MAX_CURRENT: max_current,
            CONF_MODE: mode,
            CONF_DEGRADED_SETPOINT: degraded_setpoint,
        },
    )


@pytest.fixture(autouse=True)
def _sessions_in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Each test's session database, buffer and exports in its own temp dir."""
    with patch(
        "custom_components.ev_charging_expert.sessions_glue.storage_dir", return_value=tmp_path
    ):
        yield tmp_path


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms to set up; a platform's snapshot test narrows it to that platform."""
    return list(PLATFORMS)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    platforms: list[Platform],
    request: pytest.FixtureRequest,
) -> AsyncIterator[MockConfigEntry]:
    """Set up the integration; unload it at the end so no port or task is left behind.

    A test that asks for `clock` runs the whole site on it from setup on.
    """
    if "clock" in request.fixturenames or "manual_hub_clock" in request.fixturenames:
        request.getfixturevalue("clock")
    mock_config_entry.add_to_hass(hass)
    with patch("custom_components.ev_charging_expert.PLATFORMS", platforms):
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        yield mock_config_entry
        if (
            hass.config_entries.async_get_entry(mock_config_entry.entry_id) is not None
            and mock_config_entry.state.recoverable
        ):
            await hass.config_entries.async_unload(mock_config_entry.entry_id)
            await hass.async_block_till_done()


@pytest.fixture
def hub(init_integration: MockConfigEntry) -> EvChargingCoordinator:
    """The running hub of the entry."""
    return init_integration.runtime_data


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """Run the site (central system, load management, meters) on a manual clock from its
    setup on: timestamps are fixed and timers and timeouts run on `advance`."""
    manual = ManualClock(start=datetime.fromisoformat(START))
    with patch("custom_components.ev_charging_expert.coordinator.SystemClock", return_value=manual):
        yield manual


class HaCharger(Charger):
    """The evcore test peer plus the charger-initiated messages the HA tests need."""

    async def heartbeat(self) -> call_result.Heartbeat:
        """Send a Heartbeat."""
        return await self.call(call.Heartbeat(), suppress=False)

    async def authorize(self, id_tag: str) -> call_result.Authorize:
        """Present a card."""
        return await self.call(call.Authorize(id_tag=id_tag), suppress=False)

    async def meter_values(
        self,
        connector_id: int,
        sampled_value: list[dict[str, Any]],
        *,
        transaction_id: int | None = None,
        timestamp: str = START,
    ) -> call_result.MeterValues:
        """Send one MeterValues with the given sampled values."""
        return await self.call(
            call.MeterValues(
                connector_id=connector_id,
                meter_value=[{"timestamp": timestamp, "sampledValue": sampled_value}],
                transaction_id=transaction_id,
            ),
            suppress=False,
        )

    async def stop_transaction(
        self, transaction_id: int, meter_stop: int, *, timestamp: str = START, **kw: Any
    ) -> call_result.StopTransaction:
        """Send a StopTransaction."""
        return await self.call(
            call.StopTransaction(
                transaction_id=transaction_id, meter_stop=meter_stop, timestamp=timestamp, **kw
            ),
            suppress=False,
        )

    async def start_session(
        self, connector_id: int = 1, id_tag: str = "TAG1", *, meter_start: int = 1000
    ) -> int:
        """An EV plugs in and charges: StatusNotification Charging, then StartTransaction."""
        await self.status(connector_id, "Charging")
        answer = await self.start_transaction(
            connector_id, id_tag, meter_start=meter_start, timestamp=START
        )
        return answer.transaction_id

    async def close(self) -> None:
        """Close the websocket and wait for the receive loop (and background sends) to end."""
        await close_charger(self)


type ConnectCharger = Callable[..., Awaitable[HaCharger]]


async def wait_for(hass: HomeAssistant, predicate: Callable[[], Any]) -> None:
    """Let the loop run until `predicate()` holds (event-driven code settles in a few turns)."""
    async with asyncio.timeout(10):
        while not predicate():
            await hass.async_block_till_done()
            await asyncio.sleep(0)


async def wait_load_managed(
    hass: HomeAssistant, hub: EvChargingCoordinator, station_id: str
) -> None:
    """Wait until the charger confirmed our base profile: from then on it is load-managed.

    Until then load management counts it at its rating, which would make its zone look full.
    """
    await wait_for(
        hass,
        lambda: (
            (control := hub.controller.load.controls.get(station_id)) is not None
            and control.base_installed
        ),
    )


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """The entity id registered for one of our unique ids."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, f"no {platform} entity with unique id {unique_id}"
    return found


async def open_websocket(port: int, station_id: str, **kwargs: Any) -> ClientConnection:
    """A websocket to the central system as a charger opens it (raises on a refused handshake)."""
    kwargs.setdefault("subprotocols", ["ocpp1.6"])
    return await connect(
        f"ws://127.0.0.1:{port}/ocpp/{quote(station_id, safe='')}", ping_interval=None, **kwargs
    )


@pytest.fixture
async def connect_charger(
    hass: HomeAssistant, init_integration: MockConfigEntry, port: int
) -> AsyncIterator[ConnectCharger]:
    """Factory: connect (and by default boot) a real OCPP 1.6J charge point.

    With `boot=True` the factory returns once the central system has read the charger's
    configuration after an accepted boot, and the statuses of connectors 0..n are in.
    """
    chargers: list[HaCharger] = []

    async def _connect(
        station_id: str = "CP1",
        *,
        boot: bool = True,
        connectors: int = 1,
        headers: dict[str, str] | None = None,
    ) -> HaCharger:
        ws = await open_websocket(port, station_id, additional_headers=headers)
        charger = HaCharger(station_id, ws)
        charger.task = asyncio.create_task(charger.start())
        chargers.append(charger)
        if boot:
            hub = init_integration.runtime_data
            answer = await charger.boot(charge_point_serial_number="SN-1", firmware_version="1.2.3")
            assert answer.status == "Accepted"
            for connector_id in range(connectors + 1):
                await charger.status(connector_id)
            await wait_for(hass, lambda: hub.site.stations[station_id].configuration)
            await hass.async_block_till_done()
        return charger

    yield _connect
    for charger in chargers:
        await charger.close()
    await hass.async_block_till_done()


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    certfile = directory / "cert.pem"
    keyfile = directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


# ---------------------------------------------------------------------------- power meters


@pytest.fixture
def manual_hub_clock(clock: ManualClock) -> ManualClock:
    """`clock`, by the name the meter tests use (`pytest.mark.usefixtures` on a module)."""
    return clock


@pytest.fixture
async def meter_simulator() -> AsyncIterator[MeterSimulator]:
    """A Modbus TCP server on 127.0.0.1 (any free port) with a PM5320 at slave id 1."""
    simulator = MeterSimulator()
    simulator.add_meter(BUILTIN_MODELS[PM5320], 1, currents=(40.0, 35.0, 30.0), energy_wh=1_234_567)
    await simulator.start()
    yield simulator
    await simulator.stop()


def meter_subentry(
    meter_id: str, name: str, data: dict[str, Any], *, subentry_type: str = SUBENTRY_METER
) -> ConfigSubentryDataWithId:
    """A meter (or meter model) subentry with a fixed id (stable unique ids)."""
    return ConfigSubentryDataWithId(
        subentry_id=meter_id,
        subentry_type=subentry_type,
        title=name,
        unique_id=None,
        data={"name": name, **data},
    )


def modbus_meter_data(port: int, *, slave_id: int = 1, **overrides: Any) -> dict[str, Any]:
    """A Modbus TCP meter's subentry data, as the meter flow stores it."""
    data: dict[str, Any] = {
        "kind": "modbus",
        "model": PM5320,
        "protocol": "tcp",
        "host": "127.0.0.1",
        "port": port,
        "slave_id": slave_id,
        "serial": None,
        "polling_period": 0.5,
        "timeout": 1.0,
        "reporting_only": False,
    }
    data.update(overrides)
    return data


def modbus_form(port: int, **overrides: Any) -> dict[str, Any]:
    """What the user enters in the Modbus meter form."""
    form: dict[str, Any] = {
        "name": "Main meter",
        "model": PM5320,
        "protocol": "tcp",
        "host": "127.0.0.1",
        "port": port,
        "slave_id": 1,
        "polling_period": 0.5,
        "timeout": 1.0,
        "reporting_only": False,
        "serial": {"baudrate": "19200", "parity": "E", "stopbits": "1"},
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


async def meters_idle(hass: HomeAssistant, hub: EvChargingCoordinator) -> None:
    """Let the polls in flight finish (loopback round trips only) and HA settle."""
    async with asyncio.timeout(10):
        await hub.controller.meters.wait_idle()
    await hass.async_block_till_done()


async def start_subentry_flow(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_type: str, subentry_id: str | None = None
) -> dict[str, Any]:
    """Open a subentry form: a new one, or the reconfiguration of `subentry_id`."""
    context: dict[str, Any] = {"source": SOURCE_USER}
    if subentry_id is not None:
        context = {"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id}
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, subentry_type), context=context
    )


async def submit(hass: HomeAssistant, flow: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Submit a subentry form step and let the update listener apply it."""
    result = await hass.config_entries.subentries.async_configure(flow["flow_id"], data)
    await hass.async_block_till_done()
    return result
