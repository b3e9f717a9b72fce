"""OCPP ingest benchmark: N simulated chargers sending MeterValues every T seconds.

Servers, each in its own process, measured in the same run:

  ours     (a) evcore's Controller (Site, central system, load manager with default settings
           and no zones, an empty meter pool; MemoryStore, SystemClock) in a bare asyncio
           loop: the core as production builds it (before the Controller, "ours_lm")
  ha       (b) the whole integration inside a running Home Assistant (`python -m homeassistant`)
  floor    (c) a minimal server on the `ocpp` library's v16 ChargePoint that only acknowledges

The load generator is one more process: asyncio + the websockets client, one connection per
simulated charger, pre-serialised OCPP frames (no `ocpp` library on the hot path). Every charger
connects, sends BootNotification and two StatusNotifications, answers the server's
GetConfiguration, then sends MeterValues every T seconds (sends spread evenly over T) and, in a
second phase, back to back (one outstanding CALL per charger, as OCPP requires) to find the
most messages per second the server sustains.

Measured on the server process alone (psutil): CPU seconds per 1000 messages in the measurement
window and resident memory per connected charger ((RSS after the paced phase - RSS before the
first connection) / N). Measured by the generator: messages/s (CallResults received in the
window) and round trip send -> CallResult (p50, p99).

    .venv/bin/python bench/ocpp_ingest.py                 # N = 100, 500, 1000; ~10 min
    .venv/bin/python bench/ocpp_ingest.py --quick         # CI smoke: N = 50, a few seconds each
    .venv/bin/python bench/ocpp_ingest.py --targets floor,ours,ha --repeat 2
    .venv/bin/python bench/ocpp_ingest.py --n 1000 --targets ours,ha --profile ours,ha

Results: a table on stdout, JSON and Markdown in bench/results/ (git-ignored); server logs in
bench/results/logs/; docs/performance.md explains the columns and records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
import itertools
import json
import logging
import os
from pathlib import Path
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from websockets.asyncio.client import ClientConnection

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `bench.harness` and the integration import from the repo root
    sys.path.insert(0, str(ROOT))

from bench.harness import HOST, RESULTS  # noqa: E402
from bench.harness.core import bench_controller  # noqa: E402
from bench.harness.ha import home_assistant, registry_counts  # noqa: E402
from bench.harness.measure import (  # noqa: E402
    own_cpu_seconds,
    percentile,
    tree_cpu_seconds,
    tree_rss_bytes,
    wait_quiet,
)
from bench.harness.ocpp_client import (  # noqa: E402
    SUBPROTOCOL,
    RawCharger,
    compact,
    connect,
    connect_all,
)
from bench.harness.processes import python_env, running_server  # noqa: E402
from bench.harness.report import (  # noqa: E402
    Table,
    code_version,
    fmt,
    package_version,
    save_results,
    utc_stamp,
)

TARGETS = ("floor", "ours", "ha")
DEFAULT_TARGETS = ("floor", "ours", "ha")
TARGET_LABELS = {
    "ours": "(a) ours: Controller, bare asyncio",
    "ha": "(b) integration in HA",
    "floor": "(c) floor: ocpp lib, ack only",
}

# A CALL not answered in this time counts as a timeout (the run stays bounded).
RESPONSE_TIMEOUT_S = 30.0
# A server is idle when it uses less than this share of one core over IDLE_SAMPLE_S.
IDLE_CPU_SHARE = 0.08
IDLE_SAMPLE_S = 1.0
# Experiment (--sync-validation): validate OCPP payloads on the event loop instead of in the
# default thread pool, in the ours and floor servers (HA runs the library as shipped).
SYNC_VALIDATION_ENV = "BENCH_OCPP_SYNC_VALIDATION"
PROFILE_RATE = 200  # py-spy samples per second
# Under this share of a core at saturation the server was not the bottleneck (or was starved).
SATURATED_CPU_SHARE = 0.85

_LOGGER = logging.getLogger("ocpp_ingest")


# ---------------------------------------------------------------------------------- frames
def _sampled(value: str, measurand: str, unit: str, phase: str | None = None) -> dict[str, str]:
    sample = {
        "value": value,
        "context": "Sample.Periodic",
        "format": "Raw",
        "measurand": measurand,
        "location": "Outlet",
        "unit": unit,
    }
    if phase is not None:
        sample["phase"] = phase
    return sample


def meter_values_payloads(count: int = 16) -> list[str]:
    """Serialised MeterValues payloads of a 3-phase 11 kW charge, a few seconds apart.

    Per phase Current.Import, Voltage and Power.Active.Import, plus total power and the energy
    register: 11 sampled values, what a typical AC charger sends with MeterValuesSampledData
    set to all four measurands.
    """
    base = datetime.now(UTC).replace(microsecond=0)
    payloads = []
    for k in range(count):
        amps = [15.8 + 0.1 * ((k + p) % 5) for p in range(3)]
        volts = [229.0 + 0.3 * ((k * 3 + p) % 7) for p in range(3)]
        watts = [a * v for a, v in zip(amps, volts, strict=True)]
        samples = [
            _sampled(f"{a:.1f}", "Current.Import", "A", f"L{p + 1}") for p, a in enumerate(amps)
        ]
        samples += [
            _sampled(f"{v:.1f}", "Voltage", "V", f"L{p + 1}-N") for p, v in enumerate(volts)
        ]
        samples += [
            _sampled(f"{w:.0f}", "Power.Active.Import", "W", f"L{p + 1}")
            for p, w in enumerate(watts)
        ]
        samples.append(_sampled(f"{sum(watts):.0f}", "Power.Active.Import", "W"))
        samples.append(_sampled(f"{1_234_567 + 30 * k}", "Energy.Active.Import.Register", "Wh"))
        timestamp = (base + timedelta(seconds=10 * k)).isoformat().replace("+00:00", "Z")
        payload = {
            "connectorId": 1,
            "meterValue": [{"timestamp": timestamp, "sampledValue": samples}],
        }
        payloads.append(compact(payload))
    return payloads


def _boot_payload(index: int) -> dict[str, str]:
    return {
        "chargePointVendor": "BenchVendor",
        "chargePointModel": "AC22-3P",
        "chargePointSerialNumber": f"SN{index:08d}",
        "chargeBoxSerialNumber": f"CB{index:08d}",
        "firmwareVersion": "4.2.1",
        "meterType": "EM340",
        "meterSerialNumber": f"M{index:08d}",
    }


def _status_payload(connector_id: int, status: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"connectorId": connector_id, "errorCode": "NoError", "status": status, "timestamp": now}


_CONFIGURATION_ANSWER = compact(
    {
        "configurationKey": [
            {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
            {"key": "SupportedFeatureProfiles", "readonly": True, "value": "Core,SmartCharging"},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "MeterValueSampleInterval", "readonly": False, "value": "10"},
            {
                "key": "MeterValuesSampledData",
                "readonly": False,
                "value": "Current.Import,Voltage,Power.Active.Import,Energy.Active.Import.Register",
            },
        ],
        "unknownKey": [],
    }
)


def charger_id(index: int) -> str:
    """Charge box identity of simulated charger `index`."""
    return f"BENCH{index:05d}"


# ---------------------------------------------------------------------------------- process metrics
async def wait_idle_async(pid: int, max_wait: float) -> float:
    """Wait until `pid` uses under IDLE_CPU_SHARE of a core twice in a row; return the wait."""
    return await wait_quiet(
        [lambda: tree_cpu_seconds(pid)],
        share=IDLE_CPU_SHARE,
        sample=IDLE_SAMPLE_S,
        max_wait=max_wait,
    )


def wait_idle(pid: int, max_wait: float) -> float:
    """Blocking wait_idle_async for the orchestrator."""
    return asyncio.run(wait_idle_async(pid, max_wait))


# ---------------------------------------------------------------------------------- load generator
class ServerClosedError(Exception):
    """The server closed the connection or answered with a CallError."""


@dataclass
class PhaseStats:
    """What the chargers saw during one phase."""

    rtts_ms: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    in_window: int = 0
    sent: int = 0
    call_errors: int = 0
    timeouts: int = 0
    disconnects: int = 0


class SimCharger(RawCharger):
    """One simulated charger on one websocket connection."""

    def __init__(self, index: int, ws: ClientConnection) -> None:
        answers = {"GetConfiguration": _CONFIGURATION_ANSWER}
        super().__init__(index, ws, answers, timeout=RESPONSE_TIMEOUT_S)
        self.id = charger_id(index)
        self.alive = True

    async def boot(self) -> None:
        """BootNotification, then StatusNotification for the station and connector 1."""
        ok = await self.call("BootNotification", json.dumps(_boot_payload(self.index)))
        ok = ok and await self.call(
            "StatusNotification", json.dumps(_status_payload(0, "Available"))
        )
        ok = ok and await self.call(
            "StatusNotification", json.dumps(_status_payload(1, "Charging"))
        )
        if not ok:
            raise ServerClosedError(f"{self.id}: boot sequence refused")

    async def run_phase(self, plan: PhasePlan, payloads: Sequence[str], stats: PhaseStats) -> None:
        """Send MeterValues by the plan; record round trips of sends inside the window."""
        scheduled = plan.start + (plan.period * self.index / plan.chargers if plan.period else 0.0)
        k = self.index
        while self.alive and await _wait_turn(plan, scheduled):
            k += 1
            await self._meter_values(payloads[k % len(payloads)], plan, scheduled, stats)
            scheduled += plan.period

    async def _meter_values(
        self, payload: str, plan: PhasePlan, scheduled: float, stats: PhaseStats
    ) -> None:
        sent_at = time.perf_counter()
        try:
            ok = await self.call("MeterValues", payload)
        except TimeoutError:
            stats.timeouts += 1
            return
        except Exception:  # noqa: BLE001  # connection lost: this charger is done
            stats.disconnects += 1
            self.alive = False
            return
        received_at = time.perf_counter()
        stats.sent += 1
        stats.call_errors += not ok
        if plan.measure_start <= received_at < plan.measure_end:
            stats.in_window += 1
        if plan.measure_start <= sent_at < plan.measure_end:
            stats.rtts_ms.append((received_at - sent_at) * 1000.0)
            if plan.period:
                stats.lateness_ms.append(max(sent_at - scheduled, 0.0) * 1000.0)


async def _wait_turn(plan: PhasePlan, scheduled: float) -> bool:
    """Sleep until the next send is due; False when the phase is over."""
    now = time.perf_counter()
    if not plan.period:
        return now < plan.end
    if scheduled >= plan.end:
        return False
    if scheduled > now:
        await asyncio.sleep(scheduled - now)
    return True


@dataclass(frozen=True)
class PhasePlan:
    """When a phase starts, is measured and ends (perf_counter seconds)."""

    chargers: int
    period: float
    start: float
    measure_start: float
    measure_end: float
    end: float


async def _profile_window(pid: int, seconds: float, out: Path, py_spy: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(PROFILE_RATE),
        "--gil",  # sample the thread holding the GIL: where the Python CPU goes
        "--nonblocking",  # do not pause the server for each sample
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await proc.wait()


async def measure_phase(
    chargers: list[SimCharger],
    payloads: Sequence[str],
    *,
    server_pid: int,
    period: float,
    warmup: float,
    duration: float,
    profile_to: Path | None = None,
    py_spy: str | None = None,
) -> dict[str, Any]:
    """Run one phase over every live charger and return its measurements."""
    start = time.perf_counter() + 0.2
    plan = PhasePlan(
        chargers=len(chargers),
        period=period,
        start=start,
        measure_start=start + warmup,
        measure_end=start + warmup + duration,
        end=start + warmup + duration,
    )
    stats = PhaseStats()
    samples: dict[str, float] = {}

    async def sample_window() -> None:
        await asyncio.sleep(max(plan.measure_start - time.perf_counter(), 0.0))
        samples["cpu0"], samples["gen0"] = tree_cpu_seconds(server_pid), own_cpu_seconds()
        samples["t0"] = time.perf_counter()
        profiler = None
        if profile_to is not None and py_spy is not None:
            profiler = asyncio.create_task(
                _profile_window(server_pid, duration, profile_to, py_spy)
            )
        await asyncio.sleep(max(plan.measure_end - time.perf_counter(), 0.0))
        samples["cpu1"], samples["gen1"] = tree_cpu_seconds(server_pid), own_cpu_seconds()
        samples["t1"] = time.perf_counter()
        if profiler is not None:
            await profiler

    await asyncio.gather(
        sample_window(), *(c.run_phase(plan, payloads, stats) for c in chargers if c.alive)
    )
    window = samples["t1"] - samples["t0"]
    cpu = samples["cpu1"] - samples["cpu0"]
    msgs = stats.in_window
    return {
        "period_s": period,
        "offered_per_s": len(chargers) / period if period else None,
        "window_s": round(window, 3),
        "messages": msgs,
        "messages_per_s": msgs / window,
        "rtt_p50_ms": percentile(stats.rtts_ms, 50),
        "rtt_p99_ms": percentile(stats.rtts_ms, 99),
        "rtt_max_ms": max(stats.rtts_ms, default=None),
        "rtt_mean_ms": statistics.fmean(stats.rtts_ms) if stats.rtts_ms else None,
        "send_lateness_p99_ms": percentile(stats.lateness_ms, 99),
        "server_cpu_s": cpu,
        "server_cpu_share": cpu / window,
        "cpu_s_per_1000": cpu / msgs * 1000 if msgs else None,
        "generator_cpu_share": (samples["gen1"] - samples["gen0"]) / window,
        "call_errors": stats.call_errors,
        "timeouts": stats.timeouts,
        "disconnects": stats.disconnects,
        "live_chargers": sum(c.alive for c in chargers),
    }


async def _connect_one(index: int, url_base: str, *, deflate: bool) -> SimCharger:
    charger = SimCharger(index, await connect(f"{url_base}/{charger_id(index)}", deflate=deflate))
    await charger.boot()
    return charger


async def load_main(args: argparse.Namespace) -> dict[str, Any]:
    """The load generator process: connect, settle, paced phase, saturation phase."""
    pid = args.server_pid
    result: dict[str, Any] = {"n": args.n, "rss_idle": tree_rss_bytes(pid)}
    cpu_before_connect = tree_cpu_seconds(pid)
    url_base = f"ws://{HOST}:{args.port}/ocpp"
    started = time.perf_counter()
    chargers, failures = await connect_all(
        args.n, lambda i: _connect_one(i, url_base, deflate=args.deflate)
    )
    result["connect_s"] = time.perf_counter() - started
    result["connected"] = len(chargers)
    result["connect_failures"] = len(failures)
    result["connect_failure_examples"] = failures[:3]
    result["settle_s"] = await wait_idle_async(pid, args.settle_max)
    result["connect_cpu_s"] = tree_cpu_seconds(pid) - cpu_before_connect
    result["rss_connected"] = tree_rss_bytes(pid)
    before, started = tree_cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(args.idle_sample)
    result["idle_cpu_share"] = (tree_cpu_seconds(pid) - before) / (time.perf_counter() - started)
    result["server_calls_answered"] = sum(c.server_calls for c in chargers)
    payloads = meter_values_payloads()
    result["frame_bytes"] = len(f'[2,"12345","MeterValues",{payloads[0]}]')
    profile = Path(args.profile_to) if args.profile_to else None
    if chargers and args.period > 0:
        result["paced"] = await measure_phase(
            chargers,
            payloads,
            server_pid=pid,
            period=args.period,
            warmup=args.period,
            duration=args.duration,
            profile_to=profile if args.profile_phase == "paced" else None,
            py_spy=args.py_spy,
        )
        result["rss_loaded"] = tree_rss_bytes(pid)
    if chargers and args.sat_duration > 0:
        result["saturation"] = await measure_phase(
            chargers,
            payloads,
            server_pid=pid,
            period=0.0,
            warmup=min(3.0, args.sat_duration / 2),
            duration=args.sat_duration,
            profile_to=profile if args.profile_phase == "saturation" else None,
            py_spy=args.py_spy,
        )
    result.setdefault("rss_loaded", tree_rss_bytes(pid))
    n = max(len(chargers), 1)
    result["rss_kib_per_charger"] = (result["rss_loaded"] - result["rss_idle"]) / n / 1024
    result["rss_kib_per_charger_connected"] = (
        (result["rss_connected"] - result["rss_idle"]) / n / 1024
    )
    await asyncio.gather(*(c.ws.close() for c in chargers), return_exceptions=True)
    return result


# ---------------------------------------------------------------------------------- servers
async def serve_ours(port_file: Path) -> None:
    """(a): evcore's Controller in a bare asyncio loop, as production builds the core."""

    # Default load settings, no zones, no meters: what a fresh install has.
    controller = bench_controller(heartbeat_interval=300)
    await controller.restore()
    await controller.start(host=HOST, port=0)
    port_file.write_text(str(controller.port))  # noqa: ASYNC240  # once, before any load
    await _wait_for_stop()
    await controller.stop()


