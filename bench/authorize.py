"""Authorization benchmark (issue 13): Authorize under load, CSV import, local-list sync.

1. **Authorize round trip.** The server (evcore's Controller in its own process, as
   bench/ocpp_ingest.py's "ours") holds 100,000 cards, every station in known-cards mode. N
   chargers (default 1000) send MeterValues every `--period` s (spread evenly), while one probe
   charger alternates Authorize (a random registered card) and Heartbeat, back to back with a
   short pause. Both round trips (send -> CallResult) are measured on the probe, under the same
   load: the goal is an Authorize p99 within 2 ms of the Heartbeat p99.
2. **CSV import** of 100,000 lines, in this process: parse (validate) then the one swap, in our
   format and in the charger format; the export too.
3. **Local-list sync** of 10,000 cards to 100 chargers (SendLocalListMaxLength 250: 40
   messages each): the server starts in all-cards mode; SIGUSR1 switches it to known cards
   and the clock starts; it stops when every charger has answered its last SendLocalList.

    .venv/bin/python bench/authorize.py            # N = 1000, 30 s of load; ~2 min
    .venv/bin/python bench/authorize.py --quick    # N = 50, 5 s: a smoke run

Results: a table on stdout and a JSON file in bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, datetime
import json
import math
import os
from pathlib import Path
import random
import signal
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `bench.harness` and the integration import from the repo root
    sys.path.insert(0, str(ROOT))

from bench.harness import HOST, RESULTS  # noqa: E402
from bench.harness.core import bench_controller  # noqa: E402
from bench.harness.measure import percentile, raise_nofile  # noqa: E402
from bench.harness.ocpp_client import RawCharger, compact, connect, connect_all  # noqa: E402
from bench.harness.processes import running_server  # noqa: E402

CARDS = 100_000
LIST_CARDS = 10_000
LIST_CHARGERS = 100
CHUNK = 250
TIMEOUT_S = 60.0


def card_tag(index: int) -> str:
    """The idTag of registered card `index`."""
    return f"{0x04000000 + index:010X}"


def _configuration(*, local_list: bool) -> str:
    profiles = "Core,SmartCharging" + (",LocalAuthListManagement" if local_list else "")
    return compact(
        {
            "configurationKey": [
                {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
                {"key": "SupportedFeatureProfiles", "readonly": True, "value": profiles},
                {"key": "SendLocalListMaxLength", "readonly": True, "value": str(CHUNK)},
                {"key": "LocalAuthListMaxLength", "readonly": True, "value": "20000"},
            ],
            "unknownKey": [],
        }
    )


def _answers(*, local_list: bool) -> dict[str, str]:
    accepted = compact({"status": "Accepted"})
    return {
        "GetConfiguration": _configuration(local_list=local_list),
        "ChangeConfiguration": accepted,
        "SendLocalList": accepted,
        "GetLocalListVersion": compact({"listVersion": 0}),
        "ClearCache": accepted,
        "SetChargingProfile": accepted,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


METER_VALUES = compact(
    {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": "2026-01-01T00:00:00Z",
                "sampledValue": [
                    {"value": "16.0", "measurand": "Current.Import", "phase": p, "unit": "A"}
                    for p in ("L1", "L2", "L3")
                ]
                + [{"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
            }
        ],
    }
)


class Charger(RawCharger):
    """A charger that boots and counts the SendLocalList calls it answered."""

    def __init__(self, index: int, ws: Any, *, local_list: bool) -> None:
        super().__init__(index, ws, _answers(local_list=local_list), timeout=TIMEOUT_S)
        self.lists = 0
        self.last_list: float | None = None

    def on_server_call(self, received: float, action: str, payload: Any) -> None:
        if action == "SendLocalList":
            self.lists += 1
            self.last_list = received

    async def boot(self) -> None:
        await self.call(
            "BootNotification",
            compact({"chargePointVendor": "Bench", "chargePointModel": "AUTH"}),
        )
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
        await self.call("StatusNotification", compact({**status, "timestamp": _now()}))


# ---------------------------------------------------------------------------------- the server
async def serve(port_file: Path, cards: int, mode: str) -> None:
    """The Controller with `cards` cards; SIGUSR1 switches the site to known cards."""
    from custom_components.ev_charging_expert.evcore.auth import Card  # noqa: PLC0415
    from custom_components.ev_charging_expert.evcore.auth.modes import AuthMode  # noqa: PLC0415

    controller = bench_controller()
    await controller.restore()
    controller.cards.replace_all(Card(card_tag(i), comment=f"owner {i}") for i in range(cards))
    controller.auth.set_site_default(mode=AuthMode(mode))
    await controller.start(host=HOST, port=0)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(
        signal.SIGUSR1, lambda: controller.auth.set_site_default(mode=AuthMode.KNOWN_CARDS)
    )
    port_file.write_text(str(controller.port))  # noqa: ASYNC240  # once, before any load
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await controller.stop()


@contextlib.contextmanager
def server(workdir: Path, cards: int, mode: str) -> Any:
    port_file = workdir / f"server-{mode}.port"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_serve",
        str(port_file),
        str(cards),
        mode,
    ]
    with running_server(
        cmd, log=workdir / f"server-{mode}.log", port_file=port_file, startup_timeout=120.0
    ) as running:
        yield running


# ---------------------------------------------------------------------------------- 1. Authorize
async def _load(chargers: list[Charger], period: float, until: float) -> None:
    async def one(charger: Charger, offset: float) -> None:
        next_at = time.perf_counter() + offset
        while next_at < until:
            await asyncio.sleep(max(next_at - time.perf_counter(), 0))
            with contextlib.suppress(Exception):
                await charger.call("MeterValues", METER_VALUES)
            next_at += period

    n = max(len(chargers), 1)
    await asyncio.gather(*(one(c, period * i / n) for i, c in enumerate(chargers)))


async def authorize_round_trip(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with server(workdir, args.cards, "known_cards") as running:
        url = f"ws://{HOST}:{running.port}/ocpp"

        async def start(i: int) -> Charger:
            charger = Charger(i, await connect(f"{url}/LOAD{i:05d}"), local_list=False)
            await charger.boot()
            return charger

        started = time.perf_counter()
        chargers, failures = await connect_all(args.n, start)
        connect_s = time.perf_counter() - started
        serving = [asyncio.ensure_future(c.serve()) for c in chargers]
        probe = await start(99_999)
        await asyncio.sleep(2.0)  # the boot-time configuration reads are done
        for task in serving:
            task.cancel()
        until = time.perf_counter() + args.warmup + args.duration
        load = asyncio.ensure_future(_load(chargers, args.period, until))
        rng = random.Random(1)
        rtts: dict[str, list[float]] = {"Authorize": [], "Heartbeat": []}
        measure_from = time.perf_counter() + args.warmup
        while time.perf_counter() < until:
            for action, payload in (
                ("Authorize", compact({"idTag": card_tag(rng.randrange(args.cards))})),
                ("Heartbeat", "{}"),
            ):
                sent = time.perf_counter()
                await probe.call(action, payload)
                if sent >= measure_from:
                    rtts[action].append((time.perf_counter() - sent) * 1000)
                await asyncio.sleep(args.pause)
        await load
        await asyncio.gather(*(c.ws.close() for c in [*chargers, probe]), return_exceptions=True)
    result: dict[str, Any] = {
        "chargers": len(chargers),
        "connect_failures": len(failures),
        "connect_s": connect_s,
        "meter_values_per_s": len(chargers) / args.period,
    }
    for action, values in rtts.items():
        result[action] = {
            "count": len(values),
            "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99),
        }
    return result


# ---------------------------------------------------------------------------------- 2. CSV import
def csv_import(cards: int) -> dict[str, Any]:
    from custom_components.ev_charging_expert.evcore.auth import (  # noqa: PLC0415
        CardRegistry,
        export_csv,
        parse_csv,
    )
    from custom_components.ev_charging_expert.evcore.clock import ManualClock  # noqa: PLC0415
    from custom_components.ev_charging_expert.evcore.site import MemoryStore  # noqa: PLC0415

    zones = {"Ground floor": "z1", "Basement": "z2"}
    ours = "id_tag,authorized,vip,comment,zones\n" + "".join(
        f"{card_tag(i)},true,{'true' if i % 100 == 0 else 'false'},owner {i},"
        f"{'Basement' if i % 3 == 0 else ''}\n"
        for i in range(cards)
    )
    charger = "".join(f"{card_tag(i)}\n" for i in range(cards))
    result: dict[str, Any] = {"lines": cards, "bytes_ours": len(ours.encode())}
    for name, text in (("ours", ours), ("charger", charger)):
        registry = CardRegistry(ManualClock(), MemoryStore())
        started = time.perf_counter()
        parsed = parse_csv(text, zones)
        parsed_at = time.perf_counter()
        prepared = registry.prepare_swap(parsed)
        prepared_at = time.perf_counter()
        registry.commit_swap(prepared)
        done = time.perf_counter()
        result[name] = {
            "parse_s": parsed_at - started,
            "prepare_s": prepared_at - parsed_at,
            "commit_s": done - prepared_at,
        }
        if name == "ours":
            started = time.perf_counter()
            export_csv(registry.cards(), {v: k for k, v in zones.items()})
            result["export_s"] = time.perf_counter() - started
    return result


# ---------------------------------------------------------------------------------- 3. local lists
async def list_sync(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    expected = math.ceil(args.list_cards / CHUNK)
    with server(workdir, args.list_cards, "all_cards") as running:
        url = f"ws://{HOST}:{running.port}/ocpp"

        async def start(i: int) -> Charger:
            charger = Charger(i, await connect(f"{url}/LIST{i:04d}"), local_list=True)
            await charger.boot()
            return charger

        chargers, failures = await connect_all(args.list_chargers, start)
        serving = [asyncio.ensure_future(c.serve()) for c in chargers]
        await asyncio.sleep(2.0)
        started = time.monotonic()
        os.kill(running.pid, signal.SIGUSR1)
        async with asyncio.timeout(600):
            while any(c.lists < expected for c in chargers):  # noqa: ASYNC110  # counts on sockets
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the last answers reach the server
        last = max(c.last_list or started for c in chargers)
        for task in serving:
            task.cancel()
        await asyncio.gather(*(c.ws.close() for c in chargers), return_exceptions=True)
    return {
        "cards": args.list_cards,
        "chargers": len(chargers),
        "connect_failures": len(failures),
        "messages_per_charger": expected,
        "entries_sent": args.list_cards * len(chargers),
        "all_in_sync_s": last - started,
    }


# ---------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="chargers sending MeterValues")
    parser.add_argument("--cards", type=int, default=CARDS)
    parser.add_argument("--period", type=float, default=10.0, help="s between MeterValues")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--pause", type=float, default=0.02, help="s between probe calls")
    parser.add_argument("--list-cards", type=int, default=LIST_CARDS)
    parser.add_argument("--list-chargers", type=int, default=LIST_CHARGERS)
    parser.add_argument(
        "--parts", default="round_trip,csv,lists", help="which parts to run (comma-separated)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args(argv)
    if args.quick or os.environ.get("BENCH_QUICK"):
        args.n, args.duration, args.warmup = 50, 5.0, 1.0
        args.list_cards, args.list_chargers = 1000, 10
    return args


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile()
    with tempfile.TemporaryDirectory(prefix="bench-authorize-") as tmp:
        workdir = Path(tmp)
        parts = set(args.parts.split(","))
        imports = csv_import(args.cards) if "csv" in parts else {}
        round_trip = (
            asyncio.run(authorize_round_trip(args, workdir)) if "round_trip" in parts else {}
        )
        lists = asyncio.run(list_sync(args, workdir)) if "lists" in parts else {}
    result = {
        "bench": "authorize",
        "at": _now(),
        "loadavg": os.getloadavg(),
        "args": vars(args),
        "round_trip": round_trip,
        "csv_import": imports,
        "local_list_sync": lists,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"authorize-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    if round_trip:
        auth, beat = round_trip["Authorize"], round_trip["Heartbeat"]
        print(
            f"Authorize with {args.cards} cards, {round_trip['chargers']} chargers sending "
            f"{round_trip['meter_values_per_s']:.0f} MeterValues/s:\n"
            f"  Authorize p50 {_fmt(auth['p50_ms'], ' ms')} p99 {_fmt(auth['p99_ms'], ' ms')} "
            f"({auth['count']}); Heartbeat p50 {_fmt(beat['p50_ms'], ' ms')} p99 "
            f"{_fmt(beat['p99_ms'], ' ms')} ({beat['count']})"
        )
    if imports:
        print(
            f"CSV import of {args.cards} lines (parse + prepare off the loop, commit on it): "
            + "; ".join(
                f"{fmt} {imports[fmt]['parse_s']:.2f} + {imports[fmt]['prepare_s']:.2f} + "
                f"{imports[fmt]['commit_s'] * 1000:.0f} ms"
                for fmt in ("ours", "charger")
            )
            + f"; export {imports['export_s']:.2f} s"
        )
    if lists:
        print(
            f"Local lists: {lists['cards']} cards to {lists['chargers']} chargers "
            f"({lists['messages_per_charger']} messages each): all in sync after "
            f"{lists['all_in_sync_s']:.2f} s"
        )
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        asyncio.run(serve(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
    else:
        sys.exit(main())
