"""Power meters: reaction from a meter change to N chargers holding new limits; CPU of polling.

Two measurements, all on loopback (127.0.0.1), every meter a real Modbus TCP server
(`tools/sim/modbus_meter.MeterSimulator`, pymodbus) polled by evcore's `MeterPool` at 0.5 s.

1. Reaction (N = 10, 100, 1000 chargers). Three processes:

     simulator  `bench/meters.py --sim 1 1`: one MeterSimulator (PM5320 register map, slave 1).
                It changes its currents on a stdin command and prints the CLOCK_MONOTONIC
                instant just after the new registers are in place (t0).
     server     this process: evcore's `Controller` (bench/reaction.py's `Server`, whose zone
                is made dynamic here); its `MeterPool` (`controller.meters`) polls the
                simulator every 0.5 s. One dynamic zone driven by that meter
                (`Controller.set_zone_meters`); the Controller hands every meter event to
                load management (`LoadManager.meter_updated`), as in production.
     chargers   bench/reaction.py's client process (N raw OCPP 1.6 websocket clients, which
                timestamp each SetChargingProfile at receipt with CLOCK_MONOTONIC).

   The simulated EVs send no MeterValues and draw nothing, so the meter sees the building only
   and the load manager subtracts 0 A for our EVs (it never counts an EV without a recent
   sample): budget = max - measured - margin (1 A). With max = 32 N + B0 + 2 A and building
   B0 = 20 A the budget is 32 N + 1 A: every EV holds 32 A. A step of the building to
   B1 = 22 N + B0 + 1 A leaves 10 N A: every EV must go down to 10 A.

   Per trial: wait for quiet, aim t0 at a chosen phase of the poll cycle (trials are spread
   evenly over the 0.5 s period), step the building up, and measure until every charger
   holds 10 A (charger receipt) and the server booked the last Accepted. Then the building
   steps back and the bench waits until every EV holds 32 A again (not measured: increases
   wait for delivery's one-increase-per-10-s rule).

2. CPU of polling 20 meters at 0.5 s for 30 s: `bench/meters.py --sim G 20` serves 20 meters
   behind G gateways (G = 1: one TCP endpoint, slaves 1-20; G = 20: 20 endpoints), and a fresh
   `bench/meters.py --poller` process (MeterPool only, nothing else on its event loop) polls
   them. Its CPU seconds per second is the cost; the simulator's CPU is not in it.

    .venv/bin/python bench/meters.py              # CPU (~75 s), then N = 10, 100, 1000 (~5 min)
    .venv/bin/python bench/meters.py --quick      # smoke: N = 10, 2 trials, CPU 5 s
    .venv/bin/python bench/meters.py --n 1000 --trials 8 --skip-cpu
    .venv/bin/python bench/meters.py --skip-reaction --profile   # + cProfile of the poller

Results: tables on stdout; JSON and Markdown in bench/results/meters[-tag]-*.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
from datetime import timedelta
import gc
import json
import logging
import os
from pathlib import Path
import random
import statistics
import sys
import threading
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `bench.*` and the integration import from the repo root
    sys.path.insert(0, str(ROOT))

from bench.harness import HOST, RESULTS  # noqa: E402
from bench.harness.measure import (  # noqa: E402
    ms,
    other_threads_cpu,
    percentile,
    raise_nofile,
    thread_cpu_seconds,
)
from bench.harness.processes import JsonLineProcess, emit  # noqa: E402
from bench.harness.report import (  # noqa: E402
    Table,
    fmt,
    loadavg_text,
    package_version,
    save_results,
    utc_stamp,
    write_cprofile,
)
from bench.reaction import (  # noqa: E402  the charger process, Server, Probe
    HIGH_A,
    LOW_A,
    ZONE_ID,
    ClientProcess,
    Server,
    _is_high,
    _is_low,
    _versions,
)

PERIOD_S = 0.5  # polling period under test
METER_TIMEOUT_S = 1.0  # MeterConfig default
GOAL_EXTRA_MS = 200.0  # goal: reaction <= one polling period + 200 ms
BUILDING_A = 20.0  # building load before the step (A per phase)
SLACK_A = 1.0  # budget above N x 32 A at steady state (float noise never costs an EV its 32 A)
SAFETY_MARGIN_A = 1.0  # LoadSettings default
TRIAL_TIMEOUT_S = 60.0
CPU_METERS = 20

_LOGGER = logging.getLogger("meters")


def child(*args: str) -> JsonLineProcess:
    """A helper process of this file (simulator or poller), driven by JSON lines on its pipes."""
    return JsonLineProcess(Path(__file__).resolve(), *args)


# =============================================================================== simulator process
async def sim_main(gateways: int, count: int) -> None:
    """`count` PM5320 meters behind `gateways` Modbus TCP servers; commands on stdin.

    `set <amps>` puts <amps> on every phase of every meter and prints {"t": monotonic} taken
    right after; `quit` stops. Commands run on the event loop, between two Modbus requests.
    """
    from tools.sim.modbus_meter import start_simulators  # noqa: PLC0415

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    simulators = await start_simulators(count, gateways=gateways, host=HOST)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=reader, name="sim stdin", daemon=True).start()
    emit({"type": "ready", "ports": [s.port for s in simulators]})
    try:
        while True:
            command, _, argument = (await lines.get()).strip().partition(" ")
            if command == "set":
                amps = float(argument)
                for simulator in simulators:
                    for meter in simulator.meters.values():
                        meter.set(currents=(amps, amps, amps))
                emit({"type": "set", "t": time.monotonic(), "amps": amps})
            elif command == "requests":
                emit(
                    {
                        "type": "requests",
                        "requests": sum(m.requests for s in simulators for m in s.meters.values()),
                    }
                )
            elif command in ("quit", ""):
                break
    finally:
        for simulator in simulators:
            await simulator.stop()


# =============================================================================== poller process
async def poller_main(  # noqa: PLR0915 - one straight measurement
    endpoints: list[tuple[str, int]], count: int, duration: float, profile_to: str | None
) -> None:
    """Poll `count` meters at PERIOD_S for `duration` s; print one JSON result line."""
    from custom_components.ev_charging_expert.evcore.meters import (  # noqa: PLC0415
        MeterReadingReceived,
    )
    from tools.sim.modbus_meter import start_bench_rig  # noqa: PLC0415

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    rig = await start_bench_rig(
        count, endpoints=endpoints, polling_period=PERIOD_S, timeout=METER_TIMEOUT_S
    )
    pool = rig.pool
    durations: list[float] = []
    reading_events = 0

    def on_event(event: Any) -> None:
        nonlocal reading_events
        if isinstance(event, MeterReadingReceived):
            reading_events += 1
            durations.append(time.monotonic() - event.reading.monotonic)

    pool.subscribe(on_event)
    try:
        deadline = time.monotonic() + 20
        while not all(m.reading_valid() for m in pool):
            if time.monotonic() > deadline:
                raise RuntimeError("meters never all read")
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # warm-up: connections open, code paths hot
        meters = list(pool)
        gateways = list(pool.gateways.values())
        polls0 = sum(m.polls for m in meters)
        ok0 = sum(m.successes for m in meters)
        skipped0 = sum(m.skipped for m in meters)
        requests0 = sum(g.requests for g in gateways)
        failures0 = sum(g.failures for g in gateways)
        connects0 = sum(g.connects for g in gateways)
        gc0 = [s["collections"] for s in gc.get_stats()]
        durations.clear()
        threads0 = thread_cpu_seconds()
        profiler = cProfile.Profile(time.thread_time) if profile_to else None
        cpu0, main0, t0 = time.process_time(), time.thread_time(), time.monotonic()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(duration)
        if profiler is not None:
            profiler.disable()
        cpu1, main1, t1 = time.process_time(), time.thread_time(), time.monotonic()
        threads1 = thread_cpu_seconds()
        polls = sum(m.polls for m in meters) - polls0
        ok = sum(m.successes for m in meters) - ok0
        wall = t1 - t0
        cpu = cpu1 - cpu0
        result = {
            "type": "result",
            "meters": count,
            "gateways": len(gateways),
            "period_s": PERIOD_S,
            "wall_s": wall,
            "cpu_s": cpu,
            "cpu_share": cpu / wall,
            "main_thread_cpu_s": main1 - main0,
            "threads": len(threads1),
            "other_threads_cpu_s": other_threads_cpu(threads0, threads1),
            "polls": polls,
            "successes": ok,
            "skipped": sum(m.skipped for m in meters) - skipped0,
            "expected_polls": count * wall / PERIOD_S,
            "requests": sum(g.requests for g in gateways) - requests0,
            "gateway_failures": sum(g.failures for g in gateways) - failures0,
            "reconnects": sum(g.connects for g in gateways) - connects0,
            "cpu_us_per_poll": cpu / polls * 1e6 if polls else None,
            "poll_ms_p50": ms(percentile(durations, 50)),
            "poll_ms_p99": ms(percentile(durations, 99)),
            "poll_ms_max": ms(max(durations, default=None)),
            "gc_collections": [
                s["collections"] - c for s, c in zip(gc.get_stats(), gc0, strict=True)
            ],
            "loadavg": os.getloadavg(),
        }
        if profiler is not None and profile_to:
            result["profile"] = str(
                write_cprofile(
                    profiler, Path(profile_to), sorts=(("tottime", 35), ("cumulative", 35))
                )
            )
        emit(result)
    finally:
        await rig.stop()


async def measure_polling_cpu(
    gateways: int, duration: float, *, profile_to: Path | None
) -> dict[str, Any]:
    """Simulator process (G gateways, 20 meters) + poller process; the poller's CPU."""
    sim = child("--sim", str(gateways), str(CPU_METERS))
    try:
        ready = await sim.read(30)
        endpoints = [[HOST, port] for port in ready["ports"]]
        sim_cpu0 = sim.cpu_seconds()
        args = ["--poller", json.dumps(endpoints), str(CPU_METERS), str(duration)]
        if profile_to is not None:
            args += ["--profile-to", str(profile_to)]
        poller = child(*args)
        try:
            result = await poller.read(duration + 60)
        finally:
            poller.close()
        sim_cpu = sim.cpu_seconds() - sim_cpu0
        # The simulator's CPU over the poller's whole life (setup + warm-up + window): context.
        result["sim_cpu_share"] = sim_cpu / (duration + 2.5)
        result["variant"] = f"{CPU_METERS} meters, {gateways} gateway{'s' * (gateways > 1)}"
        return result
    finally:
        sim.close()


