"""Degraded currents: the guide's worked example and the edge cases."""

from __future__ import annotations

import pytest

from custom_components.ev_charging_expert.evcore.allocation.model import MinimumStandard
from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.load.degraded import (
    StationNeeds,
    degraded_plan,
    station_minimum,
)

IEC = MinimumStandard.IEC_61851
TRI = Wiring.TRI123


def _zones(*zones: ZoneConfig) -> dict[str, ZoneConfig]:
    return {z.zone_id: z for z in zones}


def _stations(*stations: StationNeeds) -> dict[str, StationNeeds]:
    return {s.station_id: s for s in stations}


def test_three_stations_in_51_a_scale_by_one_and_a_half() -> None:
    # Two 2-connector stations (2 x 6 A) and a wallbox whose minimum is 10 A: 34 A in all.
    zones = _zones(ZoneConfig("park", "PARK1", 51.0))
    stations = _stations(
        StationNeeds("P1", "park", (TRI, TRI)),
        StationNeeds("P2", "park", (TRI, TRI)),
        StationNeeds("W", "park", (TRI,), minimum_override=10.0),
    )
    plan = degraded_plan(zones, stations, IEC)
    assert plan.scale["park"] == pytest.approx(1.5)
    assert plan.station == {"P1": 18.0, "P2": 18.0, "W": 15.0}
    assert plan.per_connector == {"P1": 9.0, "P2": 9.0, "W": 15.0}
    assert plan.problems == {}


def test_minimums_that_do_not_fit_give_zero_and_say_why() -> None:
    zones = _zones(ZoneConfig("z", "Small", 10.0))
    stations = _stations(StationNeeds("A", "z", (TRI,)), StationNeeds("B", "z", (TRI,)))
    plan = degraded_plan(zones, stations, IEC)
    assert plan.station == {"A": 0.0, "B": 0.0}
    assert "Small" in plan.problems["z"]


def test_parent_smaller_than_its_sub_zones_limits_the_scale() -> None:
    zones = _zones(
        ZoneConfig("root", "Root", 24.0),
        ZoneConfig("a", "A", 24.0, parent_id="root"),
        ZoneConfig("b", "B", 24.0, parent_id="root"),
    )
    stations = _stations(StationNeeds("A1", "a", (TRI,)), StationNeeds("B1", "b", (TRI,)))
    plan = degraded_plan(zones, stations, IEC)
    # Each zone alone would allow x4; the root only x2.
    assert plan.station == {"A1": 12.0, "B1": 12.0}
    assert sum(plan.station.values()) <= 24.0


def test_dynamic_zone_stations_get_zero_unless_an_override_fits() -> None:
    zones = _zones(ZoneConfig("d", "Dyn", 63.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=16.0))
    stations = _stations(
        StationNeeds("A", "d", (TRI,)),
        StationNeeds("B", "d", (TRI,), degraded_override=10.0),
    )
    plan = degraded_plan(zones, stations, IEC)
    assert plan.station == {"A": 0.0, "B": 10.0}
    too_much = _stations(
        StationNeeds("A", "d", (TRI,), degraded_override=10.0),
        StationNeeds("B", "d", (TRI,), degraded_override=10.0),
    )
    plan = degraded_plan(zones, too_much, IEC)
    assert plan.station == {"A": 0.0, "B": 0.0}
    assert "d" in plan.problems


def test_dc_stations_have_no_degraded_current_and_take_no_share() -> None:
    zones = _zones(ZoneConfig("z", "Z", 12.0))
    stations = _stations(StationNeeds("AC", "z", (TRI,)), StationNeeds("DC", "z", (TRI,), dc=True))
    plan = degraded_plan(zones, stations, IEC)
    assert plan.station == {"AC": 12.0}


def test_ev_ze_ready_minimums_by_wiring_and_rating_caps_a_connector() -> None:
    ready = MinimumStandard.EV_ZE_READY
    assert station_minimum(StationNeeds("S", "z", (TRI, Wiring.MONO2)), ready) == 22.0
    zones = _zones(ZoneConfig("z", "Z", 200.0))
    stations = _stations(StationNeeds("S", "z", (TRI,), rating=16.0))
    plan = degraded_plan(zones, stations, IEC)
    assert plan.per_connector == {"S": 16.0}


