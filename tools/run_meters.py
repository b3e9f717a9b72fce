"""Simulate Modbus power meters (a pymodbus server) for the demo and benches.

    .venv/bin/python tools/run_meters.py --port 5020 --model "PM5320 / iEM3x5x / PowerTag" \
        --slave 1 --current 40,35,30 [--rtu] [--models-file custom.json] [--integrate]

`--slave` takes ids and ranges ("1", "1-20", "1,3,5-7"); every slave starts with the same
values. While it runs, commands on standard input change the values:

    current <slave|all> 10,20,30     currents in A (phase powers follow at 230 V)
    power <slave|all> 5000           total active power in W
    energy <slave|all> 1234567       energy delivered in Wh
    silent <slave|all> on|off        stop / resume answering
    show                             print every meter's values
    quit

Ctrl-C (or SIGTERM, or "quit") stops the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path
import signal
import sys
import threading

if __package__ in (None, ""):  # run as a script: make `tools.sim` and the integration importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.ev_charging_expert.evcore.errors import ConfigError
from custom_components.ev_charging_expert.evcore.meters import ModelRegistry, Quantity
from tools.sim.modbus_meter import MeterSimulator, SimulatedMeter


def parse_slaves(text: str) -> list[int]:
    """'1,3-5' -> [1, 3, 4, 5]."""
    slaves: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        low, high = int(first), int(last or first)
        if not 1 <= low <= high <= 255:  # noqa: PLR2004
            msg = f"bad slave range {part!r} (ids are 1-255)"
            raise ValueError(msg)
        slaves.extend(range(low, high + 1))
    return sorted(set(slaves))


def parse_currents(text: str) -> tuple[float, float, float]:
    values = [float(v) for v in text.split(",")]
    if len(values) == 1:
        values *= 3
    if len(values) != 3:  # noqa: PLR2004
        msg = "currents take one value or three (L1,L2,L3)"
        raise ValueError(msg)
    return values[0], values[1], values[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    parser.add_argument("--model", default="PM5320 / iEM3x5x / PowerTag", help="model name")
    parser.add_argument("--models-file", type=Path, help="custom models JSON (export file)")
    parser.add_argument("--slave", default="1", help="slave ids: 1 | 1-20 | 1,3,5-7")
    parser.add_argument("--current", default="16,16,16", help="A per phase: L1,L2,L3")
    parser.add_argument("--power", type=float, default=None, help="total active power, W")
    parser.add_argument("--energy", type=float, default=1_000_000.0, help="energy, Wh")
    parser.add_argument("--rtu", action="store_true", help="RTU framing over TCP")
    parser.add_argument(
        "--integrate", action="store_true", help="grow the energy with the power, each second"
    )
    parser.add_argument("--no-stdin", action="store_true", help="ignore standard input")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    args = parser.parse_args(argv)
    try:
        args.slaves = parse_slaves(args.slave)
        args.currents = parse_currents(args.current)
    except ValueError as err:
        parser.error(str(err))
    registry = ModelRegistry()
    if args.models_file is not None:
        try:
            registry.import_json(args.models_file.read_bytes())
        except (OSError, ConfigError) as err:
            parser.error(f"--models-file: {err}")
    try:
        args.model_obj = registry.get(args.model)
    except ConfigError as err:
        parser.error(f"{err}; known: {', '.join(registry.names())}")
    return args


def build_simulator(args: argparse.Namespace) -> MeterSimulator:
    simulator = MeterSimulator(host=args.host, port=args.port, rtu=args.rtu)
    for slave in args.slaves:
        meter = simulator.add_meter(args.model_obj, slave)
        meter.set(currents=args.currents, energy_wh=args.energy)
        if args.power is not None:
            meter.set(total_power_w=args.power)
    return simulator


def describe(meter: SimulatedMeter) -> str:
    values = meter.values
    currents = "/".join(f"{values[q] or 0:g}" for q in Quantity if q.unit == "A")
    power = values[Quantity.POWER_TOTAL]
    energy = values[Quantity.ENERGY_DELIVERED]
    silent = " (silent)" if meter.silent else ""
    return (
        f"slave {meter.slave_id}: {currents} A, {power or 0:.0f} W, {energy or 0:.0f} Wh, "
        f"{meter.requests} reads{silent}"
    )


def _set_one(meter: SimulatedMeter, verb: str, value: str) -> None:
    if verb == "current":
        meter.set(currents=parse_currents(value))
    elif verb == "power":
        meter.set(total_power_w=float(value))
    elif verb == "energy":
        meter.set(energy_wh=float(value))
    elif verb == "silent":
        meter.silent = value.lower() in ("on", "1", "true", "yes")
    else:
        msg = f"unknown command {verb!r}"
        raise ValueError(msg)


def apply_command(simulator: MeterSimulator, line: str) -> str | None:
    """Run one stdin command; returns a reply, or None to quit."""
    words = line.split()
    verb = words[0].lower() if words else ""
    if verb in ("quit", "exit"):
        return None
    if verb in ("show", ""):
        return "\n".join(describe(m) for m in simulator.meters.values()) if verb else ""
    if len(words) != 3:  # noqa: PLR2004
        return "usage: current|power|energy|silent <slave|all> <value>"
    target, value = words[1], words[2]
    try:
        slaves = list(simulator.meters) if target == "all" else parse_slaves(target)
        meters = [simulator.meter(s) for s in slaves]
        for meter in meters:
            _set_one(meter, verb, value)
    except (KeyError, ValueError) as err:
        return f"error: {err}"
    return "\n".join(describe(m) for m in meters)


async def read_commands(simulator: MeterSimulator, stop: asyncio.Event) -> None:
    # A daemon thread reads stdin, so a blocked readline never delays the exit.
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")  # EOF

    threading.Thread(target=reader, name="run_meters stdin", daemon=True).start()
    while not stop.is_set():
        line = await lines.get()
        if not line:  # EOF: keep serving, stop reading
            return
        reply = apply_command(simulator, line)
        if reply is None:
            stop.set()
            return
        if reply:
            print(reply, flush=True)


async def integrate(simulator: MeterSimulator) -> None:
    while True:
        await asyncio.sleep(1.0)
        for meter in simulator.meters.values():
            power = meter.values[Quantity.POWER_TOTAL] or 0.0
            meter.add_energy(max(power, 0.0) / 3600.0)


async def main_async(args: argparse.Namespace) -> None:
    simulator = build_simulator(args)
    await simulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    framing = "RTU over TCP" if args.rtu else "Modbus TCP"
    print(
        f"run_meters: {len(simulator.meters)} x {args.model!r} on {simulator.host}:"
        f"{simulator.port} ({framing}), slaves {args.slave}; Ctrl-C to stop",
        flush=True,
    )
    tasks = []
    if not args.no_stdin:
        tasks.append(asyncio.create_task(read_commands(simulator, stop)))
    if args.integrate:
        tasks.append(asyncio.create_task(integrate(simulator)))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await simulator.stop()
        print("run_meters: stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.verbose < 2:  # noqa: PLR2004
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
