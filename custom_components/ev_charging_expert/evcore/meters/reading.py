"""A meter reading in normalised units, and the decoding of raw registers into one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..limits import METER_CURRENT, METER_ENERGY, METER_POWER
from ..modbus import CodecError, RegisterFormat
from .models import CURRENTS, PHASE_POWERS, Quantity

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from .models import ReadBlock, RegisterSpec


class DecodeError(ValueError):
    """The registers do not hold a usable value (NaN current, absurd value, wrong size)."""


class OutOfRangeError(DecodeError):
    """A value is decoded but outside its physical range (`limits.METER_*`)."""


@dataclass(frozen=True, slots=True)
class MeterReading:
    """What one poll measured. Missing quantities (not in the model, or not available) are None.

    `timestamp` (wall clock) and `monotonic` (the injected clock's monotonic seconds) are taken
    when the poll *started*: the values are at least that old.
    """

    currents_a: tuple[float, float, float]
    powers_w: tuple[float | None, float | None, float | None]
    total_power_w: float | None
    energy_wh: float | None
    timestamp: datetime
    monotonic: float

    def current(self, phase: int) -> float:
        """Current of phase 1, 2 or 3 (A)."""
        return self.currents_a[phase - 1]


def scaled_value(registers: Sequence[int], spec: RegisterSpec) -> float | None:
    """The value in A, W or Wh; None when the device says "not available"."""
    try:
        return spec.decode(registers)
    except CodecError as err:
        raise DecodeError(str(err)) from None


def decode_blocks(
    blocks: Sequence[ReadBlock],
    answers: Sequence[Sequence[int]],
) -> dict[Quantity, float | None]:
    """Values of every quantity in `blocks`, from the registers each block read returned."""
    values: dict[Quantity, float | None] = {}
    for block, registers in zip(blocks, answers, strict=True):
        if len(registers) != block.count:
            raise DecodeError(f"asked for {block.count} registers, got {len(registers)}")
        for item in block.items:
            size = RegisterFormat(item.spec.format).size
            chunk = registers[item.offset : item.offset + size]
            values[item.quantity] = scaled_value(chunk, item.spec)
    return values


def build_reading(
    values: Mapping[Quantity, float | None],
    *,
    timestamp: datetime,
    monotonic: float,
) -> MeterReading:
    """Check the values and assemble a reading; DecodeError when a current is unusable.

    OutOfRangeError when any value is outside its range (`limits.METER_*`): the whole read
    fails, so the zone follows its degraded rules instead of a budget from a wrong value.
    """
    currents: list[float] = []
    for quantity in CURRENTS:
        value = values.get(quantity)
        if value is None:
            raise DecodeError(f"{quantity.label} not available")
        if not METER_CURRENT.holds(value):
            raise OutOfRangeError(
                f"{quantity.label} = {value:g} A is implausible: check the register format, "
                "word order and scale"
            )
        currents.append(value)
    powers = tuple(values.get(q) for q in PHASE_POWERS)
    total = values.get(Quantity.POWER_TOTAL)
    if total is None and all(p is not None for p in powers):
        total = sum(p for p in powers if p is not None)
    energy = values.get(Quantity.ENERGY_DELIVERED)
    checks = [(q.label, v, METER_POWER) for q, v in zip(PHASE_POWERS, powers, strict=True)]
    checks += [
        (Quantity.POWER_TOTAL.label, total, METER_POWER),
        (Quantity.ENERGY_DELIVERED.label, energy, METER_ENERGY),
    ]
    for label, value, bounds in checks:
        if value is not None and not bounds.holds(value):
            raise OutOfRangeError(
                f"{label} = {value:g} is outside {bounds.low:g}..{bounds.high:g}: check the "
                "register format, word order and scale"
            )
    return MeterReading(
        currents_a=(currents[0], currents[1], currents[2]),
        powers_w=(powers[0], powers[1], powers[2]),
        total_power_w=total,
        energy_wh=energy,
        timestamp=timestamp,
        monotonic=monotonic,
    )
