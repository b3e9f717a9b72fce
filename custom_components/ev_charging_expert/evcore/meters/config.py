"""Configuration of one power meter, validated where it is built.

A `MeterConfig` that exists is valid: the constructor raises `ConfigError` with a message that
names the field, so the HA flows and the core refuse the same things with the same words.
Whether the model exists is checked by the pool (`MeterPool.add`), which knows the custom models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
import math
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_PORT = 502
DEFAULT_SLAVE_ID = 255  # what Schneider's IFE / EIFE / PowerTag Link gateways answer to
DEFAULT_POLLING_PERIOD = 0.5  # s
MIN_POLLING_PERIOD = 0.1  # s
MAX_POLLING_PERIOD = 3600.0  # s
DEFAULT_TIMEOUT = 1.0  # s
MIN_TIMEOUT = 0.05  # s
MAX_TIMEOUT = 10.0  # s
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class MeterProtocol(StrEnum):
    """How the meter is reached."""

    TCP = "tcp"  # Modbus TCP (MBAP framing)
    RTU_OVER_TCP = "rtu_over_tcp"  # RTU frames over a TCP socket (serial-to-Ethernet gateway)
    RTU = "rtu"  # Modbus RTU on a local serial port

    @property
    def is_tcp(self) -> bool:
        """True for the two protocols that use a TCP socket."""
        return self is not MeterProtocol.RTU


class Parity(StrEnum):
    """Serial parity."""

    NONE = "N"
    EVEN = "E"
    ODD = "O"


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """A local serial line (RTU). Schneider devices default to 19200 baud, 8E1."""

    port: str
    baudrate: int = 19200
    parity: Parity = Parity.EVEN
    stopbits: int = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.port, str) or not self.port.strip():
            raise ConfigError("serial port: a device path is required (e.g. /dev/ttyUSB0)")
        if self.baudrate not in BAUDRATES:
            raise ConfigError(
                f"baudrate must be one of {', '.join(map(str, BAUDRATES))} (got {self.baudrate})"
            )
        try:
            object.__setattr__(self, "parity", Parity(self.parity))
        except ValueError:
            raise ConfigError(f"parity must be N, E or O (got {self.parity!r})") from None
        if self.stopbits not in (1, 2):
            raise ConfigError(f"stopbits must be 1 or 2 (got {self.stopbits})")
        if self.bytesize not in (7, 8):
            raise ConfigError(f"bytesize must be 7 or 8 (got {self.bytesize})")


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """One power meter: where it is, which register map it speaks, how often to read it.

    `timeout` bounds one poll of this meter: waiting for the shared connection, connecting if
    needed, and every register read of the poll. A reading counts as valid for
    `2 * polling_period + timeout` seconds after its poll started (see `Meter.reading_valid`).
    """

    meter_id: str
    name: str
    model: str
    protocol: MeterProtocol = MeterProtocol.TCP
    host: str | None = None
    port: int = DEFAULT_PORT
    slave_id: int = DEFAULT_SLAVE_ID
    serial: SerialSettings | None = None
    polling_period: float = DEFAULT_POLLING_PERIOD
    timeout: float = DEFAULT_TIMEOUT
    reporting_only: bool = False
    """Measures loads that are not chargers, for reporting only; never drives a zone budget."""

    def __post_init__(self) -> None:
        _require_text("meter id", self.meter_id)
        _require_text("name", self.name)
        _require_text("model", self.model)
        try:
            object.__setattr__(self, "protocol", MeterProtocol(self.protocol))
        except ValueError:
            choices = ", ".join(p.value for p in MeterProtocol)
            raise ConfigError(
                f"protocol must be one of {choices} (got {self.protocol!r})"
            ) from None
        _require_int("slave id", self.slave_id, 1, 255)
        if self.protocol.is_tcp:
            if not isinstance(self.host, str) or not self.host.strip() or " " in self.host.strip():
                raise ConfigError("host: an IP address or host name is required for TCP")
            object.__setattr__(self, "host", self.host.strip())
            _require_int("port", self.port, 1, 65535)
        elif self.serial is None:
            raise ConfigError("serial: port settings are required for RTU")
        _require_seconds(
            "polling period", self.polling_period, MIN_POLLING_PERIOD, MAX_POLLING_PERIOD
        )
        _require_seconds("timeout", self.timeout, MIN_TIMEOUT, MAX_TIMEOUT)

    @property
    def validity(self) -> float:
        """Seconds a reading stays valid after its poll started: 2 periods plus the timeout."""
        return 2 * self.polling_period + self.timeout

    @property
    def gateway_key(self) -> str:
        """Meters with the same key share one connection."""
        if self.protocol.is_tcp:
            return f"{self.host}:{self.port}"
        return self.serial.port if self.serial is not None else ""

    @property
    def endpoint(self) -> str:
        """Where the meter is, for messages: host:port#slave or port#slave."""
        return f"{self.gateway_key}#{self.slave_id}"

    @classmethod
    def from_dict(cls, meter_id: str, data: Mapping[str, Any]) -> MeterConfig:
        """Build from stored data (a config subentry's data); ConfigError on bad values."""
        try:
            serial_data = data.get("serial")
            serial = SerialSettings(**serial_data) if serial_data else None
            return cls(
                meter_id=meter_id,
                name=str(data["name"]),
                model=str(data["model"]),
                protocol=MeterProtocol(data.get("protocol", MeterProtocol.TCP)),
                host=data.get("host"),
                port=int(data.get("port", DEFAULT_PORT)),
                slave_id=int(data.get("slave_id", DEFAULT_SLAVE_ID)),
                serial=serial,
                polling_period=float(data.get("polling_period", DEFAULT_POLLING_PERIOD)),
                timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
                reporting_only=bool(data.get("reporting_only", False)),
            )
        except KeyError as err:
            raise ConfigError(f"meter {meter_id}: {err.args[0]} is required") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"meter {meter_id}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage (`from_dict` of it rebuilds the same config)."""
        data = asdict(self)
        del data["meter_id"]
        data["protocol"] = self.protocol.value
        if self.serial is not None:
            data["serial"]["parity"] = self.serial.parity.value
        return data


def _require_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what} is required")


def _require_int(what: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{what} must be an integer between {low} and {high} (got {value!r})")


def _require_seconds(what: str, value: object, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ConfigError(f"{what} must be between {low:g} and {high:g} s (got {value!r})")
