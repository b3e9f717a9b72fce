"""A simulated OCPP 1.6J charge point: connects, boots, charges EVs, obeys charging profiles.

Built on the `ocpp` library's `ChargePoint` (framing, routing, schema validation). Every wait
goes through the injected clock (`tools.sim.clock`), so tests drive it with a manual clock.
One charger costs a websocket, a few small tasks and no thread: a thousand fit in one process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
import logging
import math
import random
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .clock import Napper, ScaledClock, sleep
from .profiles import ACCEPTED, REJECTED, TX, Limit, ProfileStore, parse_datetime

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

    from .clock import SimClock

_LOGGER = logging.getLogger("tools.sim")
# The ocpp library logs every frame at INFO; keep that behind its own logger.
FRAME_LOGGER = logging.getLogger("tools.sim.frames")

MIN_CURRENT = 6.0  # IEC 61851: below this an EV cannot charge
_REGISTER_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
PHASES = ("L1", "L2", "L3")

ALL_MEASURANDS = (
    "Current.Import",
    "Current.Offered",
    "Power.Active.Import",
    "Energy.Active.Import.Register",
    "Voltage",
)

# key -> (read-only, default value); values that depend on the charger are filled in __init__.
_CONFIGURATION: dict[str, tuple[bool, str]] = {
    "AllowOfflineTxForUnknownId": (False, "false"),
    "AuthorizationCacheEnabled": (False, "false"),
    "AuthorizeRemoteTxRequests": (False, "false"),
    "ChargeProfileMaxStackLevel": (True, "8"),
    "ChargingScheduleAllowedChargingRateUnit": (True, "Current,Power"),
    "ChargingScheduleMaxPeriods": (True, "24"),
    "ClockAlignedDataInterval": (False, "0"),
    "ConnectionTimeOut": (False, "60"),
    "ConnectorPhaseRotation": (False, "0.RST"),
    "GetConfigurationMaxKeys": (True, "64"),
    "HeartbeatInterval": (False, "300"),
    "LocalAuthorizeOffline": (False, "false"),
    "LocalPreAuthorize": (False, "false"),
    "MaxChargingProfilesInstalled": (True, "20"),
    "MeterValueSampleInterval": (False, "10"),
    "MeterValuesAlignedData": (False, ""),
    "MeterValuesSampledData": (False, ",".join(ALL_MEASURANDS)),
    "NumberOfConnectors": (True, "1"),
    "ResetRetries": (False, "3"),
    "StopTransactionOnEVSideDisconnect": (True, "true"),
    "StopTransactionOnInvalidId": (False, "true"),
    "StopTxnAlignedData": (False, ""),
    "StopTxnSampledData": (False, "Energy.Active.Import.Register"),
    "SupportedFeatureProfiles": (True, "Core,FirmwareManagement,RemoteTrigger,SmartCharging"),
    "TransactionMessageAttempts": (False, "3"),
    "TransactionMessageRetryInterval": (False, "60"),
    "UnlockConnectorOnEVSideDisconnect": (False, "true"),
    "WebSocketPingInterval": (False, "0"),
}
_INTEGER_KEYS = frozenset(
    {
        "HeartbeatInterval",
        "MeterValueSampleInterval",
        "ClockAlignedDataInterval",
        "ConnectionTimeOut",
        "ResetRetries",
        "TransactionMessageAttempts",
        "TransactionMessageRetryInterval",
        "WebSocketPingInterval",
    }
)
_TRIGGERABLE = frozenset(
    {
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    }
)


class CallFailedError(Exception):
    """A request to the central system got no usable answer."""


class OfflineError(CallFailedError):
    """No accepted connection to send on."""


def timestamp(moment: datetime) -> str:
    """OCPP timestamp: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Ev:
    """An electric vehicle: how it draws and how long it stays."""

    phases: int = 3  # 1 or 3
    max_current: float = 16.0  # A per phase
    need_wh: float = 20_000.0  # energy it takes before it stops drawing (SuspendedEV)
    id_tag: str = "SIMTAG01"
    stay: float | None = None  # seconds it stays plugged in; None = the charger's random pick
    delivered_wh: float = 0.0

    @property
    def full(self) -> bool:
        """The battery took what it needed."""
        return self.delivered_wh >= self.need_wh


@dataclass(slots=True)
class SessionRecord:
    """A finished transaction, as this charger reported it."""

    connector_id: int
    transaction_id: int
    id_tag: str
    meter_start: int
    meter_stop: int
    reason: str


@dataclass(slots=True)
class Connector:
    """One connector's live state."""

    connector_id: int
    napper: Napper
    status: str = "Available"
    error_code: str = "NoError"
    operative: bool = True
    scheduled_operative: bool | None = None  # ChangeAvailability waiting for the session end
    ev: Ev | None = None
    leave_at: float = math.inf  # monotonic time the EV's driver unplugs
    transaction_id: int | None = None
    id_tag: str | None = None
    meter_start: int = 0
    tx_started_at: datetime | None = None
    starting: bool = False
    resume_after_boot: bool = False
    pending_tx_profile: dict[str, Any] | None = None
    register_wh: float = 0.0
    current: float = 0.0  # A per phase drawn now
    offered: float = 0.0  # A per phase the station offers now
    phases_in_use: int = 0
    last_integrated: float = 0.0