def _floor_charge_point() -> type:
    from ocpp.routing import on  # noqa: PLC0415
    from ocpp.v16 import ChargePoint, call_result  # noqa: PLC0415
    from ocpp.v16.enums import Action, RegistrationStatus  # noqa: PLC0415

    class FloorChargePoint(ChargePoint):  # type: ignore[misc]
        """Acknowledges everything, stores nothing."""

        @on(Action.boot_notification)
        def on_boot_notification(self, **_: Any) -> Any:
            return call_result.BootNotification(
                current_time=datetime.now(UTC).isoformat(),
                interval=300,
                status=RegistrationStatus.accepted,
            )

        @on(Action.heartbeat)
        def on_heartbeat(self, **_: Any) -> Any:
            return call_result.Heartbeat(current_time=datetime.now(UTC).isoformat())

        @on(Action.status_notification)
        def on_status_notification(self, **_: Any) -> Any:
            return call_result.StatusNotification()

        @on(Action.meter_values)
        def on_meter_values(self, **_: Any) -> Any:
            return call_result.MeterValues()

    return FloorChargePoint


async def serve_floor(port_file: Path) -> None:
    """(c): the floor, with our server's websockets settings."""
    from websockets.asyncio.server import serve  # noqa: PLC0415
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415

    from custom_components.ev_charging_expert.evcore.ocpp.server import (  # noqa: PLC0415
        DEFAULT_MAX_FRAME,
    )

    charge_point = _floor_charge_point()

    async def handler(connection: Any) -> None:
        station_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        with contextlib.suppress(ConnectionClosed):
            await charge_point(station_id, connection).start()

    server = await serve(
        handler,
        HOST,
        0,
        subprotocols=[SUBPROTOCOL],
        max_size=DEFAULT_MAX_FRAME,
        ping_interval=60,
        ping_timeout=60,
        server_header=None,
    )
    port = next(iter(server.sockets)).getsockname()[1]
    port_file.write_text(str(port))  # noqa: ASYNC240  # once, before any load
    await _wait_for_stop()
    server.close(close_connections=True)
    await server.wait_closed()


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@dataclass
class RunningServer:
    """A server process under test."""

    target: str
    pid: int
    port: int
    startup_s: float
    log: Path


