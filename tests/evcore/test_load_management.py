"""Load management end to end over loopback: LoadManager + central system + simulated chargers.

Every test runs on one ManualClock shared by the site and the simulators (conftest_load.py).
The physical invariant (per zone and grid phase, what the chargers' own profiles allow stays
within the zone's max current) is checked after every SetChargingProfile a charger accepts,
every clock step, every plug-in and unplug; `settle()` fails the test on any violation.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise
import random
from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.allocation.model import MinimumStandard, Reason
from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import LoadSettings, ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.events import (
    AllocationUpdated,
    StationUncontrollable,
)
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey as K
from custom_components.ev_charging_expert.evcore.load import Control, manager as load_manager
from custom_components.ev_charging_expert.evcore.model import ConnectorStatus
from custom_components.ev_charging_expert.evcore.ocpp.v16.smart_charging import (
    BASE_PROFILE_ID,
    LEASE_PROFILE_ID,
)

if TYPE_CHECKING:
    from conftest_load import LoadEnv, TestCharger

pytest_plugins = ("conftest_load",)  # the `env` fixture

TRI123, TRI231, TRI312 = Wiring.TRI123, Wiring.TRI231, Wiring.TRI312
MONO1, MONO2 = Wiring.MONO1, Wiring.MONO2

# Two top zones; A has two sub-zones (stations go in terminal zones: A1, A2, B).
SITE = (
    ZoneConfig("A", "Building A", 63.0),
    ZoneConfig("A1", "A car park", 32.0, parent_id="A"),
    ZoneConfig("A2", "A garage", 40.0, parent_id="A"),
    ZoneConfig("B", "Building B", 32.0),
)
SMALL = (ZoneConfig("C", "Small", 16.0),)


async def site_with_stations(env: LoadEnv) -> None:
    """S1, S2 in A1; S3, S4 (two connectors) in A2; S5, S6 in B."""
    env.set_zones(*SITE)
    for sid, connectors in (("S1", 1), ("S2", 1), ("S3", 1), ("S4", 2), ("S5", 1), ("S6", 1)):
        await env.add_charger(sid, connectors=connectors)
    env.place("S1", "A1", {1: TRI123})
    env.place("S2", "A1", {1: TRI231})
    env.place("S3", "A2", {1: MONO2})
    env.place("S4", "A2", {1: TRI123, 2: TRI312})
    env.place("S5", "B", {1: TRI123})
    env.place("S6", "B", {1: MONO1})
    await env.settle()


async def two_charging_in_b(env: LoadEnv) -> tuple[TestCharger, TestCharger]:
    """S5 and S6 in B (32 A), each with a three-phase EV: they share it, 16 A each."""
    env.set_zones(*SITE)
    s5 = await env.add_charger("S5")
    s6 = await env.add_charger("S6")
    env.place("S5", "B")
    env.place("S6", "B")
    await env.plug("S5", phases=3)
    await env.plug("S6", phases=3)
    await env.converge()
    return s5, s6


async def single_phase_evs_on_every_phase_of_b(env: LoadEnv) -> None:
    """X, Y, Z in B (32 A) on TRI123, TRI231, TRI312, each with a single-phase EV: each on its
    own grid phase, they all get 32 A."""
    env.set_zones(*SITE)
    for sid in ("X", "Y", "Z"):
        await env.add_charger(sid)
    env.place("X", "B", {1: TRI123})
    env.place("Y", "B", {1: TRI231})
    env.place("Z", "B", {1: TRI312})
    for sid in ("X", "Y", "Z"):
        await env.plug(sid, phases=1)
    await env.converge()
    assert assert_delivered(env) == {K("X", 1): 32.0, K("Y", 1): 32.0, K("Z", 1): 32.0}


def assert_delivered(env: LoadEnv) -> dict[str, float]:
    """Every charger holds what the allocator decided (rounded down to 0.1 A)."""
    limits = env.limits()
    targets = env.targets()
    for key, target in targets.items():
        assert limits[key] == pytest.approx(target, abs=1e-6), (key, limits, targets)
    return limits


def reasons(env: LoadEnv) -> dict[str, Reason]:
    assert env.lm.last is not None
    return dict(env.lm.last.allocation.reasons)


# ---------------------------------------------------------------------- identities
async def test_stations_named_like_each_others_connectors_keep_their_own_leases(env):
    """`A` and `A#1` (and `A/1`, `A 1`): their leases, limits and chargers never mix."""
    env.set_zones(*SITE)
    names = ("A", "A#1", "A/1", "A 1")
    for name in names:
        await env.add_charger(name)
        env.place(name, "B")
    await env.plug("A#1", phases=3)
    await env.converge()
    limits = assert_delivered(env)
    assert limits[K("A#1", 1)] == 32.0
    assert all(limits[K(n, 1)] == 0.0 for n in names if n != "A#1")
    assert env.sims["A#1"].allowed(1) == 32.0
    assert env.sims["A"].allowed(1) == 0.0

    await env.plug("A", phases=3)
    await env.converge()
    limits = assert_delivered(env)
    assert (limits[K("A", 1)], limits[K("A#1", 1)]) == (16.0, 16.0)
    # A boot of `A` forgets only A's leases, never those of `A#1`.
    env.lm.on_boot("A")
    assert env.lm.leases[K("A", 1)].held is None
    assert env.lm.leases[K("A#1", 1)].held == 16.0


# ---------------------------------------------------------------------- sharing
async def test_arrivals_and_departures_share_every_zone(env):
    await site_with_stations(env)
    assert all(v == 0.0 for v in env.limits().values())  # base profiles only

    await env.plug("S1", phases=3)
    await env.converge()
    assert assert_delivered(env)[K("S1", 1)] == 32.0

    # A single-phase EV on TRI231 (grid L2) arrives while S1 draws 32 A: S1 is decreased
    # first; once meter values show one phase, both share A1's L2.
    await env.plug("S2", phases=1)
    await env.converge()
    limits = assert_delivered(env)
    assert (limits[K("S1", 1)], limits[K("S2", 1)]) == (16.0, 16.0)
    seen = {c.connector_id: c.ev_phases for c in env.lm.last.snapshot.connectors}
    s2 = env.site.stations["S2"].connectors[1]
    assert (seen[K("S1", 1)], seen[K("S2", 1)]) == (3, 1), (
        env.clock.now(),
        s2.status,
        s2.transaction.started_at,
        {k: (m.value, m.timestamp) for k, m in s2.measurements.items() if k[0] == "Current.Import"},
    )

    # MONO2 in A2: only A's L2 (63 A) limits it: 63 - 16 - 16 = 31 A.
    await env.plug("S3", phases=1)
    await env.converge()
    assert assert_delivered(env)[K("S3", 1)] == 31.0

    # Two three-phase EVs on S4: A's L2 is shared by four connectors.
    await env.plug("S4", 1, phases=3)
    await env.plug("S4", 2, phases=3)
    await env.converge()
    limits = assert_delivered(env)
    a_l2 = (
        limits[K("S1", 1)]
        + limits[K("S2", 1)]
        + limits[K("S3", 1)]
        + limits[K("S4", 1)]
        + limits[K("S4", 2)]
    )
    assert 62.0 <= a_l2 <= 63.0
    assert limits[K("S4", 1)] == limits[K("S4", 2)] > 6.0

    # B: three-phase on TRI123 and single-phase on MONO1 share L1.
    await env.plug("S5", phases=3)
    await env.plug("S6", phases=1)
    await env.converge()
    limits = assert_delivered(env)
    assert (limits[K("S5", 1)], limits[K("S6", 1)]) == (16.0, 16.0)

    # Departures: the room goes to the others, never before it is freed.
    await env.unplug("S1")
    await env.converge()
    limits = assert_delivered(env)
    assert limits[K("S1", 1)] == 0.0
    assert limits[K("S2", 1)] > 16.0
    await env.unplug("S4", 1)
    await env.unplug("S6")
    await env.converge()
    limits = assert_delivered(env)
    assert limits[K("S5", 1)] == 32.0
    assert limits[K("S4", 1)] == 0.0
    await env.unplug("S3")
    await env.unplug("S4", 2)
    await env.unplug("S2")
    await env.converge()
    assert assert_delivered(env) == {k: (32.0 if k == K("S5", 1) else 0.0) for k in env.limits()}
    assert env.lm.guard_violations == 0
    # The checker did run, and the budgets were really used.
    assert env.physical.checks > 50
    assert env.physical.peak[("A", 1)] >= 62.0
    assert env.physical.peak[("B", 0)] == 32.0


async def test_budget_respected_while_everyone_arrives_at_once(env):
    await site_with_stations(env)
    for sid, cid, phases in (
        ("S1", 1, 3),
        ("S2", 1, 1),
        ("S3", 1, 1),
        ("S4", 1, 3),
        ("S4", 2, 1),
        ("S5", 1, 3),
        ("S6", 1, 1),
    ):
        await env.plug(sid, cid, phases=phases)
    await env.converge()
    assert_delivered(env)
    # Everybody leaves at once, then comes back.
    for sid, cid in (("S1", 1), ("S2", 1), ("S3", 1), ("S4", 1), ("S4", 2), ("S5", 1)):
        await env.unplug(sid, cid)
    for sid, cid, phases in (("S1", 1, 1), ("S2", 1, 3), ("S4", 1, 3), ("S5", 1, 1)):
        await env.plug(sid, cid, phases=phases)
    await env.converge()
    assert_delivered(env)


# ---------------------------------------------------------------------- suspension, rotation
async def test_suspension_then_rotation_after_reevaluation_period(env):
    env.set_zones(*SMALL)
    for sid in ("R1", "R2", "R3"):
        await env.add_charger(sid, meter_interval=30)
        env.place(sid, "C")
    for sid in ("R1", "R2", "R3"):
        await env.plug(sid, phases=3)
    await env.converge(stable=35)
    limits = assert_delivered(env)
    # 16 A: two minimums (6 A) fit, not three. The third plugged last is suspended.
    assert sorted(limits.values()) == [0.0, 8.0, 8.0]
    suspended = next(k for k, v in limits.items() if v == 0.0)
    assert reasons(env)[suspended] is Reason.SUSPENDED_PRIORITY
    sim = env.sims[suspended.station_id]
    assert sim.connectors[1].status == "SuspendedEVSE"

    # Between revisits (the first was at 0 s), it stays suspended.
    await env.advance(890 - env.clock.monotonic(), step=10)
    assert env.limits()[suspended] == 0.0
    # At the revisit (900 s), it has the least energy: it charges; one of the others rests.
    await env.advance(20, step=10)
    await env.converge(stable=35)
    limits = assert_delivered(env)
    assert limits[suspended] == 8.0
    assert sorted(limits.values()) == [0.0, 8.0, 8.0]
    rested = next(k for k, v in limits.items() if v == 0.0)
    assert rested != suspended
    assert reasons(env)[rested] is Reason.SUSPENDED_PRIORITY


async def test_vip_station_is_served_first(env):
    env.set_zones(*SMALL)
    for sid in ("R1", "R2", "V"):
        await env.add_charger(sid)
    env.place("R1", "C")
    env.place("R2", "C")
    env.place("V", "C", vip=True)
    await env.plug("R1", phases=3)
    await env.plug("R2", phases=3)
    await env.converge()
    assert assert_delivered(env) == {K("R1", 1): 8.0, K("R2", 1): 8.0, K("V", 1): 0.0}
    # The VIP arrives while both regular EVs draw the whole zone.
    await env.plug("V", phases=3)
    await env.converge()
    assert assert_delivered(env) == {K("R1", 1): 0.0, K("R2", 1): 0.0, K("V", 1): 16.0}
    assert reasons(env)[K("R1", 1)] is Reason.SUSPENDED_NO_CAPACITY
    # A user cap on the VIP leaves room for one regular EV: suspended EVs wait for the next
    # revisit of suspensions (every 900 s) to get it.
    env.configure_connector("V", 1, user_limit=10.0)
    await env.converge()
    assert assert_delivered(env) == {K("R1", 1): 0.0, K("R2", 1): 0.0, K("V", 1): 10.0}
    await env.advance(900 - env.clock.monotonic() + 1)
    await env.converge()
    limits = assert_delivered(env)
    assert limits[K("V", 1)] == 10.0
    assert sorted((limits[K("R1", 1)], limits[K("R2", 1)])) == [0.0, 6.0]


# ---------------------------------------------------------------------- uncontrollable chargers
async def test_charger_rejecting_profiles_counts_at_its_rating(env):
    env.set_zones(*SITE)
    rejecting = await env.add_charger("X", max_current=16.0, profile_mode="reject")
    await env.add_charger("N1")
    await env.add_charger("N2")
    assert env.lm.controls["X"].control is Control.REJECTED
    assert [e for e in env.events if isinstance(e, StationUncontrollable)] == [
        StationUncontrollable("X", "Rejected")
    ]
    for sid in ("X", "N1", "N2"):
        env.place(sid, "B")
    await env.plug("N1", phases=3)
    await env.plug("N2", phases=3)
    await env.plug("X", phases=3)
    await env.converge()
    # X may draw its 16 A whatever we say; the others share the remaining 16 A.
    assert assert_delivered(env) == {K("N1", 1): 8.0, K("N2", 1): 8.0, K("X", 1): 16.0}
    assert reasons(env)[K("X", 1)] is Reason.UNCONTROLLED
    assert rejecting.profiles.installed() == []
    assert env.lm.last.allocation.zones["B"].fixed == (16.0, 16.0, 16.0)


async def test_charger_without_smart_charging_counts_at_its_rating(env):
    env.set_zones(*SITE)
    plain = await env.add_charger(
        "X",
        max_current=20.0,
        configuration={"SupportedFeatureProfiles": "Core,FirmwareManagement,RemoteTrigger"},
    )
    await env.add_charger("N1")
    assert env.lm.controls["X"].control is Control.NO_SMART_CHARGING
    env.place("X", "B", {1: MONO2})
    env.place("N1", "B", {1: TRI231})
    await env.plug("N1", phases=3)
    await env.plug("X", phases=1)
    await env.converge()
    # X (20 A on L2) leaves 12 A on L2 for N1, which draws on all three phases.
    assert assert_delivered(env) == {K("N1", 1): 12.0, K("X", 1): 20.0}
    assert not plain.profiles.received
    assert any(isinstance(e, StationUncontrollable) and e.station_id == "X" for e in env.events), (
        "no StationUncontrollable for a charger without Smart Charging"
    )


# ---------------------------------------------------------------------- profiles on the wire
async def test_base_profile_at_registration_and_leases_above_it(env):
    env.set_zones(*SITE)
    cp = await env.add_charger("S1", connectors=2)
    # Registration: one base profile, connector 0, stack level 0, 0 A, no end, before any lease.
    first = cp.profiles.received[0]
    assert first.connector_id == 0
    assert first.status == "Accepted"
    assert first.profile["charging_profile_id"] == BASE_PROFILE_ID
    assert first.profile["stack_level"] == 0
    assert first.profile["charging_profile_purpose"] == "TxDefaultProfile"
    assert first.profile["charging_schedule"]["charging_schedule_period"][0]["limit"] == 0
    assert "valid_to" not in first.profile
    assert len(cp.profiles.received) == 1  # unassigned: nothing else yet
    assert cp.allowed(1) == cp.allowed(2) == 0.0

    env.place("S1", "B")
    await env.plug("S1", 2, phases=3)
    await env.converge()
    await env.advance(200, step=10)  # a few renewals
    # Placed in B (32 A, alone): its degraded current, 32 A over 2 connectors, is its base.
    bases = [r for r in cp.profiles.received if r.connector_id == 0]
    assert [limit(r) for r in bases] == [0.0, 16.0]
    assert env.lm.degraded.per_connector["S1"] == 16.0
    leases = [r for r in cp.profiles.received if r.connector_id != 0]
    assert leases
    for received in leases:
        profile = received.profile
        assert received.status == "Accepted"
        assert profile["stack_level"] == 1
        assert profile["charging_profile_id"] == LEASE_PROFILE_ID + received.connector_id
        assert profile["charging_profile_purpose"] == "TxDefaultProfile"
        valid_to = datetime.fromisoformat(profile["valid_to"])
        # Above the base a lease ends early (100 s); at or below it, after 180 s.
        expected = 100 if limit(received) > 16.0 else 180
        assert valid_to - received.at == timedelta(seconds=expected)
    assert {limit(r) for r in leases} == {0.0, 32.0}
    renewals = [r for r in leases if r.connector_id == 2]
    # Renewed about every 60 s, always long before the lease ends.
    gaps = [(b.at - a.at).total_seconds() for a, b in pairwise(renewals)]
    assert gaps
    assert max(gaps) <= 70
    assert cp.allowed(2) == 32.0
    assert len(cp.profiles.installed()) <= 3  # replaced, never accumulated


def limit(received) -> float:
    return received.profile["charging_schedule"]["charging_schedule_period"][0]["limit"]


async def test_ha_stopped_leases_expire_to_the_base_profile(env):
    await site_with_stations(env)
    for sid, cid, phases in (("S1", 1, 3), ("S2", 1, 1), ("S3", 1, 1), ("S5", 1, 3)):
        await env.plug(sid, cid, phases=phases)
    await env.converge()
    await env.advance(45, step=5)
    before = env.limits()
    assert sum(before.values()) > 60
    bases = dict(env.lm.degraded.per_connector)
    await env.controller.stop()  # Home Assistant stops
    await env.settle()
    # Leases hold for a while...
    await env.advance(60, step=5)
    assert env.limits()[K("S5", 1)] > 0.0
    # ...and all have ended 180 s after the last renewal at the latest: every charger is on
    # its base, its degraded current (the physical check ran at every step on the way).
    await env.advance(121, step=1)
    for sid, cp in env.sims.items():
        for cid in cp.connectors:
            assert cp.limit_amps(cid) == bases[sid]  # the base profile, not "no profile"
    # A (63 A) over 30 A of minimums: x2.1; B (32 A) over 12 A: x2.67.
    assert bases == {"S1": 12.6, "S2": 12.6, "S3": 12.6, "S4": 12.6, "S5": 16.0, "S6": 16.0}


async def test_ha_stopped_mid_renewal_cycle_no_fall_back_raises_before_the_drops(env):
    """The transition to the bases, when the last renewals were at different times.

    B (32 A): S5 and S6 each have a 16 A base. S6 has no EV (its lease holds 0 A, below its
    base: when that lease ends it rises to 16 A); S5's EV holds 32 A (above its base). S6's
    last renewal is older than S5's. With leases of one length, S6 would rise before S5
    drops: 48 A on every phase of B. Leases above the base end early, so S5 drops first.
    """
    env.set_zones(*SITE)
    s5 = await env.add_charger("S5")
    s6 = await env.add_charger("S6")
    env.place("S5", "B")
    env.place("S6", "B")
    await env.advance(150, step=5)  # S6 holds 0 A, renewed every minute
    await env.plug("S5", phases=3)
    await env.converge()
    assert env.limits() == {K("S5", 1): 32.0, K("S6", 1): 0.0}
    # Stop just after S5's renewal, while S6's was 30 s before it.
    while not (env.lm.leases[K("S6", 1)].sent_at + 25 < env.lm.leases[K("S5", 1)].sent_at):
        await env.advance(5)
    await env.controller.stop()  # Home Assistant stops
    await env.advance(200, step=1)  # the invariant is checked at every second
    assert s5.allowed(1) == s6.allowed(1) == 16.0


async def test_a_base_rises_only_when_the_other_bases_leave_room(env):
    """Bases are changed like setpoints: lower at once, higher only into confirmed room.

    S5 is alone in B (32 A): its base is 32 A. It goes offline, and two stations join B: the
    new plan gives each of the three 10.6 A, but S5 cannot be told: it still holds 32 A and
    counts at it. S6's and S7's bases stay at 0 A (what they got unassigned) until S5 is back
    and confirms its lower base.
    """
    env.set_zones(*SITE)
    s5 = await env.add_charger("S5")
    env.place("S5", "B")
    await env.advance(2, step=1)  # the bases follow the setpoints a moment later
    assert env.lm.controls["S5"].base.held == 32.0
    s5.reconnect_delay = (3600.0, 3600.0)
    await env.stop_charger("S5")
    for sid in ("S6", "S7"):
        await env.add_charger(sid)
        env.place(sid, "B")
    await env.plug("S6", phases=3)
    await env.advance(60)
    assert env.lm.degraded.per_connector == {"S5": 10.6, "S6": 10.6, "S7": 10.6}
    assert env.lm.controls["S6"].base.held == env.lm.controls["S7"].base.held == 0.0
    assert env.sims["S6"].allowed(1) == 0.0  # S5, offline, counts at its 32 A base
    # S5 comes back: its base goes down at once, then the others' go up.
    env.tasks["S5"] = asyncio.create_task(s5.run())
    await env.wait_for(lambda: s5.accepted)
    await env.converge()
    bases = {sid: env.lm.controls[sid].base.held for sid in ("S5", "S6", "S7")}
    assert bases == {"S5": 10.6, "S6": 10.6, "S7": 10.6}
    await env.advance(900 - env.clock.monotonic() + 1)  # S6's suspension is revisited
    await env.converge()
    assert env.sims["S6"].allowed(1) == 32.0


# ---------------------------------------------------------------------- configuration
async def test_unassigned_station_gets_no_current(env):
    env.set_zones(*SITE)
    cp = await env.add_charger("U")
    await env.plug("U", phases=3)
    await env.advance(200, step=10)
    assert cp.allowed(1) == 0.0
    assert K("U", 1) not in env.lm.leases
    assert cp.connectors[1].status == "SuspendedEVSE"


async def test_unassigning_a_charging_station_takes_its_current_away(env):
    await two_charging_in_b(env)
    assert assert_delivered(env) == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    # The installer unassigns S5 (it is still wired in B).
    env.place("S5", None, physical=False)
    await env.converge()
    assert env.sims["S5"].allowed(1) == 0.0  # no current, at once: not after its lease ends
    assert env.limits()[K("S6", 1)] == 32.0


async def test_removing_a_charging_station_takes_it_to_zero_first(env):
    """Before a station is removed (disconnected and refused from then on) it is sent 0 A as
    its base and its leases: it will not hear from us again, and its room is free at once."""
    removed, _ = await two_charging_in_b(env)
    assert assert_delivered(env) == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    removed.reconnect_delay = (3600.0, 3600.0)
    await env.site.remove_station("S5")
    await env.settle()
    assert removed.allowed(1) == 0.0
    assert limit([r for r in removed.profiles.received if r.connector_id == 0][-1]) == 0.0
    await env.converge()
    assert env.sims["S6"].allowed(1) == 32.0
    await env.advance(200, step=5)
    assert removed.allowed(1) == 0.0  # its lease ended: its base holds 0 A
    assert K("S5", 1) not in env.lm.leases


async def test_removing_a_station_that_does_not_answer_counts_its_lease_until_it_ends(env):
    removed, _ = await two_charging_in_b(env)
    removed.profile_mode = "ignore"
    removed.reconnect_delay = (3600.0, 3600.0)
    removal = asyncio.create_task(env.site.remove_station("S5"))
    await env.advance(11, step=1)  # the 0 A requests time out (10 s)
    await removal
    lease = env.lm.leases[K("S5", 1)]
    ends = lease.may_run_until(env.lm.delivery.lease_duration)
    await env.advance(ends - env.clock.monotonic() - 1)
    assert env.sims["S6"].allowed(1) == 16.0  # its 16 A lease may still run
    # When its lease ends it keeps its 16 A base (a warning says so) and is no longer counted:
    # removing it says it is off this site (the installer takes it off the board).
    assert removed.allowed(1) == 16.0
    env.physical.placement.pop("S5")
    await env.advance(2, step=1)  # a run is due when its lease ends: its room is free at once
    assert env.sims["S6"].allowed(1) == 32.0
    assert K("S5", 1) not in env.lm.leases


async def test_unassigned_station_that_keeps_its_base_still_counts_where_it_was(env):
    """Unassigned, a station is sent 0 A as its base; until it confirms, its old base (16 A)
    is what it falls back to when its lease ends, in the zone it is still wired to."""
    env.set_zones(*SITE)
    stubborn = await env.add_charger("S5")
    await env.add_charger("S6")
    env.place("S5", "B")
    env.place("S6", "B")
    await env.plug("S6", phases=3)
    await env.converge()
    assert env.limits() == {K("S5", 1): 0.0, K("S6", 1): 32.0}
    assert env.lm.controls["S5"].base.held == 16.0
    stubborn.profile_mode = "ignore"
    env.site.configure_station("S5", replace(env.site.stations["S5"].config, zone_id=None))
    await env.advance(400, step=5)  # its 0 A lease ends: it is on its 16 A base, still in B
    assert stubborn.allowed(1) == 16.0
    assert env.sims["S6"].allowed(1) <= 16.0


async def test_user_cap_and_pause(env):
    await two_charging_in_b(env)
    env.configure_connector("S5", 1, user_limit=10.0)
    await env.converge()
    assert assert_delivered(env) == {K("S5", 1): 10.0, K("S6", 1): 22.0}
    env.configure_connector("S6", 1, paused=True)
    await env.converge()
    assert assert_delivered(env) == {K("S5", 1): 10.0, K("S6", 1): 0.0}
    assert reasons(env)[K("S6", 1)] is Reason.NOT_CHARGING
    env.configure_connector("S5", 1, user_limit=None)
    await env.converge()
    assert assert_delivered(env) == {K("S5", 1): 32.0, K("S6", 1): 0.0}
    env.configure_connector("S6", 1, paused=False)
    await env.converge()
    assert assert_delivered(env) == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    # A cap below the minimum current: no current at all.
    env.configure_connector("S6", 1, user_limit=5.0)
    await env.converge()
    assert assert_delivered(env) == {K("S5", 1): 32.0, K("S6", 1): 0.0}
    assert reasons(env)[K("S6", 1)] is Reason.BELOW_MINIMUM


async def test_dynamic_zone_without_meter_uses_its_degraded_setpoint(env):
    env.set_zones(ZoneConfig("D", "Dynamic", 40.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=10.0))
    env.physical.zones["D"] = ZoneConfig("D", "Dynamic", 10.0)  # the budget to hold
    await env.add_charger("S1")
    env.place("S1", "D")
    await env.plug("S1", phases=3)
    await env.converge()
    assert assert_delivered(env) == {K("S1", 1): 10.0}


# ---------------------------------------------------------------------- chargers that misbehave
async def test_charger_that_never_answers_is_dropped_and_counted_at_its_rating(env):
    """A charger that does not confirm a lease within the request timeout may let that lease
    end unseen and fall back to its base: we close its connection. It reconnects (and boots,
    as the simulator does), never confirms its base either, and so counts at its rating."""
    env.set_zones(*SITE)
    silent = await env.add_charger("S5")
    await env.add_charger("S6")
    env.place("S5", "B")
    env.place("S6", "B")
    await env.plug("S5", phases=3)
    await env.converge()
    assert env.limits() == {K("S5", 1): 32.0, K("S6", 1): 0.0}
    silent.profile_mode = "ignore"
    await env.plug("S6", phases=3)
    await env.settle()
    assert silent.ignored  # the decrease to 16 A went out, unanswered
    assert env.targets() == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    assert env.sims["S6"].allowed(1) == 0.0  # waits for room
    connections = silent.boots
    # Request timeout (30 s): dropped; it comes back 5 s later, ignoring its base too.
    await env.advance(40, step=5)
    assert silent.boots == connections + 1
    assert env.lm.controls["S5"].base_installed is False
    assert env.sims["S6"].allowed(1) == 0.0
    await env.advance(200, step=10)
    assert env.sims["S6"].allowed(1) == 0.0
    # S5's own lease (32 A, above its 16 A base: it lasts 100 s) has ended on the charger:
    # it fell back to its base profile.
    assert silent.allowed(1) == 16.0


async def test_reboot_counts_the_charger_at_its_rating_until_controlled_again(env):
    rebooting, _ = await two_charging_in_b(env)
    assert assert_delivered(env) == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    seen: list[float] = []
    env.lm.subscribe(lambda _: seen.append(env.lm.last.allocation.setpoints.get(K("S6", 1))))
    await rebooting.reboot()
    await env.advance(10, step=1)
    await env.wait_for(lambda: rebooting.accepted)
    await env.converge()
    assert rebooting.boots == 2
    # Booted and not under control yet, S5 counted at its rating (32 A): S6 got nothing
    # meanwhile, but was not suspended for it: they share again as soon as S5 is controlled,
    # not after the resume delay or the revisit.
    assert 0.0 in seen
    assert assert_delivered(env) == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    assert env.clock.monotonic() < 120


async def test_lost_answers_then_disconnection(env):
    """A charger applies our renewals but the answers are lost: we drop its connection.

    Offline, it is counted at the higher of its last lease and its base until that lease
    ends, then at its base. The lease that counts is the last one it may have applied, not
    the last one it confirmed.
    """
    flaky, _ = await two_charging_in_b(env)
    assert env.limits() == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    flaky.profile_mode = "apply_silently"
    flaky.reconnect_delay = (3600.0, 3600.0)  # stays away (300 s at most) once dropped
    await env.advance(95, step=5)  # a renewal (applied, unanswered), its timeout: dropped
    assert flaky.ignored
    assert not env.site.stations["S5"].connected
    assert env.sims["S6"].allowed(1) == 16.0
    await env.advance(200, step=5)
    # Its last lease has ended: it is on its 16 A base, and counted at it.
    assert flaky.allowed(1) == 16.0
    await env.converge()
    assert env.sims["S6"].allowed(1) == 16.0
    # It comes back (boots): counted at its rating until its base profile is confirmed (S6
    # gets nothing meanwhile, without being suspended); then both share again.
    flaky.profile_mode = "accept"
    await env.advance(120, step=5)
    assert env.site.stations["S5"].connected
    await env.converge()
    assert assert_delivered(env) == {K("S5", 1): 16.0, K("S6", 1): 16.0}
    assert env.clock.monotonic() < 900  # not the revisit: S6 resumed into the room


@pytest.mark.parametrize("meter_values_after_stop", [True, False])
async def test_new_ev_on_a_connector_that_last_saw_a_single_phase_ev(env, meter_values_after_stop):
    """Phases seen in the previous session must not decide the next one.

    Many chargers send no MeterValues after StopTransaction, so the last per-phase currents
    of the previous EV stay in the connector's state.
    """
    await single_phase_evs_on_every_phase_of_b(env)
    env.sims["X"].meter_values_after_stop = meter_values_after_stop
    await env.unplug("X")
    await env.converge()
    await env.advance(30)
    # A three-phase EV now arrives on X.
    await env.plug("X", phases=3)
    await env.converge()
    limits = assert_delivered(env)
    assert limits[K("X", 1)] + limits[K("Y", 1)] <= 32.0


async def test_stuck_charger_whose_single_phase_ev_leaves(env):
    """X stops answering (its decreases are lost) while a single-phase EV on it draws 32 A on
    grid L1; Y (L2) and Z (L3) draw 32 A each. X's EV leaves and a three-phase EV arrives.

    X still holds its 32 A lease, now on every wired phase: L2 and L3 may carry 64 A. Delivery
    only holds back increases, so the allocator itself must count X at 32 A on every phase
    from the moment its EV leaves and lower Y and Z — not only once X's unanswered change
    times out (30 s) and X is disconnected.
    """
    await single_phase_evs_on_every_phase_of_b(env)
    env.sims["X"].profile_mode = "ignore"
    await env.unplug("X")  # the checker runs here: Y and Z were lowered already
    await env.settle()
    assert env.lm.last is not None
    assert env.lm.last.by_key[K("X", 1)].unconfirmed == 32.0
    assert (env.limits()[K("Y", 1)], env.limits()[K("Z", 1)]) == (0.0, 0.0)
    await env.advance(60)  # X's decrease times out: dropped, it comes back at its rating
    assert env.lm.last.by_key[K("X", 1)].fixed_load == (32.0, 32.0, 32.0)
    await env.plug("X", phases=3)
    await env.advance(60)
    assert (env.limits()[K("Y", 1)], env.limits()[K("Z", 1)]) == (0.0, 0.0)


async def test_stuck_charger_whose_single_phase_ev_pauses_then_leaves(env):
    """A paused EV is still the same single-phase EV: X's 32 A stays on grid L1 and Y and Z
    keep charging (it is counted on every phase while paused, as any EV whose phases are not
    seen). Only when it leaves may X's 32 A land on L2 and L3: then Y and Z make room."""
    await single_phase_evs_on_every_phase_of_b(env)
    env.sims["X"].profile_mode = "ignore"
    env.sims["X"].reconnect_delay = (3600.0, 3600.0)
    ev = env.sims["X"].connectors[1].ev
    assert ev is not None
    ev.need_wh = 0.0  # full: it stops drawing (SuspendedEV)
    await env.advance(20)
    assert env.site.stations["X"].connectors[1].status is ConnectorStatus.SUSPENDED_EV
    assert env.lm.last is not None
    assert env.lm.last.by_key[K("X", 1)].unconfirmed == 0.0
    assert env.limits()[K("Y", 1)] > 0
    await env.unplug("X")
    await env.settle()
    assert env.lm.last.by_key[K("X", 1)].unconfirmed == 32.0
    assert (env.limits()[K("Y", 1)], env.limits()[K("Z", 1)]) == (0.0, 0.0)
    await env.advance(60)


