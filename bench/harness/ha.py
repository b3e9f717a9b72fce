"""Home Assistant with the integration, in a child process, for benchmarks "inside HA".

The configuration is minimal (no frontend, no recorder) and the integration's config entry is
written to .storage before the start, so no config flow runs: HA loads the integration and
its OCPP server listens on `ocpp_port`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from . import HOST, ROOT
from .processes import free_port, running_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .processes import RunningServer

COMPONENT = ROOT / "custom_components" / "ev_charging_expert"
STARTUP_TIMEOUT_S = 300.0


def write_config(config_dir: Path, *, http_port: int, ocpp_port: int, name: str) -> None:
    """A minimal HA configuration with our config entry already in .storage."""
    from homeassistant import config_entries  # noqa: PLC0415

    from custom_components.ev_charging_expert.const import DOMAIN  # noqa: PLC0415

    (config_dir / "configuration.yaml").write_text(
        "homeassistant:\n"
        f"  name: {name}\n"
        "  latitude: 52.37\n  longitude: 4.89\n  elevation: 0\n"
        "  unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: NL\n"
        "http:\n"
        f"  server_host: {HOST}\n"
        f"  server_port: {http_port}\n"
        "logger:\n"
        "  default: warning\n"
    )
    components = config_dir / "custom_components"
    components.mkdir()
    (components / DOMAIN).symlink_to(COMPONENT, target_is_directory=True)
    entry = config_entries.ConfigEntry(
        data={
            "host": HOST,
            "port": ocpp_port,
            "new_charger_policy": "accept",
            "heartbeat_interval": 300,
        },
        discovery_keys={},  # type: ignore[arg-type]
        domain=DOMAIN,
        minor_version=1,
        options={},
        source=config_entries.SOURCE_USER,
        subentries_data=None,
        title="EV Charging Expert",
        unique_id=None,
        version=1,
    )
    storage = config_dir / ".storage"
    storage.mkdir()
    (storage / config_entries.STORAGE_KEY).write_text(
        json.dumps(
            {
                "version": config_entries.STORAGE_VERSION,
                "minor_version": config_entries.STORAGE_VERSION_MINOR,
                "key": config_entries.STORAGE_KEY,
                "data": {"entries": [entry.as_dict()]},
            },
            indent=2,
        )
    )


@contextlib.contextmanager
def home_assistant(config_dir: Path, *, log: Path, name: str) -> Iterator[RunningServer]:
    """HA on a fresh `config_dir` (created), until the integration's OCPP server listens
    (its port is the RunningServer's); stopped on exit."""
    started = time.perf_counter()
    config_dir.mkdir()
    ocpp_port = free_port()
    write_config(config_dir, http_port=free_port(), ocpp_port=ocpp_port, name=name)
    cmd = [sys.executable, "-m", "homeassistant", "-c", str(config_dir), "--skip-pip"]
    with running_server(
        cmd, log=log, port=ocpp_port, startup_timeout=STARTUP_TIMEOUT_S, started=started
    ) as server:
        yield server


def registry_counts(storage: Path) -> dict[str, Any]:
    """Entities and devices the integration registered (proof that it really ran in HA)."""
    from custom_components.ev_charging_expert.const import DOMAIN  # noqa: PLC0415

    counts: dict[str, Any] = {}
    for key, name, field_name in (
        ("ha_entities", "core.entity_registry", "entities"),
        ("ha_devices", "core.device_registry", "devices"),
    ):
        try:
            items = json.loads((storage / name).read_text())["data"][field_name]
        except (OSError, KeyError, ValueError):
            counts[key] = None
            continue
        if field_name == "entities":
            counts[key] = sum(1 for e in items if e.get("platform") == DOMAIN)
        else:
            counts[key] = sum(1 for d in items if any(i[0] == DOMAIN for i in d["identifiers"]))
    return counts