@contextlib.contextmanager
def start_server(
    target: str, workdir: Path, *, sync_validation: bool = False
) -> Iterator[RunningServer]:
    """Start `target` in its own process; stop it on exit."""
    log = workdir / f"{target}.log"
    if target == "ha":
        server = home_assistant(workdir / "ha_config", log=log, name="OCPP ingest bench")
    else:
        port_file = workdir / f"{target}.port"
        env = python_env(**({SYNC_VALIDATION_ENV: "1"} if sync_validation else {}))
        server = running_server(
            [sys.executable, str(Path(__file__).resolve()), "_serve", target, str(port_file)],
            log=log,
            port_file=port_file,
            startup_timeout=60.0,
            env=env,
        )
    with server as running:
        yield RunningServer(target, running.pid, running.port, running.startup_s, log)


# ---------------------------------------------------------------------------------- orchestrator
@dataclass
class Settings:
    """One benchmark run."""

    counts: list[int]
    targets: list[str]
    period: float
    duration: float
    sat_duration: float
    settle_max: float
    idle_sample: float
    repeat: int
    deflate: bool
    sync_validation: bool
    profile: list[str]
    profile_phase: str
    py_spy: str | None


def run_point(target: str, n: int, settings: Settings, workdir: Path) -> dict[str, Any]:
    """Start one server, load it with n chargers, return the generator's measurements."""
    point_dir = workdir / f"{target}-{n}"
    point_dir.mkdir(parents=True)
    sync = settings.sync_validation and target != "ha"
    with start_server(target, point_dir, sync_validation=sync) as server:
        idle_wait = wait_idle(server.pid, 120.0 if target == "ha" else 10.0)
        profile_to = None
        if target in settings.profile and settings.py_spy:
            RESULTS.mkdir(parents=True, exist_ok=True)
            profile_to = RESULTS / f"profile-{target}-{n}-{settings.profile_phase}.txt"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "_load",
            f"--port={server.port}",
            f"--server-pid={server.pid}",
            f"--n={n}",
            f"--period={settings.period}",
            f"--duration={settings.duration}",
            f"--sat-duration={settings.sat_duration}",
            f"--settle-max={settings.settle_max}",
            f"--idle-sample={settings.idle_sample}",
        ]
        if settings.deflate:
            cmd.append("--deflate")
        if profile_to is not None:
            cmd += [
                f"--profile-to={profile_to}",
                f"--profile-phase={settings.profile_phase}",
                f"--py-spy={settings.py_spy}",
            ]
        budget = 180 + settings.settle_max + 2 * settings.period + 2 * settings.duration
        budget += 2 * settings.sat_duration + n * 0.1
        out = subprocess.run(  # noqa: S603
            cmd,
            cwd=ROOT,
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=budget,
            check=False,
        )
        if out.returncode != 0:
            msg = f"load generator failed for {target} N={n}:\n{out.stderr[-3000:]}"
            raise RuntimeError(msg)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result.update(target=target, startup_s=server.startup_s, idle_wait_s=idle_wait)
        if profile_to is not None and profile_to.exists():
            result["profile"] = str(profile_to.relative_to(ROOT))
    result.update(_server_log_findings(server.log, target, n))
    if target == "ha":
        result.update(registry_counts(point_dir / "ha_config" / ".storage"))
    return result


