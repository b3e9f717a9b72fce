"""The demo's command line: `python -m tools.demo` (what `make demo` runs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
import signal
import sys

if __package__ in (None, ""):  # run as a script (tools/demo/__main__.py): make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.demo.ha_process import REPO, DemoError
from tools.demo.scenario import Demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description="`make demo`: Home Assistant with EV Charging Expert and a fleet of "
        "simulated chargers.",
    )
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
        "--optimise", action="store_true", help="switch consumption optimisation on"
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