def test_a_charger_we_cannot_control_takes_its_rating_first() -> None:
    # The guide's zone of 51 A, but one wallbox refuses our profiles: without us it draws its
    # 16 A rating, so the two 2-connector stations share 35 A (scale 35 / 24).
    zones = _zones(ZoneConfig("park", "PARK1", 51.0))
    stations = _stations(
        StationNeeds("P1", "park", (TRI, TRI)),
        StationNeeds("P2", "park", (TRI, TRI)),
        StationNeeds("W", "park", (TRI,), fixed=16.0),
    )
    plan = degraded_plan(zones, stations, IEC)
    assert plan.station == {"W": 16.0, "P1": 17.5, "P2": 17.5}
    assert plan.per_connector == {"P1": 8.7, "P2": 8.7}  # rounded down; W holds no base
    assert plan.problems == {}
    # Two uncontrollable 32 A chargers leave less than the minimums: 0 A, and why.
    stations = _stations(
        StationNeeds("P1", "park", (TRI, TRI)),
        StationNeeds("X", "park", (TRI,), fixed=32.0),
        StationNeeds("Y", "park", (TRI,), fixed=32.0),
    )
    plan = degraded_plan(zones, stations, IEC)
    assert plan.station["P1"] == 0.0
    assert "64 A of which chargers we cannot control" in plan.problems["park"]


def test_more_stations_than_the_zone_holds_at_their_minimum_all_get_zero_and_say_so() -> None:
    zones = _zones(ZoneConfig("z", "Parking", 32.0))
    stations = _stations(*(StationNeeds(f"S{i}", "z", (TRI,)) for i in range(6)))
    plan = degraded_plan(zones, stations, IEC)
    assert set(plan.station.values()) == {0.0}
    shortfall = plan.shortfalls["z"]
    assert (shortfall.stations, shortfall.needed, shortfall.capacity, shortfall.fit) == (
        6,
        36.0,
        32.0,
        5,
    )
    assert (
        plan.problems["z"]
        == shortfall.summary()
        == (
            "degraded: all stations 0 A because 6 stations x 6 A (minimum current) = 36 A > 32 A "
            "that zone 'Parking' can give without Home Assistant (its maximum); 5 of them would fit"
        )
    )
    # Five of them fit: each gets 32 / 30 of its minimum.
    del stations["S5"]
    plan = degraded_plan(zones, stations, IEC)
    assert plan.shortfalls == {}
    assert set(plan.station.values()) == {6.4}


def test_a_short_parent_is_named_with_its_sub_zones_stations() -> None:
    zones = _zones(
        ZoneConfig("root", "Main", 20.0),
        ZoneConfig("a", "A", 63.0, parent_id="root"),
        ZoneConfig("d", "D", 63.0, parent_id="root", mode=ZoneMode.DYNAMIC, degraded_setpoint=32),
    )
    stations = _stations(
        StationNeeds("A1", "a", (TRI, TRI)),
        StationNeeds("A2", "a", (TRI,)),
        StationNeeds("D1", "d", (TRI,), degraded_override=10.0),
    )
    plan = degraded_plan(zones, stations, IEC)
    assert plan.station == {"A1": 0.0, "A2": 0.0, "D1": 0.0}
    assert plan.shortfalls["a"] == plan.shortfalls["d"]
    shortfall = plan.shortfalls["a"]
    assert (shortfall.zone_id, shortfall.stations, shortfall.needed, shortfall.each) == (
        "root",
        3,
        28.0,
        None,
    )
    assert shortfall.fit == 2
    assert "3 stations need 28 A (minimum currents)" in shortfall.summary()
    dynamic = degraded_plan(
        _zones(ZoneConfig("d", "D", 63.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=8.0)),
        _stations(StationNeeds("D1", "d", (TRI,), degraded_override=10.0)),
        IEC,
    )
    assert dynamic.shortfalls["d"].summary() == (
        "degraded: all stations 0 A because 1 station x 10 A (degraded current) = 10 A > 8 A "
        "that zone 'D' can give without Home Assistant (its degraded setpoint); 0 of them "
        "would fit"
    )
