"""The Modbus register codec (evcore.modbus): every format, word order and byte order.

Known register images pin the wire layout; round trips (fixed and hypothesis-drawn values)
show that what one side encodes the other decodes.
"""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.ev_charging_expert.evcore.modbus import (
    ByteOrder,
    CodecError,
    RegisterFormat,
    WordOrder,
    decode,
    decode_scaled,
    encode,
    encode_scaled,
)

F32, I64, I32, U32, I16, U16 = (
    RegisterFormat.FLOAT32,
    RegisterFormat.INT64,
    RegisterFormat.INT32,
    RegisterFormat.UINT32,
    RegisterFormat.INT16,
    RegisterFormat.UINT16,
)
ORDERS = list(itertools.product(WordOrder, ByteOrder))
RANGES = {
    I64: (-(2**63), 2**63 - 1),
    I32: (-(2**31), 2**31 - 1),
    U32: (0, 2**32 - 1),
    I16: (-(2**15), 2**15 - 1),
    U16: (0, 2**16 - 1),
}
# Values that reach every byte, the sign bit and both ends of each integer range.
SAMPLES = {
    F32: [0.0, 1.5, -4.5, 31.25, 2.0**-20, -(2.0**127), math.inf],  # exact in float32
    I64: [0, 1, -1, 123_456_789_012, *RANGES[I64]],
    I32: [0, -70_000, 70_000, 0x01020304, *RANGES[I32]],
    U32: [0, 65_536, 4_000_000_000, *RANGES[U32]],
    I16: [0, -300, 0x0102, *RANGES[I16]],
    U16: [0, 65_000, 0x0102, *RANGES[U16]],
}


def test_sizes_are_the_register_counts() -> None:
    assert {fmt: fmt.size for fmt in RegisterFormat} == {
        F32: 2,
        I64: 4,
        I32: 2,
        U32: 2,
        I16: 1,
        U16: 1,
    }


@pytest.mark.parametrize(
    ("value", "fmt", "word_order", "byte_order", "registers"),
    [
        (1.5, F32, WordOrder.BIG, ByteOrder.BIG, [0x3FC0, 0x0000]),
        (1.5, F32, WordOrder.LITTLE, ByteOrder.BIG, [0x0000, 0x3FC0]),
        (1.5, F32, WordOrder.BIG, ByteOrder.LITTLE, [0xC03F, 0x0000]),
        (1.5, F32, WordOrder.LITTLE, ByteOrder.LITTLE, [0x0000, 0xC03F]),
        (0x01020304, I32, WordOrder.BIG, ByteOrder.BIG, [0x0102, 0x0304]),
        (0x01020304, I32, WordOrder.LITTLE, ByteOrder.BIG, [0x0304, 0x0102]),
        (0x01020304, I32, WordOrder.BIG, ByteOrder.LITTLE, [0x0201, 0x0403]),
        (0x01020304, I32, WordOrder.LITTLE, ByteOrder.LITTLE, [0x0403, 0x0201]),
        (65_536, U32, WordOrder.BIG, ByteOrder.BIG, [0x0001, 0x0000]),
        (1, U32, WordOrder.LITTLE, ByteOrder.BIG, [0x0001, 0x0000]),
        (-2, I64, WordOrder.BIG, ByteOrder.BIG, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE]),
        (-2, I64, WordOrder.LITTLE, ByteOrder.BIG, [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF]),
        (-300, I16, WordOrder.BIG, ByteOrder.BIG, [0xFED4]),
        (-300, I16, WordOrder.LITTLE, ByteOrder.LITTLE, [0xD4FE]),
        (0x0102, U16, WordOrder.BIG, ByteOrder.LITTLE, [0x0201]),
    ],
)
def test_registers_are_laid_out_as_the_orders_say(
    value: float,
    fmt: RegisterFormat,
    word_order: WordOrder,
    byte_order: ByteOrder,
    registers: list[int],
) -> None:
    assert encode(value, fmt, word_order=word_order, byte_order=byte_order) == registers
    assert decode(registers, fmt, word_order=word_order, byte_order=byte_order) == value


@pytest.mark.parametrize(("word_order", "byte_order"), ORDERS)
@pytest.mark.parametrize("fmt", list(RegisterFormat))
def test_every_format_round_trips_in_every_order(
    fmt: RegisterFormat, word_order: WordOrder, byte_order: ByteOrder
) -> None:
    for value in SAMPLES[fmt]:
        registers = encode(value, fmt, word_order=word_order, byte_order=byte_order)
        assert len(registers) == fmt.size
        assert all(0 <= word <= 0xFFFF for word in registers)
        assert decode(registers, fmt, word_order=word_order, byte_order=byte_order) == value


