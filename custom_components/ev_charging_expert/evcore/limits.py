"""Bounds on everything a charger or a meter controls, in one place (docs/safety.md).

Numbers: a value that enters the core from a charger (a measurand, a meter start), a Modbus
register or an HA sensor is finite and inside the physical range of its quantity, or it is
dropped for that sample, counted, and logged once per source and quantity per `LOG_INTERVAL_S`.
A meter's value outside its range is a failed read (the zone's degraded rules apply), never a
budget.

Sizes: every queue, buffer and map keyed by something a charger sends has its bound here.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

    from .clock import Clock
    from .model import Measurement

# ---------------------------------------------------------------------- frames and maps
MAX_JSON_DEPTH = 16
"""Nesting levels of an OCPP-J frame; the deepest 1.6 message (SetChargingProfile) has 6."""

MAX_NUMBER_CHARS = 40
"""Characters of one JSON number (digits, sign, point, exponent); an int64 has 20."""

MAX_CONNECTORS = 16
"""Connector ids a station may use when it does not report NumberOfConnectors, and at most
whatever it reports."""

MAX_CONFIGURATION_KEYS = 128
"""Configuration keys kept (and stored) per station."""

MAX_QUEUED_ANSWERS = 8
"""Answers queued for the request waiting for them (one request at a time is on the wire)."""

MAX_LOG_KEYS = 10_000
"""(source, quantity) pairs whose last log time is remembered; the oldest are forgotten."""

LOG_INTERVAL_S = 600.0
"""A refused value or frame is logged once per source and kind in this interval (counted always)."""

# ---------------------------------------------------------------------- physical ranges
ENERGY_MAX_WH = 1e12
"""Energy registers count below 1 TWh (a 1 MW charger would take 114 years to get there)."""

MAX_AC_POWER_W = 63.0 * 3 * 265.0
"""The most an AC connector can draw: 63 A (IEC 62196-2) on 3 phases at 230 V + 15 %."""

MAX_POWER_W = 3 * 1000.0 * 1000.0
"""The most any charger can draw: 1000 A at 1000 V on 3 phases."""

ENERGY_SLACK_WH = 1000.0
"""Register rounding and sampling jitter tolerated between a session's meter start and the
first register sample, beyond what the connector can deliver in the time between them."""


@dataclass(frozen=True, slots=True)
class Range:
    """The physical bounds (inclusive) of a quantity, and the units it may come in."""

    low: float
    high: float
    units: tuple[str, ...] = ()
    """Normalised units (`W`, not `kW`) the quantity may be given in; empty: any."""

    def holds(self, value: float) -> bool:
        """Whether a value is finite and inside the range."""
        return math.isfinite(value) and self.low <= value <= self.high


_ENERGY_HIGH = math.nextafter(ENERGY_MAX_WH, 0.0)

# Chargers give active power in VA as often as in W: the same bounds hold.
MEASURAND_RANGES: dict[str, Range] = {
    "Current": Range(0.0, 1000.0, ("A",)),
    "Voltage": Range(0.0, 1000.0, ("V",)),
    "Power.Active": Range(0.0, MAX_POWER_W, ("W", "VA")),
    "Power.Offered": Range(0.0, MAX_POWER_W, ("W", "VA")),
    "Power.Reactive": Range(0.0, MAX_POWER_W, ("var",)),
    "Power.Factor": Range(-1.0, 1.0, ("",)),
    "Energy.Active": Range(0.0, _ENERGY_HIGH, ("Wh",)),
    "Energy.Reactive": Range(0.0, _ENERGY_HIGH, ("varh",)),
    "Frequency": Range(0.0, 100.0, ("Hz",)),
    "Temperature": Range(-100.0, 500.0, ("°C",)),
    "SoC": Range(0.0, 100.0, ("%",)),
    "RPM": Range(0.0, 100_000.0, ("",)),
}
"""Per measurand family (the start of the OCPP measurand name), after unit normalisation."""

_ANY = Range(-_ENERGY_HIGH, _ENERGY_HIGH)

METER_CURRENT = Range(0.0, 100_000.0, ("A",))
"""A meter's phase current; above is a decoding mistake (format, word order, scale)."""
METER_POWER = Range(-1e9, 1e9, ("W",))
"""A meter's active power, signed (export is negative)."""
METER_ENERGY = Range(0.0, _ENERGY_HIGH, ("Wh",))

METER_START = Range(0.0, _ENERGY_HIGH, ("Wh",))
"""A session's meter start and meter stop."""


def measurand_range(measurand: str) -> Range:
    """The range of a measurand (any finite value below 1e12 when OCPP does not define it)."""
    for family, bounds in MEASURAND_RANGES.items():
        if measurand.startswith(family):
            return bounds
    return _ANY


def measurement_problem(sample: Measurement) -> str | None:
    """Why a normalised sample cannot be used, or None when it can."""
    bounds = measurand_range(sample.measurand)
    if bounds.units and sample.unit not in bounds.units:
        return f"unit {sample.unit!r} is not {' or '.join(map(repr, bounds.units))}"
    if not bounds.holds(sample.value):
        return f"{sample.value!r} is outside {bounds.low:g}..{bounds.high:g}"
    return None


class LogOncePer:
    """Log a recurring refusal once per key and interval, on the injected clock."""

    def __init__(self, clock: Clock, interval: float = LOG_INTERVAL_S) -> None:
        self._clock = clock
        self._interval = interval
        self._last: dict[tuple[str, str], float] = {}

    def due(self, source: str, kind: str) -> bool:
        """True (and remembered) when `source` has not been logged for `kind` lately."""
        now = self._clock.monotonic()
        key = (source, kind)
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return False
        self._last.pop(key, None)
        if len(self._last) >= MAX_LOG_KEYS:
            del self._last[next(iter(self._last))]  # the oldest entry (insertion order)
        self._last[key] = now
        return True

    def log(self, logger: logging.Logger, source: str, kind: str, msg: str, *args: object) -> None:
        """Warn with `msg % args` when due (add every value from a charger with %r)."""
        if self.due(source, kind):
            logger.warning(msg, *args)