def _server_log_findings(log: Path, target: str, n: int) -> dict[str, Any]:
    """Keep the server's log in bench/results/logs/ and count its errors."""
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kept = logs / f"ocpp_ingest-{target}-{n}.log"
    shutil.copyfile(log, kept)
    text = log.read_text(errors="replace")
    errors = [line for line in text.splitlines() if " ERROR " in line or " CRITICAL " in line]
    return {
        "server_log": str(kept.relative_to(ROOT)),
        "server_log_errors": len(errors),
        # HA logs environment errors (no libturbojpeg, no ffmpeg...) that do not matter here.
        "server_log_relevant_errors": [e for e in errors if _RELEVANT_LOGGERS.search(e)][:5],
        "ha_recovery_mode": "Activating recovery mode" in text,
    }


_RELEVANT_LOGGERS = re.compile(
    r"\[(custom_components\.ev_charging_expert|ocpp|websockets|homeassistant\.setup|"
    r"homeassistant\.config_entries|asyncio)[.\]]"
)


def machine_info() -> dict[str, Any]:
    """What the numbers were taken on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {
        package: package_version(package)
        for package in ("homeassistant", "ocpp", "websockets", "jsonschema")
    }
    import ocpp.messages  # noqa: PLC0415

    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": versions,
        "ocpp_async_validation": ocpp.messages.ASYNC_VALIDATION,
        "loadavg_start": os.getloadavg(),
        "code": code_version("custom_components"),
    }


TABLE = Table(
    *(
        (title, 0)
        for title in (
            "server",
            "load",
            "msg/s",
            "p50 ms",
            "p99 ms",
            "CPU s / 1000 msg",
            "vs floor",
            "server CPU",
            "RSS KiB / charger",
            "connect s",
        )
    ),
    text_columns=(0, 1),
)


def render_tables(results: list[dict[str, Any]], settings: Settings) -> str:
    """Markdown tables, one per N, each followed by what went wrong, if anything."""
    lines: list[str] = []
    for n in settings.counts:
        by_target = {
            t: median_result([r for r in results if r["n"] == n and r["target"] == t])
            for t in TARGETS
            if any(r["n"] == n and r["target"] == t for r in results)
        }
        if not by_target:
            continue
        title = f"N = {n} chargers"
        if settings.repeat > 1:
            title += f" (median of {settings.repeat} interleaved runs)"
        rows = []
        for phase in ("paced", "saturation"):
            floor = by_target.get("floor", {}).get(phase, {}).get("cpu_s_per_1000")
            rows += [
                _table_cells(by_target[t], phase, floor, settings)
                for t in TARGETS
                if phase in by_target.get(t, {})
            ]
        lines += [title, "", *TABLE.markdown(rows)]
        problems = [p for t, r in by_target.items() for p in _problems(t, r, n)]
        lines += ["", *(f"- {p}" for p in problems), ""] if problems else [""]
    return "\n".join(lines)


def median_result(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from repeated runs: every number is the median over the runs."""
    if len(runs) == 1:
        return runs[0]
    merged = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, dict) and key in ("paced", "saturation"):
            merged[key] = median_result([r[key] for r in runs if key in r])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
            merged[key] = statistics.median(values)
        elif isinstance(value, list) and key == "server_log_relevant_errors":
            merged[key] = [e for r in runs for e in r.get(key, [])][:5]
    merged["ha_recovery_mode"] = any(r.get("ha_recovery_mode") for r in runs)
    return merged


