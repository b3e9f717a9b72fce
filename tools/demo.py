"""`make demo`: Home Assistant with EV Charging Expert and a fleet of simulated chargers.

1. Prepares `demo_config/` (reused on later runs): a minimal configuration.yaml and a symlink
   to custom_components/ev_charging_expert.
2. Starts a simulated building meter: tools/run_meters.py (a Modbus TCP server, model
   "PM5320 / iEM3x5x / PowerTag", 127.0.0.1:5020, slave 1) as a child process. Every few
   seconds the demo sets its currents: the building's own load (a daily pattern of about
   20-60 A per phase, one day lasting 10 minutes) plus what the simulated EVs draw.
3. Starts Home Assistant on http://127.0.0.1:8123 (`python -m homeassistant -c demo_config`).
   It runs with `--skip-pip`: everything it needs is pinned in requirements.txt, so it never
   installs anything at runtime.
4. The first time, completes onboarding over the REST API (owner user demo / demo1234).
5. Adds the EV Charging Expert integration through the config-flow REST API, if not yet added,
   and, when it has no zone and no meter yet, through the subentry flows: the Modbus meter
   "Building meter", a dynamic zone "Building" (125 A per phase minus the building's own load
   that meter measures) and, below it, a static 100 A zone "Demo parking" that new stations
   are put in (a station in no zone gets no current). A demo_config/ of an older demo (only
   "Demo parking") gets the meter and "Building" added and "Demo parking" moved below it.
6. Runs the fleet simulator (12 chargers with 1 or 2 connectors) against the OCPP port.

Ctrl-C (or SIGTERM) stops the fleet, Home Assistant, then the meter simulator. `--check
SECONDS` runs that long, checks over the REST API that the integration's entities show live
values, that the meter's sensors show what the simulator serves and that the budget of
"Building" follows the building's load, and stops.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass
from http import HTTPStatus
import json
import logging
import math
from pathlib import Path
import random
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import aiohttp

if __package__ in (None, ""):  # run as a script: make `tools.sim` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.sim import Fleet

if TYPE_CHECKING:
    from collections.abc import Awaitable

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "ev_charging_expert"
HA_HOST = "127.0.0.1"
HA_PORT = 8123
HA_URL = f"http://{HA_HOST}:{HA_PORT}"
CLIENT_ID = f"{HA_URL}/"
USERNAME = "demo"
PASSWORD = "demo1234"  # noqa: S105  # a local demo login, printed on purpose
HA_RESTART_EXIT_CODE = 100  # what `homeassistant.restart` exits with
DEMO_ZONE = "Demo parking"
BUILDING_ZONE = "Building"
BUILDING_METER = "Building meter"
METER_MODEL = "PM5320 / iEM3x5x / PowerTag"  # evcore.meters.models.PM5320, a built-in model
METER_HOST = "127.0.0.1"
METER_SLAVE = 1
METER_POLLING = 1.0  # s
BUILDING_DEGRADED = 32.0  # A per phase: the budget of "Building" while its meter is lost
SAFETY_MARGIN = 1.0  # A per phase: the integration's default (site options)
START_HOUR = 6.0  # the simulated day starts at 6:00, before the morning rise
METER_STEP = 1.0  # s between two updates of the meter simulator (the EVs' draw moves fast)
SAMPLE_STEP = 5.0  # s between two looks at the "Building" sensors during --check
ENERGY_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z
READING_LAG = 5.0  # s: a sensor may show any value served that long before it is read
UNASSIGNED = "unassigned"  # the zone select's option for a station in no zone
ONBOARDING_STEPS = ("user", "core_config", "analytics", "integration")
# What the onboarding core-config step sets up (HA 2025.4), and the modules they import.
ONBOARDING_INTEGRATIONS = ("google_translate", "met", "radio_browser")
ONBOARDING_MODULES = ("gtts", "metno", "radios", "pycountry")

CONFIGURATION_YAML = f"""\
# Written by tools/demo.py (`make demo`); edit freely, the demo does not overwrite it.
# Only integrations whose requirements are pinned in requirements.txt: Home Assistant runs
# with --skip-pip and must not need to install anything.
homeassistant:
  name: EV Charging Expert demo
  unit_system: metric
  currency: EUR

http:
  server_host: {HA_HOST}
  server_port: {HA_PORT}

frontend:
config:
history:
logbook:
energy:
system_health:

recorder:
  purge_keep_days: 3

logger:
  default: warning
  logs:
    custom_components.{DOMAIN}: info
    custom_components.{DOMAIN}.evcore.ocpp.v16.frames: warning
    homeassistant.setup: info
    homeassistant.requirements: info
    homeassistant.util.package: info
