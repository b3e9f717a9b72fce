"""Zone budgets: static, dynamic from a meter, degraded when the meter is lost."""

from __future__ import annotations

import pytest

from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.load.budgets import EvDraw, zone_budgets


def _dyn(zone_id: str, top: float, parent: str | None = None, degraded: float = 0.0) -> ZoneConfig:
    return ZoneConfig(
        zone_id, zone_id, top, parent_id=parent, mode=ZoneMode.DYNAMIC, degraded_setpoint=degraded
    )


def test_static_zone_budget_is_its_max() -> None:
    info = zone_budgets({"s": ZoneConfig("s", "S", 40.0)}, {}, [])["s"]
    assert info.budget == (40.0, 40.0, 40.0)
    assert not info.degraded


def test_dynamic_budget_subtracts_the_building_load_and_the_margin() -> None:
    zones = {"d": _dyn("d", 100.0)}
    # The meter sees 60/50/40 A; our EVs draw 20 A on L1 only.
    info = zone_budgets(zones, {"d": (60.0, 50.0, 40.0)}, [EvDraw("d", (20.0, 0.0, 0.0))])["d"]
    assert info.building == (40.0, 50.0, 40.0)
    assert info.budget == (59.0, 49.0, 59.0)


def test_budget_is_clamped_between_zero_and_max() -> None:
    zones = {"d": _dyn("d", 32.0)}
    assert zone_budgets(zones, {"d": (80.0, 0.0, 0.0)}, [])["d"].budget == (0.0, 31.0, 31.0)
    # EV samples larger than the meter's reading never create room beyond max - margin.
    info = zone_budgets(zones, {"d": (5.0, 5.0, 5.0)}, [EvDraw("d", (30.0, 30.0, 30.0))])["d"]
    assert info.budget == (31.0, 31.0, 31.0)


@pytest.mark.parametrize("reading", [None, (float("nan"), 1.0, 1.0)])
def test_lost_meter_gives_the_degraded_setpoint(reading: tuple[float, float, float] | None) -> None:
    zones = {"d": _dyn("d", 63.0, degraded=16.0)}
    info = zone_budgets(zones, {"d": reading}, [])["d"]
    assert info.degraded
    assert info.budget == (16.0, 16.0, 16.0)


def test_an_ev_counts_in_its_zone_and_every_zone_above() -> None:
    zones = {"root": _dyn("root", 200.0), "sub": _dyn("sub", 100.0, parent="root")}
    draws = [EvDraw("sub", (10.0, 10.0, 10.0))]
    infos = zone_budgets(zones, {"root": (50.0,) * 3, "sub": (30.0,) * 3}, draws)
    assert infos["root"].building == (40.0, 40.0, 40.0)
    assert infos["sub"].building == (20.0, 20.0, 20.0)


def test_only_some_zones_still_counts_evs_of_their_sub_zones() -> None:
    zones = {"root": _dyn("root", 200.0), "sub": ZoneConfig("sub", "Sub", 100.0, parent_id="root")}
    draws = [EvDraw("sub", (10.0, 10.0, 10.0))]
    full = zone_budgets(zones, {"root": (50.0,) * 3}, draws)
    part = zone_budgets(zones, {"root": (50.0,) * 3}, draws, only={"root"})
    assert part == {"root": full["root"]}
