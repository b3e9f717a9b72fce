"""Polling power meters on the injected clock, and judging whether a reading is fresh.

Each meter is polled every `polling_period` seconds (`clock.call_later`, fixed rate: a poll that
overruns its period makes the next tick skip, never queue). One poll reads the model's register
blocks through the meter's gateway, all under one `clock.timeout(config.timeout)`; a poll that
does not finish in time fails.

Freshness (ARCHITECTURE.md, safety rule 4: a silent meter is never "zero" nor "last value
forever"): a reading is valid while

    now - reading.monotonic <= 2 * polling_period + timeout

where `reading.monotonic` is when its poll *started*. When the meter works, a successful poll
ends at most `timeout` after it starts and polls start every period, so a reading is replaced
before it is `period + timeout` old; the bound tolerates exactly one failed or skipped poll.
After that, `reading_valid` is False and `valid_reading` returns None, whatever the state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
import logging
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .catalog import ModelRegistry
from .models import plan_reads
from .reading import DecodeError, MeterReading, OutOfRangeError, build_reading, decode_blocks
from .transport import (
    DEFAULT_RECONNECT_MAX,
    DEFAULT_RECONNECT_MIN,
    DeviceError,
    Gateway,
    NotConnectedError,
    default_client_factory,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from ..clock import Cancelable, Clock
    from .config import MeterConfig
    from .models import MeterModel, ReadBlock
    from .transport import ClientFactory

_LOGGER = logging.getLogger(__name__)


class MeterState(StrEnum):
    """Connection state of a meter, as the product shows it."""

    CONNECTED = "connected"  # the last poll succeeded
    NOT_CONNECTED = "not_connected"  # not polled yet, or the meter cannot be reached
    ERROR = "error"  # the meter answers, but not with usable values (see `reason`)


@dataclass(frozen=True, slots=True)
class MeterStatus:
    """State, why, and when the meter last answered."""

    state: MeterState
    reason: str | None
    last_success: datetime | None


@dataclass(frozen=True, slots=True)
class MeterReadingReceived:
    """A poll succeeded."""

    meter_id: str
    reading: MeterReading


@dataclass(frozen=True, slots=True)
class MeterStateChanged:
    """A meter's state changed (connected / not connected / error)."""

    meter_id: str
    state: MeterState
    previous: MeterState
    reason: str | None


type MeterEvent = MeterReadingReceived | MeterStateChanged
type MeterListener = Callable[[MeterEvent], None]


