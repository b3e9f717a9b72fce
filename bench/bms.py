"""BMS Modbus slave benchmark (issue 12, benchmark a).

N simulated chargers (the harness's raw OCPP client, one websocket each) send MeterValues
every 10 s to a Controller with the BMS slave listening; then 10 BMS clients each read, every
second, the site block, every zone block in use and every connector block in use (reads of up
to 120 registers: 3 zone or 6 connector blocks per request; one request in flight per client).

Two windows of the same length on the same server process: (A) MeterValues only, the slave
listening and idle; (B) MeterValues + the 10 BMS clients. Reported: the BMS requests' round
trip (p50, p99, max; client side, loopback) and the CPU the slave adds (server process CPU in
B minus A, as a share of one core). Goals: p99 < 20 ms, < 5 % of a core.

    .venv/bin/python bench/bms.py                  # N = 1000, 10 zones, 30 s windows
    .venv/bin/python bench/bms.py --n 200 --window 10 --quick-note

The server is this script with `--serve` (a child process); the load generator is the parent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path
import struct
import sys
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import HOST  # noqa: E402
from bench.harness.core import bench_controller  # noqa: E402
from bench.harness.measure import percentile, process_cpu_seconds, raise_nofile  # noqa: E402
from bench.harness.ocpp_client import connect, connect_all  # noqa: E402
from bench.harness.processes import JsonLineProcess, emit  # noqa: E402
from bench.harness.report import Table, code_version, save_results, utc_stamp  # noqa: E402
from bench.ocpp_ingest import (  # noqa: E402
    PhasePlan,
    PhaseStats,
    SimCharger,
    charger_id,
    meter_values_payloads,
)

METER_PERIOD_S = 10.0
BMS_CLIENTS = 10
READ_BLOCK = 120  # registers per request: 3 zone blocks (40) or 6 connector blocks (20)


# ---------------------------------------------------------------------------------- server
async def serve(zones: int) -> None:
    """The Controller and its BMS slave; JSON lines out, commands ("quit") in."""
    logging.basicConfig(level=logging.ERROR)  # the chargers refuse profiles: not news here
    from custom_components.ev_charging_expert.evcore.bms import (  # noqa: PLC0415
        BmsServer,
        BmsSettings,
        MemorySlotStore,
    )
    from custom_components.ev_charging_expert.evcore.config import (  # noqa: PLC0415
        ZoneConfig,
        validate_zones,
    )

    controller = bench_controller(max_pending=100_000)
    controller.set_zones(
        validate_zones([ZoneConfig(f"Z{i}", f"Zone {i}", 400.0) for i in range(1, zones + 1)])
    )
    await controller.restore()
    await controller.start(host=HOST, port=0, ping_interval=None)
    bms = BmsServer(controller, store=MemorySlotStore(), settings=BmsSettings(host=HOST, port=0))
    await bms.start()
    emit({"ocpp_port": controller.port, "bms_port": bms.port})
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line or line.strip() == "quit":
            break
        if line.strip() == "status":
            emit({"clients": bms.status.clients, "refused": bms.status.refused})
    await bms.stop()
    await controller.stop()


# ---------------------------------------------------------------------------------- BMS clients
def _reads(zones: int, connectors: int) -> list[tuple[int, int]]:
    """(address, count) of one polling cycle: site, zones, connectors."""
    reads = [(0, 100)]
    for first in range(0, zones, READ_BLOCK // 40):
        blocks = min(READ_BLOCK // 40, zones - first)
        reads.append((1000 + 40 * first, 40 * blocks))
    for first in range(0, connectors, READ_BLOCK // 20):
        blocks = min(READ_BLOCK // 20, connectors - first)
        reads.append((35000 + 20 * first, 20 * blocks))
    return reads


async def bms_client(  # noqa: PLR0917
    port: int,
    reads: list[tuple[int, int]],
    start: float,
    end: float,
    rtts: list[float],
    errors: list[str],
) -> int:
    """Poll every second from `start` until `end`; one request in flight; returns the cycles."""
    reader, writer = await asyncio.open_connection(HOST, port)
    frames = [
        struct.pack(">HHHBBHH", tid % 65536, 0, 6, 1, 3, address, count)
        for tid, (address, count) in enumerate(reads, start=1)
    ]
    cycles = 0
    next_cycle = start
    try:
        while next_cycle < end:
            await asyncio.sleep(max(next_cycle - time.perf_counter(), 0))
            for frame in frames:
                sent = time.perf_counter()
                writer.write(frame)
                header = await reader.readexactly(7)
                body = await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1)
                rtts.append((time.perf_counter() - sent) * 1000.0)
                if body[0] & 0x80:
                    errors.append(f"exception {body[1]} for {frame.hex()}")
            cycles += 1
            next_cycle += 1.0
    finally:
        writer.close()
    return cycles


async def slots_used(port: int) -> tuple[int, int]:
    """Zone and connector slots in use, from the site block."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 24, 3))
    header = await reader.readexactly(7)
    body = await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1)
    writer.close()
    zones, _, connectors = struct.unpack(">HHH", body[2:8])
    return zones, connectors


