"""Worked examples of the allocator: wiring, sharing, minimums, shedding, hysteresis, VIP, guard."""

from __future__ import annotations

from dataclasses import replace
import math

import pytest

from custom_components.ev_charging_expert.evcore.allocation import (
    Allocation,
    AllocationSettings,
    AllocatorState,
    ConnectorSnapshot,
    MinimumStandard,
    Reason,
    ShedPriority,
    SiteSnapshot,
    Wiring,
    ZoneBudget,
    allocate,
    check,
)
from custom_components.ev_charging_expert.evcore.allocation.phases import load_pattern

IEC = AllocationSettings(minimum_standard=MinimumStandard.IEC_61851)
ZE = AllocationSettings(minimum_standard=MinimumStandard.EV_ZE_READY)
EXACT = AllocationSettings(resolution=0.0)


def zone(zone_id, amps, parent=None):
    budget = amps if isinstance(amps, tuple) else (float(amps),) * 3
    return ZoneBudget(zone_id, budget, parent)


def ev(cid, zone_id="z", rating=32.0, *, wants=True, **kwargs):
    return ConnectorSnapshot(cid, zone_id, rating, wants, **kwargs)


def mono(cid, zone_id="z", rating=32.0, **kwargs):
    """A single-phase connector on grid L1."""
    return ev(cid, zone_id, rating, wiring=Wiring.MONO1, **kwargs)


def run(zones, connectors, *, now=0.0, settings=IEC, state=None) -> tuple[SiteSnapshot, Allocation]:
    snapshot = SiteSnapshot(
        tuple(zones), tuple(connectors), now, settings, state or AllocatorState()
    )
    allocation = allocate(snapshot)
    assert check(snapshot, allocation) == []
    return snapshot, allocation


def step(previous: Allocation, zones, connectors, *, now, settings=IEC) -> Allocation:
    """The next run of the allocator, carrying the previous state."""
    return run(zones, connectors, now=now, settings=settings, state=previous.state)[1]


def setpoints(allocation: Allocation) -> dict[str, float]:
    return dict(allocation.setpoints)


def charging(allocation: Allocation) -> set[str]:
    return {cid for cid, amps in allocation.setpoints.items() if amps > 0}


# --- wiring and phases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wiring", "expected"),
    [
        (Wiring.TRI123, (1, 2, 3)),
        (Wiring.TRI231, (2, 3, 1)),
        (Wiring.TRI312, (3, 1, 2)),
    ],
)
def test_tri_wiring_maps_connector_phases_to_rotated_grid_phases(wiring, expected):
    assert tuple(wiring.grid_phase(p) for p in (1, 2, 3)) == expected


def test_mono_wiring_maps_its_only_phase_to_one_grid_phase():
    assert [w.grid_phase(1) for w in (Wiring.MONO1, Wiring.MONO2, Wiring.MONO3)] == [1, 2, 3]
    with pytest.raises(ValueError, match="only connector phase 1"):
        Wiring.MONO2.grid_phase(2)
    with pytest.raises(ValueError, match=r"1\.\.3"):
        Wiring.TRI123.grid_phase(4)


def test_single_phase_evs_on_rotated_tri_wirings_spread_over_the_three_grid_phases():
    _, allocation = run(
        [zone("z", 32)],
        [
            ev("a", wiring=Wiring.TRI123, ev_phases=1),
            ev("b", wiring=Wiring.TRI231, ev_phases=1),
            ev("c", wiring=Wiring.TRI312, ev_phases=1),
        ],
    )
    assert setpoints(allocation) == {"a": 32.0, "b": 32.0, "c": 32.0}
    assert allocation.zones["z"].allocated == (32.0, 32.0, 32.0)
    assert set(allocation.reasons.values()) == {Reason.ALLOCATED}


def test_single_phase_evs_on_the_same_wiring_share_one_grid_phase():
    _, allocation = run(
        [zone("z", 32)],
        [ev(cid, wiring=Wiring.TRI123, ev_phases=1) for cid in "abc"],
    )
    assert setpoints(allocation) == {"a": 10.6, "b": 10.6, "c": 10.6}
    assert allocation.zones["z"].allocated == (pytest.approx(31.8), 0.0, 0.0)
    assert set(allocation.reasons.values()) == {Reason.CAPPED_BY_ZONE}
    assert dict(allocation.limited_by) == {"a": "z", "b": "z", "c": "z"}