@settings(max_examples=200)
@given(
    data=st.data(),
    fmt=st.sampled_from([fmt for fmt in RegisterFormat if fmt is not F32]),
    orders=st.sampled_from(ORDERS),
)
def test_any_integer_in_range_round_trips(
    data: st.DataObject, fmt: RegisterFormat, orders: tuple[WordOrder, ByteOrder]
) -> None:
    low, high = RANGES[fmt]
    value = data.draw(st.integers(low, high))
    word_order, byte_order = orders
    registers = encode(value, fmt, word_order=word_order, byte_order=byte_order)
    assert decode(registers, fmt, word_order=word_order, byte_order=byte_order) == value


@settings(max_examples=200)
@given(value=st.floats(width=32, allow_nan=False), orders=st.sampled_from(ORDERS))
def test_any_float32_round_trips(value: float, orders: tuple[WordOrder, ByteOrder]) -> None:
    word_order, byte_order = orders
    registers = encode(value, F32, word_order=word_order, byte_order=byte_order)
    assert decode(registers, F32, word_order=word_order, byte_order=byte_order) == value


@settings(max_examples=200)
@given(
    words=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4), orders=st.sampled_from(ORDERS)
)
def test_any_registers_decode_and_encode_back(
    words: list[int], orders: tuple[WordOrder, ByteOrder]
) -> None:
    word_order, byte_order = orders
    for fmt in RegisterFormat:
        registers = words[: fmt.size]
        value = decode(registers, fmt, word_order=word_order, byte_order=byte_order)
        if isinstance(value, float) and math.isnan(value):
            continue  # NaN payloads need not survive the trip through a Python float
        assert encode(value, fmt, word_order=word_order, byte_order=byte_order) == registers


@pytest.mark.parametrize(
    ("fmt", "value", "scale"),
    [
        (F32, 31.25, 1.0),
        (F32, 7.5, 1000.0),
        (I64, 123_456_789_012.0, 1.0),
        (I32, -70.0, 0.001),
        (U32, 4_000_000_000.0, 1.0),
        (I16, -3000.0, 10.0),
        (U16, 6500.0, 0.1),
    ],
)
@pytest.mark.parametrize(("word_order", "byte_order"), ORDERS)
def test_scaled_values_round_trip(
    fmt: RegisterFormat, value: float, scale: float, word_order: WordOrder, byte_order: ByteOrder
) -> None:
    orders = {"word_order": word_order, "byte_order": byte_order}
    registers = encode_scaled(value, fmt, scale=scale, **orders)
    assert decode_scaled(registers, fmt, scale=scale, **orders) == pytest.approx(value)


def test_integer_formats_round_to_the_nearest_step() -> None:
    assert encode_scaled(7549.0, I16, scale=100.0) == [75]
    assert encode_scaled(7551.0, I16, scale=100.0) == [76]
    assert decode_scaled([76], I16, scale=100.0) == 7600.0


@pytest.mark.parametrize(("word_order", "byte_order"), ORDERS)
def test_not_available_round_trips(word_order: WordOrder, byte_order: ByteOrder) -> None:
    orders = {"word_order": word_order, "byte_order": byte_order}
    nan = encode_scaled(None, F32, **orders)
    assert decode_scaled(nan, F32, **orders) is None
    assert decode([*nan], F32, **orders) != decode([*nan], F32, **orders)  # NaN
    na16 = encode_scaled(None, I16, invalid=-32768, **orders)
    assert decode_scaled(na16, I16, invalid=-32768, **orders) is None
    assert encode_scaled(None, U32, **orders) == [0, 0]  # no "invalid" value: zero


def test_not_available_is_the_schneider_nan_and_the_invalid_raw_value() -> None:
    assert encode_scaled(None, F32) == [0xFFC0, 0x0000]
    assert encode_scaled(None, F32, word_order=WordOrder.LITTLE) == [0x0000, 0xFFC0]
    assert decode_scaled([0xFFC0, 0x0000], F32) is None
    assert decode_scaled([0x7F80, 0x0000], F32) is None  # +inf
    assert decode_scaled([0x8000], U16, invalid=32768) is None
    assert decode_scaled([0x7FFF], U16, invalid=32768) == 32767


def test_wrong_register_counts_and_values_that_do_not_fit_are_codec_errors() -> None:
    with pytest.raises(CodecError, match="float32 needs 2 registers, got 1"):
        decode([1], F32)
    with pytest.raises(CodecError, match="int64 needs 4 registers, got 2"):
        decode_scaled([1, 2], I64)
    with pytest.raises(CodecError, match="does not fit"):
        encode(70_000, I16)
    with pytest.raises(CodecError, match="does not fit"):
        encode(-1, U32)
    with pytest.raises(CodecError, match="holds integers"):
        encode(1.5, I32)
    with pytest.raises(CodecError, match="does not fit"):
        encode_scaled(1e6, U16, scale=0.1)
    with pytest.raises(CodecError, match="no int32 encoding"):
        encode_scaled(math.inf, I32)
