"""A fleet of simulated chargers sharing one clock, started with a small spread."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from .charge_point import SimulatedChargePoint
from .clock import ScaledClock, sleep

if TYPE_CHECKING:
    from .clock import SimClock

# (vendor, model, connectors): made-up names, so nobody mistakes the simulator for a real device.
MODELS = (
    ("Voltaris", "VX-22", 1),
    ("Voltaris", "VX-22 Duo", 2),
    ("Ampora", "Solo 11", 1),
    ("Ampora", "Twin 2x22", 2),
    ("Kilowatt Works", "KW-7 Mono", 1),
    ("Kilowatt Works", "KW-44 Pillar", 2),
)


class Fleet:
    """`count` chargers named `<prefix>01..`, with 1 or 2 connectors each (picked at random)."""

    def __init__(
        self,
        url: str,
        count: int,
        *,
        prefix: str = "SIM-",
        connectors: tuple[int, ...] = (1, 2),
        meter_interval: int = 10,
        speed: float = 1.0,
        seed: int | None = None,
        clock: SimClock | None = None,
        start_spread: float | None = None,
        **charger_options: Any,
    ) -> None:
        rng = random.Random(seed)
        self.clock: SimClock = clock or ScaledClock(speed)
        self.start_spread = min(count * 0.05, 30.0) if start_spread is None else start_spread
        width = max(2, len(str(count)))
        self.chargers: list[SimulatedChargePoint] = []
        for index in range(1, count + 1):
            n = rng.choice(connectors)
            vendor, model, _ = rng.choice([m for m in MODELS if m[2] == n] or MODELS)
            self.chargers.append(
                SimulatedChargePoint(
                    f"{prefix}{index:0{width}d}",
                    url,
                    connectors=n,
                    clock=self.clock,
                    rng=random.Random(rng.getrandbits(64)),
                    vendor=vendor,
                    model=model,
                    serial=f"{vendor[:2].upper()}{rng.getrandbits(32):010d}",
                    meter_interval=meter_interval,
                    **charger_options,
                )
            )
        self._starters: list[asyncio.Task[None]] = []
        self._stopping = False

    async def run(self) -> None:
        """Start every charger (spread over `start_spread` s) and run until `stop()`."""
        count = len(self.chargers)
        self._starters = [
            asyncio.create_task(self._run_one(cp, self.start_spread * i / max(count, 1)))
            for i, cp in enumerate(self.chargers)
        ]
        await asyncio.gather(*self._starters, return_exceptions=True)

    async def _run_one(self, charger: SimulatedChargePoint, delay: float) -> None:
        if delay > 0:
            await sleep(self.clock, delay)
        if not self._stopping:
            await charger.run()

    async def stop(self) -> None:
        """Close every connection; returns when all chargers have stopped."""
        self._stopping = True
        await asyncio.gather(*(cp.stop() for cp in self.chargers), return_exceptions=True)
        for task in self._starters:
            task.cancel()
        await asyncio.gather(*self._starters, return_exceptions=True)

    def summary(self) -> str:
        """One line: connections, sessions and power."""
        connected = sum(cp.accepted for cp in self.chargers)
        connectors = [c for cp in self.chargers for c in cp.connectors.values()]
        sessions = sum(c.transaction_id is not None for c in connectors)
        charging = sum(c.current > 0 for c in connectors)
        power = sum(cp.power_w for cp in self.chargers) / 1000
        return (
            f"{connected}/{len(self.chargers)} chargers online, {sessions} sessions "
            f"({charging} drawing), {power:.1f} kW"
        )
