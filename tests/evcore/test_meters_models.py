"""Meter register maps, decoding, custom models and their JSON files, meter configuration.

No network here: these are the pure parts of evcore.meters.
"""

from __future__ import annotations

from datetime import UTC, datetime
import json
import math

import pytest

from custom_components.ev_charging_expert.evcore.errors import ConfigError
from custom_components.ev_charging_expert.evcore.meters import (
    BUILTIN_MODELS,
    MTZ,
    NSX,
    NSX_LEGACY,
    PM5320,
    MeterConfig,
    MeterModel,
    MeterProtocol,
    ModelRegistry,
    Numbering,
    Parity,
    Quantity,
    RegisterFormat,
    RegisterSpec,
    RegisterType,
    SerialSettings,
    WordOrder,
    make_model,
    plan_reads,
)
from custom_components.ev_charging_expert.evcore.meters.catalog import (
    model_from_data,
    model_to_data,
)
from custom_components.ev_charging_expert.evcore.meters.reading import (
    DecodeError,
    build_reading,
    decode_blocks,
    scaled_value,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
F32, I64, I32, U32, I16, U16 = (
    RegisterFormat.FLOAT32,
    RegisterFormat.INT64,
    RegisterFormat.INT32,
    RegisterFormat.UINT32,
    RegisterFormat.INT16,
    RegisterFormat.UINT16,
)
CURRENTS = {
    Quantity.CURRENT_L1: RegisterSpec(1),
    Quantity.CURRENT_L2: RegisterSpec(3),
    Quantity.CURRENT_L3: RegisterSpec(5),
}


# --- built-in models ------------------------------------------------------------------------


def test_builtin_models_follow_the_product_table() -> None:
    expected = {
        PM5320: (3000, 3002, 3004, 3060, 3204),
        NSX_LEGACY: (12016, 12017, 12018, 12041, 12050),
        NSX: (1016, 1017, 1018, 1037, 2000),
        MTZ: (32028, 32030, 32032, 32078, 32096),
    }
    assert set(BUILTIN_MODELS) == set(expected)
    order = (*CURRENTS, Quantity.POWER_TOTAL, Quantity.ENERGY_DELIVERED)
    for name, registers in expected.items():
        model = BUILTIN_MODELS[name]
        assert model.builtin
        assert model.numbering is Numbering.REGISTER
        assert tuple(model.registers[q].address for q in order) == registers
        # Register numbers are 1-based: register 3000 goes out as address 2999.
        assert model.wire_address(model.registers[Quantity.CURRENT_L1]) == registers[0] - 1


def test_builtin_formats_and_units() -> None:
    pm = BUILTIN_MODELS[PM5320].registers
    assert pm[Quantity.CURRENT_L1].format is F32
    assert pm[Quantity.POWER_TOTAL].scale == 1000.0  # kW -> W
    assert pm[Quantity.ENERGY_DELIVERED].format is I64  # Wh
    nsx = BUILTIN_MODELS[NSX].registers
    assert nsx[Quantity.CURRENT_L1].format is U16
    assert nsx[Quantity.ENERGY_DELIVERED].scale == 1000.0  # kWh -> Wh
    mtz = BUILTIN_MODELS[MTZ].registers
    assert mtz[Quantity.POWER_TOTAL].scale == 1.0  # W


def test_read_plan_groups_contiguous_registers() -> None:
    blocks = plan_reads(BUILTIN_MODELS[PM5320])
    assert [(b.address, b.count) for b in blocks] == [(2999, 6), (3059, 2), (3203, 4)]
    assert [item.offset for item in blocks[0].items] == [0, 2, 4]
    nsx = plan_reads(BUILTIN_MODELS[NSX_LEGACY])
    assert [(b.address, b.count) for b in nsx] == [(12015, 3), (12040, 1), (12049, 2)]
    mtz = plan_reads(BUILTIN_MODELS[MTZ])
    assert [(b.address, b.count) for b in mtz] == [(32027, 6), (32077, 2), (32095, 4)]


def test_read_plan_gap_type_and_size_limits() -> None:
    registers = {
        **CURRENTS,
        Quantity.POWER_TOTAL: RegisterSpec(10),  # gap of 3 after current L3 (5-6)
        Quantity.ENERGY_DELIVERED: RegisterSpec(12, I64, register_type=RegisterType.INPUT),
    }
    strict = plan_reads(make_model("strict", registers))
    assert [(b.register_type, b.address, b.count) for b in strict] == [
        (RegisterType.HOLDING, 0, 6),
        (RegisterType.HOLDING, 9, 2),
        (RegisterType.INPUT, 11, 4),
    ]
    loose = plan_reads(make_model("loose", registers, max_gap=3))
    assert [(b.register_type, b.address, b.count) for b in loose] == [
        (RegisterType.HOLDING, 0, 11),
        (RegisterType.INPUT, 11, 4),
    ]
    far = make_model(
        "far",
        {**CURRENTS, Quantity.POWER_TOTAL: RegisterSpec(7 + 125)},
        max_gap=16,
    )
    assert len(plan_reads(far)) == 2  # never more than 125 registers in one request


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "order", "value", "scale"),
    [
        (F32, WordOrder.BIG, 31.25, 1.0),
        (F32, WordOrder.LITTLE, -4.5, 1.0),
        (I64, WordOrder.BIG, 123_456_789_012, 1.0),
        (I64, WordOrder.LITTLE, -42, 1.0),
        (I32, WordOrder.BIG, -70_000, 0.001),
        (I32, WordOrder.LITTLE, 70_000, 1.0),
        (U32, WordOrder.BIG, 4_000_000_000, 1.0),
        (I16, WordOrder.BIG, -300, 10.0),
        (U16, WordOrder.BIG, 65_000, 0.1),
    ],
)
def test_scaled_values_round_trip(
    fmt: RegisterFormat, order: WordOrder, value: float, scale: float
) -> None:
    spec = RegisterSpec(1, fmt, order, scale=scale)
    registers = spec.encode(value * scale)
    assert len(registers) == fmt.size
    assert scaled_value(registers, spec) == pytest.approx(value * scale)


