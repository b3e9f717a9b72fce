"""Modbus register encoding shared by the meters' poller, the simulators and the BMS slave.

- `codec`: data types (`RegisterFormat`), word and byte order, scale and "not available" values
  on top of pymodbus' own register conversion.
"""

from __future__ import annotations

from .codec import (
    ByteOrder,
    CodecError,
    RegisterFormat,
    WordOrder,
    decode,
    decode_scaled,
    encode,
    encode_scaled,
)

__all__ = [
    "ByteOrder",
    "CodecError",
    "RegisterFormat",
    "WordOrder",
    "decode",
    "decode_scaled",
    "encode",
    "encode_scaled",
]