def test_single_phase_ev_on_tri231_draws_on_grid_l2():
    zones = [zone("z", (0.0, 16.0, 0.0))]
    _, allocation = run(zones, [ev("a", wiring=Wiring.TRI231, ev_phases=1)])
    assert setpoints(allocation) == {"a": 16.0}
    assert allocation.zones["z"].allocated == (0.0, 16.0, 0.0)
    _, allocation = run(zones, [ev("a", wiring=Wiring.TRI123, ev_phases=1)])
    assert allocation.reasons["a"] is Reason.SUSPENDED_NO_CAPACITY


def test_three_phase_ev_is_limited_by_its_tightest_grid_phase_shared_with_a_mono_connector():
    _, allocation = run(
        [zone("z", (32.0, 20.0, 32.0))],
        [ev("tri", ev_phases=3), ev("mono2", wiring=Wiring.MONO2)],
    )
    assert setpoints(allocation) == {"tri": 10.0, "mono2": 10.0}
    assert allocation.zones["z"].allocated == (10.0, 20.0, 10.0)


def test_unknown_ev_phases_on_tri_connector_count_on_all_three_phases_with_three_phase_minimum():
    zones = [zone("z", (32.0, 32.0, 10.0))]
    _, allocation = run(zones, [ev("a")], settings=ZE)
    assert allocation.reasons["a"] is Reason.SUSPENDED_NO_CAPACITY
    _, allocation = run(zones, [ev("a", ev_phases=1)], settings=ZE)
    assert setpoints(allocation) == {"a": 32.0}


def test_wiring_and_minimum_helpers():
    assert Wiring.TRI312.three_phase
    assert not Wiring.MONO1.three_phase
    assert MinimumStandard.EV_ZE_READY.minimum(3) == 14.0
    assert MinimumStandard.EV_ZE_READY.minimum(load_pattern(Wiring.TRI123, 1)) == 8.0
    assert MinimumStandard.IEC_61851.minimum(3) == 6.0
    assert ev("a", vip_station=True).vip
    assert not ev("a").vip


def test_two_phase_ev_is_counted_on_all_three_phases():
    assert load_pattern(Wiring.TRI231, 2) == load_pattern(Wiring.TRI231, None) == 3
    assert load_pattern(Wiring.MONO3, 3) == 2


# --- sharing -------------------------------------------------------------------------------


def test_water_filling_gives_small_maxima_in_full_and_shares_the_rest():
    _, allocation = run([zone("z", 32)], [mono("a", rating=6), mono("b"), mono("c")])
    assert setpoints(allocation) == {"a": 6.0, "b": 13.0, "c": 13.0}
    assert allocation.reasons["a"] is Reason.ALLOCATED
    assert allocation.reasons["b"] is Reason.CAPPED_BY_ZONE


def test_ev_whose_maximum_is_the_minimum_gets_exactly_that_in_a_full_zone():
    _, allocation = run([zone("z", 12)], [mono("a", rating=6), mono("b", rating=6)])
    assert setpoints(allocation) == {"a": 6.0, "b": 6.0}
    assert set(allocation.reasons.values()) == {Reason.ALLOCATED}


def test_user_cap_lowers_the_rating():
    _, allocation = run([zone("z", 100)], [ev("a", rating=32, max_current=16)])
    assert setpoints(allocation) == {"a": 16.0}


def test_sub_zone_budget_caps_its_connectors_even_when_the_parent_has_room():
    zones = [zone("root", 100), zone("mid", 60, "root"), zone("leaf", 20, "mid")]
    zones.append(zone("other", 60, "mid"))
    _, allocation = run(zones, [mono("a", "leaf"), mono("b", "leaf"), mono("c", "other")])
    assert setpoints(allocation) == {"a": 10.0, "b": 10.0, "c": 32.0}
    assert allocation.limited_by["a"] == "leaf"
    assert allocation.zones["mid"].allocated == (52.0, 0.0, 0.0)
    assert allocation.zones["root"].allocated == (52.0, 0.0, 0.0)