# =============================================================================== reaction
class MeterServer(Server):
    """reaction.py's server with its zone made dynamic, driven by one polled Modbus meter."""

    def __init__(self, n: int, *, port: int, increase_interval: float | None) -> None:
        # Saves coalesced to 1/s (like HA's Store): setup at N = 1000 in ~10 s instead of
        # ~85 s (reaction.md, finding 6). A reaction saves nothing either way.
        super().__init__(n, increase_interval=increase_interval, coalesce_saves=True)
        self.meter_port = port
        self.max_current = n * HIGH_A + BUILDING_A + SAFETY_MARGIN_A + SLACK_A
        self.readings: list[tuple[float, float, float, float]] = []
        """(event monotonic, event process CPU, poll start monotonic, L1 A) of each reading."""
        self._checks_seen = 0

    def building_for(self, per_ev: float) -> float:
        """The building load that leaves exactly `per_ev` A for each of the N EVs."""
        return self.max_current - SAFETY_MARGIN_A - self.n * per_ev

    async def start(self) -> None:
        """The controller, then its meter pool's meter, driving the zone."""
        from custom_components.ev_charging_expert.evcore.meters import (  # noqa: PLC0415
            MeterConfig,
            MeterReadingReceived,
        )

        await super().start()  # calls self.set_zone(): the dynamic zone
        self.pool = self.controller.meters  # polling already (Controller.start)
        self.meter = self.pool.add(
            MeterConfig(
                meter_id="grid",
                name="Bench grid meter",
                model="PM5320 / iEM3x5x / PowerTag",
                host=HOST,
                port=self.meter_port,
                slave_id=1,
                polling_period=PERIOD_S,
                timeout=METER_TIMEOUT_S,
            )
        )
        checks = self.probe.checks

        def on_event(event: Any) -> None:
            # The Controller's own listener came first and checked the zone's budget (the
            # probe has the check): the reading arrived when that check started.
            now, cpu = time.monotonic(), time.process_time()
            if len(checks) > self._checks_seen:
                check = checks[-1]
                now, cpu = check.started, cpu - check.cpu
            self._checks_seen = len(checks)
            if isinstance(event, MeterReadingReceived):
                reading = event.reading
                self.readings.append((now, cpu, reading.monotonic, reading.currents_a[0]))

        self.pool.subscribe(on_event)
        self.controller.set_zone_meters({ZONE_ID: self.meter})

    def set_zone(self, amps: float) -> None:
        """The dynamic zone (its max is fixed; the meter moves its budget)."""
        from custom_components.ev_charging_expert.evcore.config import (  # noqa: PLC0415
            ZoneConfig,
            ZoneMode,
        )

        self.controller.set_zones(
            {
                ZONE_ID: ZoneConfig(
                    ZONE_ID,
                    "Bench dynamic zone",
                    self.max_current,
                    mode=ZoneMode.DYNAMIC,
                    degraded_setpoint=0.0,
                )
            }
        )

    async def wait_reading(self, amps: float, timeout: float = 20.0) -> None:
        """Wait until the meter holds a valid reading of `amps` on L1."""
        deadline = time.monotonic() + timeout
        while True:
            reading = self.meter.valid_reading()
            if reading is not None and abs(reading.currents_a[0] - amps) < 0.01:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"meter never read {amps} A (last {reading})")
            await asyncio.sleep(0.02)