def test_word_order_is_the_order_of_16_bit_words() -> None:
    one_and_half = [0x3FC0, 0x0000]  # 1.5 as float32, most significant word first
    assert scaled_value(one_and_half, RegisterSpec(1)) == 1.5
    assert scaled_value(one_and_half[::-1], RegisterSpec(1, word_order=WordOrder.LITTLE)) == 1.5
    assert scaled_value([0x0001, 0x0000], RegisterSpec(1, U32)) == 65536
    assert scaled_value([0x0001, 0x0000], RegisterSpec(1, U32, WordOrder.LITTLE)) == 1


def test_not_available_values_decode_to_none() -> None:
    assert scaled_value([0xFFC0, 0x0000], RegisterSpec(1)) is None  # Schneider NaN
    assert scaled_value([0x7F80, 0x0000], RegisterSpec(1)) is None  # +inf
    na16 = RegisterSpec(1, U16, invalid=32768)
    assert scaled_value([0x8000], na16) is None
    assert scaled_value([0x7FFF], na16) == 32767
    with pytest.raises(DecodeError):
        scaled_value([1], RegisterSpec(1))  # float32 needs two registers


def test_reading_needs_three_plausible_currents() -> None:
    model = BUILTIN_MODELS[PM5320]
    blocks = plan_reads(model)
    twelve = RegisterSpec(1).encode(12)
    answers = [
        [*RegisterSpec(1).encode(10), *RegisterSpec(1).encode(11), *twelve],
        RegisterSpec(1).encode(7.5),  # kW
        RegisterSpec(1, I64).encode(99),
    ]
    reading = build_reading(decode_blocks(blocks, answers), timestamp=T0, monotonic=3.0)
    assert reading.currents_a == (10, 11, 12)
    assert reading.current(2) == 11
    assert reading.total_power_w == 7500
    assert reading.energy_wh == 99
    assert reading.powers_w == (None, None, None)
    assert reading.monotonic == 3.0
    nan = [0xFFC0, 0]
    with pytest.raises(DecodeError, match="current L2 not available"):
        build_reading(
            decode_blocks(blocks, [[*answers[0][:2], *nan, *answers[0][4:]], *answers[1:]]),
            timestamp=T0,
            monotonic=0,
        )
    with pytest.raises(DecodeError, match="implausible"):
        build_reading(
            dict.fromkeys((Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3), -3.0),
            timestamp=T0,
            monotonic=0,
        )


