"""The demo's building: its own load over a fast simulated day, plus what the EVs draw, served
by a Modbus meter simulator (tools/run_meters.py as a child process) that Home Assistant polls.
"""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass
import math
import random
import sys
import time
from typing import TYPE_CHECKING

from tools.demo.ha_process import REPO, DemoError, die_with_parent, port_open

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tools.sim import Fleet

METER_MODEL = "PM5320 / iEM3x5x / PowerTag"  # evcore.meters.models.PM5320, a built-in model
METER_HOST = "127.0.0.1"
METER_SLAVE = 1
METER_POLLING = 1.0  # s
SAFETY_MARGIN = 1.0  # A per phase: the integration's default (site options)
START_HOUR = 6.0  # the simulated day starts at 6:00, before the morning rise
METER_STEP = 1.0  # s between two updates of the meter simulator (the EVs' draw moves fast)
ENERGY_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z
READING_LAG = 5.0  # s: a sensor may show any value served that long before it is read


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


class MeterProcess:
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
                amps_arg(currents),
                "--energy",
                f"{meter_energy_wh():.0f}",
                "--integrate",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
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
            self.process.stdin.write(f"current {METER_SLAVE} {amps_arg(currents)}\n".encode())
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


def amps_arg(currents: tuple[float, float, float]) -> str:
    return ",".join(f"{amps:.1f}" for amps in currents)


def ev_currents(fleet: Fleet | None) -> tuple[float, float, float]:
    """What the simulated EVs draw now, A per phase (the stations wire L1 to L1)."""
    amps = [0.0, 0.0, 0.0]
    for charger in fleet.chargers if fleet is not None else ():
        for connector in charger.connectors.values():
            for phase in range(min(connector.phases_in_use, 3)):
                amps[phase] += connector.current
    return amps[0], amps[1], amps[2]


class Building:
    """The simulated day and the task that keeps the meter simulator serving it."""

    def __init__(self, meter: MeterProcess, *, day_minutes: float, seed: int | None) -> None:
        self.meter = meter
        self.day_minutes = day_minutes
        self.day_start = 0.0  # loop time at which the simulated day starts (START_HOUR)
        self.served: deque[MeterUpdate] = deque(maxlen=600)
        self.noise = random.Random(seed)
        self.driver: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the meter simulator at the load of the day's first hour."""
        self.day_start = asyncio.get_running_loop().time()
        await self.meter.start(building_load(START_HOUR))

    def drive(self, evs: Callable[[], tuple[float, float, float]]) -> None:
        """Start the task that sets the meter's currents every METER_STEP s."""
        self.driver = asyncio.create_task(self._drive(evs))

    def hour(self, at: float) -> float:
        """The hour of the simulated day (0-24) at loop time `at`."""
        day = float(self.day_minutes) * 60.0
        return (START_HOUR + 24.0 * (at - self.day_start) / day) % 24.0

    async def _drive(self, evs: Callable[[], tuple[float, float, float]]) -> None:
        """Every METER_STEP s: the building's own load at this hour of the simulated day, plus
        the EVs (they are all in "Building", below it), is what the meter measures."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            hour = self.hour(now)
            own = tuple(a + self.noise.uniform(-0.5, 0.5) for a in building_load(hour))
            drawn = evs()
            served = (own[0] + drawn[0], own[1] + drawn[1], own[2] + drawn[2])
            if await self.meter.set_currents(served):
                self.served.append(MeterUpdate(now, hour, (own[0], own[1], own[2]), drawn, served))
            elif not self.meter.broken:
                self.meter.broken = True
                print(
                    f"demo: warning: the meter simulator exited; see {self.meter.log}",
                    flush=True,
                )
            await asyncio.sleep(METER_STEP)

    def served_before(self, at: float) -> list[MeterUpdate]:
        """The updates a sensor read at `at` may show: those of the READING_LAG s before,
        and the one in force when that window opened."""
        earlier = [u for u in self.served if u.time <= at]
        recent = [u for u in earlier if u.time >= at - READING_LAG]
        older = [u for u in earlier if u.time < at - READING_LAG]
        return older[-1:] + recent

    async def stop(self) -> None:
        """Stop driving, then the meter simulator."""
        if self.driver is not None:
            self.driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.driver
        await self.meter.stop()


def dynamic_budget(top: float, own: float) -> float:
    """The budget of a dynamic zone with max `top` when the building's own load is `own`."""
    return min(max(top - own - SAFETY_MARGIN, 0.0), top)


def format_phases(amps: tuple[float, ...]) -> str:
    """A/A/A with one decimal."""
    return "/".join(f"{a:.1f}" for a in amps)


def format_hour(hour: float) -> str:
    """HH:MM of an hour of the day (0-24)."""
    minutes = int(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
