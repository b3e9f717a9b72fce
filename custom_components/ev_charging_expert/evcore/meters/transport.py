"""One Modbus connection per gateway, shared by the meters behind it.

A gateway is a TCP endpoint (host:port; Modbus TCP or RTU-over-TCP framing) or a local serial
port. Requests on one gateway are serialised (one in flight at a time: RTU has no transaction
id, and many TCP gateways answer one request at a time anyway).

Time is the injected clock's: the caller bounds each request with `clock.timeout`; pymodbus'
own wall-clock timeout is only a backstop set well above the longest meter timeout, and its
automatic reconnection is disabled. Reconnection is done here, on demand, with an exponential
backoff measured on the injected clock: after a failed attempt, requests fail at once until the
backoff has elapsed, so a dead gateway costs one connection attempt per backoff, not one per
poll.

A request that is cancelled (timed out) while in flight, or that gets a malformed answer,
closes the connection: a late answer must never be taken for the answer to the next request.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import TYPE_CHECKING, Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from .config import MeterProtocol
from .models import RegisterType

if TYPE_CHECKING:
    from collections.abc import Callable

    from pymodbus.client.base import ModbusBaseClient
    from pymodbus.pdu import ModbusPDU

    from ..clock import Clock
    from .config import MeterConfig, SerialSettings

_LOGGER = logging.getLogger(__name__)

PYMODBUS_BACKSTOP_TIMEOUT = 30.0
"""s; pymodbus' own (wall-clock) request and connect timeout: never reached before ours."""
DEFAULT_RECONNECT_MIN = 1.0  # s, first wait after a failed connection attempt
DEFAULT_RECONNECT_MAX = 30.0  # s, the wait doubles up to this

_EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
_GATEWAY_CODES = (0x0A, 0x0B)


class MeterLinkError(Exception):
    """A request to a meter failed."""


class NotConnectedError(MeterLinkError):
    """The meter cannot be reached: no connection, connection lost, no answer."""


class DeviceError(MeterLinkError):
    """The meter answered, but not with usable registers (Modbus exception, bad answer)."""


class ClientFactory(Protocol):
    """Makes the pymodbus client of a gateway (tests and benches may swap it)."""

    def __call__(self, gateway: Gateway, trace_connect: Callable[[bool], None]) -> ModbusBaseClient:
        """Return an unconnected client for `gateway`."""


def default_client_factory(
    gateway: Gateway, trace_connect: Callable[[bool], None]
) -> ModbusBaseClient:
    """A pymodbus asyncio client with retries and auto-reconnection off."""
    if gateway.protocol is MeterProtocol.RTU:
        serial = gateway.serial
        if serial is None:  # pragma: no cover - MeterConfig guarantees it
            raise NotConnectedError("no serial settings")
        return AsyncModbusSerialClient(
            serial.port,
            framer=FramerType.RTU,
            baudrate=serial.baudrate,
            bytesize=serial.bytesize,
            parity=serial.parity.value,
            stopbits=serial.stopbits,
            name=gateway.key,
            reconnect_delay=0,
            timeout=PYMODBUS_BACKSTOP_TIMEOUT,
            retries=0,
            trace_connect=trace_connect,
        )
    rtu = gateway.protocol is MeterProtocol.RTU_OVER_TCP
    return AsyncModbusTcpClient(
        gateway.host or "",
        port=gateway.port,
        framer=FramerType.RTU if rtu else FramerType.SOCKET,
        name=gateway.key,
        reconnect_delay=0,
        timeout=PYMODBUS_BACKSTOP_TIMEOUT,
        retries=0,
        trace_connect=trace_connect,
    )


