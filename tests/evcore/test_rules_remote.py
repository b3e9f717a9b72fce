"""Remote zone setpoints (guide 3.11.4) through the Controller's commands (contract C1)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode, validate_zones
from custom_components.ev_charging_expert.evcore.controller import Controller
from custom_components.ev_charging_expert.evcore.errors import ConfigError
from custom_components.ev_charging_expert.evcore.events import (
    RemoteSetpointLapsed,
    RulesChanged,
)
from custom_components.ev_charging_expert.evcore.rules import (
    RemoteFallback,
    RemoteSettings,
    SetpointSource,
)
from custom_components.ev_charging_expert.evcore.site import MemoryStore

HA = SetpointSource.HA


@pytest.fixture
async def controller() -> Controller:
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    controller = Controller(clock=clock, store=MemoryStore())
    controller.set_zones(
        validate_zones(
            [
                ZoneConfig("main", "Main", 100.0),
                ZoneConfig("dyn", "Dyn", 60.0, "main", ZoneMode.DYNAMIC, degraded_setpoint=20.0),
            ]
        )
    )
    await _run()
    return controller


async def _run() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def _clock(controller: Controller) -> ManualClock:
    clock = controller.clock
    assert isinstance(clock, ManualClock)
    return clock


async def test_remote_setpoints_are_off_by_default(controller: Controller) -> None:
    result = controller.set_zone_setpoint("main", 50, source=HA)
    assert (result.accepted, result.code) == (False, "disabled")
    assert controller.rules_view().remote_enabled is False


async def test_a_setpoint_lowers_the_zone_and_says_so(controller: Controller) -> None:
    controller.set_remote_settings(RemoteSettings(enabled=True))
    result = controller.set_zone_setpoint("main", 40, source=HA)
    assert result.accepted, result.message
    assert result.code == "accepted"
    await _run()
    view = controller.zone_view("main")
    assert view is not None
    assert view.limited_by == "remote"
    assert view.effective_limit == (40.0, 40.0, 40.0)
    assert view.remote_setpoint == 40.0
    sub = controller.zone_view("dyn")
    assert sub is not None
    assert sub.effective_limit == (20.0, 20.0, 20.0)  # no meter: its degraded setpoint
    assert controller.rules_view().to_dict()["setpoints"] == {"main": 40.0}


@pytest.mark.parametrize(
    ("zone", "amps", "source", "code"),
    [
        ("main", 101.0, HA, "out_of_range"),
        ("main", -1.0, HA, "out_of_range"),
        ("main", float("nan"), HA, "out_of_range"),
        ("nowhere", 10.0, HA, "unknown_zone"),
        ("main", 10.0, SetpointSource.MODBUS, "not_controlling_source"),
    ],
)
async def test_bad_setpoints_are_refused_and_nothing_changes(
    controller: Controller, zone: str, amps: float, source: SetpointSource, code: str
) -> None:
    controller.set_remote_settings(RemoteSettings(enabled=True))
    result = controller.set_zone_setpoint(zone, amps, source=source)
    assert (result.accepted, result.code) == (False, code)
    assert result.message
    assert controller.rules_view().setpoints == {}


async def test_within_the_minimum_period_the_first_value_counts(controller: Controller) -> None:
    controller.set_remote_settings(RemoteSettings(enabled=True, min_period=60))
    assert controller.set_zone_setpoint("main", 40, source=HA).accepted
    _clock(controller).advance(59)
    later = controller.set_zone_setpoint("main", 80, source=HA)
    assert (later.accepted, later.code) == (False, "too_soon")
    assert "60" in later.message
    cleared = controller.clear_zone_setpoint("main", source=HA)
    assert cleared.code == "too_soon"
    assert controller.rules_view().setpoints == {"main": 40.0}
    # Another zone has its own period.
    assert controller.set_zone_setpoint("dyn", 10, source=HA).accepted
    _clock(controller).advance(1)
    assert controller.set_zone_setpoint("main", 80, source=HA).accepted
    assert controller.rules_view().setpoints == {"main": 80.0, "dyn": 10.0}


@pytest.mark.parametrize(
    ("fallback", "expected"),
    [(RemoteFallback.DEGRADED, {"main": 0.0, "dyn": 20.0}), (RemoteFallback.NOMINAL, {})],
)
async def test_a_lapsed_heartbeat_falls_back_and_is_reported(
    controller: Controller, fallback: RemoteFallback, expected: dict[str, float]
) -> None:
    events: list[object] = []
    controller.subscribe(events.append, kinds=(RemoteSetpointLapsed, RulesChanged))
    settings = RemoteSettings(enabled=True, heartbeat=600, fallback=fallback, min_period=0)
    controller.set_remote_settings(settings)
    assert controller.set_zone_setpoint("main", 40, source=HA).accepted
    assert controller.set_zone_setpoint("dyn", 30, source=HA).accepted
    clock = _clock(controller)
    clock.advance(500)
    assert controller.remote_heartbeat(HA).accepted
    clock.advance(599)
    assert not controller.rules_view().heartbeat_lapsed
    assert not any(isinstance(e, RemoteSetpointLapsed) for e in events)
    clock.advance(2)
    view = controller.rules_view()
    assert view.heartbeat_lapsed
    assert view.setpoints == expected
    assert RemoteSetpointLapsed("ha") in events
    await _run()
    main = controller.zone_view("main")
    assert main is not None
    assert main.limited_by == ("remote" if expected else "nominal")
    # The source speaks again: no longer lapsed; the fallback stays until it sets values.
    assert controller.remote_heartbeat(HA).accepted
    assert not controller.rules_view().heartbeat_lapsed
    assert controller.rules_view().setpoints == expected


async def test_a_heartbeat_from_another_source_is_refused(controller: Controller) -> None:
    controller.set_remote_settings(RemoteSettings(enabled=True, source=SetpointSource.MQTT))
    assert controller.remote_heartbeat(HA).code == "not_controlling_source"
    assert controller.remote_heartbeat(SetpointSource.MQTT).accepted


async def test_disabling_drops_every_setpoint(controller: Controller) -> None:
    controller.set_remote_settings(RemoteSettings(enabled=True))
    assert controller.set_zone_setpoint("main", 40, source=HA).accepted
    controller.set_remote_settings(RemoteSettings(enabled=False))
    await _run()
    assert controller.rules_view().setpoints == {}
    view = controller.zone_view("main")
    assert view is not None
    assert view.limited_by == "nominal"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"heartbeat": 1}, "heartbeat"), ({"min_period": -1}, "min_period")],
)
def test_bad_remote_settings_name_the_field(changes: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        RemoteSettings(enabled=True, **changes)  # type: ignore[arg-type]