def test_total_power_is_the_sum_of_phases_when_not_measured() -> None:
    values = dict.fromkeys((Quantity.CURRENT_L1, Quantity.CURRENT_L2, Quantity.CURRENT_L3), 1.0)
    values |= {Quantity.POWER_L1: 100.0, Quantity.POWER_L2: 200.0, Quantity.POWER_L3: -50.0}
    assert build_reading(values, timestamp=T0, monotonic=0).total_power_w == 250.0
    values[Quantity.POWER_L3] = None
    assert build_reading(values, timestamp=T0, monotonic=0).total_power_w is None


# --- custom models --------------------------------------------------------------------------


def test_custom_model_needs_the_three_currents() -> None:
    with pytest.raises(ConfigError, match=r"'Mine': the current L3 register is required"):
        make_model(
            "Mine", {Quantity.CURRENT_L1: RegisterSpec(1), Quantity.CURRENT_L2: RegisterSpec(3)}
        )


@pytest.mark.parametrize(
    ("spec", "numbering", "message"),
    [
        (RegisterSpec(1, "float"), Numbering.REGISTER, "'float' is not a valid RegisterFormat"),  # type: ignore[arg-type]
        (RegisterSpec(1, word_order="middle"), Numbering.REGISTER, "WordOrder"),  # type: ignore[arg-type]
        (RegisterSpec(0), Numbering.REGISTER, "address 0 is out of range"),
        (RegisterSpec(65536), Numbering.ADDRESS, "address 65536 is out of range"),
        (RegisterSpec(65534, I64), Numbering.ADDRESS, "out of range"),
        (RegisterSpec(1, scale=0), Numbering.REGISTER, "scale factor"),
        (RegisterSpec(1, scale=math.nan), Numbering.REGISTER, "scale factor"),
    ],
)
def test_custom_model_register_checks(
    spec: RegisterSpec, numbering: Numbering, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        make_model("Mine", {**CURRENTS, Quantity.CURRENT_L2: spec}, numbering=numbering)
    assert "'Mine': current L2" in str(err.value)


def test_address_numbering_allows_address_zero() -> None:
    model = make_model(
        "zero",
        {**CURRENTS, Quantity.CURRENT_L1: RegisterSpec(0)},
        numbering=Numbering.ADDRESS,
    )
    assert model.wire_address(model.registers[Quantity.CURRENT_L1]) == 0


def _custom(name: str = "Custom 1", **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": name,
        "registers": {
            "current_l1": {"address": 1, "format": "float32"},
            "current_l2": {"address": 3, "format": "float32"},
            "current_l3": {"address": 5, "format": "float32"},
            "power_total": {"address": 100, "format": "int32", "scale": 0.1, "type": "input"},
            "energy_delivered": {"address": 200, "format": "int64", "word_order": "little"},
        },
    }
    data.update(overrides)
    return data


def test_json_round_trip_and_selective_export() -> None:
    registry = ModelRegistry()
    added = registry.import_json(json.dumps([_custom("A"), _custom("B")]))
    assert [m.name for m in added] == ["A", "B"]
    assert registry.names() == [*BUILTIN_MODELS, "A", "B"]
    exported = json.loads(registry.export_json(["B"]))
    assert exported["version"] == 1
    assert [m["name"] for m in exported["models"]] == ["B"]
    spec = registry.get("A").registers[Quantity.POWER_TOTAL]
    assert spec == RegisterSpec(100, I32, WordOrder.BIG, RegisterType.INPUT, 0.1)
    other = ModelRegistry()
    other.import_json(registry.export_json())
    assert other.custom == registry.custom
    assert ModelRegistry.from_data(registry.to_data()).custom == registry.custom
    assert model_from_data(model_to_data(registry.get("A"))) == registry.get("A")
    with pytest.raises(ConfigError, match="unknown custom model 'C'"):
        registry.export_json(["C"])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("this is not json", "not a JSON file"),
        ("{", "not a JSON file"),
        (json.dumps({"models": []}), "file: version is required"),
        (json.dumps({"version": 2, "models": []}), "version: 1 was expected"),
        (json.dumps({"version": 1, "models": {}}), "models: {} is not of type 'array'"),
        (
            json.dumps([_custom("ok"), _custom("Bad", registers={"current_l1": {"address": 1}})]),
            "models[1] ('Bad') registers: current_l2, current_l3 is required",
        ),
        (
            json.dumps([_custom("Bad fmt")]).replace('"int64"', '"float"'),
            "models[0] ('Bad fmt') registers.energy_delivered.format: 'float' is not one of",
        ),
        (
            json.dumps([_custom("Bad addr")]).replace('"address": 100', '"address": "100"'),
            "models[0] ('Bad addr') registers.power_total.address: '100' is not of type",
        ),
        (json.dumps([_custom("x", extra=1)]), "Additional properties are not allowed"),
        (json.dumps([_custom("")]), "models[0] ('') name"),
        (
            json.dumps([_custom("Zero", numbering="register")]).replace(
                '"address": 1,', '"address": 0,'
            ),
            "models[0] ('Zero'): meter model 'Zero': current L1: address 0 is out of range",
        ),
        (json.dumps([_custom("Twice"), _custom("twice")]), "the name appears twice in the file"),
        (json.dumps([_custom(PM5320)]), "is the name of a built-in model"),
    ],
)
def test_bad_import_changes_nothing(document: str, message: str) -> None:
    registry = ModelRegistry()
    registry.import_json(json.dumps([_custom("Existing")]))
    before = registry.export_json()
    with pytest.raises(ConfigError) as err:
        registry.import_json(document)
    assert message in str(err.value)
    assert registry.export_json() == before