async def test_single_phase_ev_leaving_lends_its_phases_back_once_confirmed(env):
    """The same departure with X answering: Y and Z dip to 0 A until X confirms 0 A (its
    32 A could land on their phases meanwhile), then get their 32 A back (the cost of that
    caution: their EVs pause, and are counted on every phase until they draw again)."""
    await single_phase_evs_on_every_phase_of_b(env)
    await env.unplug("X")
    await env.settle()
    assert env.lm.leases[K("X", 1)].held == 0.0
    assert env.lm.last is not None
    assert env.lm.last.by_key[K("X", 1)].unconfirmed == 0.0
    await env.converge()
    assert assert_delivered(env) == {K("X", 1): 0.0, K("Y", 1): 32.0, K("Z", 1): 32.0}


@pytest.mark.parametrize(
    ("mode", "reason"), [("reject", "Rejected"), ("callerror", "NotSupported")]
)
async def test_charger_that_starts_refusing_leases_counts_at_its_rating(env, mode, reason):
    refusing, _ = await two_charging_in_b(env)
    refusing.profile_mode = mode
    await env.advance(70, step=5)  # its renewal is refused
    assert env.lm.controls["S5"].control is Control.REJECTED
    events = [e for e in env.events if isinstance(e, StationUncontrollable)]
    assert len(events) == 1
    assert events[0].station_id == "S5"
    assert reason in events[0].reason
    await env.converge()
    # Counted at its rating (32 A): S6 gets nothing, whatever S5's last lease still allows.
    assert env.sims["S6"].allowed(1) == 0.0
    assert reasons(env)[K("S5", 1)] is Reason.UNCONTROLLED