async def idle_sample(server: MeterServer, client: ClientProcess, seconds: float) -> dict[str, Any]:
    """Steady state, nothing changes: what polling + the zone's checks cost the server."""
    checks0 = len(server.probe.checks)
    runs0 = len(server.probe.idle_runs)
    readings0 = len(server.readings)
    cpu0, client0, t0 = time.process_time(), client.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - t0
    checks = [c.duration for c in server.probe.checks[checks0:]]
    return {
        "seconds": wall,
        "server_cpu_share": (time.process_time() - cpu0) / wall,
        "client_cpu_share": (client.cpu_seconds() - client0) / wall,
        "readings": len(server.readings) - readings0,
        "budget_checks": len(checks),
        "budget_check_ms_median": ms(statistics.median(checks)) if checks else None,
        "budget_check_ms_max": ms(max(checks, default=None)),
        "runs": len(server.probe.idle_runs) - runs0,
    }


def budget_check_cost(server: MeterServer, repeat: int = 30) -> dict[str, Any]:
    """Time the O(N) part of a meter check (`LoadManager.current_budgets`), without and with EV
    samples.

    The chargers of this bench send no MeterValues, so every connector's EV draw is 0 at
    once. With samples (three phases per connector, as a charging EV reports), `_ev_draw`
    reads them; they are put in for the measurement only and removed after.
    `current_budgets` is a pure computation: nothing is stored or sent.
    """
    from custom_components.ev_charging_expert.evcore.model import (  # noqa: PLC0415
        Measurement,
    )

    lm = server.lm
    last = lm.last
    reading = server.meter.reading
    if last is None or reading is None:
        return {}

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(repeat):
            lm.current_budgets()
        return (time.perf_counter() - start) / repeat

    without = timed()
    stamp = reading.timestamp - timedelta(milliseconds=1)
    touched = []
    for station in server.site.stations.values():
        connector = station.connectors.get(1)
        if connector is None:
            continue
        saved = dict(connector.measurements)
        for phase in ("L1", "L2", "L3"):
            connector.measurements["Current.Import", phase] = Measurement(
                "Current.Import", HIGH_A, "A", phase, "Sample.Periodic", "Outlet", stamp
            )
        touched.append((connector, saved))
    try:
        with_samples = timed()
    finally:
        for connector, saved in touched:
            connector.measurements.clear()
            connector.measurements.update(saved)
    return {
        "connectors": len(last.snapshot.connectors),
        "budgets_ms_no_ev_samples": without * 1000.0,
        "budgets_ms_with_ev_samples": with_samples * 1000.0,
    }