"""


class DemoError(Exception):
    """A step of the demo failed; the message says what to do."""


class HaExitedError(DemoError):
    """Home Assistant exited on its own."""

    def __init__(self, code: int | None, tail: str) -> None:
        super().__init__(f"Home Assistant exited (code {code}); last output:\n{tail}")
        self.code = code


class Stopped(Exception):  # noqa: N818  # control flow, not an error
    """Ctrl-C or SIGTERM."""


# ---------------------------------------------------------------------- demo_config/
def prepare_config(config_dir: Path) -> None:
    """Create demo_config/ (configuration.yaml, integration symlink); reuse what exists."""
    config_dir.mkdir(exist_ok=True)
    configuration = config_dir / "configuration.yaml"
    if not configuration.exists():
        configuration.write_text(CONFIGURATION_YAML)
        print(f"demo: wrote {configuration.relative_to(REPO)}")
    components = config_dir / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / DOMAIN
    target = Path("..") / ".." / "custom_components" / DOMAIN  # relative: the repo may move
    if link.is_symlink() and link.resolve() == (REPO / "custom_components" / DOMAIN).resolve():
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        raise DemoError(f"{link} exists and is not a symlink; remove it and run again")
    link.symlink_to(target, target_is_directory=True)
    print(f"demo: linked {link.relative_to(REPO)} -> {target}")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# ---------------------------------------------------------------------- the HA process
def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM if the demo dies without cleaning up (no orphan)."""
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class HomeAssistant:
    """`python -m homeassistant -c demo_config` as a child process."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.console_log = config_dir / "ha-console.log"
        self.log = config_dir / "home-assistant.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start it in its own session: the demo decides when it stops."""
        console = self.console_log.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "homeassistant",
                "--config",
                str(self.config_dir),
                "--skip-pip",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            console.close()
        print(f"demo: Home Assistant started (pid {self.process.pid}), log: {self.log}")

    @property
    def running(self) -> bool:
        """The process has not exited."""
        return self.process is not None and self.process.returncode is None

    async def wait(self) -> int:
        """Wait for it to exit; returns the exit code."""
        assert self.process is not None  # noqa: S101
        return await self.process.wait()

    async def stop(self, timeout: float = 120.0) -> None:
        """SIGTERM (HA shuts down cleanly), SIGKILL after `timeout`."""
        if not self.running:
            return
        assert self.process is not None  # noqa: S101
        print("demo: stopping Home Assistant...", flush=True)
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            print("demo: Home Assistant did not stop in time; killing it")
            self.kill()
            await self.process.wait()
        print(f"demo: Home Assistant stopped (exit code {self.process.returncode})")

    def kill(self) -> None:
        """SIGKILL, now."""
        if self.running:
            assert self.process is not None  # noqa: S101
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of its console output, for error messages."""
        for path in (self.console_log, self.log):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()
                if text:
                    return "\n".join(text[-lines:])
        return "(no output)"


# ---------------------------------------------------------------------- the building meter
def building_load(hour: float) -> tuple[float, float, float]:
    """The building's own load at `hour` (0-24) of a day, A per phase: about 20 A at night,
    peaks near 9:00 (~53 A), 13:00 (~39 A) and 19:00 (~60 A); the phases a little unbalanced."""

    def bump(center: float, width: float) -> float:
        distance = (hour - center + 12) % 24 - 12
        return math.exp(-0.5 * (distance / width) ** 2)

    base = 20.0 + 28.0 * bump(9, 1.5) + 18.0 * bump(13, 2.5) + 38.0 * bump(19, 1.8)
    return base, 0.92 * base + 1.5, 0.85 * base + 3.0


@dataclass(frozen=True, slots=True)
class MeterUpdate:
    """What the demo made the meter simulator serve, and when (loop time)."""

    time: float
    hour: float
    own: tuple[float, float, float]
    """The building's own load, A per phase."""
    evs: tuple[float, float, float]
    """What the simulated EVs draw, A per phase."""
    served: tuple[float, float, float]
    """The own load plus the EVs: what the meter measures."""


@dataclass(frozen=True, slots=True)
class BuildingSample:
    """The "Building" zone and meter sensors at one moment of --check (NaN: no value)."""

    time: float
    budget: tuple[float, float, float]
    meter: tuple[float, float, float]
    max_current: float