async def test_base_profile_refused_with_a_call_error(env):
    env.set_zones(*SITE)
    await env.add_charger("X", max_current=16.0, profile_mode="callerror")
    await env.add_charger("N1")
    assert env.lm.controls["X"].control is Control.REJECTED
    env.place("X", "B")
    env.place("N1", "B")
    await env.plug("N1", phases=3)
    await env.converge()
    assert assert_delivered(env) == {K("N1", 1): 16.0, K("X", 1): 16.0}
    # Without us X draws its 16 A rating: N1's degraded current is what is left of B's 32 A.
    assert env.lm.degraded.station == {"X": 16.0, "N1": 16.0}
    assert env.lm.controls["N1"].base.held == 16.0


async def test_charger_that_never_confirms_its_base_profile_counts_at_its_rating(env):
    env.set_zones(*SITE)
    silent = await env.add_charger("X", max_current=20.0, profile_mode="ignore", wait=False)
    await env.add_charger("N1")
    env.place("X", "B")
    env.place("N1", "B")
    await env.plug("N1", phases=3)
    await env.plug("X", phases=3)
    await env.advance(100, step=5)  # base requests time out (30 s) and are sent again
    await env.converge()
    assert len(silent.ignored) >= 3
    assert all(p["connectorId"] == 0 for p in silent.ignored)  # only base profiles, no lease
    assert env.lm.controls["X"].base_installed is False
    assert assert_delivered(env) == {K("N1", 1): 12.0, K("X", 1): 20.0}