def test_parent_budget_is_shared_max_min_fairly_across_sub_zones():
    zones = [zone("root", 30), zone("mid", 100, "root")]
    zones += [zone("x", 100, "mid"), zone("y", 100, "mid")]
    _, allocation = run(zones, [mono("a", "x"), mono("b", "y"), mono("c", "y")])
    assert setpoints(allocation) == {"a": 10.0, "b": 10.0, "c": 10.0}
    assert set(allocation.limited_by.values()) == {"root"}


def test_every_level_of_a_four_level_tree_is_enforced():
    zones = [zone("l0", 40), zone("l1", 35, "l0"), zone("l2", 30, "l1"), zone("l3", 100, "l2")]
    _, allocation = run(zones, [mono("a", "l3"), mono("b", "l1")])
    assert setpoints(allocation) == {"a": 17.5, "b": 17.5}
    _, allocation = run(zones, [mono("a", "l3", rating=10), mono("b", "l1")])
    assert setpoints(allocation) == {"a": 10.0, "b": 25.0}


def test_setpoints_are_rounded_down_to_the_resolution_never_below_the_minimum():
    zones = [zone("z", 32)]
    evs = [mono(cid) for cid in "abc"]
    assert set(setpoints(run(zones, evs, settings=replace(IEC, resolution=1.0))[1]).values()) == {
        10.0
    }
    exact = setpoints(run(zones, evs, settings=EXACT)[1])
    assert exact["a"] == pytest.approx(32 / 3)
    one_ev = run([zone("z", 6.4)], [mono("a")], settings=replace(IEC, resolution=4.0))[1]
    assert setpoints(one_ev) == {"a": 6.0}


# --- minimum current -----------------------------------------------------------------------


def test_iec_61851_minimum_is_6_a_single_and_three_phase():
    _, allocation = run([zone("z", 20)], [mono(cid) for cid in "abc"], settings=IEC)
    assert setpoints(allocation) == {"a": 6.6, "b": 6.6, "c": 6.6}
    _, allocation = run([zone("z", 6)], [ev("tri", ev_phases=3)], settings=IEC)
    assert setpoints(allocation) == {"tri": 6.0}


def test_ev_ze_ready_minimum_is_8_a_single_phase_and_14_a_three_phase():
    _, allocation = run([zone("z", 20)], [mono(cid) for cid in "abc"], settings=ZE)
    assert sorted(setpoints(allocation).values()) == [0.0, 10.0, 10.0]
    _, allocation = run([zone("z", 13.9)], [ev("tri", ev_phases=3)], settings=ZE)
    assert allocation.reasons["tri"] is Reason.SUSPENDED_NO_CAPACITY
    _, allocation = run([zone("z", 14)], [ev("tri", ev_phases=3)], settings=ZE)
    assert setpoints(allocation) == {"tri": 14.0}


def test_nobody_gets_current_between_zero_and_the_minimum():
    _, allocation = run([zone("z", 10)], [mono("a"), mono("b", session_energy_wh=1)])
    assert setpoints(allocation) == {"a": 10.0, "b": 0.0}
    assert allocation.reasons["b"] is Reason.SUSPENDED_PRIORITY


def test_connector_whose_maximum_is_below_the_minimum_is_not_started():
    _, allocation = run([zone("z", 32)], [ev("a", rating=16, max_current=5)])
    assert setpoints(allocation) == {"a": 0.0}
    assert allocation.reasons["a"] is Reason.BELOW_MINIMUM


def test_connector_without_an_ev_wanting_current_gets_zero():
    _, allocation = run([zone("z", 32)], [ev("a", wants=False)])
    assert setpoints(allocation) == {"a": 0.0}
    assert allocation.reasons["a"] is Reason.NOT_CHARGING
    assert allocation.state.running == allocation.state.suspended == frozenset()


# --- shedding priority ---------------------------------------------------------------------