async def trial(
    server: MeterServer,
    client: ClientProcess,
    sim: JsonLineProcess,
    index: int,
    phase_target: float,
    *,
    restore: bool,
) -> dict[str, Any]:
    """One building step up: every EV 32 A -> 10 A; measured from the simulator's change."""
    high_building = server.building_for(HIGH_A) - SLACK_A  # = BUILDING_A
    low_building = server.building_for(LOW_A)
    await server.wait_quiet(client)
    # Aim t0 at `phase_target` of the poll cycle: polls start at reading.monotonic + k*period.
    last = server.meter.reading
    assert last is not None  # noqa: S101
    now = time.monotonic()
    target = last.monotonic + phase_target * PERIOD_S
    while target < now + 0.05:
        target += PERIOD_S
    await asyncio.sleep(target - now)
    load_before = os.getloadavg()
    readings0 = len(server.readings)
    checks0 = len(server.probe.checks)
    client_cpu0 = client.cpu_seconds()
    threads0 = thread_cpu_seconds()
    window = server.probe.open(f"step {index}", _is_low, profile=False)
    sim.send(f"set {low_building!r}")
    reply = await sim.read(10)
    t0 = float(reply["t"])
    window.t0 = t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(window.done.wait(), TRIAL_TIMEOUT_S)
    client_cpu1 = client.cpu_seconds()
    threads1 = thread_cpu_seconds()
    if window.t_end is None:
        _LOGGER.error("trial %d: %d/%d confirmed", index, len(window.confirmed), len(window.keys))
    await server.wait_quiet(client)
    server.probe.window = None
    latencies, missing, _ = await client.lease_receipts(t0, _is_low)
    # The poll that saw the step: the first reading at the new value.
    seen = next(
        (r for r in server.readings[readings0:] if abs(r[3] - low_building) < 0.01),
        None,
    )
    prior = max((r[2] for r in server.readings[:readings0]), default=None)
    first_run = window.runs[0] if window.runs else None
    t_end = window.t_end or float("inf")
    checks = [c.duration for c in server.probe.checks[checks0:] if c.started + c.duration <= t_end]
    cpu = (window.cpu_end - window.cpu0) if window.cpu_end is not None else None
    out = {
        "trial": index,
        "chargers": len(window.keys),
        "phase_target": phase_target,
        # t0 relative to the start of the last poll before it (0 .. period).
        "t0_after_poll_start_ms": ms(t0 - prior) if prior is not None else None,
        "poll_wait_ms": ms(seen[2] - t0) if seen else None,
        "poll_read_ms": ms(seen[0] - seen[2]) if seen else None,
        "reading_ms": ms(seen[0] - t0) if seen else None,
        "run_start_ms": ms(first_run[0] - t0) if first_run else None,
        "run_ms": ms(first_run[1]) if first_run else None,
        "run_sends": first_run[2] if first_run else None,
        "lm_runs": len(window.runs),
        "lm_full_runs": sum(1 for *_, full in window.runs if full),
        "charger_p50_ms": percentile(latencies, 50),
        "charger_p99_ms": percentile(latencies, 99),
        "charger_max_ms": max(latencies, default=None),
        "charger_missing": missing,
        "delivery_ms": (max(latencies) - (seen[0] - t0) * 1000.0) if seen and latencies else None,
        # Everything the polling period does not explain: read + check + run + delivery.
        "after_poll_start_ms": (max(latencies) - (seen[2] - t0) * 1000.0)
        if seen and latencies
        else None,
        "server_confirmed_last_ms": ms(window.t_end - t0) if window.t_end else None,
        "server_confirmed": len(window.confirmed),
        # CPU from just before the step command to the last confirmation (includes waiting
        # for the next poll: polling, the zone's 0.5 s staleness tick) and from the reading.
        "server_cpu_s": cpu,
        "server_cpu_from_reading_s": (window.cpu_end - seen[1])
        if seen and window.cpu_end is not None
        else None,
        "server_main_thread_cpu_s": (window.main_cpu_end - window.main_cpu0)
        if window.main_cpu_end is not None
        else None,
        "server_other_threads_cpu_s": other_threads_cpu(threads0, threads1),
        "client_cpu_s": client_cpu1 - client_cpu0,
        "budget_checks": len(checks),
        "budget_check_ms_total": sum(checks) * 1000.0,
        "gc_collections": [sum(1 for g, _ in window.gc_pauses if g == gen) for gen in range(3)],
        "gc_cpu_ms": sum(d for _, d in window.gc_pauses) * 1000.0,
        "loadavg_before": load_before,
    }
    if restore:
        sim.send(f"set {high_building!r}")
        await sim.read(10)
        out["restore_s"] = await server.wait_holding(_is_high, timeout=120)
    return out


