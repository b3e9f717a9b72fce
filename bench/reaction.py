"""Load-management reaction time: from a zone budget change to every charger holding its limit.

Two processes on loopback (127.0.0.1):

  server   this process: evcore's `Controller` (Site, central system, load manager, meter
           pool, as production builds them) on `SystemClock()` and a `MemoryStore`, in a bare
           asyncio loop. The N stations are pre-registered (accepted, one 32 A three-phase
           connector, all in one zone), as if configured earlier.
  chargers a child process (`bench/reaction.py --client`): N raw websocket clients
           (websockets.asyncio.client, subprotocol ocpp1.6, no compression), one connector
           each. Each sends BootNotification, answers the server's GetConfiguration
           (SupportedFeatureProfiles "Core,SmartCharging", ChargeProfileMaxStackLevel "8",
           ChargingScheduleAllowedChargingRateUnit "Current", NumberOfConnectors "1"), sends
           StatusNotification Charging for connector 1 and StartTransaction, then answers every
           SetChargingProfile with Accepted and records (monotonic time, connectorId, stackLevel,
           limit) at receipt. Frames out are pre-serialised; only incoming CALLs are parsed.

Scenario, per N: zone max N x 32 A, wait until every charger holds its 32 A lease (steady
state), then

  drop      set_zones(max N x 10 A)                      -> every lease <= 10 A
  raise     set_zones(max N x 32 A), > 10 s after the last increase any connector got
                                                         -> every lease >= 32 A
  drop 2    as drop, right after the raise
  raise 2   at once after drop 2: within 10 s of the previous increases, so each connector's
            increase waits for the one-increase-per-10-s rule (delivery.py) -- shows that rule

Measured from the monotonic instant just before `set_zones()`:

  per-charger latency  the charger process's receipt time of the first lease (stack level 1,
                       connector 1) at the new value; CLOCK_MONOTONIC is one clock for every
                       process on Linux, so the two processes' timestamps compare directly.
                       The charger answers Accepted right after (no other work in between).
  server confirmed     the server-side moment the last Accepted answer was booked
                       (`record_answer`), i.e. when the load manager *knows* every charger
                       holds the new value.
  server CPU           process CPU (all threads: the event loop plus the ocpp library's
                       schema-validation thread pool) from set_zones() to that moment; the
                       main thread's share; load-manager runs in the window, their total time.

Instrumentation: evcore's observation hook (`LoadManager.observe`, evcore/load/observe.py)
reports every run (start, duration, full run or re-plan, sends) and every booked answer;
nothing in evcore is patched.

    .venv/bin/python bench/reaction.py                 # N = 100 and 1000
    .venv/bin/python bench/reaction.py --quick         # smoke: N = 20, no "raise 2"
    .venv/bin/python bench/reaction.py --n 1000 --profile   # + cProfile of the server's
                                                            #   main thread in each reaction

Results: a table on stdout; JSON and Markdown in bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
import gc
import logging
import os
from pathlib import Path
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `bench.harness` and the integration import from the repo root
    sys.path.insert(0, str(ROOT))

from bench.harness import HOST, RESULTS  # noqa: E402
from bench.harness.measure import (  # noqa: E402
    other_threads_cpu,
    percentile,
    raise_nofile,
    thread_cpu_seconds,
    wait_quiet,
)
from bench.harness.ocpp_client import (  # noqa: E402
    SMART_CHARGER_CONFIGURATION,
    RawCharger,
    compact,
    connect,
    connect_all,
)
from bench.harness.processes import JsonLineProcess, emit  # noqa: E402
from bench.harness.report import (  # noqa: E402
    Table,
    code_version,
    fmt,
    loadavg_text,
    save_results,
    utc_stamp,
    versions,
    write_cprofile,
)

ZONE_ID = "bench"
HIGH_A = 32.0
LOW_A = 10.0
PHASE_TIMEOUT_S = 90.0
GOAL_MS = 500.0
# The server is quiet when it uses less than this share of a core over QUIET_SAMPLE_S.
QUIET_SHARE = 0.05
QUIET_SAMPLE_S = 0.5

if TYPE_CHECKING:
    from collections.abc import Callable

    from websockets.asyncio.client import ClientConnection

    from custom_components.ev_charging_expert.evcore.keys import ConnectorKey
    from custom_components.ev_charging_expert.evcore.load import LoadManager
    from custom_components.ev_charging_expert.evcore.load.delivery import Send
    from custom_components.ev_charging_expert.evcore.load.observe import (
        AnswerBooked,
        BudgetsChecked,
        RunObserved,
    )

_LOGGER = logging.getLogger("reaction")


def charger_id(index: int) -> str:
    """Charge box identity of simulated charger `index`."""
    return f"RX{index:05d}"


# =============================================================================== charger process
_ACCEPTED = '{"status":"Accepted"}'


class _RefusedError(Exception):
    """The server answered a CALL with a CallError."""


class SimCharger(RawCharger):
    """One charger: boot sequence, then answers the server's CALLs; records every
    SetChargingProfile as (monotonic time of receipt, connectorId, stackLevel, limit)."""

    __slots__ = ("records",)

    def __init__(self, index: int, ws: ClientConnection) -> None:
        answers = {"SetChargingProfile": _ACCEPTED, "GetConfiguration": SMART_CHARGER_CONFIGURATION}
        super().__init__(index, ws, answers, timeout=120)
        self.records: list[tuple[float, int, int, float]] = []

    def on_server_call(self, received: float, action: str, payload: Any) -> None:
        if action == "SetChargingProfile":
            profile = payload["csChargingProfiles"]
            limit = profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
            self.records.append(
                (received, payload["connectorId"], profile["stackLevel"], float(limit))
            )


def _boot_frames(index: int) -> tuple[str, str, str]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    boot = compact(
        {
            "chargePointVendor": "BenchVendor",
            "chargePointModel": "AC22-3P",
            "chargePointSerialNumber": f"SN{index:08d}",
            "firmwareVersion": "4.2.1",
        }
    )
    status = compact(
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": now}
    )
    start = compact(
        {"connectorId": 1, "idTag": f"TAG{index:05d}", "meterStart": 0, "timestamp": now}
    )
    return boot, status, start


async def _start_charger(index: int, url_base: str, tasks: set[asyncio.Task[None]]) -> SimCharger:
    charger = SimCharger(index, await connect(f"{url_base}/{charger_id(index)}"))
    boot, status, start = _boot_frames(index)
    for action, payload in (
        ("BootNotification", boot),
        ("StatusNotification", status),
        ("StartTransaction", start),
    ):
        if not await charger.call(action, payload):
            raise _RefusedError(f"{charger_id(index)} {action} refused")
    task = asyncio.get_running_loop().create_task(charger.serve())
    tasks.add(task)
    return charger


async def client_main(port: int, n: int) -> None:
    """The charger process: connect N chargers, then obey commands on stdin.

    stdin commands: `dump <since>` prints every SetChargingProfile record received at or after
    monotonic time <since> as one JSON line; `quit` closes every connection and exits.
    """
    raise_nofile()
    tasks: set[asyncio.Task[None]] = set()
    url_base = f"ws://{HOST}:{port}/ocpp"
    started = time.monotonic()
    chargers, failures = await connect_all(n, lambda i: _start_charger(i, url_base, tasks))
    emit(
        {
            "type": "ready",
            "connected": len(chargers),
            "failures": len(failures),
            "failure_examples": failures[:3],
            "setup_s": time.monotonic() - started,
        }
    )
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command, _, argument = line.strip().partition(" ")
        if command == "dump":
            since = float(argument or "-inf")
            emit(
                {
                    "type": "dump",
                    "records": {
                        str(c.index): [r for r in c.records if r[0] >= since] for c in chargers
                    },
                    "server_calls": sum(c.server_calls for c in chargers),
                }
            )
        elif command in ("quit", ""):  # "" = stdin closed: the server went away
            break
    await asyncio.gather(*(c.ws.close() for c in chargers), return_exceptions=True)
    for task in tasks:
        task.cancel()


class ClientProcess(JsonLineProcess):
    """The charger process (`reaction.py --client PORT N`), driven through its pipes."""

    def __init__(self, port: int, n: int) -> None:
        super().__init__(Path(__file__).resolve(), "--client", str(port), str(n))

    async def dump(self, since: float) -> dict[str, Any]:
        """Records received at or after `since`."""
        self.send(f"dump {since!r}")
        return await self.read(60)

    async def lease_receipts(
        self, since: float, want: Callable[[float], bool]
    ) -> tuple[list[float], int, int]:
        """When each charger received its first lease (connector 1, stack level 1) satisfying
        `want` after `since`: ms after `since` per charger that did, the number that did not,
        and the profiles received in all."""
        dump = await self.dump(since)
        latencies: list[float] = []
        missing = received = 0
        for records in dump["records"].values():
            received += len(records)
            first = next(
                (t for t, cid, level, limit in records if cid == 1 and level == 1 and want(limit)),
                None,
            )
            if first is None:
                missing += 1
            else:
                latencies.append((first - since) * 1000.0)
        return latencies, missing, received


# =============================================================================== server side
@dataclass
class Window:
    """One reaction being measured."""

    name: str
    want: Callable[[float], bool]
    keys: frozenset[ConnectorKey]
    t0: float
    cpu0: float
    main_cpu0: float
    runs: list[tuple[float, float, int, bool]] = field(default_factory=list)
    """(start, duration, sends issued, full run?) of every load-manager run in the window."""
    confirmed: dict[ConnectorKey, float] = field(default_factory=dict)
    t_end: float | None = None
    cpu_end: float | None = None
    main_cpu_end: float | None = None
    gc_pauses: list[tuple[int, float]] = field(default_factory=list)
    """(generation, CPU seconds) of every garbage collection until the last confirmation."""
    tail_runs: list[tuple[float, float, int, bool]] = field(default_factory=list)
    cpu_tail_end: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    profiler: cProfile.Profile | None = None


class Probe:
    """What the bench measures of one LoadManager, through its observation hook.

    A `LoadObserver` (evcore/load/observe.py) by its four methods rather than a subclass: the
    charger process runs this file too and never imports evcore (nor, through the integration's
    package, Home Assistant).
    """

    def __init__(self, lm: LoadManager) -> None:
        self.lm = lm
        self.window: Window | None = None
        self.idle_runs: list[tuple[float, bool]] = []
        """(duration, full run?) of the runs outside a measurement window (setup)."""
        self.checks: list[BudgetsChecked] = []
        """Every budget check a meter reading made."""
        lm.observe(self)
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def answer_booked(self, answer: AnswerBooked) -> None:
        window = self.window
        if window is None or window.t_end is not None:
            return
        if answer.held is None or not window.want(answer.held):
            return
        key = answer.key
        if key not in window.keys or key in window.confirmed:
            return  # a base (connector 0), or confirmed already
        window.confirmed[key] = answer.at
        if len(window.confirmed) == len(window.keys):
            self._finish(window)

    def run_finished(self, run: RunObserved) -> None:
        window = self.window
        if window is None:
            self.idle_runs.append((run.duration, run.full))
            return
        entry = (run.started, run.duration, run.sends, run.full)
        if window.t_end is None:
            window.runs.append(entry)
        else:  # runs the last answers still cause, after the last confirmation
            window.tail_runs.append(entry)
            window.cpu_tail_end = time.process_time()

    def budgets_checked(self, check: BudgetsChecked) -> None:
        self.checks.append(check)

    def limit_sent(self, send: Send) -> None:
        """Not needed: a run reports how many setpoints it sent."""

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        window = self.window
        if window is None or window.t_end is not None:
            return
        if phase == "start":
            self._gc_start = time.thread_time()
        else:
            window.gc_pauses.append((info["generation"], time.thread_time() - self._gc_start))

    def close(self) -> None:
        """Stop observing the load manager and the garbage collector."""
        self.lm.observe(None)
        gc.callbacks.remove(self._on_gc)

    def _finish(self, window: Window) -> None:
        window.t_end = time.monotonic()
        window.cpu_end = time.process_time()
        window.main_cpu_end = time.thread_time()
        if window.profiler is not None:
            window.profiler.disable()
        window.done.set()

    def open(self, name: str, want: Callable[[float], bool], *, profile: bool) -> Window:
        """Start measuring: call just before the change."""
        leases = self.lm.leases
        keys = frozenset(leases)
        window = Window(
            name=name,
            want=want,
            keys=keys,
            t0=0.0,
            cpu0=0.0,
            main_cpu0=0.0,
        )
        if profile:
            # CPU time of the event loop's thread, not wall time: on a busy machine wall time
            # charges other processes' time slices to whatever was running.
            window.profiler = cProfile.Profile(time.thread_time)
        self.window = window
        window.cpu0 = time.process_time()
        window.main_cpu0 = time.thread_time()
        window.t0 = time.monotonic()
        if window.profiler is not None:
            window.profiler.enable()
        return window


def _coalescing_store(data: dict[str, Any]) -> Any:
    """A MemoryStore that saves once per second at most, like HA's `Store.async_delay_save`."""
    from custom_components.ev_charging_expert.evcore.site import MemoryStore  # noqa: PLC0415

    class CoalescingStore(MemoryStore):
        pending: Callable[[], dict[str, Any]] | None = None

        def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
            if self.pending is None:
                asyncio.get_running_loop().call_later(1.0, self._flush)
            self.pending = data

        def _flush(self) -> None:
            pending, self.pending = self.pending, None
            if pending is not None:
                super().schedule_save(pending)

    return CoalescingStore(data)


