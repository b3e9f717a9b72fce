"""Run a fleet of simulated OCPP 1.6J chargers against a central system.

    .venv/bin/python tools/run_fleet.py --url ws://127.0.0.1:9000/ocpp --count 12 --prefix SIM- \
        --meter-interval 10 [--speed 1]

Each charger connects to <url>/<prefix><n>, boots, and lives random EV sessions while obeying
the charging profiles it receives. Ctrl-C (or SIGTERM) closes every connection and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path
import signal
import sys

if __package__ in (None, ""):  # run as a script: make `tools.sim` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.sim import Fleet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp", help="central system URL")
    parser.add_argument("--count", type=int, default=12, help="number of chargers")
    parser.add_argument("--prefix", default="SIM-", help="charge box identity prefix")
    parser.add_argument(
        "--connectors",
        default="1,2",
        help="connector counts to pick from, comma-separated (default 1,2)",
    )
    parser.add_argument("--meter-interval", type=int, default=10, help="MeterValues period (s)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time speed factor")
    parser.add_argument("--seed", type=int, default=None, help="random seed (reproducible fleet)")
    parser.add_argument("--password", default=None, help="HTTP Basic auth password")
    parser.add_argument(
        "--start-spread", type=float, default=None, help="seconds over which chargers connect"
    )
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="skip JSON-schema validation of outgoing frames (cheaper for large fleets)",
    )
    parser.add_argument(
        "--status-every", type=float, default=30.0, help="print a summary every N s (0: never)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv frames")
    args = parser.parse_args(argv)
    try:
        args.connectors = tuple(int(n) for n in args.connectors.split(","))
    except ValueError:
        parser.error("--connectors takes comma-separated integers")
    if args.count < 1 or any(n < 1 for n in args.connectors):
        parser.error("--count and --connectors must be >= 1")
    return args


def configure_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("tools.sim.frames").setLevel(logging.INFO if verbose > 1 else logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)


def make_fleet(args: argparse.Namespace) -> Fleet:
    return Fleet(
        args.url,
        args.count,
        prefix=args.prefix,
        connectors=args.connectors,
        meter_interval=args.meter_interval,
        speed=args.speed,
        seed=args.seed,
        start_spread=args.start_spread,
        password=args.password,
        validate=not args.no_validate,
        profile_history=100,
    )


async def run(fleet: Fleet, status_every: float, stop: asyncio.Event) -> None:
    """Run `fleet` until `stop` is set, printing a summary now and then."""
    runner = asyncio.create_task(fleet.run())

    async def report() -> None:
        while True:
            await asyncio.sleep(status_every)
            print(f"fleet: {fleet.summary()}", flush=True)

    reporter = asyncio.create_task(report()) if status_every > 0 else None
    try:
        await stop.wait()
    finally:
        if reporter is not None:
            reporter.cancel()
        print("fleet: closing connections...", flush=True)
        await fleet.stop()
        await runner
        print("fleet: stopped", flush=True)


async def main_async(args: argparse.Namespace) -> None:
    fleet = make_fleet(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"fleet: {len(fleet.chargers)} chargers "
        f"({sum(len(cp.connectors) for cp in fleet.chargers)} connectors) -> {args.url}/"
        f"{args.prefix}..., Ctrl-C to stop",
        flush=True,
    )
    await run(fleet, args.status_every, stop)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