def test_energy_priority_suspends_the_ev_that_consumed_the_most_energy():
    evs = [
        mono("a", session_energy_wh=1000, charging_duration_s=3000),
        mono("b", session_energy_wh=3000, charging_duration_s=1000),
        mono("c", session_energy_wh=2000, charging_duration_s=2000),
    ]
    _, allocation = run([zone("z", 16)], evs)
    assert setpoints(allocation) == {"a": 8.0, "b": 0.0, "c": 8.0}
    assert allocation.reasons["b"] is Reason.SUSPENDED_PRIORITY
    assert allocation.state.suspended == {"b"}


def test_duration_priority_suspends_the_ev_charging_the_longest():
    evs = [
        mono("a", session_energy_wh=1000, charging_duration_s=3000),
        mono("b", session_energy_wh=3000, charging_duration_s=1000),
        mono("c", session_energy_wh=2000, charging_duration_s=2000),
    ]
    settings = replace(IEC, shed_priority=ShedPriority.DURATION)
    _, allocation = run([zone("z", 16)], evs, settings=settings)
    assert setpoints(allocation) == {"a": 0.0, "b": 8.0, "c": 8.0}


def test_suspension_only_hits_the_zone_that_is_short():
    zones = [zone("root", 100), zone("x", 16, "root"), zone("y", 32, "root")]
    evs = [mono("a", "x"), mono("b", "x", session_energy_wh=5), mono("c", "x")]
    evs.append(mono("d", "y", session_energy_wh=10_000))
    _, allocation = run(zones, evs)
    assert setpoints(allocation) == {"a": 8.0, "b": 0.0, "c": 8.0, "d": 32.0}


# --- hysteresis and rotation ---------------------------------------------------------------

ROTATION_ZONE = [zone("z", 16)]


def rotation_evs(a=1000.0, b=2000.0, c=3000.0, **extra):
    evs = [
        mono("a", session_energy_wh=a),
        mono("b", session_energy_wh=b),
        mono("c", session_energy_wh=c),
    ]
    evs += [mono(cid, session_energy_wh=wh) for cid, wh in extra.items()]
    return evs


def test_suspended_ev_waits_the_resume_delay_then_takes_room_that_returns():
    _, first = run(ROTATION_ZONE, rotation_evs())
    assert charging(first) == {"a", "b"}
    assert first.next_resume_at == 60  # suspended at 0, resume delay 60 s
    soon = step(first, [zone("z", 32)], rotation_evs(), now=30)
    assert setpoints(soon) == {"a": 16.0, "b": 16.0, "c": 0.0}
    assert soon.reasons["c"] is Reason.SUSPENDED_PRIORITY
    assert soon.next_resume_at == 60
    later = step(soon, [zone("z", 32)], rotation_evs(), now=60)
    assert not later.reevaluated
    assert setpoints(later) == {"a": 10.6, "b": 10.6, "c": 10.6}
    assert later.next_reevaluation_at == 900
    # Suspended again (the room goes), it waits for the revisit this time.
    again = step(later, ROTATION_ZONE, rotation_evs(), now=90)
    assert charging(again) == {"a", "b"}
    back = step(again, [zone("z", 32)], rotation_evs(), now=400)
    assert charging(back) == {"a", "b"}
    assert back.next_resume_at == float("inf")
    assert charging(step(back, [zone("z", 32)], rotation_evs(), now=900)) == {"a", "b", "c"}


def test_a_suspended_ev_resumes_only_into_room_nobody_else_needs():
    _, first = run(ROTATION_ZONE, rotation_evs())
    # 17 A: c's 6 A minimum does not fit beside a's and b's.
    later = step(first, [zone("z", 17)], rotation_evs(), now=120)
    assert setpoints(later) == {"a": 8.5, "b": 8.5, "c": 0.0}


def test_running_ev_keeps_running_within_the_period_when_its_energy_becomes_the_highest():
    _, first = run(ROTATION_ZONE, rotation_evs())
    later = step(first, ROTATION_ZONE, rotation_evs(a=9000, b=8000), now=899)
    assert charging(later) == {"a", "b"}