async def test_listeners_and_new_settings(env):
    env.set_zones(*SMALL)
    updates: list[AllocationUpdated] = []
    unsubscribe = env.lm.subscribe(updates.append)
    for sid in ("R1", "R2"):
        await env.add_charger(sid)
        env.place(sid, "C")
        await env.plug(sid, phases=3)
    await env.converge()
    assert assert_delivered(env) == {K("R1", 1): 8.0, K("R2", 1): 8.0}
    assert any(K("R2", 1) in u.connectors for u in updates)
    assert any("C" in u.zones for u in updates)
    # "EV/ZE ready": 14 A three-phase minimum; one EV only, at once (suspensions revisited).
    updates.clear()
    env.lm.set_settings(LoadSettings(minimum_standard=MinimumStandard.EV_ZE_READY))
    await env.converge()
    assert sorted(assert_delivered(env).values()) == [0.0, 16.0]
    assert updates
    unsubscribe()
    env.lm.set_settings(LoadSettings())
    await env.settle()


async def test_guard_refuses_an_unsafe_allocation_and_keeps_the_previous_one(env, monkeypatch):
    env.set_zones(*SITE)
    for sid in ("S5", "S6"):
        await env.add_charger(sid)
        env.place(sid, "B")
        await env.plug(sid, phases=3)
    await env.converge()
    real = load_manager.allocate

    def broken(snapshot):
        allocation = real(snapshot)
        return replace(allocation, setpoints=dict.fromkeys(allocation.setpoints, 32.0))

    monkeypatch.setattr(load_manager, "allocate", broken)
    env.configure_connector("S6", 1, user_limit=20.0)  # a new run
    await env.advance(30)
    assert env.lm.guard_violations > 0
    assert env.limits() == {K("S5", 1): 16.0, K("S6", 1): 16.0}


