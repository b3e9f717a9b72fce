"""Register maps of power meters: the built-in models and the types custom models are made of.

A model says, for each quantity a meter can report, where its register is, how it is encoded
and how to turn the raw number into a normalised unit: amperes, watts, watt-hours.

Register numbering. Schneider Electric documents "register 3000" and sends address 2999 in the
Modbus frame (register = address + 1). A model carries its convention in `numbering`:
`Numbering.REGISTER` (1-based register numbers, what the vendor tables and the reference
product use; the wire address is number - 1) or `Numbering.ADDRESS` (the 0-based address sent
on the wire). Every built-in model uses register numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import math
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..modbus import RegisterFormat, WordOrder, decode_scaled, encode_scaled

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

MAX_REGISTERS_PER_READ = 125
"""The Modbus limit for one read of holding or input registers (function codes 3 and 4)."""
MAX_READ_GAP = 16
"""The largest gap of unused registers a model may ask the poller to read through."""


class RegisterType(StrEnum):
    """Which Modbus table holds the value."""

    HOLDING = "holding"  # function code 3
    INPUT = "input"  # function code 4


class Numbering(StrEnum):
    """What the addresses of a model mean."""

    REGISTER = "register"  # 1-based register numbers: wire address = number - 1
    ADDRESS = "address"  # 0-based wire addresses, sent as written


class Quantity(StrEnum):
    """What a meter reports, in normalised units after scaling."""

    CURRENT_L1 = "current_l1"  # A
    CURRENT_L2 = "current_l2"
    CURRENT_L3 = "current_l3"
    POWER_L1 = "power_l1"  # W, active, signed
    POWER_L2 = "power_l2"
    POWER_L3 = "power_l3"
    POWER_TOTAL = "power_total"  # W, active, signed
    ENERGY_DELIVERED = "energy_delivered"  # Wh, active energy delivered (imported)

    @property
    def unit(self) -> str:
        """The normalised unit a scaled value is in."""
        if self in CURRENTS:
            return "A"
        if self is Quantity.ENERGY_DELIVERED:
            return "Wh"
        return "W"

    @property
    def label(self) -> str:
        """Human words for error messages and documentation."""
        return _LABELS[self]


CURRENTS = (Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3)
PHASE_POWERS = (Quantity.POWER_L1, Quantity.POWER_L2, Quantity.POWER_L3)
_LABELS = {
    Quantity.CURRENT_L1: "current L1",
    Quantity.CURRENT_L2: "current L2",
    Quantity.CURRENT_L3: "current L3",
    Quantity.POWER_L1: "active power L1",
    Quantity.POWER_L2: "active power L2",
    Quantity.POWER_L3: "active power L3",
    Quantity.POWER_TOTAL: "total active power",
    Quantity.ENERGY_DELIVERED: "active energy delivered",
}


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """Where one quantity is and how to decode it: value = raw * scale (in A, W or Wh)."""

    address: int
    format: RegisterFormat = RegisterFormat.FLOAT32
    word_order: WordOrder = WordOrder.BIG
    register_type: RegisterType = RegisterType.HOLDING
    scale: float = 1.0
    invalid: int | None = None
    """A raw integer the device sends for "not available" (NaN plays that role for floats)."""

    def decode(self, registers: Sequence[int]) -> float | None:
        """The value in A, W or Wh; None when the device says "not available".

        Raises `CodecError` unless there are exactly as many registers as the format takes.
        """
        return decode_scaled(
            registers,
            self.format,
            word_order=self.word_order,
            scale=self.scale,
            invalid=self.invalid,
        )

    def encode(self, value: float | None) -> list[int]:
        """The registers a device sends for `value` (A, W or Wh; None = "not available")."""
        return encode_scaled(
            value, self.format, word_order=self.word_order, scale=self.scale, invalid=self.invalid
        )


@dataclass(frozen=True, slots=True)
class MeterModel:
    """A register map: built-in (from the product's table) or custom (made by the installer)."""

    name: str
    registers: Mapping[Quantity, RegisterSpec]
    numbering: Numbering = Numbering.REGISTER
    builtin: bool = False
    max_gap: int = 0
    """Unused registers the poller may read through to merge two blocks into one request."""
    notes: str = field(default="", compare=False)

    def wire_address(self, spec: RegisterSpec) -> int:
        """The 0-based address sent in the Modbus frame for `spec`."""
        return spec.address - 1 if self.numbering is Numbering.REGISTER else spec.address

    def spec(self, quantity: Quantity) -> RegisterSpec | None:
        """The register of `quantity`, or None when the model does not have it."""
        return self.registers.get(quantity)


def validate_model(model: MeterModel) -> None:
    """Raise ConfigError (naming the model and the field) unless `model` is usable."""
    name = model.name.strip() if isinstance(model.name, str) else ""
    if not name:
        raise ConfigError("a meter model needs a name")
    where = f"meter model {model.name!r}"
    missing = [q.label for q in CURRENTS if q not in model.registers]
    if missing:
        raise ConfigError(f"{where}: the {', '.join(missing)} register is required")
    if not 0 <= model.max_gap <= MAX_READ_GAP:
        raise ConfigError(f"{where}: max_gap must be between 0 and {MAX_READ_GAP}")
    lowest = 1 if model.numbering is Numbering.REGISTER else 0
    for quantity, spec in model.registers.items():
        _validate_spec(f"{where}: {quantity.label}", spec, lowest)


def _validate_spec(where: str, spec: RegisterSpec, lowest: int) -> None:
    try:
        size = RegisterFormat(spec.format).size
        WordOrder(spec.word_order)
        RegisterType(spec.register_type)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None
    highest = lowest + 0xFFFF - (size - 1)
    if isinstance(spec.address, bool) or not isinstance(spec.address, int):
        raise ConfigError(f"{where}: the address must be an integer")
    if not lowest <= spec.address <= highest:
        raise ConfigError(
            f"{where}: address {spec.address} is out of range ({lowest}-{highest} for "
            f"{spec.format})"
        )
    if not math.isfinite(spec.scale) or spec.scale == 0:
        raise ConfigError(f"{where}: the scale factor must be a finite, non-zero number")


def make_model(
    name: str,
    registers: Mapping[Quantity, RegisterSpec],
    *,
    numbering: Numbering = Numbering.REGISTER,
    max_gap: int = 0,
    notes: str = "",
) -> MeterModel:
    """Build and validate a custom model."""
    model = MeterModel(
        name=name.strip(),
        registers=dict(registers),
        numbering=numbering,
        builtin=False,
        max_gap=max_gap,
        notes=notes,
    )
    validate_model(model)
    return model


# --- Built-in models (register numbers, as in the product's register table) -------------------

PM5320 = "PM5320 / iEM3x5x / PowerTag"
NSX_LEGACY = "NSX legacy"
NSX = "NSX"
MTZ = "MTZ"

_F32 = RegisterFormat.FLOAT32
_MICROLOGIC_NA = 32768  # MicroLogic 16-bit registers read 32768 (0x8000) when not available


def _builtin(name: str, registers: dict[Quantity, RegisterSpec], notes: str) -> MeterModel:
    model = MeterModel(name=name, registers=registers, builtin=True, notes=notes)
    validate_model(model)
    return model


BUILTIN_MODELS: dict[str, MeterModel] = {
    model.name: model
    for model in (
        _builtin(
            PM5320,
            {
                Quantity.CURRENT_L1: RegisterSpec(3000, _F32),
                Quantity.CURRENT_L2: RegisterSpec(3002, _F32),
                Quantity.CURRENT_L3: RegisterSpec(3004, _F32),
                # PM5300 and iEM3000 report kW here; PowerTag Link documents W (see docs).
                Quantity.POWER_TOTAL: RegisterSpec(3060, _F32, scale=1000.0),
                Quantity.ENERGY_DELIVERED: RegisterSpec(3204, RegisterFormat.INT64),
            },
            "Schneider PM5300 / iEM3000 / PowerTag Link common map; float32 A, kW; int64 Wh.",
        ),
        _builtin(
            NSX_LEGACY,
            {
                Quantity.CURRENT_L1: RegisterSpec(
                    12016, RegisterFormat.UINT16, invalid=_MICROLOGIC_NA
                ),
                Quantity.CURRENT_L2: RegisterSpec(
                    12017, RegisterFormat.UINT16, invalid=_MICROLOGIC_NA
                ),
                Quantity.CURRENT_L3: RegisterSpec(
                    12018, RegisterFormat.UINT16, invalid=_MICROLOGIC_NA
                ),
                Quantity.POWER_TOTAL: RegisterSpec(
                    12041, RegisterFormat.INT16, scale=100.0, invalid=-_MICROLOGIC_NA
                ),
                Quantity.ENERGY_DELIVERED: RegisterSpec(12050, RegisterFormat.INT32, scale=1000.0),
            },
            "MicroLogic legacy dataset (12000-12165); uint16 A, int16 0.1 kW, int32 kWh.",
        ),
        _builtin(
            NSX,
            {
                Quantity.CURRENT_L1: RegisterSpec(
                    1016, RegisterFormat.UINT16, invalid=_MICROLOGIC_NA
                ),
                Quantity.CURRENT_L2: RegisterSpec(
                    1017, RegisterFormat.UINT16, invalid=_MICROLOGIC_NA
                ),
                Quantity.CURRENT_L3: RegisterSpec(
                    1018, RegisterFormat.UINT16, invalid=_MICROLOGIC_NA
                ),
                Quantity.POWER_TOTAL: RegisterSpec(
                    1037, RegisterFormat.INT16, scale=100.0, invalid=-_MICROLOGIC_NA
                ),
                Quantity.ENERGY_DELIVERED: RegisterSpec(2000, RegisterFormat.INT64, scale=1000.0),
            },
            "Compact NSX MicroLogic E device registers; uint16 A, int16 0.1 kW, int64 kWh.",
        ),
        _builtin(
            MTZ,
            {
                Quantity.CURRENT_L1: RegisterSpec(32028, _F32),
                Quantity.CURRENT_L2: RegisterSpec(32030, _F32),
                Quantity.CURRENT_L3: RegisterSpec(32032, _F32),
                Quantity.POWER_TOTAL: RegisterSpec(32078, _F32),
                Quantity.ENERGY_DELIVERED: RegisterSpec(32096, RegisterFormat.INT64),
            },
            "MasterPact MTZ MicroLogic X standard dataset; float32 A, W; int64 Wh.",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class BlockItem:
    """One quantity inside a block read: its offset (in registers) from the block start."""

    quantity: Quantity
    offset: int
    spec: RegisterSpec


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One Modbus request: `count` registers of one type from wire address `address`."""

    register_type: RegisterType
    address: int
    count: int
    items: tuple[BlockItem, ...]


def plan_reads(model: MeterModel) -> tuple[ReadBlock, ...]:
    """Group the model's registers into as few requests as sensible.

    Registers of one type are merged into one request when they touch or overlap, or when the
    gap between them is at most `model.max_gap` registers, as long as the request stays within
    the Modbus limit of 125 registers. The default gap of 0 never reads registers the model does
    not name: some devices answer "illegal address" for reserved registers.
    """
    entries = sorted(
        (
            (RegisterType(spec.register_type), model.wire_address(spec), quantity, spec)
            for quantity, spec in model.registers.items()
        ),
        key=lambda entry: (entry[0], entry[1], entry[2]),
    )
    blocks: list[ReadBlock] = []
    current: list[tuple[int, Quantity, RegisterSpec]] = []
    kind: RegisterType | None = None
    start = end = 0  # [start, end) of the current block, wire addresses

    def close() -> None:
        if kind is not None and current:
            items = tuple(BlockItem(q, addr - start, spec) for addr, q, spec in current)
            blocks.append(ReadBlock(kind, start, end - start, items))

    for reg_type, address, quantity, spec in entries:
        stop = address + RegisterFormat(spec.format).size
        fits = (
            reg_type == kind
            and address <= end + model.max_gap
            and max(end, stop) - start <= MAX_REGISTERS_PER_READ
        )
        if not fits:
            close()
            current = []
            kind, start, end = reg_type, address, stop
        end = max(end, stop)
        current.append((address, quantity, spec))
    close()
    return tuple(blocks)