class Server:
    """evcore's Controller for N pre-registered stations in one zone."""

    def __init__(
        self,
        n: int,
        *,
        increase_interval: float | None,
        coalesce_saves: bool = False,
        sync_validation: bool = False,
    ) -> None:
        self.n = n
        self.increase_interval = increase_interval
        self.coalesce_saves = coalesce_saves
        self.sync_validation = sync_validation

    async def start(self) -> None:
        """Build and start everything; the zone starts at N x 32 A."""
        from custom_components.ev_charging_expert.evcore.clock import (  # noqa: PLC0415
            SystemClock,
        )
        from custom_components.ev_charging_expert.evcore.config import (  # noqa: PLC0415
            ConnectorConfig,
            StationConfig,
        )
        from custom_components.ev_charging_expert.evcore.controller import (  # noqa: PLC0415
            Controller,
        )
        from custom_components.ev_charging_expert.evcore.load.delivery import (  # noqa: PLC0415
            DeliverySettings,
        )
        from custom_components.ev_charging_expert.evcore.site import (  # noqa: PLC0415
            MemoryStore,
            SiteSettings,
        )

        config = StationConfig(zone_id=ZONE_ID, connectors={1: ConnectorConfig(rating=HIGH_A)})
        registry = {
            "version": 1,
            "next_transaction_id": 1,
            "stations": {
                charger_id(i): {"registration": "accepted", "config": config.to_dict()}
                for i in range(self.n)
            },
        }
        self.store = _coalescing_store(registry) if self.coalesce_saves else MemoryStore(registry)
        import ocpp.messages  # noqa: PLC0415

        # The ocpp library validates every payload in the default thread pool unless told not to.
        ocpp.messages.ASYNC_VALIDATION = not self.sync_validation
        delivery = DeliverySettings()
        if self.increase_interval is not None:
            delivery = DeliverySettings(increase_interval=self.increase_interval)
        self.controller = Controller(
            clock=SystemClock(),
            store=self.store,
            settings=SiteSettings(heartbeat_interval=3600),
            delivery=delivery,
        )
        self.site = self.controller.site
        self.lm = self.controller.load
        self.probe = Probe(self.lm)
        await self.controller.restore()
        await self.controller.start(host=HOST, port=0)
        self.set_zone(self.n * HIGH_A)

    @property
    def port(self) -> int:
        """The OCPP port the chargers connect to."""
        port = self.controller.port
        assert port is not None  # noqa: S101  # started
        return port

    def set_zone(self, amps: float) -> None:
        """Replace the zone tree with one zone of `amps` per phase."""
        from custom_components.ev_charging_expert.evcore.config import (  # noqa: PLC0415
            ZoneConfig,
        )

        self.controller.set_zones({ZONE_ID: ZoneConfig(ZONE_ID, "Bench zone", amps)})

    def holding(self, want: Callable[[float], bool]) -> int:
        """Connectors whose confirmed lease satisfies `want`, with nothing in flight."""
        return sum(
            1
            for lease in self.lm.leases.values()
            if lease.sent is None and lease.held is not None and want(lease.held)
        )

    async def wait_holding(self, want: Callable[[float], bool], timeout: float) -> float:
        """Wait until all N connectors hold a lease satisfying `want`; return the wait."""
        start = time.monotonic()
        while self.holding(want) < self.n or len(self.lm.leases) < self.n:
            if time.monotonic() - start > timeout:
                raise TimeoutError(
                    f"steady state not reached in {timeout:.0f} s: {self.holding(want)}/{self.n}"
                )
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def wait_quiet(self, client: ClientProcess, max_wait: float = 30.0) -> float:
        """Wait until both processes use under QUIET_SHARE of a core (twice in a row)."""
        return await wait_quiet(
            [time.process_time, client.cpu_seconds],
            share=QUIET_SHARE,
            sample=QUIET_SAMPLE_S,
            max_wait=max_wait,
        )

    def last_increase(self) -> float:
        """Monotonic time of the latest increase sent to any connector."""
        return max((lease.last_increase for lease in self.lm.leases.values()), default=-1e9)

    async def stop(self) -> None:
        """Stop observing, then the controller (connections, port, load manager, meters)."""
        self.probe.close()
        await self.controller.stop()