# ---------------------------------------------------------------------- random walks
@pytest.mark.parametrize("seed", range(4))
async def test_random_walk_keeps_every_zone_within_budget(env, seed):
    """EVs come and go (single- and three-phase), users cap and pause, stations are unassigned
    and assigned again, chargers reboot or drop their connection; time moves in random steps.
    The invariant is checked after every profile accepted and every step."""
    await random_walk(env, seed, steps=40)


@pytest.mark.parametrize(
    ("seed", "mode"),
    [
        (112, "ignore"),
        (3, "ignore"),
        (4, "apply_silently"),
        (5, "reject"),
        (6, "callerror"),
        # Found holes once bases carried degraded currents (see the test's docstring).
        (2002, "reject"),
        (2010, "callerror"),
        (2015, "ignore"),
        (2026, "apply_silently"),
    ],
)
async def test_random_walk_with_misbehaving_chargers(env, seed, mode):
    """The same, with chargers that stop answering, lose their answers or refuse profiles
    from time to time. Seed 112 ("ignore") found the gate of delivery.plan(): a charger never
    confirmed was sent its target as a "decrease" (it counted at its rating) while it allowed
    0 A, beside a charger stuck at 32 A: zone A's L1 reached 64 A for 63 A. Seeds 2002-2026:
    a refusing station left its zone still on its 12.6 A base; a base raised while the
    station's connectors had no lease in force; leases left "in flight" by a connection that
    closed before their job ran."""
    await random_walk(env, seed, steps=60, modes=(mode,))


