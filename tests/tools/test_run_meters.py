"""tools/run_meters.py: argument parsing, stdin commands, and a CLI-built simulator polled."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.meters import (
    MTZ,
    MeterConfig,
    MeterPool,
    MeterProtocol,
    MeterState,
    ModelRegistry,
    Quantity,
)
from tools import run_meters

if TYPE_CHECKING:
    from pathlib import Path


def test_parse_slaves_and_currents() -> None:
    assert run_meters.parse_slaves("1") == [1]
    assert run_meters.parse_slaves("3,1-2,2") == [1, 2, 3]
    assert run_meters.parse_currents("40,35,30") == (40, 35, 30)
    assert run_meters.parse_currents("16") == (16, 16, 16)
    for bad in ("0", "5-3", "1-256", "x"):
        with pytest.raises(ValueError, match=r"slave range|invalid literal"):
            run_meters.parse_slaves(bad)
    with pytest.raises(ValueError, match="one value or three"):
        run_meters.parse_currents("1,2")


def test_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = run_meters.parse_args(
        ["--port", "0", "--model", MTZ, "--slave", "1-3", "--current", "40,35,30", "--rtu"]
    )
    assert args.slaves == [1, 2, 3]
    assert args.model_obj.name == MTZ
    with pytest.raises(SystemExit):
        run_meters.parse_args(["--model", "Nope"])
    assert "unknown meter model 'Nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[{}]")
    with pytest.raises(SystemExit):
        run_meters.parse_args(["--models-file", str(bad)])
    assert "--models-file: models[0]" in capsys.readouterr().err
    good = tmp_path / "good.json"
    registry = ModelRegistry()
    registry.import_json(
        json.dumps(
            [
                {
                    "name": "Mine",
                    "registers": {
                        "current_l1": {"address": 10},
                        "current_l2": {"address": 12},
                        "current_l3": {"address": 14},
                    },
                }
            ]
        )
    )
    good.write_text(registry.export_json())
    args = run_meters.parse_args(["--models-file", str(good), "--model", "Mine"])
    assert args.model_obj == registry.get("Mine")


async def test_cli_simulator_is_polled_and_commands_change_values() -> None:
    args = run_meters.parse_args(
        ["--port", "0", "--model", MTZ, "--slave", "1-2", "--current", "40,35,30", "--rtu"]
    )
    simulator = run_meters.build_simulator(args)
    await simulator.start()
    pool = MeterPool(ManualClock())
    try:
        meters = [
            pool.add(
                MeterConfig(
                    meter_id=f"m{slave}",
                    name=f"m{slave}",
                    model=MTZ,
                    protocol=MeterProtocol.RTU_OVER_TCP,
                    host="127.0.0.1",
                    port=simulator.port,
                    slave_id=slave,
                )
            )
            for slave in (1, 2)
        ]
        reply = run_meters.apply_command(simulator, "current 2 5,6,7")
        assert reply is not None
        assert reply.startswith("slave 2: 5/6/7 A")
        assert run_meters.apply_command(simulator, "energy all 1000") is not None
        assert run_meters.apply_command(simulator, "power 1 -2500") is not None
        pool.start()
        await asyncio.wait_for(pool.wait_idle(), 10)
        first, second = (m.reading for m in meters)
        assert first is not None
        assert second is not None
        assert first.currents_a == (40, 35, 30)
        assert first.total_power_w == -2500
        assert second.currents_a == (5, 6, 7)
        assert second.total_power_w == pytest.approx(18 * 230)
        assert second.energy_wh == 1000
        assert run_meters.apply_command(simulator, "silent 1 on") is not None
        assert simulator.meter(1).silent
        show = run_meters.apply_command(simulator, "show")
        assert show is not None
        assert "(silent)" in show
        assert run_meters.apply_command(simulator, "") == ""
        assert run_meters.apply_command(simulator, "current 9 1") == "error: 9"
        assert run_meters.apply_command(simulator, "bogus 1 1") == "error: unknown command 'bogus'"
        assert run_meters.apply_command(simulator, "current 1").startswith("usage")  # type: ignore[union-attr]
        assert run_meters.apply_command(simulator, "quit") is None
        assert all(m.state is MeterState.CONNECTED for m in meters)
        simulator.meter(2).add_energy(500)
        assert simulator.meter(2).values[Quantity.ENERGY_DELIVERED] == 1500
    finally:
        await pool.stop()
        await simulator.stop()