def _is_low(amps: float) -> bool:
    return amps <= LOW_A + 1e-6


def _is_high(amps: float) -> bool:
    return amps >= HIGH_A - 1e-6


async def react(
    server: Server,
    client: ClientProcess,
    name: str,
    zone_amps: float,
    want: Callable[[float], bool],
    *,
    profile_to: Path | None,
) -> dict[str, Any]:
    """Change the zone budget and measure until every charger holds its new lease."""
    gc_objects = len(gc.get_objects())
    load_before = os.getloadavg()
    threads0 = thread_cpu_seconds()
    client_cpu0 = client.cpu_seconds()
    since_increase = time.monotonic() - server.last_increase()
    window = server.probe.open(name, want, profile=profile_to is not None)
    server.set_zone(zone_amps)  # the change instant is window.t0, taken just before
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(window.done.wait(), PHASE_TIMEOUT_S)
    if window.t_end is None:
        _LOGGER.error("%s: only %d/%d confirmed", name, len(window.confirmed), len(window.keys))
        if window.profiler is not None:
            window.profiler.disable()
    client_cpu1 = client.cpu_seconds()
    threads1 = thread_cpu_seconds()
    await server.wait_quiet(client)  # let the runs the last answers cause happen
    server.probe.window = None
    # The chargers' receipt of the new lease.
    latencies, missing, profiles_received = await client.lease_receipts(window.t0, want)
    confirmed_ms = [(t - window.t0) * 1000.0 for t in window.confirmed.values()]
    t_end = window.t_end
    wall = (t_end - window.t0) if t_end is not None else None
    cpu = (window.cpu_end - window.cpu0) if window.cpu_end is not None else None
    main_cpu = (window.main_cpu_end - window.main_cpu0) if window.main_cpu_end is not None else None
    # Threads other than the event loop's (the ocpp library validates in the default executor),
    # over a slightly longer span (until the dump), for the split only.
    other_threads = other_threads_cpu(threads0, threads1)
    run_durations = [d for _, d, _, _ in window.runs]
    result = {
        "phase": name,
        "zone_amps": zone_amps,
        "chargers": len(window.keys),
        "since_last_increase_s": since_increase,
        "charger_p50_ms": percentile(latencies, 50),
        "charger_p99_ms": percentile(latencies, 99),
        "charger_max_ms": max(latencies, default=None),
        "charger_missing": missing,
        "server_confirmed_p50_ms": percentile(confirmed_ms, 50),
        "server_confirmed_last_ms": wall * 1000.0 if wall is not None else None,
        "server_confirmed": len(window.confirmed),
        "server_cpu_s": cpu,
        "server_main_thread_cpu_s": main_cpu,
        "server_other_threads_cpu_s": other_threads,
        "server_cpu_share": cpu / wall if cpu is not None and wall else None,
        "client_cpu_s": client_cpu1 - client_cpu0,
        "lm_runs": len(window.runs),
        "lm_full_runs": sum(1 for *_, full in window.runs if full),
        "lm_run_total_ms": sum(run_durations) * 1000.0,
        "lm_run_max_ms": max(run_durations, default=0.0) * 1000.0,
        "lm_run_median_ms": (statistics.median(run_durations) * 1000.0) if run_durations else 0.0,
        "lm_sends": sum(s for _, _, s, _ in window.runs),
        "gc_collections": [sum(1 for g, _ in window.gc_pauses if g == gen) for gen in range(3)],
        "gc_cpu_ms": sum(d for _, d in window.gc_pauses) * 1000.0,
        "gc_tracked_objects": gc_objects,
        "lm_tail_runs": len(window.tail_runs),
        "lm_tail_run_total_ms": sum(d for _, d, _, _ in window.tail_runs) * 1000.0,
        "server_cpu_incl_tail_s": (window.cpu_tail_end - window.cpu0)
        if window.cpu_tail_end is not None
        else cpu,
        "lm_first_run_after_ms": ((window.runs[0][0] - window.t0) * 1000.0)
        if window.runs
        else None,
        "runs_ms": [
            [round((start - window.t0) * 1000.0, 2), round(d * 1000.0, 2), sends, full]
            for start, d, sends, full in [*window.runs, *window.tail_runs]
        ],
        "profiles_received": profiles_received,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    if window.profiler is not None and profile_to is not None:
        result["profile"] = str(
            write_cprofile(window.profiler, profile_to, sorts=(("cumulative", 45), ("tottime", 30)))
        )
    return result


async def run_size(n: int, args: argparse.Namespace, *, quick: bool, stamp: str) -> dict[str, Any]:
    """The whole scenario for N chargers."""
    increase_interval = 2.0 if quick else None
    profile = args.profile
    server = Server(
        n,
        increase_interval=increase_interval,
        coalesce_saves=args.coalesce_saves,
        sync_validation=args.sync_validation,
    )
    await server.start()
    cpu_start = time.process_time()
    interval = server.lm.delivery.increase_interval
    client = ClientProcess(server.port, n)
    out: dict[str, Any] = {
        "n": n,
        "increase_interval_s": interval,
        "coalesce_saves": args.coalesce_saves,
        "sync_validation": args.sync_validation,
        "gc_freeze": args.gc_freeze,
        "phases": [],
    }
    try:
        ready = await client.read(timeout=600)
        out["connect"] = ready
        if ready["connected"] != n:
            raise RuntimeError(f"only {ready['connected']}/{n} chargers connected: {ready}")
        out["steady_wait_s"] = await server.wait_holding(_is_high, timeout=300)
        # Connecting N chargers: what it cost the server (MemoryStore saves synchronously,
        # a full registry dump per save; HA's Store coalesces saves).
        if args.gc_freeze:
            gc.collect()
            gc.freeze()  # experiment: the objects of the steady state are never scanned again
        out["setup_saves"] = server.store.saves
        out["setup_full_runs"] = server.lm.runs
        out["setup_runs"] = len(server.probe.idle_runs)
        out["setup_run_total_s"] = sum(d for d, _ in server.probe.idle_runs)
        out["setup_server_cpu_s"] = time.process_time() - cpu_start
        steps = [("drop", n * LOW_A, _is_low), ("raise", n * HIGH_A, _is_high)]
        if not quick:
            steps += [("drop 2", n * LOW_A, _is_low), ("raise 2", n * HIGH_A, _is_high)]
        for name, amps, want in steps:
            if name != "raise 2":  # "raise 2" goes at once, inside the rate-limit window
                await server.wait_quiet(client)
            if name == "raise":
                # Every connector's last increase more than `interval` ago.
                wait = server.last_increase() + interval + 0.5 - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await server.wait_quiet(client)
            profile_to = None
            if profile:
                slug = name.replace(" ", "")
                profile_to = RESULTS / f"reaction-profile-{stamp}-{n}-{slug}.txt"
            phase = await react(server, client, name, amps, want, profile_to=profile_to)
            out["phases"].append(phase)
            print(TABLE.row(_cells(n, phase)), flush=True)
            if phase["server_confirmed"] < n:
                break
    finally:
        client.close()
        await server.stop()
    return out


# =============================================================================== output
TABLE = Table(
    ("N", 5),
    ("change", 8),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("max ms", 8),
    ("srv last ms", 11),
    ("srv CPU s", 9),
    ("loop thr s", 10),
    ("runs (full)", 11),
    ("run ms tot", 10),
    ("run ms max", 10),
    ("client CPU s", 12),
    ("load avg", 8),
    text_columns=(1,),
)


def _cells(n: int, p: dict[str, Any]) -> list[str]:
    return [
        str(n),
        p["phase"],
        fmt(p["charger_p50_ms"]),
        fmt(p["charger_p99_ms"]),
        fmt(p["charger_max_ms"]),
        fmt(p["server_confirmed_last_ms"]),
        fmt(p["server_cpu_s"], 3),
        fmt(p["server_main_thread_cpu_s"], 3),
        f"{p['lm_runs']} ({p['lm_full_runs']})",
        fmt(p["lm_run_total_ms"]),
        fmt(p["lm_run_max_ms"]),
        fmt(p["client_cpu_s"], 2),
        fmt(p["loadavg_before"][0], 2),
    ]


def _markdown(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        (
            f"Reaction time, budget change -> every charger holds its new lease "
            f"({info['python']}, {info['cores']} cores, websockets {info['websockets']}, "
            f"ocpp {info['ocpp']}, evcore {info['evcore']}; load average at start "
            f"{loadavg_text(info['loadavg_start'])}, at end {loadavg_text(info['loadavg_end'])})"
        ),
        "",
        (
            "Options: "
            + ("registry saves coalesced (1/s)" if info["coalesce_saves"] else "MemoryStore")
            + ", ocpp validation "
            + ("on the event loop" if info["sync_validation"] else "in the thread pool (default)")
            + (", gc.freeze() after setup" if info["gc_freeze"] else "")
            + (", quick (increase interval 2 s)" if info["quick"] else "")
        ),
        "",
        *TABLE.markdown(_cells(result["n"], p) for result in results for p in result["phases"]),
        "",
    ]
    for result in results:
        connect = result.get("connect", {})
        lines.append(
            f"- N={result['n']} setup: {fmt(connect.get('setup_s'))} s to connect and boot "
            f"every charger, {result.get('setup_full_runs')} full load-manager runs "
            f"({fmt(result.get('setup_run_total_s'), 2)} s in runs), "
            f"{result.get('setup_saves')} registry saves, server CPU "
            f"{fmt(result.get('setup_server_cpu_s'))} s"
        )
        lines.extend(
            f"- N={result['n']} {p['phase']}: {p['lm_sends']} sends, "
            f"{p['profiles_received']} profiles received by the chargers, "
            f"{p['charger_missing']} chargers without the new lease, first run "
            f"{fmt(p['lm_first_run_after_ms'], 2)} ms after set_zones, run median "
            f"{fmt(p['lm_run_median_ms'], 2)} ms; after the last confirmation "
            f"{p['lm_tail_runs']} more runs ({fmt(p['lm_tail_run_total_ms'])} ms), server "
            f"CPU incl. those {fmt(p['server_cpu_incl_tail_s'], 3)} s; other threads "
            f"{fmt(p['server_other_threads_cpu_s'], 3)} s CPU, last increase "
            f"{p['since_last_increase_s']:.1f} s before the change; garbage collections "
            f"(gen 0/1/2) {'/'.join(map(str, p['gc_collections']))}, {fmt(p['gc_cpu_ms'])} ms CPU "
            f"({p['gc_tracked_objects']} objects tracked)"
            for p in result["phases"]
        )
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, Any]:
    return {
        **versions("websockets", "ocpp"),
        "evcore": code_version("custom_components/ev_charging_expert/evcore"),
    }