async def random_walk(  # noqa: C901
    env: LoadEnv, seed: int, *, steps: int, modes: tuple[str, ...] = ()
) -> None:
    rng = random.Random(seed)  # noqa: S311
    await site_with_stations(env)
    home = dict(env.physical.placement.items())
    connectors = [(sid, cid) for sid, cp in env.sims.items() for cid in cp.connectors]
    for _ in range(steps):
        action = rng.choice(
            ["plug", "plug", "unplug", "cap", "pause", "vip", "unassign", "reboot", "drop"]
            + (["mode"] if modes else [])
        )
        sid, cid = rng.choice(connectors)
        cp = env.sims[sid]
        connector = cp.connectors[cid]
        if action == "plug" and connector.ev is None and cp.accepted:
            await env.plug(sid, cid, phases=rng.choice([1, 3]))
        elif action == "unplug" and connector.ev is not None and cp.accepted:
            await env.unplug(sid, cid)
        elif action == "cap" and sid in env.site.stations:
            env.configure_connector(sid, cid, user_limit=rng.choice([None, 8.0, 13.0, 20.0]))
        elif action == "pause":
            env.configure_connector(sid, cid, paused=rng.random() < 0.5)
        elif action == "vip":
            station = env.site.stations[sid]
            env.site.configure_station(sid, replace(station.config, vip=not station.config.vip))
        elif action == "unassign":
            station = env.site.stations[sid]
            zone = None if station.config.zone_id else home[sid].zone_id
            env.site.configure_station(sid, replace(station.config, zone_id=zone))
        elif action == "reboot" and cp.accepted:
            await cp.reboot()
        elif action == "mode":
            cp.profile_mode = rng.choice(["accept", "accept", *modes])
        elif action == "drop" and cp.accepted and cp._connection is not None:
            await cp._connection.close()  # connection lost; it reconnects and boots
        await env.advance(rng.choice([1, 5, 10, 30]), step=5)
    await env.advance(60)
    assert env.lm.guard_violations == 0
    assert env.physical.checks > 40