class MeterSimulator:
    """tools/run_meters.py as a child process; its currents are set through its stdin."""

    def __init__(self, config_dir: Path, port: int) -> None:
        self.port = port
        self.log = config_dir / "meter-sim.log"
        self.process: asyncio.subprocess.Process | None = None
        self.broken = False

    async def start(self, currents: tuple[float, float, float], timeout: float = 60.0) -> None:
        """Start it (in its own session, like Home Assistant) and wait until it listens."""
        if port_open(METER_HOST, self.port):
            raise DemoError(
                f"something already listens on {METER_HOST}:{self.port} (another demo's meter "
                "simulator?); stop it, or pass another --meter-port"
            )
        log = self.log.open("wb")  # its errors; its answers to the updates are not kept
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(REPO / "tools" / "run_meters.py"),
                "--host",
                METER_HOST,
                "--port",
                str(self.port),
                "--model",
                METER_MODEL,
                "--slave",
                str(METER_SLAVE),
                "--current",
                _amps_arg(currents),
                "--energy",
                f"{meter_energy_wh():.0f}",
                "--integrate",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            log.close()
        async with asyncio.timeout(timeout):
            while not port_open(METER_HOST, self.port):
                if not self.running:
                    tail = self.log.read_text(errors="replace").strip()[-1500:]
                    raise DemoError(f"the meter simulator exited; its output:\n{tail}")
                await asyncio.sleep(0.5)
        print(
            f"demo: meter simulator started (pid {self.process.pid}): {METER_MODEL!r} on "
            f"{METER_HOST}:{self.port}, slave {METER_SLAVE}; log: {self.log}"
        )

    @property
    def running(self) -> bool:
        """The process has not exited."""
        return self.process is not None and self.process.returncode is None

    async def set_currents(self, currents: tuple[float, float, float]) -> bool:
        """Serve these currents (A per phase; the powers follow at 230 V); False if it is gone."""
        if not self.running or self.process is None or self.process.stdin is None:
            return False
        try:
            self.process.stdin.write(f"current {METER_SLAVE} {_amps_arg(currents)}\n".encode())
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, SIGKILL after `timeout`."""
        if self.process is None:
            return
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.kill()
                await self.process.wait()
            print(f"demo: meter simulator stopped (exit code {self.process.returncode})")
        if self.process.stdin is not None:
            self.process.stdin.close()

    def kill(self) -> None:
        """SIGKILL, now."""
        if self.running:
            assert self.process is not None  # noqa: S101
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


def meter_energy_wh() -> float:
    """Where the meter's energy register starts: 20 kW on average since 2025 began, so it
    never goes back from one run of the demo to the next."""
    return max(time.time() - ENERGY_EPOCH, 0.0) / 3600.0 * 20_000.0


def _amps_arg(currents: tuple[float, float, float]) -> str:
    return ",".join(f"{amps:.1f}" for amps in currents)


# ---------------------------------------------------------------------- the REST API
class HaApi:
    """The few REST calls the demo needs."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.token: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(
        self, method: str, path: str, *, json_body: Any = None, data: Any = None
    ) -> Any:
        """Send a request; returns the decoded JSON; raises DemoError on an HTTP error.

        An expired access token (they last 30 minutes) is renewed by logging in again.
        """
        for attempt in (1, 2):
            async with self.session.request(
                method, f"{HA_URL}{path}", json=json_body, data=data, headers=self._headers()
            ) as response:
                text = await response.text()
                status = response.status
            if status == HTTPStatus.UNAUTHORIZED and self.token and attempt == 1:
                await self.login()
                continue
            if status >= HTTPStatus.BAD_REQUEST:
                raise DemoError(f"{method} {path}: HTTP {status}: {text[:500]}")
            return json.loads(text) if text else None
        raise DemoError(f"{method} {path}: unauthorized")

    async def wait_up(self, timeout: float = 600.0) -> list[dict[str, Any]]:
        """Wait for the HTTP server; returns the onboarding status (all done once onboarded:
        the onboarding API is gone then)."""
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with self.session.get(f"{HA_URL}/api/onboarding") as response:
                        if response.status == HTTPStatus.OK:
                            return await response.json()  # type: ignore[no-any-return]
                        if response.status == HTTPStatus.NOT_FOUND:
                            return [{"step": step, "done": True} for step in ONBOARDING_STEPS]
                await asyncio.sleep(1)

    async def _token_from_code(self, code: str) -> None:
        tokens = await self.request(
            "POST",
            "/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
        )
        self.token = tokens["access_token"]

    async def login(self) -> None:
        """Log in as the demo user (after onboarding)."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            json_body={
                "client_id": CLIENT_ID,
                "handler": ["homeassistant", None],
                "redirect_uri": CLIENT_ID,
            },
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json_body={"username": USERNAME, "password": PASSWORD, "client_id": CLIENT_ID},
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"cannot log in as {USERNAME}/{PASSWORD} ({result.get('errors')}); "
                "was the password changed? Delete demo_config/ to start over."
            )
        await self._token_from_code(result["result"])

    async def onboard(self, status: list[dict[str, Any]]) -> None:
        """Run the onboarding steps not done yet (all of them on the first run)."""
        done = {step["step"] for step in status if step["done"]}
        if "user" not in done:
            answer = await self.request(
                "POST",
                "/api/onboarding/users",
                json_body={
                    "client_id": CLIENT_ID,
                    "name": "Demo",
                    "username": USERNAME,
                    "password": PASSWORD,
                    "language": "en",
                },
            )
            await self._token_from_code(answer["auth_code"])
            print(f"demo: onboarding: created the owner user {USERNAME}")
        else:
            await self.login()
        if "core_config" not in done:
            await self.request("POST", "/api/onboarding/core_config")
        if "analytics" not in done:
            await self.request("POST", "/api/onboarding/analytics")
        if "integration" not in done:
            await self.request(
                "POST",
                "/api/onboarding/integration",
                json_body={"client_id": CLIENT_ID, "redirect_uri": f"{HA_URL}/?auth_callback=1"},
            )
        if len(done) < len(ONBOARDING_STEPS):
            print("demo: onboarding complete")

    async def wait_running(self, timeout: float = 600.0) -> dict[str, Any]:
        """Wait until Home Assistant has finished starting; returns /api/config."""
        async with asyncio.timeout(timeout):
            while True:
                config = await self.request("GET", "/api/config")
                if config.get("state") == "RUNNING":
                    return config  # type: ignore[no-any-return]
                await asyncio.sleep(1)

    async def entries(self) -> list[dict[str, Any]]:
        """Config entries of the integration."""
        return await self.request(  # type: ignore[no-any-return]
            "GET", f"/api/config/config_entries/entry?domain={DOMAIN}"
        )

    async def add_integration(self, user_input: dict[str, Any]) -> None:
        """Run the config flow (step "user") with `user_input`."""
        try:
            form = await self.request(
                "POST",
                "/api/config/config_entries/flow",
                json_body={"handler": DOMAIN, "show_advanced_options": False},
            )
        except DemoError as err:
            raise DemoError(
                f"could not start the {DOMAIN} config flow: {err}\n"
                "Is custom_components/ev_charging_expert/config_flow.py there and loading? "
                "See demo_config/home-assistant.log."
            ) from err
        if form.get("type") == "abort":
            raise DemoError(f"the config flow aborted: {form.get('reason')}")
        if form.get("type") != "form" or form.get("step_id") != "user":
            raise DemoError(f"unexpected first config flow step: {form}")
        result = await self.request(
            "POST", f"/api/config/config_entries/flow/{form['flow_id']}", json_body=user_input
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"the config flow did not create the entry: type={result.get('type')} "
                f"errors={result.get('errors')} reason={result.get('reason')}"
            )

    async def ws_command(self, command: dict[str, Any]) -> Any:
        """One WebSocket API command (what the REST API lacks: listing subentries and the
        entity registry); returns its result."""
        for attempt in (1, 2):
            try:
                async with self.session.ws_connect(f"{HA_URL}/api/websocket") as ws:
                    await ws.receive_json()  # auth_required
                    await ws.send_json({"type": "auth", "access_token": self.token})
                    auth = await ws.receive_json()
                    if auth.get("type") != "auth_ok":
                        if attempt == 1:
                            await self.login()  # the access token expired
                            continue
                        raise DemoError(f"WebSocket API: {auth}")
                    await ws.send_json({"id": 1, **command})
                    while True:
                        answer = await ws.receive_json()
                        if answer.get("id") == 1 and answer.get("type") == "result":
                            break
            except (aiohttp.ClientError, TypeError, ValueError) as err:  # closed, not JSON
                raise DemoError(f"WebSocket API {command['type']}: {err!r}") from err
            if not answer.get("success"):
                raise DemoError(f"WebSocket API {command['type']}: {answer.get('error')}")
            return answer["result"]
        raise DemoError("WebSocket API: unauthorized")

    async def subentries(self, entry_id: str) -> list[dict[str, Any]]:
        """The entry's subentries: subentry_id, subentry_type, title."""
        return await self.ws_command(  # type: ignore[no-any-return]
            {"type": "config_entries/subentries/list", "entry_id": entry_id}
        )

    async def entity_ids(self, unique_ids: set[str]) -> dict[str, str]:
        """The integration's entity ids by unique id (those that exist)."""
        entities = await self.ws_command({"type": "config/entity_registry/list"})
        return {
            e["unique_id"]: e["entity_id"]
            for e in entities
            if e.get("platform") == DOMAIN and e.get("unique_id") in unique_ids
        }

    async def state(self, entity_id: str) -> dict[str, Any]:
        """One entity's state."""
        return await self.request("GET", f"/api/states/{entity_id}")  # type: ignore[no-any-return]

    async def _subentry_flow(
        self, entry_id: str, subentry_type: str, subentry_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"handler": [entry_id, subentry_type]}
        if subentry_id is not None:
            body["subentry_id"] = subentry_id  # reconfigure it
        return await self.request(  # type: ignore[no-any-return]
            "POST", "/api/config/config_entries/subentries/flow", json_body=body
        )

    async def _subentry_step(self, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
        return await self.request(  # type: ignore[no-any-return]
            "POST", f"/api/config/config_entries/subentries/flow/{flow_id}", json_body=user_input
        )

    async def add_zone(
        self,
        entry_id: str,
        name: str,
        amps: float,
        *,
        parent_id: str = "none",
        meter_id: str | None = None,
        degraded_setpoint: float = 0.0,
    ) -> None:
        """Add a zone (a config subentry) through its flow: static, or dynamic with a meter."""
        form = await self._subentry_flow(entry_id, "zone")
        if form.get("type") != "form":
            raise DemoError(f"unexpected zone flow answer: {form}")
        user_input: dict[str, Any] = {
            "name": name,
            "parent_id": parent_id,
            "max_current": amps,
            "mode": "static" if meter_id is None else "dynamic",
            "degraded_setpoint": degraded_setpoint,
        }
        if meter_id is not None:
            user_input["meter_id"] = meter_id
        result = await self._subentry_step(form["flow_id"], user_input)
        if result.get("type") != "create_entry":
            raise DemoError(
                f"the zone flow did not create the zone: errors={result.get('errors')} "
                f"{result.get('description_placeholders') or ''}"
            )

    async def move_zone(self, entry_id: str, zone_id: str, parent_id: str) -> None:
        """Reconfigure a zone to hang below `parent_id`, the rest unchanged."""
        form = await self._subentry_flow(entry_id, "zone", zone_id)
        if form.get("type") != "form":
            raise DemoError(f"unexpected zone flow answer: {form}")
        user_input = {
            field["name"]: field["default"]
            for field in form.get("data_schema") or []
            if "default" in field
        }
        user_input["parent_id"] = parent_id
        result = await self._subentry_step(form["flow_id"], user_input)
        if result.get("type") != "abort" or result.get("reason") != "reconfigure_successful":
            raise DemoError(
                f"the zone flow did not change the zone: errors={result.get('errors')} "
                f"{result.get('description_placeholders') or result.get('reason') or ''}"
            )

    async def meter_port(self, entry_id: str, meter_id: str) -> int | None:
        """The port a Modbus meter reads (from its reconfigure form, then left unsaved)."""
        form = await self._subentry_flow(entry_id, "meter", meter_id)
        if "flow_id" in form and form.get("type") == "form":
            await self.request(
                "DELETE", f"/api/config/config_entries/subentries/flow/{form['flow_id']}"
            )
        fields = {f["name"]: f for f in form.get("data_schema") or []}
        port = fields.get("port", {}).get("default")
        return int(port) if port is not None else None

    async def add_modbus_meter(self, entry_id: str, name: str, port: int) -> None:
        """Add a Modbus TCP meter through the meter flow: its menu, then its "modbus" form."""
        menu = await self._subentry_flow(entry_id, "meter")
        if menu.get("type") != "menu" or "modbus" not in (menu.get("menu_options") or []):
            raise DemoError(f"unexpected meter flow answer: {menu}")
        form = await self._subentry_step(menu["flow_id"], {"next_step_id": "modbus"})
        if form.get("type") != "form" or form.get("step_id") != "modbus":
            raise DemoError(f"unexpected meter flow step: {form}")
        result = await self._subentry_step(
            form["flow_id"],
            {
                "name": name,
                "model": METER_MODEL,
                "protocol": "tcp",
                "host": METER_HOST,
                "port": port,
                "slave_id": METER_SLAVE,
                "polling_period": METER_POLLING,
                "timeout": 1.0,
                "reporting_only": False,
                "serial": {"baudrate": "19200", "parity": "E", "stopbits": "1"},
            },
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"the meter flow did not create the meter: errors={result.get('errors')} "
                f"{result.get('description_placeholders') or ''}"
            )

    async def integration_states(self) -> list[dict[str, Any]]:
        """States of every entity of the integration."""
        ids = await self.request(
            "POST",
            "/api/template",
            json_body={"template": f"{{{{ integration_entities('{DOMAIN}') | list | tojson }}}}"},
        )
        wanted = set(json.loads(ids) if isinstance(ids, str) else ids)
        states = await self.request("GET", "/api/states")
        return [s for s in states if s["entity_id"] in wanted]


# ---------------------------------------------------------------------- the demo
class Demo:
    """Everything `make demo` runs, and its clean stop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.config_dir: Path = args.config_dir
        self.ha = HomeAssistant(self.config_dir)
        self.fleet: Fleet | None = None
        self.fleet_task: asyncio.Task[None] | None = None
        self.stop = asyncio.Event()
        self.ha_exit: asyncio.Task[int] | None = None
        self.assigner: asyncio.Task[None] | None = None
        self.assigned: set[str] = set()
        # Stations in no zone go here: the demo zone, else "Building" itself.
        self.station_zone = DEMO_ZONE if args.zone_current > 0 else BUILDING_ZONE
        # The simulated building meter and what the demo made it serve.
        self.meter: MeterSimulator | None = None
        if args.building_current > 0:
            self.meter = MeterSimulator(self.config_dir, args.meter_port)
        self.driver: asyncio.Task[None] | None = None
        self.day_start = 0.0  # loop time at which the simulated day starts (START_HOUR)
        self.served: deque[MeterUpdate] = deque(maxlen=600)
        self.noise = random.Random(args.seed)
        self.building_zone_id: str | None = None
        self.building_meter_id: str | None = None
        self.samples: list[BuildingSample] = []
        self.sampler: asyncio.Task[None] | None = None

    def on_signal(self) -> None:
        """First Ctrl-C: stop cleanly. Second: kill Home Assistant and the meter simulator."""
        if self.stop.is_set():
            print("demo: second interrupt, killing Home Assistant", flush=True)
            self.ha.kill()
            if self.meter is not None:
                self.meter.kill()
        self.stop.set()

    async def guard[T](self, awaitable: Awaitable[T]) -> T:
        """Await, unless Ctrl-C comes or Home Assistant exits first."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.stop.wait())
        waiters: set[asyncio.Future[Any]] = {task, stop}
        if self.ha_exit is not None:
            waiters.add(self.ha_exit)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if task.done() and not task.cancelled():
            return task.result()
        if self.stop.is_set():
            raise Stopped
        code = self.ha.process.returncode if self.ha.process else None
        raise HaExitedError(code, self.ha.log_tail())

    async def start_meter(self) -> None:
        """Start the meter simulator, and the task that sets its currents every few seconds."""
        if self.meter is None:
            return
        self.day_start = asyncio.get_running_loop().time()
        await self.guard(self.meter.start(building_load(START_HOUR)))
        self.driver = asyncio.create_task(self.drive_meter())

    def hour(self, at: float) -> float:
        """The hour of the simulated day (0-24) at loop time `at`."""
        day = float(self.args.day_minutes) * 60.0
        return (START_HOUR + 24.0 * (at - self.day_start) / day) % 24.0

    def ev_currents(self) -> tuple[float, float, float]:
        """What the simulated EVs draw now, A per phase (the stations wire L1 to L1)."""
        amps = [0.0, 0.0, 0.0]
        for charger in self.fleet.chargers if self.fleet is not None else ():
            for connector in charger.connectors.values():
                for phase in range(min(connector.phases_in_use, 3)):
                    amps[phase] += connector.current
        return amps[0], amps[1], amps[2]

    async def drive_meter(self) -> None:
        """Every METER_STEP s: the building's own load at this hour of the simulated day, plus
        the EVs (they are all in "Building", below it), is what the meter measures."""
        assert self.meter is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            hour = self.hour(now)
            own = tuple(a + self.noise.uniform(-0.5, 0.5) for a in building_load(hour))
            evs = self.ev_currents()
            served = (own[0] + evs[0], own[1] + evs[1], own[2] + evs[2])
            if await self.meter.set_currents(served):
                self.served.append(MeterUpdate(now, hour, (own[0], own[1], own[2]), evs, served))
            elif not self.meter.broken:
                self.meter.broken = True
                print(
                    f"demo: warning: the meter simulator exited; see {self.meter.log}",
                    flush=True,
                )
            await asyncio.sleep(METER_STEP)

    async def start_ha(self) -> None:
        if port_open(HA_HOST, HA_PORT):
            raise DemoError(f"something already listens on {HA_URL} (another demo?); stop it first")
        await self.ha.start()
        self.ha_exit = asyncio.ensure_future(self.ha.wait())

    async def run(self) -> int:
        prepare_config(self.config_dir)
        try:
            await self.start_meter()
            await self.start_ha()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                api = HaApi(session)
                await self.setup(api)
                return await self.operate(api)
        except Stopped:
            return 0
        finally:
            await self.shutdown()

    async def setup(self, api: HaApi) -> None:
        print("demo: waiting for Home Assistant to answer (the first start takes a while)...")
        status = await self.guard(api.wait_up())
        await self.guard(api.onboard(status))
        config = await self.guard(api.wait_running())
        print(f"demo: Home Assistant {config.get('version')} is running")
        self.check_requirements()
        entries = await self.guard(api.entries())
        if not entries:
            await self.guard(
                api.add_integration(
                    {
                        "host": self.args.ocpp_host,
                        "port": self.args.ocpp_port,
                        "new_charger_policy": "accept",
                        "heartbeat_interval": 300,
                    }
                )
            )
            print(
                f"demo: added the EV Charging Expert integration (OCPP port {self.args.ocpp_port})"
            )
            entries = await self.guard(api.entries())
        state = entries[0].get("state") if entries else None
        if state != "loaded":
            # Its OCPP server listens once the entry is loaded; the chargers retry meanwhile.
            print(f"demo: warning: the integration's config entry is {state!r}; see the log")
        await self.guard(self.remove_unloadable_onboarding_entries(api))
        if entries:
            try:
                await self.guard(self.setup_zones(api, entries[0]["entry_id"]))
            except DemoError as err:
                print(f"demo: warning: could not set up the demo zones and meter: {err}")

    async def setup_zones(self, api: HaApi, entry_id: str) -> None:
        """Add the demo's meter and zones through the subentry flows, when the integration
        has none yet (or only the "Demo parking" of an older demo): what you change by hand
        stays."""
        subentries = await api.subentries(entry_id)
        zones, meters = _by_title(subentries, "zone"), _by_title(subentries, "meter")
        fresh = not subentries
        older_demo = len(subentries) == 1 and DEMO_ZONE in zones
        building = self.args.building_current
        if building > 0 and (fresh or older_demo):
            await api.add_modbus_meter(entry_id, BUILDING_METER, self.args.meter_port)
            meters = _by_title(await api.subentries(entry_id), "meter")
            print(
                f"demo: added the Modbus meter {BUILDING_METER!r} ({METER_HOST}:"
                f"{self.args.meter_port}, slave {METER_SLAVE}, the meter simulator)"
            )
            await api.add_zone(
                entry_id,
                BUILDING_ZONE,
                building,
                meter_id=meters[BUILDING_METER],
                degraded_setpoint=min(BUILDING_DEGRADED, building),
            )
            zones = _by_title(await api.subentries(entry_id), "zone")
            print(
                f"demo: added the dynamic zone {BUILDING_ZONE!r} ({building:g} A per phase minus "
                f"the building's own load, which {BUILDING_METER!r} measures)"
            )
            if older_demo:
                await api.move_zone(entry_id, zones[DEMO_ZONE], zones[BUILDING_ZONE])
                print(f"demo: moved the zone {DEMO_ZONE!r} below {BUILDING_ZONE!r}")
        if fresh and self.args.zone_current > 0:
            parent = zones.get(BUILDING_ZONE, "none")
            await api.add_zone(entry_id, DEMO_ZONE, self.args.zone_current, parent_id=parent)
            below = f", below {BUILDING_ZONE!r}" if parent != "none" else ""
            print(
                f"demo: added the zone {DEMO_ZONE!r} ({self.args.zone_current:g} A per phase"
                f"{below}); new stations are put in it"
            )
        self.building_zone_id = zones.get(BUILDING_ZONE)
        self.building_meter_id = meters.get(BUILDING_METER)
        if self.building_meter_id is not None and self.meter is not None:
            port = await api.meter_port(entry_id, self.building_meter_id)
            if port != self.meter.port:
                print(
                    f"demo: warning: {BUILDING_METER!r} reads port {port}, the simulator "
                    f"listens on {self.meter.port}: change one (Settings > Devices & services)"
                )

    async def assign_stations(self, api: HaApi) -> None:
        """Put the stations that are in no zone in the demo zone (or "Building" without one;
        once per station and run: what you change by hand stays)."""
        while True:
            try:
                for state in await api.integration_states():
                    entity_id = state["entity_id"]
                    options = state["attributes"].get("options") or []
                    if (
                        entity_id.startswith("select.")
                        and entity_id not in self.assigned
                        and UNASSIGNED in options
                        and self.station_zone in options
                    ):
                        self.assigned.add(entity_id)
                        if state["state"] == UNASSIGNED:
                            await api.request(
                                "POST",
                                "/api/services/select/select_option",
                                json_body={"entity_id": entity_id, "option": self.station_zone},
                            )
            except (DemoError, aiohttp.ClientError, TimeoutError) as err:
                print(f"demo: warning: assigning stations to {self.station_zone!r}: {err}")
            await asyncio.sleep(10)

    async def remove_unloadable_onboarding_entries(self, api: HaApi) -> None:
        """Onboarding's core-config step starts config flows for a few integrations whose
        packages the demo does not install (HA runs with --skip-pip); those that created an
        entry that cannot load (google_translate) are removed so Settings shows no error."""
        for domain in ONBOARDING_INTEGRATIONS:
            for entry in await api.request(
                "GET", f"/api/config/config_entries/entry?domain={domain}"
            ):
                if entry.get("state") in ("setup_error", "not_loaded", "setup_retry"):
                    await api.request(
                        "DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}"
                    )
                    print(
                        f"demo: removed onboarding's {domain} entry (its package is not installed)"
                    )

    def check_requirements(self) -> None:
        """Warn when the log shows an install attempt or a module missing (other than those
        of onboarding's default integrations, which the demo does not need)."""
        if not self.ha.log.exists():
            return
        for line in self.ha.log.read_text(errors="replace").splitlines():
            install = "Attempting install of" in line or "Unable to install package" in line
            missing = "No module named" in line and not any(
                f"'{module}'" in line for module in ONBOARDING_MODULES
            )
            if install or missing:
                print(f"demo: warning: {line.strip()}")

    async def operate(self, api: HaApi) -> int:
        url = f"ws://127.0.0.1:{self.args.ocpp_port}/ocpp"
        self.fleet = Fleet(
            url,
            self.args.count,
            prefix=self.args.prefix,
            connectors=(1, 2),
            meter_interval=self.args.meter_interval,
            speed=self.args.speed,
            seed=self.args.seed,
            profile_history=100,
        )
        self.fleet_task = asyncio.create_task(self.fleet.run())
        self.assigner = asyncio.create_task(self.assign_stations(api))
        connectors = sum(len(cp.connectors) for cp in self.fleet.chargers)
        meter = ""
        if self.meter is not None:
            meter = (
                f"  building meter: {METER_HOST}:{self.meter.port} slave {METER_SLAVE} "
                f"(one day of load lasts {self.args.day_minutes:g} min)\n"
            )
        print(
            f"\n  Home Assistant: {HA_URL}\n"
            f"  login:          {USERNAME} / {PASSWORD}\n"
            f"  chargers:       {len(self.fleet.chargers)} ({connectors} connectors) -> {url}/\n"
            f"{meter}"
            f"  Ctrl-C stops the fleet, Home Assistant and the meter simulator.\n",
            flush=True,
        )
        if self.args.check:
            if self.meter is not None:
                self.sampler = asyncio.create_task(self.sample_building(api))
            await self.guard(asyncio.sleep(self.args.check))
            return await self.check(api)
        while True:
            try:
                await self.guard(self.report())
            except HaExitedError as err:
                if err.code != HA_RESTART_EXIT_CODE:
                    raise
            # Restart requested from Home Assistant (Settings > System > Restart): the demo
            # plays the supervisor. The chargers reconnect by themselves.
            print("demo: Home Assistant asked for a restart; starting it again", flush=True)
            await self.start_ha()
            await self.guard(api.wait_up())
            await self.guard(api.wait_running())
            print(f"demo: Home Assistant is running again: {HA_URL}", flush=True)

    async def report(self) -> None:
        while True:
            await asyncio.sleep(60)
            if self.fleet is not None:
                print(f"demo: fleet: {self.fleet.summary()}", flush=True)
            if self.served:
                update = self.served[-1]
                print(
                    f"demo: building at {_clock(update.hour)}: own load {_phases(update.own)} A "
                    f"+ EVs {_phases(update.evs)} A = {_phases(update.served)} A on the meter",
                    flush=True,
                )

    def building_unique_ids(self) -> dict[str, str]:
        """Unique ids of the "Building" zone and meter sensors, by a short key."""
        zone, meter = self.building_zone_id, self.building_meter_id
        ids = {f"budget_l{p}": f"zone_{zone}_budget_l{p}" for p in (1, 2, 3)}
        ids |= {f"meter_l{p}": f"meter_{meter}_current_l{p}" for p in (1, 2, 3)}
        ids["max_current"] = f"zone_{zone}_max_current"
        for key in ("power", "energy", "connection"):
            ids[f"meter_{key}"] = f"meter_{meter}_{key}"
        return ids

    async def building_states(self, api: HaApi) -> dict[str, dict[str, Any]]:
        """The "Building" zone and meter sensors' states, by building_unique_ids' keys."""
        unique_ids = self.building_unique_ids()
        entity_ids = await api.entity_ids(set(unique_ids.values()))
        return {
            key: await api.state(entity_ids[unique_id])
            for key, unique_id in unique_ids.items()
            if unique_id in entity_ids
        }

    async def sample_building(self, api: HaApi) -> None:
        """During --check: every SAMPLE_STEP s, what the "Building" sensors show."""
        if self.building_zone_id is None or self.building_meter_id is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(DemoError, aiohttp.ClientError, TimeoutError):
                states = await self.building_states(api)
                values = {key: _number(state) for key, state in states.items()}
                self.samples.append(
                    BuildingSample(
                        loop.time(),
                        _triple(values, "budget"),
                        _triple(values, "meter"),
                        values.get("max_current", math.nan),
                    )
                )
            await asyncio.sleep(SAMPLE_STEP)

    async def check(self, api: HaApi) -> int:
        """Do the integration's sensors show what the simulated chargers measure?

        Passes when there are entities, when the energy sensors of the connectors hold the
        chargers' registers, and when the power of every connector that draws shows up.
        """
        assert self.fleet is not None  # noqa: S101
        print(f"demo: fleet: {self.fleet.summary()}")
        self.print_limits()
        states = await self.guard(api.integration_states())
        live = [s for s in states if s["state"] not in ("unknown", "unavailable")]
        print(f"demo: check: {len(states)} entities, {len(live)} with a value")
        sensors = {
            s["entity_id"]: s
            for s in live
            if s["entity_id"].startswith("sensor.") and not math.isnan(_number(s))
        }
        energy = [s for s in sensors.values() if _unit(s) in ("Wh", "kWh")]
        power = [s for s in sensors.values() if _unit(s) in ("W", "kW")]
        drawing = [s for s in power if _number(s) > 0]
        for state in sorted(energy + drawing, key=lambda s: s["entity_id"])[:12]:
            print(f"demo:   {state['entity_id']} = {state['state']} {_unit(state)}")
        connectors = [c for cp in self.fleet.chargers for c in cp.connectors.values()]
        expected_drawing = sum(c.current > 0 for c in connectors)
        ok = bool(energy) and (len(drawing) > 0 or expected_drawing == 0)
        print(
            f"demo: check {'passed' if ok else 'FAILED'}: {len(energy)} energy sensors, "
            f"{len(drawing)} power sensors > 0 ({expected_drawing} connectors drawing)"
        )
        if self.meter is not None:
            building_ok = await self.guard(self.check_building(api))
            ok = ok and building_ok
        return 0 if ok else 1

    async def check_building(self, api: HaApi) -> bool:
        """Do the meter's sensors show what the simulator serves, and does the budget of
        "Building" follow the meter?

        Its budget is max - (metered - our EVs) - margin, and the integration counts an EV
        only once its charger's meter values show it, never more than its limit: the budget
        lies between max - metered - margin (no EV counted yet) and max - own load - margin
        (every EV counted), the two being equal while no EV draws. A sample is compared with
        the values the simulator served in the READING_LAG s before it was read; at most a
        third of them may be out of that range (transients).
        """
        if self.sampler is not None:
            self.sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sampler
        if self.building_zone_id is None or self.building_meter_id is None:
            print(
                f"demo: check FAILED: no zone {BUILDING_ZONE!r} or no meter {BUILDING_METER!r} "
                "(see the warnings above; --building-current 0 leaves them out)"
            )
            return False
        states = await self.building_states(api)
        meter_keys = ("meter_l1", "meter_l2", "meter_l3", "meter_power", "meter_energy")
        for key in meter_keys:
            if key in states:
                state = states[key]
                print(f"demo:   {state['entity_id']} = {state['state']} {_unit(state)}")
        connection = states.get("meter_connection", {}).get("state")
        meter_values = all(
            key in states and not math.isnan(_number(states[key])) for key in meter_keys
        )
        valid: list[BuildingSample] = []  # samples with values, after the first update
        bands: list[tuple[tuple[float, float], ...]] = []  # per phase: (low, high)
        meter_ok = below = above = recognized = 0
        tolerance = self.args.budget_tolerance
        for sample in self.samples:
            seen = self.served_before(sample.time)
            if not seen or any(math.isnan(v) for v in (*sample.budget, *sample.meter)):
                continue
            valid.append(sample)
            meter_ok += all(
                min(abs(sample.meter[p] - u.served[p]) for u in seen) <= 1.0 for p in range(3)
            )
            # Low: all the metered current taken as building load (no EV recognised yet).
            # High: the building's own load only (every EV recognised).
            band = tuple(
                (
                    min(_budget(sample.max_current, u.served[p]) for u in seen),
                    max(_budget(sample.max_current, u.own[p]) for u in seen),
                )
                for p in range(3)
            )
            bands.append(band)
            budget = sample.budget
            below += any(budget[p] < low - tolerance for p, (low, _) in enumerate(band))
            above += any(budget[p] > high + tolerance for p, (_, high) in enumerate(band))
            recognized += all(
                abs(budget[p] - high) <= tolerance for p, (_, high) in enumerate(band)
            )
        for index in range(0, len(valid), max(1, len(valid) // 8)):
            sample, band = valid[index], bands[index]
            print(
                f"demo:   {_clock(self.hour(sample.time))} meter (HA) {_phases(sample.meter)} A "
                f"-> budget of {BUILDING_ZONE!r} (HA) {_phases(sample.budget)} A; "
                f"max - metered - margin {_phases(tuple(low for low, _ in band))} A, "
                f"max - own load - margin {_phases(tuple(high for _, high in band))} A"
            )
        # Mostly in range: a budget above it for a few seconds (an EV counted at its last
        # meter value after it drew less) is reported, and fails the check when it lasts.
        ok = (
            connection == "connected"
            and meter_values
            and len(valid) >= 3  # noqa: PLR2004
            and meter_ok >= 0.8 * len(valid)
            and below + above <= len(valid) / 3
        )
        print(
            f"demo: check {'passed' if ok else 'FAILED'}: {BUILDING_METER!r} {connection}, "
            f"{'with' if meter_values else 'WITHOUT'} values; {len(valid)} samples of "
            f"{BUILDING_ZONE!r}: the meter sensors as served in {meter_ok}; the budget (give or "
            f"take {tolerance:g} A) below max - metered - margin in {below}, above max - own "
            f"load - margin in {above} (EVs counted for more than they drew), at max - own "
            f"load - margin (every EV counted) in {recognized}"
        )
        return ok

    def served_before(self, at: float) -> list[MeterUpdate]:
        """The updates a sensor read at `at` may show: those of the READING_LAG s before,
        and the one in force when that window opened."""
        earlier = [u for u in self.served if u.time <= at]
        recent = [u for u in earlier if u.time >= at - READING_LAG]
        older = [u for u in earlier if u.time < at - READING_LAG]
        return older[-1:] + recent

    def print_limits(self) -> None:
        """The charging limits the simulated connectors hold (from the profiles received)."""
        assert self.fleet is not None  # noqa: S101
        limits: dict[str, int] = {}
        profiles = 0
        for cp in self.fleet.chargers:
            profiles += len(cp.profiles.received)
            for cid in cp.connectors:
                limit = cp.limit_amps(cid)
                key = "none" if limit is None else f"{limit:g} A"
                limits[key] = limits.get(key, 0) + 1
        held = ", ".join(f"{key} x{count}" for key, count in sorted(limits.items()))
        print(f"demo: chargers received {profiles} charging profiles; limits held: {held}")

    async def shutdown(self) -> None:
        for task in (self.assigner, self.sampler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.fleet is not None:
            print("demo: stopping the fleet...", flush=True)
            await self.fleet.stop()
            if self.fleet_task is not None:
                await self.fleet_task
            print("demo: fleet stopped")
        await self.ha.stop()
        if self.ha_exit is not None:
            self.ha_exit.cancel()
        # Last: Home Assistant polls it until it stops.
        if self.driver is not None:
            self.driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.driver
        if self.meter is not None:
            await self.meter.stop()


def _number(state: dict[str, Any]) -> float:
    """A state's numeric value, NaN when it is not a number."""
    try:
        return float(state["state"])
    except ValueError:
        return math.nan


def _unit(state: dict[str, Any]) -> str:
    return str(state["attributes"].get("unit_of_measurement", ""))


def _by_title(subentries: list[dict[str, Any]], subentry_type: str) -> dict[str, str]:
    """Subentry ids of one type, by title."""
    return {s["title"]: s["subentry_id"] for s in subentries if s["subentry_type"] == subentry_type}


def _budget(top: float, own: float) -> float:
    """The budget of a dynamic zone with max `top` when the building's own load is `own`."""
    return min(max(top - own - SAFETY_MARGIN, 0.0), top)


def _triple(values: dict[str, float], prefix: str) -> tuple[float, float, float]:
    """values[prefix_l1..3], NaN for those missing."""
    l1, l2, l3 = (values.get(f"{prefix}_l{p}", math.nan) for p in (1, 2, 3))
    return l1, l2, l3


def _phases(amps: tuple[float, ...]) -> str:
    return "/".join(f"{a:.1f}" for a in amps)


def _clock(hour: float) -> str:
    minutes = int(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-dir", type=Path, default=REPO / "demo_config")
    parser.add_argument(
        "--ocpp-host",
        default="127.0.0.1",
        help="address the OCPP server listens on (0.0.0.0 to let real chargers in)",
    )
    parser.add_argument("--ocpp-port", type=int, default=9000)
    parser.add_argument("--count", type=int, default=12, help="simulated chargers")
    parser.add_argument("--prefix", default="SIM-")
    parser.add_argument("--meter-interval", type=int, default=10)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time speed factor")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--zone-current",
        type=float,
        default=100.0,
        help="when the integration has no zone: add a static zone with this budget (A per "
        "phase) and put the stations in it (0: no zone; stations in no zone get no current)",
    )
    parser.add_argument(
        "--building-current",
        type=float,
        default=125.0,
        help="when the integration has no zone and no meter: add a dynamic zone 'Building' with "
        "this max (A per phase) driven by a simulated Modbus meter, above the demo zone (0: "
        "neither, and no meter simulator)",
    )
    parser.add_argument(
        "--meter-port", type=int, default=5020, help="TCP port of the meter simulator"
    )
    parser.add_argument(
        "--day-minutes",
        type=float,
        default=10.0,
        help="one simulated day of the building's own load lasts this long (minutes)",
    )
    parser.add_argument(
        "--budget-tolerance",
        type=float,
        default=3.0,
        help="--check: how far (A) the budget of 'Building' may stray out of its expected range",
    )
    parser.add_argument(
        "--check",
        type=float,
        default=0,
        metavar="SECONDS",
        help="run this long, check the entities over the REST API, stop (exit 1 on failure)",
    )
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> int:
    demo = Demo(args)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, demo.on_signal)
    try:
        return await demo.run()
    except DemoError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("websockets").setLevel(logging.ERROR)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
