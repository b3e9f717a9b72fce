"""Zone budgets: static, dynamic from a meter, degraded when the meter is lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.load.budgets import (
    NEGATIVE_BUILDING_DELAY,
    EvDraw,
    NegativeBuildingLoad,
    track_negative_building,
    zone_budgets,
)

if TYPE_CHECKING:
    from custom_components.ev_charging_expert.evcore.allocation.model import Phases


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


def test_a_negative_building_load_is_clamped_but_kept_for_the_warning() -> None:
    zones = {"d": _dyn("d", 32.0)}
    info = zone_budgets(zones, {"d": (5.0, 5.0, 5.0)}, [EvDraw("d", (30.0, 0.0, 0.0))])["d"]
    assert info.building == (0.0, 5.0, 5.0)
    assert info.evs == (30.0, 0.0, 0.0)
    assert info.computed_building == (-25.0, 5.0, 5.0)
    assert zone_budgets(zones, {"d": None}, [])["d"].computed_building is None


def _negative(
    previous: dict[str, NegativeBuildingLoad], reading: Phases | None, ev: float, now: float
) -> dict[str, NegativeBuildingLoad]:
    zones = {"d": _dyn("d", 63.0), "s": ZoneConfig("s", "S", 40.0)}
    draws = [EvDraw("d", (ev, ev, ev))]
    return track_negative_building(previous, zone_budgets(zones, {"d": reading}, draws), now)


def test_a_clearly_negative_building_load_is_tracked_from_when_it_started() -> None:
    # Up to 2 A below 0 is timing (an EV that slowed down between two samples): not tracked.
    assert _negative({}, (18.5,) * 3, 20.0, 0.0) == {}
    first = _negative({}, (18.0, 20.0, 20.0), 20.5, 10.0)
    assert first["d"].since == 10.0
    assert first["d"].building == (-2.5, -0.5, -0.5)
    assert first["d"].reported_at == 10.0 + NEGATIVE_BUILDING_DELAY
    later = _negative(first, (5.0,) * 3, 20.0, 200.0)
    assert later["d"].since == 10.0
    assert later["d"].measured == (5.0, 5.0, 5.0)
    assert "L1: measured 5.0 A, our EVs 20.0 A, building -15.0 A" in later["d"].summary()
    # Back above the threshold, or the meter lost: it starts again.
    assert _negative(later, (19.0,) * 3, 20.0, 300.0) == {}
    assert _negative(later, None, 20.0, 300.0) == {}


def test_tracking_one_meters_zones_keeps_the_others() -> None:
    other = NegativeBuildingLoad("e", 1.0, (0.0,) * 3, (9.0,) * 3, (-9.0,) * 3)
    zones = {"d": _dyn("d", 63.0)}
    fresh = zone_budgets(zones, {"d": (30.0,) * 3}, [])
    assert track_negative_building({"e": other}, fresh, 5.0, partial=True) == {"e": other}
    assert track_negative_building({"e": other}, fresh, 5.0) == {}