def _table_cells(
    r: dict[str, Any], phase: str, floor: float | None, settings: Settings
) -> list[str]:
    p = r[phase]
    cost = p["cpu_s_per_1000"]
    ratio = cost / floor if cost and floor else None
    if phase == "paced":
        load = f"T = {settings.period:g} s ({p['offered_per_s']:.0f}/s offered)"
    else:
        load = "saturation (T = 0)"
    return [
        TARGET_LABELS[r["target"]],
        load,
        f"{p['messages_per_s']:.0f}",
        fmt(p["rtt_p50_ms"]),
        fmt(p["rtt_p99_ms"]),
        fmt(cost, 2),
        fmt(ratio, 2),
        f"{p['server_cpu_share'] * 100:.0f} %",
        f"{r['rss_kib_per_charger']:.1f}",
        f"{r['connect_s']:.1f}",
    ]


def _problems(target: str, r: dict[str, Any], n: int) -> list[str]:
    problems = []
    if r["connected"] < n:
        problems.append(
            f"{target}: {r['connected']}/{n} connected ({r['connect_failures']} failed)"
        )
    if r.get("ha_recovery_mode"):
        problems.append(f"{target}: Home Assistant fell back to recovery mode (see its log)")
    if r.get("server_log_relevant_errors"):
        problems.append(f"{target}: errors in {r['server_log']}")
    for phase in ("paced", "saturation"):
        p = r.get(phase, {})
        bad = {k: p[k] for k in ("call_errors", "timeouts", "disconnects") if p.get(k)}
        if bad:
            problems.append(f"{target} {phase}: {bad}")
        if p.get("generator_cpu_share", 0) > 0.9:
            problems.append(f"{target} {phase}: the load generator was CPU-bound")
    sat = r.get("saturation")
    if sat and sat["server_cpu_share"] < SATURATED_CPU_SHARE:
        problems.append(
            f"{target} saturation: the server got {sat['server_cpu_share']:.0%} of a core, "
            "so it was starved (busy machine) or waiting, not CPU-bound"
        )
    return problems