async def run_size(n: int, trials: int, args: argparse.Namespace) -> dict[str, Any]:
    """Simulator + server + chargers for N; `trials` building steps."""
    sim = child("--sim", "1", "1")
    out: dict[str, Any] = {"n": n, "trials": []}
    server: MeterServer | None = None
    client: ClientProcess | None = None
    try:
        ready = await sim.read(30)
        server = MeterServer(n, port=ready["ports"][0], increase_interval=args.increase_interval)
        sim.send(f"set {server.building_for(HIGH_A) - SLACK_A!r}")
        await sim.read(10)
        await server.start()
        out["zone_max_a"] = server.max_current
        out["building_a"] = [server.building_for(HIGH_A) - SLACK_A, server.building_for(LOW_A)]
        out["increase_interval_s"] = server.lm.delivery.increase_interval
        await server.wait_reading(server.building_for(HIGH_A) - SLACK_A)
        cpu_start = time.process_time()
        client = ClientProcess(server.port, n)
        connect = await client.read(timeout=600)
        out["connect"] = connect
        if connect["connected"] != n:
            raise RuntimeError(f"only {connect['connected']}/{n} chargers connected: {connect}")
        out["steady_wait_s"] = await server.wait_holding(_is_high, timeout=300)
        out["setup_server_cpu_s"] = time.process_time() - cpu_start
        out["budget"] = list(server.lm.budgets[ZONE_ID].budget)
        await server.wait_quiet(client)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()  # experiment: the steady state's objects are never scanned again
        out["idle"] = await idle_sample(server, client, args.idle_seconds)
        print(_idle_line(n, out["idle"]), flush=True)
        rng = random.Random(args.seed + n)
        for k in range(trials):
            # Spread t0 evenly over the poll cycle, with a little jitter inside each slot.
            phase = (k + rng.uniform(0.1, 0.9)) / trials
            result = await trial(server, client, sim, k + 1, phase, restore=k + 1 < trials)
            out["trials"].append(result)
            print(TRIAL_TABLE.row(_trial_cells(n, result)), flush=True)
            if result["server_confirmed"] < n:
                break
        out["budget_check_cost"] = budget_check_cost(server)
        print(f"N={n} one budget check: {out['budget_check_cost']}", flush=True)
    finally:
        if args.gc_freeze:
            gc.unfreeze()
        if client is not None:
            client.close()
        if server is not None:
            await server.stop()
        sim.close()
    out["summary"] = _summary(out["trials"])
    return out


