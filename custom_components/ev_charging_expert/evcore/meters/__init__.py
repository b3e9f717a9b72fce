"""Power meters: Modbus TCP / RTU-over-TCP / RTU polling, register maps, custom models.

- `models`: register maps (`MeterModel`, `RegisterSpec`), the four built-in models, read planning.
- `catalog`: `ModelRegistry` (built-in + custom models) and the JSON import/export of models.
- `config`: `MeterConfig` (validated on construction).
- `reading`: `MeterReading` (A, W, Wh) and register decoding (`evcore.modbus`' codec).
- `transport`: `Gateway`, one shared pymodbus connection per host:port or serial port.
- `poller`: `Meter` (state, last reading, freshness) and `MeterPool` (polling on the clock).
"""

from __future__ import annotations

from ..modbus import RegisterFormat, WordOrder
from .catalog import ModelRegistry, dump_models_json, parse_models_json
from .config import MeterConfig, MeterProtocol, Parity, SerialSettings
from .models import (
    BUILTIN_MODELS,
    MTZ,
    NSX,
    NSX_LEGACY,
    PM5320,
    MeterModel,
    Numbering,
    Quantity,
    RegisterSpec,
    RegisterType,
    make_model,
    plan_reads,
)
from .poller import (
    Meter,
    MeterEvent,
    MeterPool,
    MeterReadingReceived,
    MeterState,
    MeterStateChanged,
    MeterStatus,
)
from .reading import MeterReading
from .transport import DeviceError, Gateway, MeterLinkError, NotConnectedError

__all__ = [
    "BUILTIN_MODELS",
    "MTZ",
    "NSX",
    "NSX_LEGACY",
    "PM5320",
    "DeviceError",
    "Gateway",
    "Meter",
    "MeterConfig",
    "MeterEvent",
    "MeterLinkError",
    "MeterModel",
    "MeterPool",
    "MeterProtocol",
    "MeterReading",
    "MeterReadingReceived",
    "MeterState",
    "MeterStateChanged",
    "MeterStatus",
    "ModelRegistry",
    "NotConnectedError",
    "Numbering",
    "Parity",
    "Quantity",
    "RegisterFormat",
    "RegisterSpec",
    "RegisterType",
    "SerialSettings",
    "WordOrder",
    "dump_models_json",
    "make_model",
    "parse_models_json",
    "plan_reads",
]