# Functions worth a line of their own in a profile summary: (label, function qualname).
PROFILE_WATCH = (
    ("ocpp lib: JSON-schema validation (thread pool)", "_validate_payload"),
    ("ocpp lib: run_in_executor (hop to the pool)", "BaseEventLoop.run_in_executor"),
    ("ocpp lib: camel_to_snake_case (re.sub per key)", "camel_to_snake_case"),
    ("ocpp lib: snake_to_camel_case", "snake_to_camel_case"),
    ("ocpp lib: serialize_as_dict + remove_nones", "serialize_as_dict"),
    ("ocpp lib: inspect.signature per call", "signature"),
    ("ocpp lib: unpack (json.loads)", "unpack"),
    ("ocpp lib: to_json (json.dumps)", "CallResult.to_json"),
    ("websockets: recv", "Connection.recv"),
    ("websockets: send", "Connection.send"),
    ("ours: ChargePointV16.route_message", "ChargePointV16.route_message"),
    ("ours: Site.frame_received (clock.now)", "Site.frame_received"),
    ("ours: ChargePointV16.on_meter_values", "ChargePointV16.on_meter_values"),
    ("ours: parse_meter_values", "parse_meter_values"),
    ("ours: Site.measurements", "Site.measurements"),
    ("ours: Site._emit (listeners)", "Site._emit"),
    ("ours: LoadManager._on_site_event", "LoadManager._on_site_event"),
    ("HA glue: EvChargingCoordinator._on_site_event", "EvChargingCoordinator._on_site_event"),
    ("HA glue: EvChargingCoordinator._ensure_entities", "EvChargingCoordinator._ensure_entities"),
    ("HA: async_dispatcher_send", "async_dispatcher_send"),
    ("HA: Entity.async_write_ha_state", "Entity.async_write_ha_state"),
    ("HA: StateMachine.async_set_internal", "StateMachine.async_set_internal"),
    ("HA: EventBus fire", "EventBus.async_fire_internal"),
    ("logging", "Logger.isEnabledFor"),
)