def test_rotation_after_the_period_gives_suspended_evs_their_turn():
    _, first = run(ROTATION_ZONE, rotation_evs())
    rotated = step(first, ROTATION_ZONE, rotation_evs(a=5000, b=6000), now=900)
    assert rotated.reevaluated
    assert charging(rotated) == {"a", "c"}
    assert rotated.state.suspended == {"b"}
    assert rotated.next_reevaluation_at == 1800
    again = step(rotated, ROTATION_ZONE, rotation_evs(a=7000, b=6000, c=6500), now=1800)
    assert charging(again) == {"b", "c"}


def test_rotation_by_duration_after_the_period():
    settings = replace(IEC, shed_priority=ShedPriority.DURATION)
    evs = [mono(cid, charging_duration_s=s) for cid, s in (("a", 10), ("b", 20), ("c", 30))]
    _, first = run(ROTATION_ZONE, evs, settings=settings)
    assert charging(first) == {"a", "b"}
    evs = [mono(cid, charging_duration_s=s) for cid, s in (("a", 910), ("b", 920), ("c", 30))]
    rotated = step(first, ROTATION_ZONE, evs, now=900, settings=settings)
    assert charging(rotated) == {"a", "c"}


def test_newly_plugged_ev_is_admitted_at_once_suspending_the_one_with_most_energy():
    _, first = run(ROTATION_ZONE, rotation_evs(c=0)[:2])
    assert setpoints(first) == {"a": 8.0, "b": 8.0}
    later = step(first, ROTATION_ZONE, rotation_evs(c=0), now=10)
    assert not later.reevaluated
    assert setpoints(later) == {"a": 8.0, "b": 0.0, "c": 8.0}
    assert later.reasons["b"] is Reason.SUSPENDED_PRIORITY
    # ...and the displaced EV then waits for the next revisit.
    again = step(later, [zone("z", 32)], rotation_evs(c=100), now=20)
    assert charging(again) == {"a", "c"}


def test_newly_plugged_ev_with_lower_priority_waits_when_there_is_no_room():
    _, first = run(ROTATION_ZONE, rotation_evs()[:2])
    later = step(first, ROTATION_ZONE, rotation_evs(c=50_000), now=10)
    assert charging(later) == {"a", "b"}
    assert later.reasons["c"] is Reason.SUSPENDED_PRIORITY


def test_newly_plugged_ev_takes_free_room_at_once():
    _, first = run([zone("z", 32)], [mono("a")])
    later = step(first, [zone("z", 32)], [mono("a"), mono("b", session_energy_wh=9e9)], now=5)
    assert setpoints(later) == {"a": 16.0, "b": 16.0}


def test_budget_drop_is_obeyed_at_once_suspending_by_priority():
    _, first = run(ROTATION_ZONE, rotation_evs()[:2])
    dropped = step(first, [zone("z", 10)], rotation_evs()[:2], now=10)
    assert setpoints(dropped) == {"a": 10.0, "b": 0.0}
    recovered = step(dropped, ROTATION_ZONE, rotation_evs()[:2], now=20)
    assert setpoints(recovered) == {"a": 16.0, "b": 0.0}
    rotated = step(recovered, ROTATION_ZONE, rotation_evs()[:2], now=910)
    assert setpoints(rotated) == {"a": 8.0, "b": 8.0}


def test_budget_drop_lowers_running_setpoints_at_once():
    _, first = run([zone("z", 32)], [mono("a"), mono("b")])
    later = step(first, [zone("z", 20)], [mono("a"), mono("b")], now=1)
    assert setpoints(later) == {"a": 10.0, "b": 10.0}


