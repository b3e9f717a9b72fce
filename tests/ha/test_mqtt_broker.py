"""MQTT end to end: Debian's mosquitto on a free loopback port, HA's real mqtt integration
(a config entry for that broker), and a plain paho client in the test as the outside world.

Retained states appear, commands change the site, bad payloads are answered with an error,
availability goes `offline` when the integration unloads. Waits are for messages crossing real
sockets, with a failsafe a passing test never reaches; no timer is waited for.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
import json
from pathlib import Path
import shutil
import socket
import subprocess
import threading
from typing import TYPE_CHECKING, Any

from homeassistant.components import mqtt
from homeassistant.const import CONF_PORT
import paho.mqtt.client as paho
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .conftest import zone_subentry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from homeassistant.core import HomeAssistant

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator

    from .conftest import ConnectCharger

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PREFIX = "e2e"
FAILSAFE_S = 20.0

pytestmark = pytest.mark.skipif(
    not Path(MOSQUITTO).exists(),
    reason="Debian's mosquitto is not installed (make test installs it)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """A mosquitto of our own: loopback only, anonymous, no persistence; its port."""
    port = _free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n", encoding="utf-8"
    )
    process = subprocess.Popen(  # noqa: S603  # our own binary and config
        [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = FAILSAFE_S
        while deadline > 0:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None:
                pytest.fail(f"mosquitto did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            threading.Event().wait(0.05)  # a process starting: nothing to drive
            deadline -= 0.05
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


class Outside:
    """A SCADA on the broker: a paho client that records every message by topic."""

    def __init__(self, port: int) -> None:
        self.messages: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="scada")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.setdefault(message.topic, []).append(message.payload.decode())

    def last(self, topic: str) -> str | None:
        with self.lock:
            values = self.messages.get(topic)
            return values[-1] if values else None

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(FAILSAFE_S)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done()
    await asyncio.sleep(0.05)  # messages crossing real sockets, through another thread


async def _until(hass: HomeAssistant, predicate: Callable[[], Any]) -> None:
    async with asyncio.timeout(FAILSAFE_S):
        while not predicate():
            await _settle(hass)


@pytest.fixture
def zone_subentries() -> list[Any]:
    return [zone_subentry("z1", "Garage", 63.0)]


@pytest.fixture
def entry_options() -> dict[str, Any]:
    return {
        "mqtt": {
            "export": True,
            "prefix": PREFIX,
            "min_interval": 1.0,
            "allow_control": True,
            "allow_remote_start_stop": False,
        }
    }


@pytest.fixture
async def ha_mqtt(hass: HomeAssistant, broker: int, mock_hass_config: None) -> Any:
    """HA's mqtt integration, connected to the broker (no YAML configuration)."""
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN,
        data={mqtt.CONF_BROKER: "127.0.0.1", CONF_PORT: broker},
        version=1,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _until(hass, lambda: mqtt.is_connected(hass))
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_through_a_real_broker(  # pytest fixtures
    hass: HomeAssistant,
    broker: int,
    ha_mqtt: Any,
    init_integration: MockConfigEntry,
    connect_charger: ConnectCharger,
) -> None:
    hub: EvChargingCoordinator = init_integration.runtime_data
    await connect_charger("CP1", connectors=1)
    outside = Outside(broker)
    try:
        # Retained: a subscriber that comes late gets every state at once.
        await _until(hass, lambda: outside.last(f"{PREFIX}/connector/CP1/1") is not None)
        assert outside.last(f"{PREFIX}/availability") == "online"
        for topic in ("site", "zone/z1", "station/CP1"):
            await _until(hass, lambda t=topic: outside.last(f"{PREFIX}/{t}") is not None)
            assert json.loads(outside.last(f"{PREFIX}/{topic}") or "")["schema_version"] == 1

        # HA's client subscribes after a short cooldown: probe until commands are heard.
        async with asyncio.timeout(FAILSAFE_S):
            while outside.last(f"{PREFIX}/result") is None:
                outside.publish(f"{PREFIX}/command/ping", "{}")
                await _settle(hass)
        assert json.loads(outside.last(f"{PREFIX}/result") or "")["code"] == "unknown_command"

        # A command changes the site and is answered.
        outside.publish(
            f"{PREFIX}/command/connector_limit",
            json.dumps({"id": "c1", "station": "CP1", "connector": 1, "amps": 12}),
        )
        await _until(
            hass, lambda: json.loads(outside.last(f"{PREFIX}/result") or "{}").get("id") == "c1"
        )
        reply = json.loads(outside.last(f"{PREFIX}/result") or "")
        assert (reply["id"], reply["accepted"]) == ("c1", True)
        assert hub.site.stations["CP1"].config.connector(1).user_limit == 12.0
        await _until(
            hass,
            lambda: (
                json.loads(outside.last(f"{PREFIX}/connector/CP1/1") or "{}").get("user_limit_a")
                == 12.0
            ),
        )

        # A bad payload is answered with an error and changes nothing.
        outside.publish(f"{PREFIX}/command/connector_pause", '{"id": "c2", "paused": "maybe"}')
        await _until(
            hass, lambda: json.loads(outside.last(f"{PREFIX}/result") or "{}").get("id") == "c2"
        )
        reply = json.loads(outside.last(f"{PREFIX}/result") or "")
        assert (reply["accepted"], reply["code"]) == (False, "invalid_payload")
        assert hub.site.stations["CP1"].config.connector(1).paused is False

        # Unloaded: offline.
        await hass.config_entries.async_unload(init_integration.entry_id)
        await _until(hass, lambda: outside.last(f"{PREFIX}/availability") == "offline")
    finally:
        outside.stop()
