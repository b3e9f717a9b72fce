"""What the building meter sees of the chargers: the simulated ones and any real one.

A real meter measures every charger of its zone, whoever made it. The simulated chargers'
draw is known exactly (the fleet); a real charger pointed at the demo is known only through
Home Assistant: its connectors' power sensors, spread over three phases at 230 V (the demo
cannot know its wiring). Everything in the demo hangs below the dynamic "Building" zone, so
every charger HA knows counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import aiohttp
from homeassistant.util import slugify

from tools.demo.building import ev_currents
from tools.demo.ha_process import DemoError

if TYPE_CHECKING:
    from tools.demo.rest import HaApi
    from tools.sim import Fleet

VOLTAGE = 230.0
POLL = 5.0  # s between two looks at the real chargers' power sensors


class SiteDraw:
    """The chargers' draw per phase for the meter simulator (`evs()`)."""

    def __init__(self) -> None:
        self.fleet: Fleet | None = None
        self.real: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.real_stations: set[str] = set()
        self.task: asyncio.Task[None] | None = None

    def evs(self) -> tuple[float, float, float]:
        """Simulated EVs (exact) plus the real chargers (from HA)."""
        sim = ev_currents(self.fleet)
        return sim[0] + self.real[0], sim[1] + self.real[1], sim[2] + self.real[2]

    def follow(self, api: HaApi) -> None:
        """Start reading the real chargers' power from HA."""
        self.task = asyncio.create_task(self._follow(api))

    async def _follow(self, api: HaApi) -> None:
        while True:
            with contextlib.suppress(DemoError, aiohttp.ClientError, TimeoutError):
                self.real = await self._real(api)
            await asyncio.sleep(POLL)

    async def _real(self, api: HaApi) -> tuple[float, float, float]:
        chargers = self.fleet.chargers if self.fleet is not None else []
        simulated = {slugify(cp.station_id) for cp in chargers}
        watts = 0.0
        stations: set[str] = set()
        for state in await api.integration_states():
            entity_id: str = state["entity_id"]
            if not (entity_id.startswith("sensor.") and entity_id.endswith("_power")):
                continue
            station = entity_id.removeprefix("sensor.").split("_connector_")[0]
            if "_connector_" not in entity_id or station in simulated:
                continue
            with contextlib.suppress(TypeError, ValueError):
                scale = 1000.0 if state["attributes"].get("unit_of_measurement") == "kW" else 1.0
                watts += max(float(state["state"]) * scale, 0.0)
                stations.add(station)
        if stations - self.real_stations:
            print(f"demo: the building meter also measures {sorted(stations)}", flush=True)
        self.real_stations = stations
        amps = watts / (3 * VOLTAGE)
        return amps, amps, amps

    async def stop(self) -> None:
        """Stop following HA."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