def test_import_of_an_existing_name_needs_replace() -> None:
    registry = ModelRegistry()
    registry.import_json(json.dumps([_custom("Mine")]))
    changed = _custom("Mine", max_gap=2)
    with pytest.raises(ConfigError, match="models\\[1\\] \\('Mine'\\): a custom model called"):
        registry.import_json(json.dumps([_custom("New"), changed]))
    assert "New" not in registry  # all or nothing
    registry.import_json(json.dumps([changed]), replace=True)
    assert registry.get("Mine").max_gap == 2


def test_registry_add_remove() -> None:
    registry = ModelRegistry()
    model = make_model("Mine", CURRENTS)
    registry.add(model)
    with pytest.raises(ConfigError, match="already exists"):
        registry.add(model)
    with pytest.raises(ConfigError, match="built-in"):
        registry.add(BUILTIN_MODELS[NSX])
    with pytest.raises(ConfigError, match="built-in"):
        registry.add(MeterModel(name="mtz", registers=CURRENTS))
    with pytest.raises(ConfigError, match="cannot be removed"):
        registry.remove(MTZ)
    assert registry.remove("Mine") == model
    with pytest.raises(ConfigError, match="unknown custom model"):
        registry.remove("Mine")
    with pytest.raises(ConfigError, match="unknown meter model 'Mine'"):
        registry.get("Mine")


# --- meter configuration ---------------------------------------------------------------------


