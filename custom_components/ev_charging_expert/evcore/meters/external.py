"""A meter whose values come from outside evcore (Home Assistant sensor entities).

It answers the same question as a Modbus `Meter` — `valid_reading(now)` — so a zone does not
care where its measurement comes from. A value the source marks unavailable, none for longer
than `max_age`, or a value outside its range (`limits.METER_*`) makes the reading invalid: a
lost meter, never "last value forever" and never a budget from a wrong value.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from ..limits import METER_CURRENT, METER_ENERGY, METER_POWER, LogOncePer
from .reading import MeterReading

if TYPE_CHECKING:
    from ..clock import Clock
    from ..limits import Range

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 60.0  # s: HA sensors report on change; a live meter changes within a minute


class MeterSource(Protocol):
    """Anything that can drive a dynamic zone."""

    @property
    def meter_id(self) -> str:
        """The meter's id (its subentry id in HA)."""

    def valid_reading(self, now: float | None = None) -> MeterReading | None:
        """The latest reading if it is fresh enough to act on, else None."""


class ExternalMeter:
    """Readings pushed in by the caller (per-phase currents, or powers and a voltage)."""

    def __init__(self, meter_id: str, clock: Clock, *, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.meter_id = meter_id
        self.max_age = max_age
        self._clock = clock
        self._reading: MeterReading | None = None
        self._log_once = LogOncePer(clock)
        self.rejected = 0
        """Updates refused for a value outside its range."""

    @property
    def reading(self) -> MeterReading | None:
        """The last reading, fresh or not (for display)."""
        return self._reading

    def update(
        self,
        currents_a: tuple[float, float, float],
        *,
        total_power_w: float | None = None,
        energy_wh: float | None = None,
    ) -> str | None:
        """A new measurement in A, W and Wh; returns why it was refused, if it was.

        A refused measurement leaves the meter without a reading (a failed read).
        """
        checks: list[tuple[str, float | None, Range]] = [
            ("current", amps, METER_CURRENT) for amps in currents_a
        ]
        checks += [("power", total_power_w, METER_POWER), ("energy", energy_wh, METER_ENERGY)]
        for name, value, bounds in checks:
            if value is not None and not bounds.holds(value):
                problem = f"{name} {value!r} is outside {bounds.low:g}..{bounds.high:g}"
                self.rejected += 1
                self._reading = None
                self._log_once.log(
                    _LOGGER, self.meter_id, name, "Meter %r: refused %s", self.meter_id, problem
                )
                return problem
        self._reading = MeterReading(
            currents_a=currents_a,
            powers_w=(None, None, None),
            total_power_w=total_power_w,
            energy_wh=energy_wh,
            timestamp=self._clock.now(),
            monotonic=self._clock.monotonic(),
        )
        return None

    def invalidate(self) -> None:
        """The source went unavailable: no valid reading until the next update."""
        self._reading = None

    def valid_reading(self, now: float | None = None) -> MeterReading | None:
        """The reading while it is younger than `max_age`."""
        reading = self._reading
        if reading is None:
            return None
        now = self._clock.monotonic() if now is None else now
        return reading if now - reading.monotonic <= self.max_age else None


def currents_from_powers(
    powers_w: tuple[float, float, float], voltage: float
) -> tuple[float, float, float]:
    """Per-phase currents from per-phase active powers at a nominal voltage.

    The magnitude is used: an exporting phase (negative power) still loads the cable, and when
    in doubt we count more load, not less.
    """
    if voltage <= 0:
        raise ValueError("voltage must be > 0")
    return (
        abs(powers_w[0]) / voltage,
        abs(powers_w[1]) / voltage,
        abs(powers_w[2]) / voltage,
    )
