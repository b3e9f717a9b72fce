"""The demo's MQTT export: a broker on 127.0.0.1:1883, HA's MQTT integration, export on.

A broker that already listens on 127.0.0.1:1883 is used as it is; else Debian's `mosquitto` is
started (loopback only, anonymous, no persistence) and stopped when the demo exits; without
either the demo says so and runs on without MQTT. Then HA's own MQTT integration is set up for
that broker (once) and EV Charging Expert's options turn the export on (also once: what you
change by hand stays). Look at it with:

    mosquitto_sub -h 127.0.0.1 -t 'ev_charging_expert/#' -v
"""

from __future__ import annotations

import asyncio
import atexit
from contextlib import suppress
import shutil
import socket
import subprocess
from typing import TYPE_CHECKING, Any

from tools.demo.ha_process import DemoError

if TYPE_CHECKING:
    from pathlib import Path

    from tools.demo.rest import HaApi

BROKER_HOST = "127.0.0.1"
BROKER_PORT = 1883
PREFIX = "ev_charging_expert"


def _listens(host: str, port: int) -> bool:
    with suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


async def _start_mosquitto(config_dir: Path) -> bool:
    binary = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
    if binary is None:
        return False
    config = config_dir / "mosquitto.conf"
    config.write_text(
        f"listener {BROKER_PORT} {BROKER_HOST}\nallow_anonymous true\npersistence false\n",
        encoding="utf-8",
    )
    process = await asyncio.to_thread(
        subprocess.Popen,  # Debian's mosquitto with our config
        [binary, "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop, process)
    for _ in range(100):
        if _listens(BROKER_HOST, BROKER_PORT):
            return True
        if process.poll() is not None:
            return False
        await asyncio.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


async def _setup_ha_mqtt(api: HaApi) -> None:
    entries = await api.request("GET", "/api/config/config_entries/entry?domain=mqtt")
    if entries:
        return
    form = await api.request(
        "POST", "/api/config/config_entries/flow", json_body={"handler": "mqtt"}
    )
    result = await api.request(
        "POST",
        f"/api/config/config_entries/flow/{form['flow_id']}",
        json_body={"broker": BROKER_HOST, "port": BROKER_PORT},
    )
    if result.get("type") != "create_entry":
        raise DemoError(f"the MQTT config flow did not finish: {result.get('errors') or result}")


def _defaults(schema: list[dict[str, Any]]) -> dict[str, Any]:
    """The form's current values (HA serialises each field's default)."""
    values: dict[str, Any] = {}
    for field in schema:
        if field.get("type") == "expandable":
            values[field["name"]] = _defaults(field["schema"])
        elif "default" in field:
            values[field["name"]] = field["default"]
    return values


async def _turn_export_on(api: HaApi, entry_id: str) -> bool:
    form = await api.request(
        "POST", "/api/config/config_entries/options/flow", json_body={"handler": entry_id}
    )
    values = _defaults(form.get("data_schema") or [])
    mqtt = values.get("mqtt") or {}
    if mqtt.get("export"):
        await api.request("DELETE", f"/api/config/config_entries/options/flow/{form['flow_id']}")
        return False
    values["mqtt"] = {**mqtt, "export": True, "prefix": mqtt.get("prefix") or PREFIX}
    result = await api.request(
        "POST", f"/api/config/config_entries/options/flow/{form['flow_id']}", json_body=values
    )
    if result.get("type") != "create_entry":
        raise DemoError(f"the options flow refused the MQTT export: {result.get('errors')}")
    return True


async def start_mqtt_export(api: HaApi, entry_id: str, config_dir: Path) -> None:
    """Broker, HA's MQTT integration and the export; says what it did (never fails the demo)."""
    try:
        if _listens(BROKER_HOST, BROKER_PORT):
            print(f"demo: MQTT: using the broker that listens on {BROKER_HOST}:{BROKER_PORT}")
        elif await _start_mosquitto(config_dir):
            print(f"demo: MQTT: started Debian's mosquitto on {BROKER_HOST}:{BROKER_PORT}")
        else:
            print(
                f"demo: MQTT: no broker on {BROKER_HOST}:{BROKER_PORT} and mosquitto is not "
                "installed (apt-get install mosquitto mosquitto-clients): running without MQTT"
            )
            return
        await _setup_ha_mqtt(api)
        if await _turn_export_on(api, entry_id):
            print("demo: MQTT: export turned on in EV Charging Expert's options")
        print(f"demo: MQTT: watch it with: mosquitto_sub -h {BROKER_HOST} -t '{PREFIX}/#' -v")
    except (DemoError, OSError, KeyError) as err:
        print(f"demo: warning: MQTT export not set up: {err}")