def config(**overrides: object) -> MeterConfig:
    values: dict[str, object] = {
        "meter_id": "m1",
        "name": "Main switchboard",
        "model": PM5320,
        "host": "192.0.2.10",
    }
    values.update(overrides)
    return MeterConfig(**values)  # type: ignore[arg-type]


def test_config_defaults() -> None:
    cfg = config()
    assert (cfg.protocol, cfg.port, cfg.slave_id, cfg.polling_period) == (
        MeterProtocol.TCP,
        502,
        255,
        0.5,
    )
    assert not cfg.reporting_only
    assert cfg.validity == 2 * 0.5 + 1.0
    assert cfg.gateway_key == "192.0.2.10:502"
    assert cfg.endpoint == "192.0.2.10:502#255"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": 0}, "port must be an integer between 1 and 65535 (got 0)"),
        ({"port": 70000}, "port must be an integer between 1 and 65535 (got 70000)"),
        ({"slave_id": 0}, "slave id must be an integer between 1 and 255 (got 0)"),
        ({"slave_id": 256}, "slave id must be an integer between 1 and 255 (got 256)"),
        ({"slave_id": True}, "slave id must be an integer"),
        ({"polling_period": 0}, "polling period must be between 0.1 and 3600 s (got 0)"),
        ({"polling_period": 0.05}, "polling period must be between 0.1 and 3600 s"),
        ({"polling_period": math.inf}, "polling period"),
        ({"timeout": 0}, "timeout must be between 0.05 and 10 s"),
        ({"host": ""}, "host: an IP address or host name is required"),
        ({"host": None}, "host: an IP address or host name is required"),
        ({"name": " "}, "name is required"),
        ({"model": ""}, "model is required"),
        ({"protocol": "udp"}, "protocol must be one of tcp, rtu_over_tcp, rtu (got 'udp')"),
        ({"protocol": MeterProtocol.RTU}, "serial: port settings are required for RTU"),
    ],
)
def test_bad_config_is_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(**overrides)
    assert message in str(err.value)


def test_serial_config() -> None:
    cfg = config(protocol="rtu", host=None, serial=SerialSettings("/dev/ttyUSB0"), slave_id=3)
    assert cfg.protocol is MeterProtocol.RTU
    assert cfg.gateway_key == "/dev/ttyUSB0"
    assert cfg.serial is not None
    assert (cfg.serial.baudrate, cfg.serial.parity, cfg.serial.stopbits) == (19200, Parity.EVEN, 1)
    for kwargs, message in (
        ({"port": ""}, "serial port"),
        ({"port": "/dev/x", "baudrate": 1234}, "baudrate must be one of"),
        ({"port": "/dev/x", "parity": "X"}, "parity must be N, E or O"),
        ({"port": "/dev/x", "stopbits": 3}, "stopbits must be 1 or 2"),
        ({"port": "/dev/x", "bytesize": 5}, "bytesize must be 7 or 8"),
    ):
        with pytest.raises(ConfigError, match=message):
            SerialSettings(**kwargs)  # type: ignore[arg-type]


def test_config_dict_round_trip() -> None:
    tcp = config(protocol=MeterProtocol.RTU_OVER_TCP, port=5020, slave_id=7, reporting_only=True)
    assert MeterConfig.from_dict("m1", tcp.to_dict()) == tcp
    rtu = config(
        protocol=MeterProtocol.RTU,
        host=None,
        serial=SerialSettings("/dev/ttyS0", 9600, Parity.NONE, 2),
    )
    data = json.loads(json.dumps(rtu.to_dict()))
    assert MeterConfig.from_dict("m1", data) == rtu
    with pytest.raises(ConfigError, match="meter m2: model is required"):
        MeterConfig.from_dict("m2", {"name": "x"})
    with pytest.raises(ConfigError, match="meter m2: "):
        MeterConfig.from_dict("m2", {"name": "x", "model": NSX, "host": "h", "port": "abc"})