def _summary(trials: list[dict[str, Any]]) -> dict[str, Any]:
    def values(key: str) -> list[float]:
        return [t[key] for t in trials if t.get(key) is not None]

    totals = values("charger_max_ms")
    goal = PERIOD_S * 1000.0 + GOAL_EXTRA_MS

    def stats(key: str) -> dict[str, float | None]:
        v = values(key)
        return {
            "min": min(v, default=None),
            "median": statistics.median(v) if v else None,
            "max": max(v, default=None),
        }

    return {
        "trials": len(trials),
        "total_ms": stats("charger_max_ms"),
        "poll_wait_ms": stats("poll_wait_ms"),
        "after_poll_start_ms": stats("after_poll_start_ms"),
        "poll_read_ms": stats("poll_read_ms"),
        "run_ms": stats("run_ms"),
        "delivery_ms": stats("delivery_ms"),
        "charger_p50_ms": stats("charger_p50_ms"),
        "server_cpu_from_reading_s": stats("server_cpu_from_reading_s"),
        "goal_ms": goal,
        "goal_met": sum(1 for t in totals if t <= goal),
    }


# =============================================================================== output
TRIAL_TABLE = Table(
    ("N", 5),
    ("#", 2),
    ("t0 in cycle", 11),
    ("poll wait", 9),
    ("read", 5),
    ("run", 6),
    ("after poll", 10),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("total ms", 8),
    ("srv last", 8),
    ("srv CPU s", 9),
    ("from rdg", 8),
    ("load", 5),
)


def _trial_cells(n: int, t: dict[str, Any]) -> list[str]:
    return [
        str(n),
        str(t["trial"]),
        fmt(t["t0_after_poll_start_ms"]),
        fmt(t["poll_wait_ms"]),
        fmt(t["poll_read_ms"]),
        fmt(t["run_ms"]),
        fmt(t.get("after_poll_start_ms")),
        fmt(t["charger_p50_ms"]),
        fmt(t["charger_p99_ms"]),
        fmt(t["charger_max_ms"]),
        fmt(t["server_confirmed_last_ms"]),
        fmt(t["server_cpu_s"], 3),
        fmt(t["server_cpu_from_reading_s"], 3),
        fmt(t["loadavg_before"][0], 2),
    ]


def _idle_line(n: int, idle: dict[str, Any]) -> str:
    return (
        f"N={n} steady state, {idle['seconds']:.1f} s: server CPU "
        f"{idle['server_cpu_share'] * 100:.2f} % of a core, {idle['readings']} readings, "
        f"{idle['budget_checks']} budget checks (median "
        f"{fmt(idle['budget_check_ms_median'], 3)} ms), {idle['runs']} runs"
    )