class Meter:
    """One polled meter: its config, model, state and last reading."""

    def __init__(
        self,
        config: MeterConfig,
        model: MeterModel,
        gateway: Gateway,
        clock: Clock,
        emit: Callable[[MeterEvent], None],
    ) -> None:
        self.config = config
        self.model = model
        self.gateway = gateway
        self._clock = clock
        self._emit = emit
        self._blocks: tuple[ReadBlock, ...] = plan_reads(model)
        self.state = MeterState.NOT_CONNECTED
        self.reason: str | None = "not polled yet"
        self.reading: MeterReading | None = None
        self.last_success: datetime | None = None
        self._task: asyncio.Task[MeterReading | None] | None = None
        self._timer: Cancelable | None = None
        self._next_due = 0.0
        self.polls = 0
        self.successes = 0
        self.skipped = 0
        self.rejected = 0
        """Polls that failed on a value outside its range (`limits.METER_*`)."""

    @property
    def meter_id(self) -> str:
        """The meter's id (from its config)."""
        return self.config.meter_id

    @property
    def blocks(self) -> tuple[ReadBlock, ...]:
        """The Modbus requests one poll makes."""
        return self._blocks

    @property
    def validity(self) -> float:
        """Seconds a reading stays valid after its poll started: 2 * period + timeout."""
        return self.config.validity

    @property
    def status(self) -> MeterStatus:
        """State, reason and last successful read time."""
        return MeterStatus(self.state, self.reason, self.last_success)

    @property
    def polling(self) -> bool:
        """True while the meter is scheduled."""
        return self._timer is not None

    def reading_valid(self, now: float | None = None) -> bool:
        """True when the last reading is fresh at monotonic time `now` (default: the clock's).

        Fresh: `now - reading.monotonic <= 2 * polling_period + timeout`.
        """
        if self.reading is None:
            return False
        now = self._clock.monotonic() if now is None else now
        return now - self.reading.monotonic <= self.validity

    def valid_reading(self, now: float | None = None) -> MeterReading | None:
        """The last reading if it is fresh, else None (never a stale value)."""
        return self.reading if self.reading_valid(now) else None

    # --- scheduling ---------------------------------------------------------------------

    def start(self) -> None:
        """Poll now, then every period."""
        if self._timer is not None:
            return
        self._next_due = self._clock.monotonic() + self.config.polling_period
        self._timer = self._clock.call_later(self.config.polling_period, self._tick)
        self._start_poll()

    def stop(self) -> asyncio.Task[MeterReading | None] | None:
        """Stop scheduling; cancel the poll in flight (returned, to be awaited)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            return task
        return None

    def _tick(self) -> None:
        now = self._clock.monotonic()
        self._next_due += self.config.polling_period
        if self._next_due <= now:  # fell behind (a long pause): restart the rhythm from now
            self._next_due = now + self.config.polling_period
        self._timer = self._clock.call_later(self._next_due - now, self._tick)
        if self._task is not None and not self._task.done():
            self.skipped += 1  # the previous poll still runs: never queue polls up
            return
        self._start_poll()

    def _start_poll(self) -> None:
        task = asyncio.get_running_loop().create_task(
            self.poll(), name=f"meter poll {self.meter_id}"
        )
        self._task = task

    @property
    def in_flight(self) -> asyncio.Task[MeterReading | None] | None:
        """The scheduled poll that is running now, if any."""
        task = self._task
        return task if task is not None and not task.done() else None

    async def wait_idle(self) -> None:
        """Wait for the poll in flight (if any) to finish."""
        task = self.in_flight
        if task is not None:
            await asyncio.wait((task,))

    # --- one poll -------------------------------------------------------------------------

    async def poll(self) -> MeterReading | None:
        """Read the meter once now; update state and reading, emit events. Never raises."""
        self.polls += 1
        started = self._clock.monotonic()
        wall = self._clock.now()
        try:
            async with self._clock.timeout(self.config.timeout):
                answers = [
                    await self.gateway.read(
                        block.register_type, block.address, block.count, self.config.slave_id
                    )
                    for block in self._blocks
                ]
            values = decode_blocks(self._blocks, answers)
            reading = build_reading(values, timestamp=wall, monotonic=started)
        except TimeoutError:
            self._fail(
                MeterState.NOT_CONNECTED,
                f"{self.config.endpoint}: no answer within {self.config.timeout:g} s",
            )
            return None
        except NotConnectedError as err:
            self._fail(MeterState.NOT_CONNECTED, str(err))
            return None
        except DeviceError as err:
            self._fail(MeterState.ERROR, str(err))
            return None
        except DecodeError as err:
            if isinstance(err, OutOfRangeError):
                self.rejected += 1
            self._fail(MeterState.ERROR, f"{self.config.endpoint}: {err}")
            return None
        except asyncio.CancelledError:
            raise
        except Exception as err:
            _LOGGER.exception("Meter %s: unexpected error while polling", self.meter_id)
            self._fail(MeterState.ERROR, f"internal error: {err!r}")
            return None
        self.successes += 1
        self.reading = reading
        self.last_success = wall
        self._set_state(MeterState.CONNECTED, None)
        self._emit(MeterReadingReceived(self.meter_id, reading))
        return reading

    def _fail(self, state: MeterState, reason: str) -> None:
        self._set_state(state, reason)

    def _set_state(self, state: MeterState, reason: str | None) -> None:
        previous = self.state
        self.reason = reason
        if state is previous:
            return
        self.state = state
        if state is MeterState.CONNECTED:
            _LOGGER.info("Meter %s (%s) connected", self.meter_id, self.config.endpoint)
        else:
            _LOGGER.warning("Meter %s %s: %s", self.meter_id, state.value, reason)
        self._emit(MeterStateChanged(self.meter_id, state, previous, reason))


class MeterPool:
    """Every configured meter, the gateways they share, and their polling.

    `add` builds a meter (checking that its model exists and that it can share its gateway);
    `start` begins polling (meters added later start at once); `subscribe` delivers
    `MeterReadingReceived` and `MeterStateChanged` events.
    """

    def __init__(
        self,
        clock: Clock,
        models: ModelRegistry | None = None,
        *,
        reconnect_min: float = DEFAULT_RECONNECT_MIN,
        reconnect_max: float = DEFAULT_RECONNECT_MAX,
        client_factory: ClientFactory = default_client_factory,
    ) -> None:
        self.clock = clock
        self.models = models if models is not None else ModelRegistry()
        self._reconnect = (reconnect_min, reconnect_max)
        self._client_factory = client_factory
        self._meters: dict[str, Meter] = {}
        self._gateways: dict[str, Gateway] = {}
        self._listeners: list[MeterListener] = []
        self._running = False

    # --- configuration --------------------------------------------------------------------

    @property
    def meters(self) -> dict[str, Meter]:
        """Meters by id (a copy)."""
        return dict(self._meters)

    @property
    def gateways(self) -> dict[str, Gateway]:
        """Gateways by key (a copy)."""
        return dict(self._gateways)

    def __getitem__(self, meter_id: str) -> Meter:
        return self._meters[meter_id]

    def __iter__(self) -> Iterator[Meter]:
        return iter(list(self._meters.values()))

    def __len__(self) -> int:
        return len(self._meters)

    def add(self, config: MeterConfig) -> Meter:
        """Add a meter; ConfigError for a duplicate id, unknown model or gateway conflict."""
        if config.meter_id in self._meters:
            raise ConfigError(f"a meter with id {config.meter_id!r} already exists")
        model = self.models.get(config.model)
        gateway = self._gateways.get(config.gateway_key)
        if gateway is not None:
            conflict = gateway.compatible(config)
            if conflict is not None:
                raise ConfigError(f"meter {config.name!r}: {conflict}")
            for other in gateway.users:
                if self._meters[other].config.slave_id == config.slave_id:
                    raise ConfigError(
                        f"meter {config.name!r}: slave id {config.slave_id} on "
                        f"{config.gateway_key} is already used by meter "
                        f"{self._meters[other].config.name!r}"
                    )
        else:
            gateway = Gateway(
                config,
                self.clock,
                reconnect_min=self._reconnect[0],
                reconnect_max=self._reconnect[1],
                client_factory=self._client_factory,
            )
            self._gateways[gateway.key] = gateway
        gateway.users.add(config.meter_id)
        meter = Meter(config, model, gateway, self.clock, self._dispatch)
        self._meters[config.meter_id] = meter
        if self._running:
            meter.start()
        return meter

    async def remove(self, meter_id: str) -> None:
        """Stop and forget a meter; close its gateway when no other meter uses it."""
        meter = self._meters.pop(meter_id, None)
        if meter is None:
            raise ConfigError(f"unknown meter {meter_id!r}")
        task = meter.stop()
        if task is not None:
            await asyncio.wait((task,))
        gateway = meter.gateway
        gateway.users.discard(meter_id)
        if not gateway.users:
            del self._gateways[gateway.key]
            await gateway.close()

    # --- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling every meter (the first poll of each starts now)."""
        self._running = True
        for meter in self._meters.values():
            meter.start()

    async def stop(self) -> None:
        """Stop polling and close every connection."""
        self._running = False
        tasks = [task for meter in self._meters.values() if (task := meter.stop()) is not None]
        if tasks:
            await asyncio.wait(tasks)
        for gateway in self._gateways.values():
            await gateway.close()

    async def wait_idle(self) -> None:
        """Wait until no poll is in flight (polls started meanwhile are awaited too)."""
        while True:
            tasks = [task for meter in self._meters.values() if (task := meter.in_flight)]
            if not tasks:
                return
            await asyncio.wait(tasks)

    async def poll_all(self) -> None:
        """Poll every meter once now, concurrently (outside the schedule)."""
        await asyncio.gather(*(meter.poll() for meter in self._meters.values()))

    # --- events ---------------------------------------------------------------------------

    def subscribe(self, listener: MeterListener) -> Callable[[], None]:
        """Call `listener` with every meter event; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _dispatch(self, event: MeterEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                _LOGGER.exception("Meter event listener failed on %s", event)
