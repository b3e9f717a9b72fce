"""Values in 16-bit Modbus registers: data types, word and byte order, scale, "not available".

One codec for everything in evcore that reads or serves registers (the meters' poller, the
simulators, the BMS slave), so a value encoded by one side decodes to the same value on the
other. The conversion itself is pymodbus' (`ModbusClientMixin.convert_to_registers` /
`convert_from_registers`); this module adds what pymodbus leaves out: a byte swap inside each
word, scaling, and the raw values devices send for "not available".

    encode(-4.5, RegisterFormat.FLOAT32, word_order=WordOrder.LITTLE)    # [0x0000, 0xC090]
    decode([0x0000, 0xC090], RegisterFormat.FLOAT32, word_order=WordOrder.LITTLE)   # -4.5
    encode_scaled(7500.0, RegisterFormat.INT16, scale=100.0)             # [75]
    decode_scaled([0x8000], RegisterFormat.UINT16, invalid=32768)        # None
"""

from __future__ import annotations

from enum import StrEnum
import math
import struct
from typing import TYPE_CHECKING

from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.exceptions import ModbusException

if TYPE_CHECKING:
    from collections.abc import Sequence


class CodecError(ValueError):
    """Registers that do not hold a value of the type, or a value the type cannot hold."""


class RegisterFormat(StrEnum):
    """How a value is encoded in consecutive 16-bit registers."""

    FLOAT32 = "float32"
    INT64 = "int64"
    INT32 = "int32"
    UINT32 = "uint32"
    INT16 = "int16"
    UINT16 = "uint16"

    @property
    def size(self) -> int:
        """Number of 16-bit registers the value takes."""
        return int(_DATATYPES[self].value[1])

    @property
    def is_float(self) -> bool:
        """True for floating-point formats (NaN means "not available"; no rounding)."""
        return self is RegisterFormat.FLOAT32


class WordOrder(StrEnum):
    """Order of the 16-bit words of a multi-register value."""

    BIG = "big"  # most significant word first (Schneider, and most meters)
    LITTLE = "little"  # least significant word first


class ByteOrder(StrEnum):
    """Order of the two bytes inside each 16-bit word."""

    BIG = "big"  # most significant byte first: what the Modbus specification says
    LITTLE = "little"  # bytes swapped in every word (some gateways and PLCs)


_DATATYPES = {
    RegisterFormat.FLOAT32: ModbusClientMixin.DATATYPE.FLOAT32,
    RegisterFormat.INT64: ModbusClientMixin.DATATYPE.INT64,
    RegisterFormat.INT32: ModbusClientMixin.DATATYPE.INT32,
    RegisterFormat.UINT32: ModbusClientMixin.DATATYPE.UINT32,
    RegisterFormat.INT16: ModbusClientMixin.DATATYPE.INT16,
    RegisterFormat.UINT16: ModbusClientMixin.DATATYPE.UINT16,
}
# What a float32 register pair holds when the value is not available: the negative quiet NaN
# that Schneider devices send (0xFFC00000), most significant word first.
_FLOAT32_NOT_AVAILABLE = (0xFFC0, 0x0000)


def _swap_bytes(registers: Sequence[int]) -> list[int]:
    return [((word & 0xFF) << 8) | (word >> 8) for word in registers]


def decode(
    registers: Sequence[int],
    fmt: RegisterFormat,
    *,
    word_order: WordOrder = WordOrder.BIG,
    byte_order: ByteOrder = ByteOrder.BIG,
) -> int | float:
    """The raw (unscaled) value in `registers`; CodecError unless there are `fmt.size` of them."""
    fmt = RegisterFormat(fmt)
    if len(registers) != fmt.size:
        raise CodecError(f"{fmt} needs {fmt.size} registers, got {len(registers)}")
    words = _swap_bytes(registers) if byte_order is ByteOrder.LITTLE else list(registers)
    try:
        value = ModbusClientMixin.convert_from_registers(
            words, _DATATYPES[fmt], word_order=WordOrder(word_order).value
        )
    except (ModbusException, struct.error) as err:  # pragma: no cover - sizes checked above
        raise CodecError(str(err)) from err
    if not isinstance(value, (int, float)):  # pragma: no cover - scalar formats only
        raise CodecError(f"cannot decode {fmt}")
    return value


def encode(
    value: float,
    fmt: RegisterFormat,
    *,
    word_order: WordOrder = WordOrder.BIG,
    byte_order: ByteOrder = ByteOrder.BIG,
) -> list[int]:
    """The registers holding raw `value`; CodecError when `fmt` cannot hold it.

    Integer formats take integers only (`encode_scaled` rounds); a float format takes any
    number, NaN and infinities included.
    """
    fmt = RegisterFormat(fmt)
    if fmt.is_float:
        value = float(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"{fmt} holds integers, not {value!r}")
    try:
        words = ModbusClientMixin.convert_to_registers(
            value, _DATATYPES[fmt], word_order=WordOrder(word_order).value
        )
    except struct.error as err:
        raise CodecError(f"{value!r} does not fit in {fmt}") from err
    return _swap_bytes(words) if byte_order is ByteOrder.LITTLE else words


def decode_scaled(
    registers: Sequence[int],
    fmt: RegisterFormat,
    *,
    word_order: WordOrder = WordOrder.BIG,
    byte_order: ByteOrder = ByteOrder.BIG,
    scale: float = 1.0,
    invalid: int | None = None,
) -> float | None:
    """The value (raw * scale); None when the device says "not available".

    "Not available" is a NaN or infinite float, or the raw integer `invalid`.
    """
    raw = decode(registers, fmt, word_order=word_order, byte_order=byte_order)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
    elif invalid is not None and raw == invalid:
        return None
    return float(raw) * scale


def encode_scaled(
    value: float | None,
    fmt: RegisterFormat,
    *,
    word_order: WordOrder = WordOrder.BIG,
    byte_order: ByteOrder = ByteOrder.BIG,
    scale: float = 1.0,
    invalid: int | None = None,
) -> list[int]:
    """The registers a device sends for `value` (value / scale, rounded for integer formats).

    None ("not available") is the Schneider NaN for floats, `invalid` (or 0 without one) for
    integers, so `decode_scaled` with the same arguments gives None back (0 aside).
    """
    fmt = RegisterFormat(fmt)
    if value is None:
        if not fmt.is_float:
            return encode(
                invalid if invalid is not None else 0,
                fmt,
                word_order=word_order,
                byte_order=byte_order,
            )
        words = list(_FLOAT32_NOT_AVAILABLE)
        if WordOrder(word_order) is WordOrder.LITTLE:
            words.reverse()
        return _swap_bytes(words) if byte_order is ByteOrder.LITTLE else words
    raw = value / scale
    if fmt.is_float:
        return encode(raw, fmt, word_order=word_order, byte_order=byte_order)
    if not math.isfinite(raw):
        raise CodecError(f"{value!r} has no {fmt} encoding")
    return encode(round(raw), fmt, word_order=word_order, byte_order=byte_order)