def test_no_start_stop_oscillation_when_the_budget_oscillates_within_periods():
    evs = rotation_evs()
    allocation = run(ROTATION_ZONE, evs)[1]
    starts: list[tuple[float, str]] = []
    stops: list[tuple[float, str]] = []
    for t in range(30, 2700, 30):
        budget = 10.0 if (t // 30) % 2 else 24.0
        before = charging(allocation)
        allocation = step(allocation, [zone("z", budget)], evs, now=float(t))
        starts += [(t, cid) for cid in charging(allocation) - before]
        stops += [(t, cid) for cid in before - charging(allocation)]
    # An EV starts at a revisit (every 900 s), or once per period into free room after the
    # resume delay; so each stops at most twice per period.
    for cid in "abc":
        started = [t // 900 for t, who in starts if who == cid and t % 900]
        assert len(started) == len(set(started))
        per_period = [t // 900 for t, who in stops if who == cid]
        assert all(per_period.count(p) <= 2 for p in per_period)


def test_ev_that_left_is_forgotten():
    _, first = run(ROTATION_ZONE, rotation_evs())
    later = step(first, ROTATION_ZONE, rotation_evs()[:1], now=10)
    assert later.state.running == {"a"}
    assert later.state.suspended == frozenset()


def test_clock_going_back_forces_a_revisit():
    _, first = run(ROTATION_ZONE, rotation_evs(), now=1000)
    later = step(first, ROTATION_ZONE, rotation_evs(a=5000, b=6000), now=10)
    assert later.reevaluated
    assert charging(later) == {"a", "c"}


# --- VIP -----------------------------------------------------------------------------------


def test_vip_card_is_served_first_up_to_its_maximum():
    evs = [
        mono("vip", session_energy_wh=99_000, vip_card=True),
        mono("a", session_energy_wh=1),
        mono("b", session_energy_wh=2),
    ]
    _, allocation = run([zone("z", 40)], evs)
    assert setpoints(allocation) == {"vip": 32.0, "a": 8.0, "b": 0.0}
    assert allocation.reasons["b"] is Reason.SUSPENDED_PRIORITY


def test_vip_station_leaves_nothing_and_non_vips_are_suspended_for_lack_of_capacity():
    _, allocation = run([zone("z", 32)], [mono("vip", vip_station=True), mono("a")])
    assert setpoints(allocation) == {"vip": 32.0, "a": 0.0}
    assert allocation.reasons["a"] is Reason.SUSPENDED_NO_CAPACITY


def test_vips_share_fairly_between_themselves():
    evs = [mono("v1", vip_card=True), mono("v2", vip_station=True), mono("a")]
    _, allocation = run([zone("z", 40)], evs)
    assert setpoints(allocation) == {"v1": 20.0, "v2": 20.0, "a": 0.0}


def test_newly_plugged_vip_suspends_a_running_non_vip_at_once():
    _, first = run([zone("z", 32)], [mono("a"), mono("b")])
    later = step(first, [zone("z", 32)], [mono("a"), mono("b"), mono("v", vip_card=True)], now=1)
    assert setpoints(later) == {"a": 0.0, "b": 0.0, "v": 32.0}


def test_vip_whose_share_grows_takes_the_room_of_a_running_non_vip_within_the_period():
    def site(x_l1):
        zones = [zone("root", (100.0, 12.0, 100.0)), zone("x", (x_l1, 100.0, 100.0), "root")]
        zones.append(zone("y", 100, "root"))
        evs = [ev("vip", "x", ev_phases=3, vip_card=True), ev("a", "y", wiring=Wiring.MONO2)]
        return zones, [*evs, ev("old", "x", fixed_load=(40.0, 0.0, 0.0))]

    _, first = run(*site(46.0))
    assert setpoints(first) == {"vip": 6.0, "a": 6.0}
    later = step(first, *site(69.0), now=60)
    assert setpoints(later) == {"vip": 12.0, "a": 0.0}
    assert later.reasons["a"] is Reason.SUSPENDED_NO_CAPACITY


def test_vip_on_a_short_phase_does_not_block_non_vips_on_other_phases():
    evs = [ev("vip", ev_phases=3, vip_card=True), ev("a", wiring=Wiring.MONO2)]
    _, allocation = run([zone("z", (10.0, 32.0, 32.0))], evs, settings=ZE)
    assert setpoints(allocation) == {"vip": 0.0, "a": 32.0}
    assert allocation.reasons["vip"] is Reason.SUSPENDED_NO_CAPACITY


# --- uncontrolled connectors and odd budgets -----------------------------------------------


def test_uncontrolled_connector_is_counted_at_its_fixed_load():
    evs = [mono("a"), ev("old", fixed_load=(16.0, 0.0, 0.0))]
    _, allocation = run([zone("z", 32)], evs)
    assert setpoints(allocation) == {"a": 16.0}
    assert allocation.reasons["old"] is Reason.UNCONTROLLED
    assert allocation.zones["z"].fixed == (16.0, 0.0, 0.0)
    assert allocation.zones["z"].headroom == (0.0, 32.0, 32.0)


def test_uncontrolled_load_in_a_sub_zone_counts_against_its_parents():
    zones = [zone("root", 20), zone("x", 100, "root"), zone("y", 100, "root")]
    evs = [mono("a", "x"), ev("old", "y", fixed_load=(12.0, 12.0, 12.0))]
    _, allocation = run(zones, evs)
    assert setpoints(allocation) == {"a": 8.0}


def test_uncontrolled_load_above_the_budget_leaves_nothing_and_is_not_a_guard_violation():
    evs = [mono("a"), ev("old", fixed_load=(40.0, 0.0, 0.0))]
    snapshot, allocation = run([zone("z", 32)], evs)
    assert setpoints(allocation) == {"a": 0.0}
    assert allocation.reasons["a"] is Reason.SUSPENDED_NO_CAPACITY
    assert allocation.zones["z"].headroom[0] == -8.0
    assert check(snapshot, allocation) == []


def test_unconfirmed_limit_is_counted_on_its_pattern_and_lowers_the_others_at_once():
    """X's single-phase EV left while X holds 32 A (not confirmed lower yet): that limit may
    now land on every phase. Y (grid L2) and Z (grid L3) get 0 A meanwhile, without being
    suspended: once X confirms 0 A, they get 32 A back at once."""
    tri231, tri312 = Wiring.TRI231, Wiring.TRI312
    evs = [
        ev("x", wants=False, unconfirmed=32.0),
        ev("y", wiring=tri231, ev_phases=1),
        ev("z", wiring=tri312, ev_phases=1),
    ]
    _, first = run([zone("z", 32)], evs)
    assert setpoints(first) == {"x": 0.0, "y": 0.0, "z": 0.0}
    assert first.reasons["y"] is Reason.SUSPENDED_NO_CAPACITY
    assert first.zones["z"].fixed == (32.0, 32.0, 32.0)
    assert first.state.running == {"y", "z"}
    assert not first.state.suspended
    evs[0] = ev("x", wants=False)
    second = step(first, [zone("z", 32)], evs, now=1.0)
    assert setpoints(second) == {"x": 0.0, "y": 32.0, "z": 32.0}


def test_ev_plugged_on_a_connector_held_at_an_unconfirmed_limit_gets_nothing_until_confirmed():
    evs = [ev("x", unconfirmed=16.0), mono("y")]
    snapshot, allocation = run([zone("z", 32)], evs)
    assert setpoints(allocation) == {"x": 0.0, "y": 16.0}
    assert allocation.reasons["x"] is Reason.SUSPENDED_NO_CAPACITY
    assert "x" not in allocation.state.suspended | allocation.state.running
    unsafe = replace(allocation, setpoints={"x": 6.0, "y": 16.0})
    assert check(snapshot, unsafe) == ["connector x: 6.0 A while held at an unconfirmed limit"]


def test_a_charger_not_under_control_yet_takes_its_rating_without_suspending_anyone():
    """A charger that just connected counts at its rating until its base is confirmed; the EV
    it leaves no room for gets 0 A meanwhile, but is not suspended: no resume delay."""
    evs = [mono("a"), mono("new", fixed_load=(32.0, 0.0, 0.0), provisional=True)]
    _, first = run([zone("z", 32)], evs)
    assert setpoints(first) == {"a": 0.0}
    assert first.reasons["new"] is Reason.UNCONTROLLED
    assert first.state.running == {"a", "new"}
    assert not first.state.suspended
    second = step(first, [zone("z", 32)], [mono("a"), mono("new")], now=1.0)
    assert setpoints(second) == {"a": 16.0, "new": 16.0}


@pytest.mark.parametrize("budget", [-5.0, math.nan, 0.0])
def test_negative_nan_or_zero_budget_counts_as_zero(budget):
    _, allocation = run([zone("z", budget)], [mono("a")])
    assert setpoints(allocation) == {"a": 0.0}


def test_unlimited_budget_gives_everyone_their_maximum():
    _, allocation = run([zone("z", math.inf)], [mono("a"), ev("b", rating=16)])
    assert setpoints(allocation) == {"a": 32.0, "b": 16.0}


def test_empty_site_allocates_nothing():
    _, allocation = run([], [])
    assert setpoints(allocation) == {}
    assert dict(allocation.zones) == {}


# --- guard ---------------------------------------------------------------------------------


def with_setpoints(allocation: Allocation, **amps: float) -> Allocation:
    return replace(allocation, setpoints={**allocation.setpoints, **amps})


def test_guard_reports_a_zone_phase_over_budget():
    zones = [zone("root", 20), zone("leaf", 100, "root")]
    snapshot, allocation = run(zones, [mono("a", "leaf"), mono("b", "leaf")])
    problems = check(snapshot, with_setpoints(allocation, a=12.0))
    assert problems == [
        "zone root L1: 22.000 A given, 20.000 A available (budget 20.0 A, uncontrolled 0.000 A)"
    ]


def test_guard_reports_current_given_where_uncontrolled_loads_already_overload():
    evs = [mono("a"), ev("old", fixed_load=(40.0, 0.0, 0.0))]
    snapshot, allocation = run([zone("z", 32)], evs)
    assert check(snapshot, with_setpoints(allocation, a=6.0)) != []


def test_guard_reports_setpoints_between_zero_and_the_minimum_and_above_the_maximum():
    snapshot, allocation = run([zone("z", 100)], [mono("a"), mono("b", rating=16)])
    problems = check(snapshot, with_setpoints(allocation, a=3.0, b=17.0))
    assert len(problems) == 2
    assert "connector a: 3.0 A" in problems[0]
    assert "connector b: 17.0 A" in problems[1]


def test_guard_reports_missing_unknown_invalid_and_uncontrolled_setpoints():
    evs = [mono("a"), mono("b"), ev("old", fixed_load=(1.0, 1.0, 1.0))]
    snapshot, allocation = run([zone("z", 100)], evs)
    broken = {"b": math.nan, "old": 6.0, "ghost": 6.0}
    problems = check(snapshot, replace(allocation, setpoints=broken))
    assert problems == [
        "connector a: no setpoint",
        "connector b: invalid setpoint nan",
        "connector old: setpoint for an uncontrolled connector",
        "connector ghost: setpoint for an unknown connector",
    ]


# --- snapshot validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zones", "connectors", "message"),
    [
        ([zone("z", 1), zone("z", 1)], [], "duplicate zone id"),
        ([zone("z", 1, "nowhere")], [], "unknown parent"),
        ([zone("a", 1, "b"), zone("b", 1, "a")], [], "cycle"),
        ([zone("z", 1)], [mono("a"), mono("a")], "duplicate connector id"),
        ([zone("z", 1)], [mono("a", "y")], "unknown zone"),
        ([ZoneBudget("z", (1.0, 1.0))], [], "one value per phase"),
    ],
)
def test_snapshot_rejects_an_invalid_site(zones, connectors, message):
    with pytest.raises(ValueError, match=message):
        SiteSnapshot(tuple(zones), tuple(connectors), 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ev_phases": 4}, "ev_phases"),
        ({"rating": -1.0}, "rating"),
        ({"rating": math.nan}, "rating"),
        ({"max_current": math.inf}, "max_current"),
        ({"session_energy_wh": -1.0}, "session_energy_wh"),
        ({"fixed_load": (1.0, 1.0)}, "one value per phase"),
        ({"fixed_load": (1.0, -1.0, 1.0)}, "fixed_load"),
    ],
)
def test_connector_snapshot_rejects_invalid_values(kwargs, message):
    base = {"connector_id": "a", "zone_id": "z", "rating": 32.0, "wants_current": True}
    with pytest.raises(ValueError, match=message):
        ConnectorSnapshot(**{**base, **kwargs})


def test_wiring_may_be_given_as_text():
    assert ConnectorSnapshot("a", "z", 32, True, "TRI312", 1).pattern == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"reevaluation_period": -1.0}, "reevaluation_period"),
        ({"resolution": -0.1}, "resolution"),
    ],
)
def test_settings_reject_invalid_values(settings, message):
    with pytest.raises(ValueError, match=message):
        AllocationSettings(**settings)