def _collapsed_counts(path: Path) -> tuple[int, dict[str, int], dict[str, int]]:
    """Total samples, inclusive and self counts per function of a py-spy raw profile."""
    inclusive: dict[str, int] = {}
    self_time: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + count
        self_time[frames[-1]] = self_time.get(frames[-1], 0) + count
    return total, inclusive, self_time


def summarise_profile(path: Path, *, cpu_us_per_msg: float | None = None, top: int = 25) -> str:
    """Inclusive and self shares per function from py-spy's raw (collapsed) output.

    py-spy samples the thread holding the GIL. With `cpu_us_per_msg` (the server's measured
    CPU per message in the same window) every share is also shown as microseconds per message:
    share x CPU per message, an estimate (time holding the GIL is not exactly CPU time).
    """
    total, inclusive, self_time = _collapsed_counts(path)
    if not total:
        return f"{path}: no samples"

    def cost(count: int) -> str:
        share = count / total
        per_msg = f" {share * cpu_us_per_msg:6.0f} us/msg" if cpu_us_per_msg else ""
        return f"{100 * share:5.1f} %{per_msg}"

    out = [f"{path.name}: {total} samples of the GIL holder; CPU {cpu_us_per_msg or 0:.0f} us/msg"]
    out += ["", "watch list (inclusive)"]
    for label, qualname in PROFILE_WATCH:
        count = sum(c for name, c in inclusive.items() if name.split(" (", 1)[0] == qualname)
        if count:
            out.append(f"  {cost(count)}  {label}")
    out += ["", "top inclusive"]
    out += [
        f"  {cost(count)}  {name}"
        for name, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    ]
    out += ["", "top self"]
    out += [
        f"  {cost(count)}  {name}"
        for name, count in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]
    ]
    return "\n".join(out)


def _frame_name(frame: str) -> str:
    # py-spy frames are "function (path/to/file.py:line)"; keep function and short path.
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.13/", "custom_components/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