class Gateway:
    """A shared connection to one gateway (or one meter) and the meters that use it."""

    def __init__(
        self,
        config: MeterConfig,
        clock: Clock,
        *,
        reconnect_min: float = DEFAULT_RECONNECT_MIN,
        reconnect_max: float = DEFAULT_RECONNECT_MAX,
        client_factory: ClientFactory = default_client_factory,
    ) -> None:
        self.key = config.gateway_key
        self.protocol = config.protocol
        self.host = config.host
        self.port = config.port
        self.serial: SerialSettings | None = config.serial
        self.users: set[str] = set()
        self._clock = clock
        self._client_factory = client_factory
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._lock = asyncio.Lock()
        self._client: ModbusBaseClient | None = None
        self._lost: asyncio.Future[None] | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._last_error = "not connected yet"
        self.connects = 0
        """Successful connections so far."""
        self.connect_attempts = 0
        self.requests = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"Gateway({self.protocol.value} {self.key})"

    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        return self._client is not None and self._client.connected

    def compatible(self, config: MeterConfig) -> str | None:
        """Why `config` cannot share this gateway, or None when it can."""
        if config.protocol is not self.protocol:
            return (
                f"gateway {self.key} is already used with {self.protocol.value} framing, "
                f"not {config.protocol.value}"
            )
        if config.serial != self.serial:
            return f"serial port {self.key} is already used with other line settings"
        return None

    async def read(
        self, register_type: RegisterType, address: int, count: int, slave: int
    ) -> list[int]:
        """Read `count` registers from wire address `address` of `slave`.

        Raises NotConnectedError or DeviceError; the caller's timeout (clock.timeout) cancels
        the wait and closes the connection.
        """
        async with self._lock:
            client, lost = await self._ensure_connected()
            self.requests += 1
            read = (
                client.read_holding_registers
                if register_type is RegisterType.HOLDING
                else client.read_input_registers
            )
            try:
                request = asyncio.ensure_future(read(address, count=count, slave=slave))
            except ModbusException as err:
                self._drop(f"connection lost: {err}")
                raise NotConnectedError(f"{self.key}: connection lost") from None
            try:
                await asyncio.wait((request, lost), return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                request.cancel()
                self._drop("request cancelled (no answer in time)")
                raise
            if not request.done():
                request.cancel()
                self._drop("connection lost")
                raise NotConnectedError(f"{self.key}: connection lost")
            return self._registers(request, count, slave)

    def _registers(self, request: asyncio.Future[ModbusPDU], count: int, slave: int) -> list[int]:
        try:
            response = request.result()
        except (ConnectionException, ModbusIOException) as err:
            self._drop(str(err))
            raise NotConnectedError(f"{self.key}: {err}") from None
        except ModbusException as err:
            self._drop(str(err))
            raise DeviceError(f"{self.key}#{slave}: {err}") from None
        if response.isError():
            self.failures += 1
            code = int(getattr(response, "exception_code", 0))
            name = _EXCEPTION_NAMES.get(code, "unknown")
            text = f"Modbus exception {code} ({name})"
            if code in _GATEWAY_CODES:
                raise NotConnectedError(f"{self.key}#{slave}: {text}")
            raise DeviceError(f"{self.key}#{slave}: {text}")
        registers = list(response.registers)
        if len(registers) != count:
            self._drop("malformed answer")
            raise DeviceError(
                f"{self.key}#{slave}: asked for {count} registers, got {len(registers)}"
            )
        return registers

    async def _ensure_connected(self) -> tuple[ModbusBaseClient, asyncio.Future[None]]:
        if self._client is not None and self._lost is not None:
            if self._client.connected and not self._lost.done():
                return self._client, self._lost
            self._drop("connection lost")
        now = self._clock.monotonic()
        if now < self._retry_at:
            raise NotConnectedError(self._last_error)
        if self.protocol is MeterProtocol.RTU and importlib.util.find_spec("serial") is None:
            self._fail_attempt(f"{self.key}: serial RTU needs the pyserial package")
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()

        def trace_connect(up: bool) -> None:
            if not up and not lost.done():
                lost.set_result(None)

        self.connect_attempts += 1
        client = self._client_factory(self, trace_connect)
        try:
            # `client.connect()` would add a 0.1 s wall-clock sleep; the transaction manager's
            # connect is the same call without it.
            ok = await client.ctx.connect()
        except asyncio.CancelledError:
            client.close()
            self._note_failure(f"{self.key}: connection attempt timed out")
            raise
        except OSError as err:  # pragma: no cover - pymodbus catches these itself
            client.close()
            self._fail_attempt(f"{self.key}: cannot connect: {err}")
        if not ok or not client.connected:
            client.close()
            self._fail_attempt(f"{self.key}: cannot connect")
        self._client, self._lost = client, lost
        self._backoff = 0.0
        self._retry_at = 0.0
        self.connects += 1
        _LOGGER.debug("%r connected", self)
        return client, lost

    def _note_failure(self, reason: str) -> None:
        self.failures += 1
        self._backoff = min(max(self._backoff * 2, self._reconnect_min), self._reconnect_max)
        self._retry_at = self._clock.monotonic() + self._backoff
        if reason != self._last_error:
            _LOGGER.info("%s (next attempt in %.1f s)", reason, self._backoff)
        self._last_error = reason

    def _fail_attempt(self, reason: str) -> None:
        self._note_failure(reason)
        raise NotConnectedError(reason)

    def _drop(self, reason: str, *, failure: bool = True) -> None:
        """Close the connection; the next request reconnects at once."""
        if failure:
            self.failures += 1
        client, self._client, self._lost = self._client, None, None
        if client is not None:
            _LOGGER.debug("%r closed: %s", self, reason)
            client.close()
        self._last_error = f"{self.key}: {reason}"

    @property
    def retry_in(self) -> float:
        """Seconds before the next connection attempt is allowed (0: now)."""
        return max(self._retry_at - self._clock.monotonic(), 0.0)

    async def close(self) -> None:
        """Close the connection (waits for the request in flight, if any)."""
        async with self._lock:
            if self._client is not None:
                self._drop("closed", failure=False)