CPU_TABLE = Table(
    ("variant", 24),
    ("window s", 8),
    ("polls", 6),
    ("ok", 6),
    ("skipped", 7),
    ("requests", 8),
    ("CPU s", 6),
    ("CPU s/s", 7),
    ("µs/poll", 7),
    ("poll p50 ms", 11),
    ("poll max ms", 11),
    ("sim CPU s/s", 11),
    ("load", 5),
)


def _cpu_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["variant"],
        fmt(r["wall_s"]),
        str(r["polls"]),
        str(r["successes"]),
        str(r["skipped"]),
        str(r["requests"]),
        fmt(r["cpu_s"], 2),
        fmt(r["cpu_share"], 4),
        fmt(r["cpu_us_per_poll"], 0),
        fmt(r["poll_ms_p50"], 2),
        fmt(r["poll_ms_max"], 2),
        fmt(r["sim_cpu_share"], 4),
        fmt(r["loadavg"][0], 2),
    ]


def _markdown(info: dict[str, Any], sizes: list[dict[str, Any]], cpu: list[dict[str, Any]]) -> str:
    goal = PERIOD_S * 1000.0 + GOAL_EXTRA_MS
    lines = [
        (
            f"Power meters ({info['python']}, {info['cores']} cores, pymodbus {info['pymodbus']}, "
            f"websockets {info['websockets']}, ocpp {info['ocpp']}, evcore {info['evcore']}; "
            f"load average at start {loadavg_text(info['loadavg_start'])}, "
            f"at end {loadavg_text(info['loadavg_end'])}"
            + ("; quick" if info["quick"] else "")
            + ("; gc.freeze() at steady state" if info["gc_freeze"] else "")
            + ")"
        ),
        "",
    ]
    if sizes:
        lines += [
            (
                f"Reaction, building step -> every EV holds 10 A (polling period {PERIOD_S} s; "
                "times in ms from the simulator's change; 'total' = last charger's receipt):"
            ),
            "",
            (
                "| N | trials | total median | total max | goal met | poll wait (min-max) | "
                "after poll start median (max) | read median | run median | delivery median | "
                "charger p50 median | srv CPU from reading median s |"
            ),
            "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for size in sizes:
            s = size["summary"]
            lines.append(
                f"| {size['n']} | {s['trials']} | {fmt(s['total_ms']['median'])} | "
                f"{fmt(s['total_ms']['max'])} | {s['goal_met']}/{s['trials']} (<= {goal:.0f}) "
                f"| {fmt(s['poll_wait_ms']['min'])}-{fmt(s['poll_wait_ms']['max'])} | "
                f"{fmt(s['after_poll_start_ms']['median'])} "
                f"({fmt(s['after_poll_start_ms']['max'])}) | "
                f"{fmt(s['poll_read_ms']['median'], 2)} | {fmt(s['run_ms']['median'], 2)} | "
                f"{fmt(s['delivery_ms']['median'])} | {fmt(s['charger_p50_ms']['median'])} | "
                f"{fmt(s['server_cpu_from_reading_s']['median'], 3)} |"
            )
        lines += ["", "Every trial:", ""]
        lines += TRIAL_TABLE.markdown(
            _trial_cells(size["n"], t) for size in sizes for t in size["trials"]
        )
        lines.append("")
        for size in sizes:
            idle = size.get("idle")
            if idle:
                lines.append(f"- {_idle_line(size['n'], idle)}")
            connect = size.get("connect", {})
            cost = size.get("budget_check_cost") or {}
            if cost:
                lines.append(
                    f"- N={size['n']}: one budgets pass over {cost['connectors']} connectors "
                    f"{cost['budgets_ms_no_ev_samples']:.3f} ms without EV samples, "
                    f"{cost['budgets_ms_with_ev_samples']:.3f} ms with 3 samples each"
                )
            lines.append(
                f"- N={size['n']}: zone max {size.get('zone_max_a')} A, building "
                f"{size.get('building_a')} A, steady budget {size.get('budget')}; setup "
                f"{fmt(connect.get('setup_s'))} s to connect"
            )
        lines.append("")
    if cpu:
        title = f"CPU of polling {CPU_METERS} meters every {PERIOD_S} s (poller process only):"
        lines += [title, ""]
        lines += CPU_TABLE.markdown(_cpu_cells(r) for r in cpu)
        lines.append("")
        lines.extend(
            f"- {r['variant']}: main thread {fmt(r['main_thread_cpu_s'], 3)} s, other threads "
            f"{fmt(r['other_threads_cpu_s'], 3)} s ({r['threads']} threads), "
            f"{r['gateway_failures']} failures, {r['reconnects']} reconnects, GC "
            f"{'/'.join(map(str, r['gc_collections']))}, poll p99 {fmt(r['poll_ms_p99'], 2)} ms"
            + (f", profile {r['profile']}" if r.get("profile") else "")
            for r in cpu
        )
    return "\n".join(lines) + "\n"


async def _run_all(
    args: argparse.Namespace, info: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sizes: list[dict[str, Any]] = []
    cpu: list[dict[str, Any]] = []
    if not args.skip_cpu:
        print(f"CPU of polling {CPU_METERS} meters every {PERIOD_S} s for {args.cpu_seconds} s")
        print(CPU_TABLE.header(), flush=True)
        for gateways in (1, CPU_METERS):
            profile_to = None
            if args.profile:
                profile_to = RESULTS / f"meters-poll-profile-{info['stamp']}-{gateways}gw.txt"
            result = await measure_polling_cpu(gateways, args.cpu_seconds, profile_to=profile_to)
            cpu.append(result)
            print(CPU_TABLE.row(_cpu_cells(result)), flush=True)
        print()
    if not args.skip_reaction:
        print("reaction: ms from the simulator's change; total = last charger's receipt")
        print(TRIAL_TABLE.header(), flush=True)
        sizes.extend([await run_size(n, args.trials_for(n), args) for n in args.sizes])
        print()
    return sizes, cpu


def main() -> int:
    """Run the benchmark; print tables; write bench/results/meters-*.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke: N = 10, 2 trials, CPU 5 s")
    parser.add_argument("--n", type=int, nargs="*", help="charger counts (default 10 100 1000)")
    parser.add_argument("--trials", type=int, help="building steps per N (default 8; 6 at 1000)")
    parser.add_argument("--cpu-seconds", type=float, help="CPU window (default 30 s)")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="steady-state sample")
    parser.add_argument(
        "--increase-interval",
        type=float,
        default=None,
        help="delivery's increase rate limit (default 10 s; 2 s with --quick); only the "
        "restoring raise between trials waits for it",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() at steady state (full collections skip those objects)",
    )
    parser.add_argument("--skip-cpu", action="store_true", help="reaction only")
    parser.add_argument("--skip-reaction", action="store_true", help="polling CPU only")
    parser.add_argument("--profile", action="store_true", help="cProfile the poller process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--sim", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--poller", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:])
    if args.sim:
        asyncio.run(sim_main(*args.sim))
        return 0
    if args.poller:
        endpoints = [(h, int(p)) for h, p in json.loads(args.poller[0])]
        asyncio.run(
            poller_main(endpoints, int(args.poller[1]), float(args.poller[2]), args.profile_to)
        )
        return 0

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    raise_nofile()
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    args.sizes = args.n or ([10] if quick else [10, 100, 1000])
    if args.cpu_seconds is None:
        args.cpu_seconds = 5.0 if quick else 30.0
    if args.increase_interval is None and quick:
        args.increase_interval = 2.0
    args.trials_for = lambda n: args.trials or (2 if quick else (6 if n >= 1000 else 8))
    stamp = utc_stamp()
    info: dict[str, Any] = {
        **_versions(),
        "pymodbus": package_version("pymodbus"),
        "loadavg_start": os.getloadavg(),
        "quick": quick,
        "stamp": stamp,
        "period_s": PERIOD_S,
        "sizes": args.sizes,
        "gc_freeze": args.gc_freeze,
    }
    print(
        f"meters: {info['python']}, {info['cores']} cores, load average "
        f"{loadavg_text(info['loadavg_start'])}" + (" (quick)" if quick else "")
    )
    sizes, cpu = asyncio.run(_run_all(args, info))
    info["loadavg_end"] = os.getloadavg()
    markdown = _markdown(info, sizes, cpu)
    suffix = f"-{args.tag}" if args.tag else ""
    payload = {"info": info, "reaction": sizes, "polling_cpu": cpu}
    save_results(f"meters{suffix}", stamp, payload, markdown)
    print(markdown)
    failed = any(t["server_confirmed"] < t["chargers"] for s in sizes for t in s["trials"])
    # Polls in flight when the window closes are counted in `polls`, not yet in `successes`.
    failed = failed or any(r["gateway_failures"] or r["skipped"] for r in cpu)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