def default_ev_factory(rng: random.Random, id_tags: Sequence[str] | None = None) -> Ev:
    """A random EV: 70 % three-phase, 16 or 32 A, 5 to 40 kWh to charge."""
    phases = 3 if rng.random() < 0.7 else 1  # noqa: PLR2004
    max_current = rng.choice((16.0, 16.0, 32.0)) if phases == 3 else rng.choice((16.0, 32.0))  # noqa: PLR2004
    tag = rng.choice(id_tags) if id_tags else f"{rng.getrandbits(32):08X}"
    return Ev(phases=phases, max_current=max_current, need_wh=rng.uniform(5e3, 40e3), id_tag=tag)


class SimulatedChargePoint(ChargePoint):
    """One simulated OCPP 1.6J charger.

    `url` is the central system's base URL; the charge box identity is appended to it
    (`ws://127.0.0.1:9000/ocpp` -> `ws://127.0.0.1:9000/ocpp/SIM-01`).

    `await run()` connects (and reconnects) until `await stop()`. With `auto=True` every
    connector lives an EV life cycle with random dwell times; with `auto=False` a test drives it
    with `plug_in()`, `unplug()` and `swipe()`.
    """

    def __init__(
        self,
        station_id: str,
        url: str,
        *,
        connectors: int = 1,
        clock: SimClock | None = None,
        rng: random.Random | None = None,
        password: str | None = None,
        vendor: str = "Voltaris",
        model: str = "VX-22",
        serial: str | None = None,
        firmware: str = "1.0.0",
        meter_interval: int = 10,
        max_current: float = 32.0,
        voltage: float = 230.0,
        auto: bool = True,
        initial_idle: tuple[float, float] = (5.0, 120.0),
        idle_time: tuple[float, float] = (120.0, 1800.0),
        session_time: tuple[float, float] = (1200.0, 7200.0),
        finishing_time: tuple[float, float] = (10.0, 120.0),
        reconnect_delay: tuple[float, float] = (5.0, 30.0),
        reboot_time: float = 5.0,
        step_time: float = 3.0,
        ev_factory: Callable[[random.Random], Ev] | None = None,
        id_tags: Sequence[str] | None = None,
        validate: bool = True,
        response_timeout: float = 30.0,
        open_timeout: float = 10.0,
        profile_history: int | None = None,
    ) -> None:
        super().__init__(station_id, None, response_timeout=response_timeout, logger=FRAME_LOGGER)
        if connectors < 1:
            raise ValueError("a charger has at least one connector")
        self.station_id = station_id
        self.url = f"{url.rstrip('/')}/{quote(station_id, safe='')}"
        self.clock: SimClock = clock or ScaledClock()
        self.rng = rng or random.Random(station_id)
        self.password = password
        self.vendor = vendor
        self.model = model
        self.serial = serial or f"SN-{station_id}"
        self.firmware = firmware
        self.max_current = max_current
        self.voltage = voltage
        self.auto = auto
        self.initial_idle = initial_idle
        self.idle_time = idle_time
        self.session_time = session_time
        self.finishing_time = finishing_time
        self.reconnect_delay = reconnect_delay
        self.reboot_time = reboot_time
        self.step_time = step_time
        self.ev_factory = ev_factory or (lambda rng: default_ev_factory(rng, id_tags))
        self.validate = validate
        self.open_timeout = open_timeout

        self.configuration = {key: value for key, (_, value) in _CONFIGURATION.items()} | {
            "NumberOfConnectors": str(connectors),
            "MeterValueSampleInterval": str(meter_interval),
        }
        self.profiles = ProfileStore(
            connectors,
            max_stack_level=int(self.configuration["ChargeProfileMaxStackLevel"]),
            max_profiles=int(self.configuration["MaxChargingProfilesInstalled"]),
            voltage=voltage,
            history=profile_history,
        )
        start = self.clock.monotonic()
        # Energy registers never go back, also from one run of the simulator to the next: they
        # start at a random base plus more than a connector can deliver since 2025 (22 kW).
        since = max((self.clock.now() - _REGISTER_EPOCH).total_seconds(), 0.0)
        self.connectors: dict[int, Connector] = {
            cid: Connector(
                cid,
                Napper(self.clock),
                register_wh=float(self.rng.randrange(100_000, 5_000_000)) + since * 6.2,
                last_integrated=start,
            )
            for cid in range(1, connectors + 1)
        }
        self.station_status = "Available"
        self.registration: str | None = None
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self.boots = 0
        self.connects = 0
        self.sessions: list[SessionRecord] = []
        self.in_flight = 0  # requests waiting for their answer (tests wait for 0)

        self._running = False
        self._done: asyncio.Event | None = None
        self._accepted = asyncio.Event()
        self._closed: asyncio.Future[None] | None = None
        self._reconnect_napper = Napper(self.clock)
        self._reboot_delay: float | None = None
        self._queued: list[Any] = []  # transaction messages to send once back online
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._remote_start: Connector | None = None
        self._ticks: dict[str, float] = {}

    # ================================================================== state
    @property
    def connected(self) -> bool:
        """A websocket is open."""
        return self._closed is not None and not self._closed.done()

    @property
    def accepted(self) -> bool:
        """Connected and the last BootNotification was accepted."""
        return self._accepted.is_set()

    def connector(self, connector_id: int) -> Connector:
        """A connector by id (KeyError when there is none)."""
        return self.connectors[connector_id]

    def limit_amps(self, connector_id: int) -> float | None:
        """Composite charging profile limit of a connector now (A per phase), None = none."""
        return self.profiles.limit_amps(connector_id, self.clock.now())

    @property
    def power_w(self) -> float:
        """Power drawn by the whole station now."""
        return sum(c.current * self.voltage * c.phases_in_use for c in self.connectors.values())

    async def wait_accepted(self) -> None:
        """Wait until the charger is connected and accepted."""
        await self._accepted.wait()

    # ================================================================== run / stop
    async def run(self) -> None:
        """Connect, boot and operate until `stop()`; reconnects when the connection drops."""
        if self._running:
            raise RuntimeError(f"{self.station_id} is already running")
        self._running = True
        self._done = asyncio.Event()
        if self.auto:
            for connector in self.connectors.values():
                self._spawn(self._ev_life(connector), lifetime=True)
        try:
            failures = 0
            while self._running:
                failures = 0 if await self._connect_once() else failures + 1
                if not self._running:
                    break
                if self._reboot_delay is not None:
                    delay, self._reboot_delay = self._reboot_delay, None
                else:
                    low, high = self.reconnect_delay
                    delay = min(self.rng.uniform(low, high) * 2 ** min(failures, 4), 300.0)
                await self._reconnect_napper.nap(delay)
        finally:
            self._running = False
            await _cancel_all(self._tasks)
            self._done.set()

    async def stop(self) -> None:
        """Close the connection and end `run()` (waits for it)."""
        self._running = False
        self._reconnect_napper.poke()
        connection = self._connection
        if connection is not None and self.connected:
            with contextlib.suppress(Exception):
                await connection.close(code=1001, reason="Charger going away")
        if self._done is not None:
            await self._done.wait()

    async def _connect_once(self) -> bool:
        """One connection, from handshake to close; returns whether it was established."""
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.station_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            ws = await connect(
                self.url,
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=headers,
                compression=None,  # a deflate context costs ~100 kB per connection
                proxy=None,
                open_timeout=self.open_timeout,
                ping_interval=None,  # the central system pings; we answer
                close_timeout=5,
                user_agent_header=f"{self.vendor} {self.model}/{self.firmware}",
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as err:
            _LOGGER.info("%s: cannot connect to %s: %s", self.station_id, self.url, err)
            return False
        if not self._running:
            await ws.close(code=1001)
            return True
        self.connects += 1
        self._connection = ws
        self._response_queue = asyncio.Queue()
        self._call_lock = asyncio.Lock()
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = closed
        _LOGGER.debug("%s: connected", self.station_id)
        self._spawn(self._operate())
        try:
            async for message in ws:
                await self.route_message(message)
        except ConnectionClosed as err:
            _LOGGER.info("%s: connection lost: %s", self.station_id, err)
        finally:
            self._accepted.clear()
            closed.set_result(None)
            await _cancel_all(self._conn_tasks)
            with contextlib.suppress(Exception):
                await ws.close()
        _LOGGER.debug("%s: disconnected (%s)", self.station_id, ws.close_code)
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any], *, lifetime: bool = False) -> None:
        """Run a job; connection jobs are cancelled when the connection closes."""
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._tasks if lifetime else self._conn_tasks
        tasks.add(task)
        task.add_done_callback(lambda t: self._job_done(tasks, t))

    def _job_done(self, tasks: set[asyncio.Task[Any]], task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("%s: job failed", self.station_id, exc_info=task.exception())

    # ================================================================== requests to the CS
    async def _call(self, payload: Any, *, need_accepted: bool = True) -> Any:
        """Send a request; raises OfflineError or CallFailedError instead of hanging."""
        closed = self._closed
        if closed is None or closed.done() or (need_accepted and not self.accepted):
            raise OfflineError(f"{self.station_id}: offline")
        task = asyncio.ensure_future(
            self.call(payload, suppress=False, skip_schema_validation=not self.validate)
        )
        # Whoever is not there to read it (we were cancelled, the connection closed), the
        # task's exception is retrieved.
        task.add_done_callback(_retrieve)
        self.in_flight += 1
        try:
            await asyncio.wait((task, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.in_flight -= 1
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            raise OfflineError(f"{self.station_id}: connection closed during the request")
        try:
            return task.result()
        except ConnectionClosed as err:
            raise OfflineError(f"{self.station_id}: {err}") from err
        except (OCPPError, TimeoutError) as err:
            action = type(payload).__name__
            _LOGGER.warning("%s: %s failed: %r", self.station_id, action, err)
            raise CallFailedError(f"{self.station_id}: {action} failed: {err!r}") from err

    async def _try(self, payload: Any) -> Any | None:
        """Best-effort request: None when it could not be sent."""
        try:
            return await self._call(payload)
        except CallFailedError:
            return None

    async def _boot(self) -> int:
        """BootNotification until accepted; returns the interval (raises OfflineError)."""
        while True:
            try:
                result = await self._call(self._boot_payload(), need_accepted=False)
            except OfflineError:
                raise
            except CallFailedError:
                await sleep(self.clock, 30)
                continue
            self.registration = str(result.status)
            interval = int(result.interval)
            if self.registration == ACCEPTED:
                return interval
            _LOGGER.info("%s: boot %s, retry in %s s", self.station_id, self.registration, interval)
            await sleep(self.clock, interval if interval > 0 else 60)

    async def _operate(self) -> None:
        """After the handshake: boot until accepted, then heartbeats and meter values."""
        try:
            interval = await self._boot()
        except OfflineError:
            return
        self.boots += 1
        if interval > 0:
            self.configuration["HeartbeatInterval"] = str(interval)
        self._accepted.set()
        for payload in self._queued[:]:
            if await self._try(payload) is None:
                break
            self._queued.remove(payload)
        await self._send_status(0)
        for connector in self.connectors.values():
            await self._send_status(connector.connector_id)
        for connector in self.connectors.values():
            if connector.resume_after_boot and connector.ev is not None:
                connector.resume_after_boot = False
                self._spawn(self._authorize_and_start(connector, connector.ev.id_tag))
        self._spawn(self._meter_loop())
        await self._heartbeat_loop()

    def _boot_payload(self) -> call.BootNotification:
        return call.BootNotification(
            charge_point_model=self.model,
            charge_point_vendor=self.vendor,
            charge_point_serial_number=self.serial,
            firmware_version=self.firmware,
            meter_type="SimMeter",
        )

    async def _every(self, key: str) -> int:
        """Sleep until the next tick of the period in configuration `key` (fixed cadence: the
        time spent sending does not shift the next tick); returns the period (0 = off)."""
        interval = int(self.configuration[key])
        period = interval if interval > 0 else 60
        now = self.clock.monotonic()
        due = self._ticks.get(key, now) + period
        if due < now:  # fell behind (or the period changed): restart the cadence from now
            due = now + period
        self._ticks[key] = due
        await sleep(self.clock, due - now)
        return interval

    async def _heartbeat_loop(self) -> None:
        self._ticks.pop("HeartbeatInterval", None)
        while True:
            if await self._every("HeartbeatInterval") > 0:
                await self._try(call.Heartbeat())

    async def _meter_loop(self) -> None:
        self._ticks.pop("MeterValueSampleInterval", None)
        while True:
            interval = await self._every("MeterValueSampleInterval")
            changed = self._refresh()
            for connector in changed:
                await self._send_status(connector.connector_id)
            if interval <= 0:
                continue
            for connector in self.connectors.values():
                if connector.transaction_id is not None:
                    await self._send_meter_values(connector, "Sample.Periodic")

    async def _send_status(self, connector_id: int) -> None:
        if connector_id == 0:
            status, error = self.station_status, "NoError"
        else:
            connector = self.connectors[connector_id]
            status, error = connector.status, connector.error_code
        await self._try(
            call.StatusNotification(
                connector_id=connector_id,
                error_code=error,
                status=status,
                timestamp=timestamp(self.clock.now()),
            )
        )

    async def _set_status(self, connector: Connector, status: str) -> None:
        if connector.status != status:
            connector.status = status
            await self._send_status(connector.connector_id)

    def _sampled_values(self, connector: Connector, context: str) -> list[dict[str, Any]]:
        wanted = set(self.configuration["MeterValuesSampledData"].split(","))
        amps = connector.current
        phases = connector.phases_in_use
        values: list[dict[str, Any]] = []

        def add(measurand: str, value: float, unit: str, phase: str | None = None) -> None:
            if measurand not in wanted:
                return
            sample = {
                "value": f"{value:.1f}" if unit != "Wh" else f"{value:.0f}",
                "context": context,
                "measurand": measurand,
                "location": "Outlet",
                "unit": unit,
            }
            if phase is not None:
                sample["phase"] = phase
            values.append(sample)

        for index, phase in enumerate(PHASES):
            add("Current.Import", amps if index < phases else 0.0, "A", phase)
        add("Current.Offered", connector.offered, "A")
        add("Power.Active.Import", amps * self.voltage * phases, "W")
        add("Energy.Active.Import.Register", connector.register_wh, "Wh")
        for phase in PHASES:
            add("Voltage", self.voltage + self.rng.uniform(-2.0, 2.0), "V", f"{phase}-N")
        return values

    async def _send_meter_values(self, connector: Connector, context: str) -> None:
        self._integrate()
        await self._try(
            call.MeterValues(
                connector_id=connector.connector_id,
                transaction_id=connector.transaction_id,
                meter_value=[
                    {
                        "timestamp": timestamp(self.clock.now()),
                        "sampled_value": self._sampled_values(connector, context),
                    }
                ],
            )
        )

    # ================================================================== electricity
    def _integrate(self) -> None:
        """Add the energy drawn since the last call to the registers."""
        now = self.clock.monotonic()
        for connector in self.connectors.values():
            elapsed = now - connector.last_integrated
            connector.last_integrated = now
            if connector.current > 0 and elapsed > 0:
                wh = connector.current * self.voltage * connector.phases_in_use * elapsed / 3600
                connector.register_wh += wh
                if connector.ev is not None:
                    connector.ev.delivered_wh += wh

    def _refresh(self) -> list[Connector]:
        """Recompute what every EV draws under the limits now; returns connectors whose
        status changed (the caller sends their StatusNotification)."""
        self._integrate()
        now = self.clock.now()
        station = self.profiles.station_limit(now)
        wants: dict[int, float] = {}
        phases_allowed: dict[int, int] = {}
        for cid, connector in self.connectors.items():
            limit = Limit(self.max_current).min(self.profiles.tx_limit(cid, now)).min(station)
            connector.offered = limit.amps if limit.amps >= MIN_CURRENT else 0.0
            phases_allowed[cid] = limit.phases or 3
            ev = connector.ev
            if connector.transaction_id is not None and ev is not None and not ev.full:
                wants[cid] = min(ev.max_current, connector.offered)
        if station is not None:
            wants = _share(wants, station.amps)
        changed = []
        for cid, connector in self.connectors.items():
            amps = wants.get(cid, 0.0)
            if amps < MIN_CURRENT:
                amps = 0.0
            connector.current = amps
            ev = connector.ev
            connector.phases_in_use = (
                min(ev.phases, phases_allowed[cid]) if ev is not None and amps > 0 else 0
            )
            if connector.transaction_id is None or ev is None or not connector.operative:
                continue
            if ev.full:
                status = "SuspendedEV"
            elif amps > 0:
                status = "Charging"
            else:
                status = "SuspendedEVSE"
            if status != connector.status:
                connector.status = status
                changed.append(connector)
        return changed

    def _refresh_in_background(self) -> None:
        for connector in self._refresh():
            self._spawn(self._send_status(connector.connector_id))

    # ================================================================== EV life cycle
    async def _ev_life(self, connector: Connector) -> None:
        """Random EVs come, charge and go, forever."""
        await connector.napper.nap(self.rng.uniform(*self.initial_idle))
        while True:
            if connector.ev is None:
                if (
                    self.accepted
                    and connector.operative
                    and self.station_status == "Available"
                    and connector.status == "Available"
                ):
                    await self.plug_in(connector.connector_id)
                    continue
                await connector.napper.nap(self.rng.uniform(*self.idle_time))
                continue
            remaining = connector.leave_at - self.clock.monotonic()
            if remaining > 0:
                await connector.napper.nap(remaining)
                continue
            if connector.transaction_id is not None and self.rng.random() < 0.5:  # noqa: PLR2004
                await self.swipe(connector.connector_id)
                await connector.napper.nap(self.rng.uniform(*self.finishing_time))
            await self.unplug(connector.connector_id)
            await connector.napper.nap(self.rng.uniform(*self.idle_time))

    async def plug_in(self, connector_id: int, ev: Ev | None = None, *, start: bool = True) -> None:
        """An EV is plugged in; with `start` its driver presents the EV's card."""
        connector = self.connectors[connector_id]
        if connector.ev is not None:
            raise RuntimeError(f"{self.station_id}/{connector_id}: an EV is already plugged in")
        self._attach_ev(connector, ev or self.ev_factory(self.rng))
        if not connector.operative:
            return
        await self._set_status(connector, "Preparing")
        if start and connector.ev is not None:
            started = await self._authorize_and_start(connector, connector.ev.id_tag)
            # Offline: the driver tries again once the charger is back.
            connector.resume_after_boot = not started and not self.accepted

    def _attach_ev(self, connector: Connector, ev: Ev) -> None:
        connector.ev = ev
        stay = ev.stay if ev.stay is not None else self.rng.uniform(*self.session_time)
        connector.leave_at = self.clock.monotonic() + stay
        connector.napper.poke()

    async def swipe(self, connector_id: int, id_tag: str | None = None) -> None:
        """The driver presents a card: stops the running session (reason Local)."""
        connector = self.connectors[connector_id]
        if connector.transaction_id is not None:
            await self._stop_transaction(connector, "Local", id_tag or connector.id_tag)
        elif connector.ev is not None and id_tag is not None:
            await self._authorize_and_start(connector, id_tag)

    async def unplug(self, connector_id: int) -> None:
        """The EV leaves (a running session stops with reason EVDisconnected)."""
        connector = self.connectors[connector_id]
        if connector.transaction_id is not None:
            await self._stop_transaction(connector, "EVDisconnected")
        connector.ev = None
        connector.leave_at = math.inf
        connector.resume_after_boot = False
        self._apply_scheduled_availability(connector)
        await self._set_status(connector, self._idle_status(connector))
        connector.napper.poke()

    def _idle_status(self, connector: Connector) -> str:
        if not connector.operative or self.station_status == "Unavailable":
            return "Unavailable"
        return "Preparing" if connector.ev is not None else "Available"

    async def _authorize_and_start(
        self, connector: Connector, id_tag: str, *, authorize: bool = True
    ) -> bool:
        if authorize:
            result = await self._try(call.Authorize(id_tag=id_tag))
            if result is None:
                return False
            if result.id_tag_info.get("status") != ACCEPTED:
                _LOGGER.info("%s: card %s refused", self.station_id, id_tag)
                return False
        return await self._start_transaction(connector, id_tag)

    async def _start_transaction(self, connector: Connector, id_tag: str) -> bool:
        if connector.transaction_id is not None or connector.starting or connector.ev is None:
            return False
        connector.starting = True
        try:
            self._integrate()
            now = self.clock.now()
            meter_start = round(connector.register_wh)
            result = await self._try(
                call.StartTransaction(
                    connector_id=connector.connector_id,
                    id_tag=id_tag,
                    meter_start=meter_start,
                    timestamp=timestamp(now),
                )
            )
        finally:
            connector.starting = False
        if result is None:
            return False
        connector.transaction_id = int(result.transaction_id)
        connector.id_tag = id_tag
        connector.meter_start = meter_start
        connector.tx_started_at = now
        self.profiles.start_transaction(connector.connector_id, connector.transaction_id, now)
        if result.id_tag_info.get("status") != ACCEPTED or connector.ev is None:
            reason = "DeAuthorized" if connector.ev is not None else "EVDisconnected"
            await self._stop_transaction(connector, reason)
            return False
        profile, connector.pending_tx_profile = connector.pending_tx_profile, None
        if profile is not None:
            self.profiles.set_profile(connector.connector_id, profile, now)
        changed = self._refresh()
        if connector not in changed:
            await self._send_status(connector.connector_id)  # at least one status for the start
        for other in changed:
            await self._send_status(other.connector_id)
        return True

    async def _stop_transaction(
        self, connector: Connector, reason: str, id_tag: str | None = None
    ) -> None:
        if connector.transaction_id is None:
            return
        self._integrate()
        now = self.clock.now()
        transaction_id, connector.transaction_id = connector.transaction_id, None
        started = connector.tx_started_at or now
        meter_stop = round(connector.register_wh)
        self.profiles.end_transaction(connector.connector_id)
        connector.current = 0.0
        connector.phases_in_use = 0
        record = SessionRecord(
            connector.connector_id,
            transaction_id,
            connector.id_tag or "",
            connector.meter_start,
            meter_stop,
            reason,
        )
        self.sessions.append(record)
        del self.sessions[:-100]
        payload = call.StopTransaction(
            meter_stop=meter_stop,
            timestamp=timestamp(now),
            transaction_id=transaction_id,
            reason=reason,
            id_tag=id_tag,
            transaction_data=[
                _register_sample(started, connector.meter_start, "Transaction.Begin"),
                _register_sample(now, meter_stop, "Transaction.End"),
            ],
        )
        try:
            await self._call(payload)
        except OfflineError:
            self._queued.append(payload)  # sent after the next accepted boot
        except CallFailedError:
            pass
        except asyncio.CancelledError:
            self._queued.append(payload)
            raise
        if connector.ev is not None and connector.operative:
            await self._set_status(connector, "Finishing")
        for other in self._refresh():  # the station limit may now go to the others
            await self._send_status(other.connector_id)
        if self.accepted:
            await self._send_meter_values(connector, "Sample.Periodic")

    def _apply_scheduled_availability(self, connector: Connector) -> None:
        if connector.scheduled_operative is not None and connector.transaction_id is None:
            connector.operative = connector.scheduled_operative
            connector.scheduled_operative = None

    # ================================================================== reboot, firmware
    async def reboot(self, reason: str = "Reboot") -> None:
        """Stop the sessions, close the connection, come back after `reboot_time` and boot."""
        for connector in self.connectors.values():
            if connector.transaction_id is not None:
                await self._stop_transaction(connector, reason)
                connector.resume_after_boot = connector.ev is not None
            if connector.ev is not None:
                connector.status = "Preparing" if connector.operative else "Unavailable"
        self._reboot_delay = self.reboot_time
        self._accepted.clear()
        connection = self._connection
        if connection is not None and self.connected:
            await connection.close(code=1012, reason="Rebooting")

    async def _wait_accepted_and_try(self, payload: Any) -> None:
        await self._accepted.wait()
        await self._try(payload)

    async def _firmware_update(self, location: str, retrieve_date: str) -> None:
        retrieve = parse_datetime(retrieve_date) or self.clock.now()
        delay = (retrieve - self.clock.now()).total_seconds()
        if delay > 0:
            await sleep(self.clock, delay)
        for status in ("Downloading", "Downloaded", "Installing"):
            self.firmware_status = status
            await self._wait_accepted_and_try(call.FirmwareStatusNotification(status=status))
            await sleep(self.clock, self.step_time)
        name = location.rstrip("/").rsplit("/", 1)[-1]
        self.firmware = name.rsplit(".", 1)[0] or f"{self.firmware}+1"
        self.firmware_status = "Installed"
        await self._wait_accepted_and_try(call.FirmwareStatusNotification(status="Installed"))
        await self.reboot("Reboot")

    async def _diagnostics_upload(self) -> None:
        for status in ("Uploading", "Uploaded"):
            if status == "Uploaded":
                await sleep(self.clock, self.step_time)
            self.diagnostics_status = status
            await self._wait_accepted_and_try(call.DiagnosticsStatusNotification(status=status))

    # ================================================================== requests from the CS
    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RemoteStartTransaction:
        """Start a session; plugs a (simulated) EV in when none is there."""
        self._remote_start = None
        if charging_profile is not None and charging_profile.get("charging_profile_purpose") != TX:
            return call_result.RemoteStartTransaction(status=REJECTED)
        if connector_id is not None:
            candidate = self.connectors.get(connector_id)
            candidates = [candidate] if candidate is not None else []
        else:
            # Prefer a connector where an EV waits, then a free one.
            candidates = sorted(self.connectors.values(), key=lambda c: c.ev is None)
        for connector in candidates:
            if (
                connector.operative
                and self.station_status == "Available"
                and connector.transaction_id is None
                and not connector.starting
                and connector.status in ("Available", "Preparing")
            ):
                connector.pending_tx_profile = charging_profile
                if connector.ev is None:
                    ev = self.ev_factory(self.rng)
                    ev.id_tag = id_tag
                    self._attach_ev(connector, ev)
                self._remote_start = connector
                return call_result.RemoteStartTransaction(status=ACCEPTED)
        return call_result.RemoteStartTransaction(status=REJECTED)

    @after(Action.remote_start_transaction)
    def after_remote_start_transaction(self, id_tag: str, **_: Any) -> None:
        """Run the accepted remote start."""
        connector, self._remote_start = self._remote_start, None
        if connector is not None:
            self._spawn(self._remote_start_session(connector, id_tag), lifetime=True)

    async def _remote_start_session(self, connector: Connector, id_tag: str) -> None:
        await self._set_status(connector, "Preparing")
        authorize = self.configuration["AuthorizeRemoteTxRequests"] == "true"
        await self._authorize_and_start(connector, id_tag, authorize=authorize)

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(
        self, transaction_id: int, **_: Any
    ) -> call_result.RemoteStopTransaction:
        """Stop a running session."""
        found = any(c.transaction_id == transaction_id for c in self.connectors.values())
        return call_result.RemoteStopTransaction(status=ACCEPTED if found else REJECTED)

    @after(Action.remote_stop_transaction)
    def after_remote_stop_transaction(self, transaction_id: int, **_: Any) -> None:
        """Stop it (reason Remote); the EV stays plugged in until its driver comes."""
        for connector in self.connectors.values():
            if connector.transaction_id == transaction_id:
                self._spawn(self._stop_transaction(connector, "Remote"), lifetime=True)

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:  # noqa: A002
        """Accept; the reboot follows the answer."""
        del type
        return call_result.Reset(status=ACCEPTED)

    @after(Action.reset)
    def after_reset(self, type: str, **_: Any) -> None:  # noqa: A002
        """Reboot."""
        self._spawn(self.reboot("HardReset" if type == "Hard" else "SoftReset"), lifetime=True)

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        """Unlock: the session stops (UnlockCommand) and the EV goes."""
        if connector_id not in self.connectors:
            return call_result.UnlockConnector(status="NotSupported")
        return call_result.UnlockConnector(status="Unlocked")

    @after(Action.unlock_connector)
    def after_unlock_connector(self, connector_id: int, **_: Any) -> None:
        """Stop and unplug."""
        connector = self.connectors.get(connector_id)
        if connector is not None and connector.ev is not None:
            self._spawn(self._unlock(connector), lifetime=True)

    async def _unlock(self, connector: Connector) -> None:
        if connector.transaction_id is not None:
            await self._stop_transaction(connector, "UnlockCommand")
        await self.unplug(connector.connector_id)

    @on(Action.change_availability)
    def on_change_availability(
        self,
        connector_id: int,
        type: str,  # noqa: A002
        **_: Any,
    ) -> call_result.ChangeAvailability:
        """Operative/Inoperative; Scheduled when a session runs on a connector concerned."""
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.ChangeAvailability(status=REJECTED)
        operative = type == "Operative"
        targets = (
            list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        )
        if connector_id == 0:
            self.station_status = "Available" if operative else "Unavailable"
        scheduled = False
        for connector in targets:
            if connector.transaction_id is not None and not operative:
                connector.scheduled_operative = operative
                scheduled = True
            else:
                connector.operative = operative
                connector.scheduled_operative = None
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else ACCEPTED)

    @after(Action.change_availability)
    def after_change_availability(self, connector_id: int, **_: Any) -> None:
        """Report the new statuses."""
        self._spawn(self._report_availability(connector_id))

    async def _report_availability(self, connector_id: int) -> None:
        if connector_id == 0:
            await self._send_status(0)
        targets = (
            list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        )
        for connector in targets:
            if connector.transaction_id is None:
                await self._set_status(connector, self._idle_status(connector))

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        """Accept the messages this charger can send."""
        if connector_id is not None and connector_id != 0 and connector_id not in self.connectors:
            return call_result.TriggerMessage(status=REJECTED)
        if requested_message not in _TRIGGERABLE:
            return call_result.TriggerMessage(status="NotImplemented")
        return call_result.TriggerMessage(status=ACCEPTED)

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> None:
        """Send the requested message."""
        if requested_message in _TRIGGERABLE and (
            connector_id is None or connector_id == 0 or connector_id in self.connectors
        ):
            self._spawn(self._triggered(requested_message, connector_id))

    async def _triggered(self, message: str, connector_id: int | None) -> None:
        if message == "BootNotification":
            result = await self._try(self._boot_payload())
            if result is not None and int(result.interval) > 0:
                self.configuration["HeartbeatInterval"] = str(int(result.interval))
        elif message == "Heartbeat":
            await self._try(call.Heartbeat())
        elif message == "FirmwareStatusNotification":
            await self._try(call.FirmwareStatusNotification(status=self.firmware_status))
        elif message == "DiagnosticsStatusNotification":
            await self._try(call.DiagnosticsStatusNotification(status=self.diagnostics_status))
        elif message == "StatusNotification":
            ids = [connector_id] if connector_id is not None else [0, *self.connectors]
            for cid in ids:
                await self._send_status(cid)
        elif message == "MeterValues":
            ids = [connector_id] if connector_id else list(self.connectors)
            for cid in ids:
                await self._send_meter_values(self.connectors[cid], "Trigger")

    @on(Action.get_configuration)
    def on_get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        """Known keys with their values; the others as unknownKey."""
        names = key or list(self.configuration)
        known = [
            {
                "key": name,
                "readonly": _CONFIGURATION.get(name, (True, ""))[0],
                "value": self.configuration[name],
            }
            for name in names
            if name in self.configuration
        ]
        unknown = [name for name in names if name not in self.configuration]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(
        self, key: str, value: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        """Writable keys change; read-only ones are refused; unknown ones not supported."""
        if key not in self.configuration:
            return call_result.ChangeConfiguration(status="NotSupported")
        if _CONFIGURATION[key][0]:
            return call_result.ChangeConfiguration(status=REJECTED)
        if key in _INTEGER_KEYS:
            try:
                if int(value) < 0:
                    return call_result.ChangeConfiguration(status=REJECTED)
            except ValueError:
                return call_result.ChangeConfiguration(status=REJECTED)
        if key == "MeterValuesSampledData" and not set(value.split(",")) <= set(ALL_MEASURANDS):
            return call_result.ChangeConfiguration(status=REJECTED)
        self.configuration[key] = value
        return call_result.ChangeConfiguration(status=ACCEPTED)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        """Nothing cached; always accepted."""
        return call_result.ClearCache(status=ACCEPTED)

    @on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> call_result.DataTransfer:
        """Echo for our own vendor id; UnknownVendorId otherwise."""
        del message_id
        if vendor_id == self.vendor:
            return call_result.DataTransfer(status=ACCEPTED, data=data)
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.update_firmware)
    def on_update_firmware(
        self, location: str, retrieve_date: str, **_: Any
    ) -> call_result.UpdateFirmware:
        """Acknowledge; the download, install and reboot follow."""
        del location, retrieve_date
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> None:
        """Start the update."""
        self._spawn(self._firmware_update(location, retrieve_date), lifetime=True)

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        """Name the file we will upload."""
        del location
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        return call_result.GetDiagnostics(file_name=f"diagnostics-{self.station_id}-{stamp}.log")

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, **_: Any) -> None:
        """Upload (pretend)."""
        self._spawn(self._diagnostics_upload(), lifetime=True)

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        """Install a profile (see ProfileStore for the rules)."""
        status = self.profiles.set_profile(connector_id, cs_charging_profiles, self.clock.now())
        if status != ACCEPTED:
            _LOGGER.info(
                "%s: profile refused: %s", self.station_id, self.profiles.received[-1].reason
            )
        return call_result.SetChargingProfile(status=status)

    @after(Action.set_charging_profile)
    def after_set_charging_profile(self, **_: Any) -> None:
        """Draw what the new limits allow."""
        self._refresh_in_background()

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **kwargs: Any) -> call_result.ClearChargingProfile:
        """Remove profiles by id, or by connector/purpose/stack level."""
        status = self.profiles.clear(
            profile_id=kwargs.get("id"),
            connector_id=kwargs.get("connector_id"),
            purpose=kwargs.get("charging_profile_purpose"),
            stack_level=kwargs.get("stack_level"),
        )
        return call_result.ClearChargingProfile(status=status)

    @after(Action.clear_charging_profile)
    def after_clear_charging_profile(self, **_: Any) -> None:
        """Draw what the remaining limits allow."""
        self._refresh_in_background()

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        """The limit in force now, as a one-period schedule over `duration`."""
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.GetCompositeSchedule(status=REJECTED)
        now = self.clock.now()
        limit = self.profiles.limit(connector_id, now)
        amps = self.max_current if limit is None else min(limit.amps, self.max_current)
        phases = 3 if limit is None or limit.phases is None else limit.phases
        unit = charging_rate_unit or "A"
        value = amps if unit == "A" else amps * self.voltage * phases
        return call_result.GetCompositeSchedule(
            status=ACCEPTED,
            connector_id=connector_id,
            schedule_start=timestamp(now),
            charging_schedule={
                "duration": duration,
                "start_schedule": timestamp(now),
                "charging_rate_unit": unit,
                "charging_schedule_period": [
                    {"start_period": 0, "limit": round(value, 1), "number_phases": phases}
                ],
            },
        )


def _share(wants: dict[int, float], total: float) -> dict[int, float]:
    """Split `total` between connectors evenly, none getting more than it wants."""
    if sum(wants.values()) <= total:
        return wants
    shares = {}
    remaining = total
    ordered = sorted(wants.items(), key=lambda kv: kv[1])
    for index, (cid, want) in enumerate(ordered):
        shares[cid] = min(want, remaining / (len(ordered) - index))
        remaining -= shares[cid]
    return shares


def _register_sample(moment: datetime, wh: int, context: str) -> dict[str, Any]:
    return {
        "timestamp": timestamp(moment),
        "sampled_value": [
            {
                "value": str(wh),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "location": "Outlet",
                "unit": "Wh",
            }
        ],
    }


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    current = asyncio.current_task()
    pending = [t for t in tasks if t is not current]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


__all__ = [
    "CallFailedError",
    "Connector",
    "Ev",
    "OfflineError",
    "SessionRecord",
    "SimulatedChargePoint",
    "default_ev_factory",
]
