"""`make demo`: Home Assistant with EV Charging Expert and a fleet of simulated chargers.

1. Prepares `demo_config/` (reused on later runs): a minimal configuration.yaml and a symlink
   to custom_components/ev_charging_expert.
2. Starts Home Assistant on http://127.0.0.1:8123 (`python -m homeassistant -c demo_config`).
   It runs with `--skip-pip`: everything it needs is pinned in requirements.txt, so it never
   installs anything at runtime.
3. The first time, completes onboarding over the REST API (owner user demo / demo1234).
4. Adds the EV Charging Expert integration through the config-flow REST API, if not yet added,
   and, when it has no zone, a 100 A zone "Demo parking" that new stations are put in (a
   station in no zone gets no current).
5. Runs the fleet simulator (12 chargers with 1 or 2 connectors) against the OCPP port.

Ctrl-C (or SIGTERM) stops the fleet, then Home Assistant. `--check SECONDS` runs that long,
checks over the REST API that the integration's entities show live values, and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from http import HTTPStatus
import json
import logging
import math
from pathlib import Path
import signal
import socket
import sys
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

    async def add_zone(self, entry_id: str, name: str, amps: float) -> None:
        """Add a static zone (a config subentry) through its flow."""
        form = await self.request(
            "POST",
            "/api/config/config_entries/subentries/flow",
            json_body={"handler": [entry_id, "zone"]},
        )
        if form.get("type") != "form":
            raise DemoError(f"unexpected zone flow answer: {form}")
        result = await self.request(
            "POST",
            f"/api/config/config_entries/subentries/flow/{form['flow_id']}",
            json_body={
                "name": name,
                "parent_id": "none",
                "max_current": amps,
                "mode": "static",
                "degraded_setpoint": 0.0,
            },
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"the zone flow did not create the zone: errors={result.get('errors')} "
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

    def on_signal(self) -> None:
        """First Ctrl-C: stop cleanly. Second: kill Home Assistant."""
        if self.stop.is_set():
            print("demo: second interrupt, killing Home Assistant", flush=True)
            self.ha.kill()
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

    async def start_ha(self) -> None:
        if port_open(HA_HOST, HA_PORT):
            raise DemoError(f"something already listens on {HA_URL} (another demo?); stop it first")
        await self.ha.start()
        self.ha_exit = asyncio.ensure_future(self.ha.wait())

    async def run(self) -> int:
        prepare_config(self.config_dir)
        try:
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
        if entries and self.args.zone_current > 0 and not entries[0].get("num_subentries"):
            try:
                await self.guard(
                    api.add_zone(entries[0]["entry_id"], DEMO_ZONE, self.args.zone_current)
                )
            except DemoError as err:
                print(f"demo: warning: could not add the demo zone: {err}")
            else:
                print(
                    f"demo: added the zone {DEMO_ZONE!r} ({self.args.zone_current:g} A per phase);"
                    " new stations are put in it"
                )

    async def assign_stations(self, api: HaApi) -> None:
        """Put the stations that are in no zone in the demo zone (once per station and run:
        what you change by hand stays)."""
        while True:
            try:
                for state in await api.integration_states():
                    entity_id = state["entity_id"]
                    options = state["attributes"].get("options") or []
                    if (
                        entity_id.startswith("select.")
                        and entity_id not in self.assigned
                        and UNASSIGNED in options
                        and DEMO_ZONE in options
                    ):
                        self.assigned.add(entity_id)
                        if state["state"] == UNASSIGNED:
                            await api.request(
                                "POST",
                                "/api/services/select/select_option",
                                json_body={"entity_id": entity_id, "option": DEMO_ZONE},
                            )
            except (DemoError, aiohttp.ClientError, TimeoutError) as err:
                print(f"demo: warning: assigning stations to {DEMO_ZONE!r}: {err}")
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
        print(
            f"\n  Home Assistant: {HA_URL}\n"
            f"  login:          {USERNAME} / {PASSWORD}\n"
            f"  chargers:       {len(self.fleet.chargers)} ({connectors} connectors) -> {url}/\n"
            f"  Ctrl-C stops the fleet and Home Assistant.\n",
            flush=True,
        )
        if self.args.check:
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
        return 0 if ok else 1

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
        if self.assigner is not None:
            self.assigner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.assigner
        if self.fleet is not None:
            print("demo: stopping the fleet...", flush=True)
            await self.fleet.stop()
            if self.fleet_task is not None:
                await self.fleet_task
            print("demo: fleet stopped")
        await self.ha.stop()
        if self.ha_exit is not None:
            self.ha_exit.cancel()


def _number(state: dict[str, Any]) -> float:
    """A state's numeric value, NaN when it is not a number."""
    try:
        return float(state["state"])
    except ValueError:
        return math.nan


def _unit(state: dict[str, Any]) -> str:
    return str(state["attributes"].get("unit_of_measurement", ""))


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