def main() -> int:
    """Run the benchmark; print a table; write bench/results/reaction-*.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 20")
    parser.add_argument("--n", type=int, nargs="*", help="charger counts (default 100 1000)")
    parser.add_argument("--profile", action="store_true", help="cProfile each reaction")
    parser.add_argument(
        "--coalesce-saves",
        action="store_true",
        help="save the registry at most once a second (like HA's Store) instead of at every "
        "change: much faster setup at N = 1000; the reaction itself saves nothing",
    )
    parser.add_argument(
        "--sync-validation",
        action="store_true",
        help="experiment: the ocpp library validates on the event loop, not in its thread pool",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() once every charger is connected (full collections then "
        "skip the steady state's objects)",
    )
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument(
        "--client", nargs=2, type=int, metavar=("PORT", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(sys.argv[1:])
    if args.client:
        asyncio.run(client_main(*args.client))
        return 0

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise_nofile()
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    sizes = args.n or ([20] if quick else [100, 1000])
    stamp = utc_stamp()
    info = {
        **_versions(),
        "loadavg_start": os.getloadavg(),
        "quick": quick,
        "stamp": stamp,
        "coalesce_saves": args.coalesce_saves,
        "sync_validation": args.sync_validation,
        "gc_freeze": args.gc_freeze,
    }
    print(
        f"reaction: {info['python']}, {info['cores']} cores, load average "
        f"{loadavg_text(info['loadavg_start'])}"
        + (" (quick: N = 20, increase interval 2 s)" if quick else "")
    )
    print("latencies from set_zones(); p50/p99/max = chargers' receipt of the new lease;")
    print("srv last = server booked the last Accepted; srv CPU = process, loop thr = main thread")
    print(TABLE.header(), flush=True)
    results = [asyncio.run(run_size(n, args, quick=quick, stamp=stamp)) for n in sizes]
    info["loadavg_end"] = os.getloadavg()
    markdown = _markdown(results, info)
    suffix = f"-{args.tag}" if args.tag else ""
    save_results(f"reaction{suffix}", stamp, {"info": info, "results": results}, markdown)
    print()
    print(markdown)
    worst = [
        p["server_confirmed_last_ms"]
        for r in results
        if r["n"] >= 1000
        for p in r["phases"]
        if p["phase"] in ("drop", "raise", "drop 2")
    ]
    if worst and all(w is not None for w in worst):
        verdict = "met" if max(worst) < GOAL_MS else "NOT met"
        print(f"goal < {GOAL_MS:.0f} ms at 1000 chargers (drop/raise, no rate limit): {verdict}")
    failed = any(p["server_confirmed"] < r["n"] for r in results for p in r["phases"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