# ---------------------------------------------------------------------------------- orchestration
async def _window(
    chargers: list[SimCharger], seconds: float, payloads: list[str]
) -> tuple[PhaseStats, list[asyncio.Task[None]]]:
    now = time.perf_counter()
    plan = PhasePlan(len(chargers), METER_PERIOD_S, now, now, now + seconds, now + seconds)
    stats = PhaseStats()
    tasks = [asyncio.create_task(c.run_phase(plan, payloads, stats)) for c in chargers]
    return stats, tasks


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, connect the chargers, measure windows A and B."""
    raise_nofile()
    extra = ["--profile", args.profile] if args.profile else []
    server = JsonLineProcess(Path(__file__), "--serve", "--zones", str(args.zones), *extra)
    try:
        ports = await server.read(60)
        url = f"ws://{HOST}:{ports['ocpp_port']}/ocpp"

        async def one(index: int) -> SimCharger:
            charger = SimCharger(index, await connect(f"{url}/{charger_id(index)}"))
            await charger.boot()
            return charger

        started = time.perf_counter()
        chargers, failures = await connect_all(args.n, one)
        connect_s = time.perf_counter() - started
        payloads = meter_values_payloads()
        # Warm-up: every charger sends once, the slave fills its image.
        _, tasks = await _window(chargers, METER_PERIOD_S, payloads)
        await asyncio.gather(*tasks)
        zones, connectors = await slots_used(ports["bms_port"])
        reads = _reads(zones, connectors)
        # Window A: ingest only.
        cpu_a = process_cpu_seconds(server.pid)
        stats_a, tasks = await _window(chargers, args.window, payloads)
        t0 = time.perf_counter()
        await asyncio.gather(*tasks)
        seconds_a = time.perf_counter() - t0
        cpu_a = process_cpu_seconds(server.pid) - cpu_a
        # Window B: ingest + BMS clients.
        rtts: list[float] = []
        errors: list[str] = []
        cpu_b = process_cpu_seconds(server.pid)
        stats_b, tasks = await _window(chargers, args.window, payloads)
        t0 = time.perf_counter()
        end = t0 + args.window
        # Clients poll once a second each, not in lock-step (as independent BMSs would).
        cycles = await asyncio.gather(
            *(
                bms_client(ports["bms_port"], reads, t0 + i / args.clients, end, rtts, errors)
                for i in range(args.clients)
            )
        )
        await asyncio.gather(*tasks)
        seconds_b = time.perf_counter() - t0
        cpu_b = process_cpu_seconds(server.pid) - cpu_b
        for charger in chargers:
            await charger.ws.close()
    finally:
        server.close()
    share_a, share_b = cpu_a / seconds_a, cpu_b / seconds_b
    return {
        "n": args.n,
        "connected": len(chargers),
        "connect_failures": len(failures),
        "connect_s": round(connect_s, 1),
        "zones": zones,
        "connectors": connectors,
        "clients": args.clients,
        "requests_per_cycle": len(reads),
        "registers_per_cycle": sum(count for _, count in reads),
        "cycles": sum(cycles),
        "requests": len(rtts),
        "errors": len(errors),
        "error_examples": errors[:3],
        "meter_values_a": stats_a.sent,
        "meter_values_b": stats_b.sent,
        "rtt_p50_ms": percentile(rtts, 50),
        "rtt_p99_ms": percentile(rtts, 99),
        "rtt_max_ms": max(rtts, default=None),
        "cpu_share_a": share_a,
        "cpu_share_b": share_b,
        "cpu_added_share": share_b - share_a,
        "cpu_per_request_us": (cpu_b - cpu_a * seconds_b / seconds_a) / max(len(rtts), 1) * 1e6,
        "loadavg_1m": os.getloadavg()[0],
        "window_s": args.window,
    }


def main() -> int:
    """Run the benchmark, print a table, save results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1000, help="simulated chargers")
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--clients", type=int, default=BMS_CLIENTS)
    parser.add_argument("--window", type=float, default=30.0, help="seconds per window")
    parser.add_argument("--profile", help="cProfile the server into this file")
    args = parser.parse_args()
    if args.serve:
        if args.profile:
            import cProfile  # noqa: PLC0415

            with cProfile.Profile() as profile:
                asyncio.run(serve(args.zones))
            profile.dump_stats(args.profile)
        else:
            asyncio.run(serve(args.zones))
        return 0
    result = asyncio.run(run(args))
    table = Table(("metric", 24), ("value", 16))
    rows = [
        [key, f"{value:.3f}" if isinstance(value, float) else str(value)]
        for key, value in result.items()
    ]
    print(table.header())
    for row in rows:
        print(table.row(row))
    stamp = utc_stamp()
    payload = {"result": result, "code": code_version()}
    path = save_results("bms", stamp, payload, "\n".join(table.markdown(rows)) + "\n")
    print(f"saved {path}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