def _parse_main(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: N=50, seconds per phase")
    parser.add_argument("--n", default=None, help="comma-separated charger counts")
    parser.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help="comma-separated, from floor,ours,ha (ours: evcore's Controller, load manager "
        "included; it replaces the former ours_lm)",
    )
    parser.add_argument("--period", type=float, default=None, help="MeterValues period T (s)")
    parser.add_argument("--duration", type=float, default=None, help="paced window (s)")
    parser.add_argument("--sat-duration", type=float, default=None, help="saturation window (s)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per point, interleaved; the table shows medians"
    )
    parser.add_argument("--deflate", action="store_true", help="chargers offer permessage-deflate")
    parser.add_argument(
        "--sync-validation",
        action="store_true",
        help="experiment: ocpp.messages.ASYNC_VALIDATION = False in the ours and floor servers",
    )
    parser.add_argument(
        "--profile", default="", help="targets to profile with py-spy (e.g. ours,ha)"
    )
    parser.add_argument(
        "--profile-phase",
        choices=("paced", "saturation"),
        default="saturation",
        help="the measurement window py-spy records",
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy executable")
    parser.add_argument("--tag", default="", help="suffix of the result file names")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """Defaults: full run, or --quick."""
    quick = args.quick
    default_counts = [50] if quick else [100, 500, 1000]
    counts = [int(n) for n in args.n.split(",")] if args.n else default_counts
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        hint = " (ours_lm is gone: ours now includes the load manager)" * ("ours_lm" in unknown)
        raise SystemExit(f"unknown targets: {sorted(unknown)}{hint}")
    return Settings(
        counts=counts,
        targets=[t for t in TARGETS if t in targets],
        period=args.period if args.period is not None else (2.0 if quick else 10.0),
        duration=args.duration if args.duration is not None else (4.0 if quick else 20.0),
        sat_duration=(
            args.sat_duration if args.sat_duration is not None else (3.0 if quick else 15.0)
        ),
        settle_max=30.0 if quick else 240.0,
        idle_sample=1.0 if quick else 5.0,
        repeat=max(1, args.repeat),
        deflate=args.deflate,
        sync_validation=args.sync_validation,
        profile=[t for t in args.profile.split(",") if t],
        profile_phase=args.profile_phase,
        py_spy=args.py_spy,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the tables; write bench/results/ocpp_ingest*.{json,md}."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in {"_serve", "_load"}:
        return _internal(argv)
    args = _parse_main(argv)
    settings = settings_from(args)
    if settings.profile and not settings.py_spy:
        print("--profile needs py-spy: pip install py-spy, or pass --py-spy PATH")
        return 2
    info = machine_info()
    if settings.sync_validation:
        info["ocpp_async_validation"] = "False in ours and floor, True in ha"
    print(
        f"OCPP ingest: N={settings.counts} targets={settings.targets} T={settings.period:g} s "
        f"window={settings.duration:g} s saturation={settings.sat_duration:g} s; "
        f"{info['cores']} x {info['cpu_model']}; load average {info['loadavg_start']}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ocpp-ingest-") as tmp:
        for n in settings.counts:
            for repeat, target in itertools.product(range(settings.repeat), settings.targets):
                print(f"  {target:5} N={n:<5} run {repeat + 1} ...", end=" ", flush=True)
                try:
                    result = run_point(target, n, settings, Path(tmp) / f"run{repeat}")
                except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as err:
                    failures += 1
                    print(f"FAILED: {err}", flush=True)
                    continue
                result["repeat"] = repeat
                results.append(result)
                print(_one_line(result), flush=True)
    info["loadavg_end"] = os.getloadavg()
    tables = render_tables(results, settings)
    print()
    print(tables)
    _write_results(results, settings, info, tables, args.tag)
    for result in results:
        if "profile" in result:
            path = ROOT / result["profile"]
            cost = result[settings.profile_phase]["cpu_s_per_1000"]
            summary = summarise_profile(path, cpu_us_per_msg=cost * 1000 if cost else None)
            path.with_suffix(".summary.txt").write_text(summary + "\n")
            print(summary)
    return 1 if failures or not results else 0


def _one_line(result: dict[str, Any]) -> str:
    parts = [f"connected {result['connected']} in {result['connect_s']:.1f} s"]
    for phase in ("paced", "saturation"):
        p = result.get(phase)
        if p:
            parts.append(
                f"{phase} {p['messages_per_s']:.0f} msg/s p99 {fmt(p['rtt_p99_ms'])} ms "
                f"{fmt(p['cpu_s_per_1000'], 3)} CPU s/1000"
            )
    parts.append(f"{result['rss_kib_per_charger']:.1f} KiB/charger")
    return "; ".join(parts)


def _write_results(
    results: list[dict[str, Any]], settings: Settings, info: dict[str, Any], tables: str, tag: str
) -> None:
    name = f"ocpp_ingest{'-' + tag if tag else ''}"
    payload = {"settings": asdict(settings), "machine": info, "results": results}
    path = save_results(name, utc_stamp(), payload, tables + "\n")
    print(f"results: {path.relative_to(ROOT)}")


def _internal(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    if argv[0] == "_serve":
        if os.environ.get(SYNC_VALIDATION_ENV):
            import ocpp.messages  # noqa: PLC0415

            ocpp.messages.ASYNC_VALIDATION = False
        target, port_file = argv[1], Path(argv[2])
        if target == "floor":
            asyncio.run(serve_floor(port_file))
        else:
            asyncio.run(serve_ours(port_file))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--period", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--sat-duration", type=float, required=True)
    parser.add_argument("--settle-max", type=float, required=True)
    parser.add_argument("--idle-sample", type=float, default=3.0)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--profile-to", default=None)
    parser.add_argument("--profile-phase", default="saturation")
    parser.add_argument("--py-spy", default=None)
    args = parser.parse_args(argv[1:])
    result = asyncio.run(load_main(args))
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
