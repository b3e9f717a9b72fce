"""Safe delivery planning (evcore/load/delivery.py): pure, no network.

Vocabulary: a connector's *committed* value is the most its charger may be allowed to draw as
far as delivery can prove (confirmed value, or the higher of old and new while a change is in
flight, or the rating when nothing was ever confirmed).
"""

from __future__ import annotations

from dataclasses import replace
import math
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.ev_charging_expert.evcore.allocation import (
    AllocationSettings,
    ConnectorSnapshot,
    SiteSnapshot,
    Wiring,
    ZoneBudget,
    allocate,
)
from custom_components.ev_charging_expert.evcore.load.delivery import (
    DeliverySettings,
    LeaseState,
    Send,
    committed_loads,
    plan,
    record_answer,
    record_sent,
)

DS = DeliverySettings()
TOL = 1e-6


def zone(zone_id: str, amps: float | tuple[float, float, float], parent: str | None = None):
    budget = amps if isinstance(amps, tuple) else (amps, amps, amps)
    return ZoneBudget(zone_id, budget, parent)


def conn(cid: str, zone_id: str = "z", **kw) -> ConnectorSnapshot:
    kw.setdefault("rating", 32.0)
    kw.setdefault("wants_current", True)
    return ConnectorSnapshot(cid, zone_id, **kw)


def snap(zones, connectors, now: float = 1000.0) -> SiteSnapshot:
    return SiteSnapshot(zones=tuple(zones), connectors=tuple(connectors), now=now)


def held(value: float | None, at: float = 990.0) -> LeaseState:
    """A lease confirmed at `value` (recently, so no renewal is due)."""
    return LeaseState(held=value, sent_at=at, floor=value or 0.0, floor_at=at)


def by_kind(p) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for s in p.sends:
        out.setdefault(s.kind, {})[s.connector_id] = s.amps
    return out


def send_all(p, leases, now):
    for s in p.sends:
        record_sent(leases.setdefault(s.connector_id, LeaseState()), s, now)


# ---------------------------------------------------------------------- decreases
def test_decreases_are_sent_at_once_whatever_the_room():
    # The zone is over budget (a budget drop): every decrease goes out in the same plan.
    s = snap([zone("z", 20)], [conn("a"), conn("b")])
    leases = {"a": held(16), "b": held(16)}
    p = plan(s, {"a": 10, "b": 10}, leases, DS)
    assert by_kind(p) == {"decrease": {"a": 10, "b": 10}}
    assert p.waiting == []


def test_decrease_is_not_rate_limited_nor_dead_banded():
    s = snap([zone("z", 32)], [conn("a")])
    lease = held(16)
    lease.last_increase = 999.0  # increased 1 s ago
    p = plan(s, {"a": 15.9}, {"a": lease}, DS)
    assert by_kind(p) == {"decrease": {"a": 15.9}}


def test_never_confirmed_connector_gets_its_target_as_decrease():
    s = snap([zone("z", 32)], [conn("a")])
    p = plan(s, {"a": 20}, {}, DS)
    assert p.sends == [Send("a", 20, "decrease")]


# ---------------------------------------------------------------------- what is known allowed
def test_send_to_a_never_confirmed_connector_may_raise_it_so_needs_room():
    # a is stuck at 32 A (its decrease unanswered); b was never confirmed: it may allow 0 A
    # (its base profile) or anything up to its rating. Sending b 20 A could raise it: only if
    # it fits beside a's 32 A. It does not, so b is sent 0 A (which never raises anything).
    s = snap([zone("z", 40)], [conn("a"), conn("b")])
    leases = {"a": held(32)}
    leases["a"].sent = 0.0
    p = plan(s, {"a": 0, "b": 20}, leases, DS)
    assert p.sends == [Send("b", 0.0, "decrease")]
    # With room beside a, the target goes out at once.
    p = plan(s, {"a": 0, "b": 8}, {"a": leases["a"], "b": LeaseState()}, DS)
    assert p.sends == [Send("b", 8, "decrease")]


def test_decrease_after_an_unanswered_increase_may_be_a_rise():
    # b confirmed 10 A, then 20 A went unanswered: it allows 10 or 20 A. Over budget (a stuck
    # at 32 A), 15 A could be a rise from 10 A: b is held at 10 A instead.
    s = snap([zone("z", 40)], [conn("a"), conn("b")])
    b = held(10)
    record_sent(b, Send("b", 20, "increase"), 995)
    record_answer(b, accepted=None, now=1000)
    assert (b.held, b.floor) == (20, 10)
    a = held(32)
    a.sent = 0.0
    p = plan(s, {"a": 0, "b": 15}, {"a": a, "b": b}, DS)
    assert p.sends == [Send("b", 10, "decrease")]
    # Within budget, the decrease goes as planned.
    p = plan(s, {"a": 0, "b": 15}, {"a": held(20), "b": b}, DS)
    assert p.sends == [Send("a", 0, "decrease"), Send("b", 15, "decrease")]


def test_renewal_of_a_lease_that_may_have_ended():
    # b's last confirmation is older than a lease: its charger may be back on its base
    # profile (0 A). Renewing 16 A then is a rise; over budget it is replaced by 0 A.
    s = snap([zone("z", 32)], [conn("a"), conn("b")], now=1000.0)
    b = LeaseState(held=16, sent_at=800.0, floor=16, floor_at=800.0)
    a = held(32)
    a.sent = 20.0
    assert plan(s, {"a": 20, "b": 16}, {"a": a, "b": b}, DS).sends == [Send("b", 0.0, "decrease")]
    # A lease above the base may end after `short_lease_duration` (100 s): the same then.
    b = LeaseState(held=16, sent_at=900.0, floor=16, floor_at=900.0)
    assert plan(s, {"a": 20, "b": 16}, {"a": a, "b": b}, DS).sends == [Send("b", 0.0, "decrease")]
    # A lease still running is renewed as is, whatever the room.
    b = LeaseState(held=16, sent_at=930.0, floor=16, floor_at=930.0)
    assert plan(s, {"a": 20, "b": 16}, {"a": a, "b": b}, DS).sends == [Send("b", 16, "renewal")]


def test_short_leases_end_before_any_long_one_can():
    # Renewals every 60 s, leases of 3 periods: a lease above the base lasts 100 s, so even
    # the freshest one (renewed when we stopped) ends 20 s before the stalest lease below a
    # base (renewed one period before we stopped) can end.
    assert DS.lease_duration == 180.0
    assert DS.short_lease_duration == 100.0
    assert DS.lease_duration - DS.renewal_period - DS.short_lease_duration == DS.fallback_margin


def test_floor_bookkeeping():
    lease = LeaseState()
    record_sent(lease, Send("a", 16, "decrease"), 100)
    record_answer(lease, accepted=True, now=101)
    assert (lease.floor, lease.floor_at) == (16, 100)
    record_sent(lease, Send("a", 10, "decrease"), 200)
    record_answer(lease, accepted=None, now=230)
    assert (lease.held, lease.floor, lease.floor_at) == (16, 10, 100)
    record_sent(lease, Send("a", 6, "decrease"), 240)
    record_answer(lease, accepted=False, now=241)
    assert (lease.held, lease.floor, lease.floor_at) == (16, 10, 100)
    record_sent(lease, Send("a", 6, "decrease"), 250)
    record_answer(lease, accepted=True, now=251)
    assert (lease.held, lease.floor, lease.floor_at) == (6, 6, 250)


# ---------------------------------------------------------------------- increases wait for room
def test_increase_waits_for_unconfirmed_decrease_then_goes():
    s = snap([zone("z", 32)], [conn("a"), conn("b")])
    leases = {"a": held(32), "b": held(0)}
    targets = {"a": 16, "b": 16}
    p = plan(s, targets, leases, DS)
    assert by_kind(p) == {"decrease": {"a": 16}}
    assert p.waiting == ["b"]
    send_all(p, leases, 1000)
    # In flight: a still counts at 32; b still waits.
    assert committed_loads(s, leases) == [32, 32, 32]
    p = plan(s, targets, leases, DS)
    assert p.sends == []
    assert p.waiting == ["b"]
    # Confirmed: room is proven, b's increase goes.
    record_answer(leases["a"], accepted=True, now=1000.5)
    assert leases["a"].held == 16
    p = plan(replace(s, now=1000.5), targets, leases, DS)
    assert p.sends == [Send("b", 16, "increase")]
    assert p.waiting == []


def test_in_flight_increase_counts_at_the_new_value():
    s = snap([zone("z", 32)], [conn("a"), conn("b")])
    leases = {"a": held(10), "b": held(10)}
    p = plan(s, {"a": 20, "b": 10}, leases, DS)
    assert p.sends == [Send("a", 20, "increase")]
    send_all(p, leases, 1000)
    assert committed_loads(s, leases) == [30, 30, 30]
    # b wants 12 now: 30 + 2 fits; 30 + 13 would not.
    assert plan(s, {"a": 20, "b": 12}, leases, DS).sends == [Send("b", 12, "increase")]
    assert plan(s, {"a": 20, "b": 23}, leases, DS).waiting == ["b"]


def test_never_confirmed_connector_counts_at_its_rating():
    s = snap([zone("z", 40)], [conn("a", rating=32), conn("b")])
    leases = {"b": held(0)}
    p = plan(s, {"a": 6, "b": 6}, leases, DS)
    # a is told 6 (counted 32 until confirmed); b's 6 does not fit beside 32 + ... it does: 38.
    assert by_kind(p) == {"decrease": {"a": 6}, "increase": {"b": 6}}
    # with a bigger target for b, it waits for a's confirmation.
    leases = {"b": held(0)}
    p = plan(s, {"a": 6, "b": 10}, leases, DS)
    assert by_kind(p) == {"decrease": {"a": 6}}
    assert p.waiting == ["b"]
    # Even with a decrease in flight above the rating, the higher value counts.
    lease = LeaseState(held=None, sent=40.0)
    assert lease.committed(32.0) == 40.0
    assert LeaseState().committed(32.0) == 32.0


def test_smallest_increase_first_when_room_is_short():
    s = snap([zone("z", 32)], [conn("a"), conn("b"), conn("c")])
    leases = {"a": held(20), "b": held(0), "c": held(0)}
    p = plan(s, {"a": 20, "b": 8, "c": 6}, leases, DS)
    assert p.sends == [Send("c", 6, "increase")]
    assert p.waiting == ["b"]


def test_increase_checked_on_every_ancestor_and_only_its_phases():
    zones = [zone("root", 40), zone("sub", 32, "root"), zone("other", 32, "root")]
    conns = [
        conn("a", "sub", wiring=Wiring.MONO1),
        conn("b", "other", wiring=Wiring.MONO2),
        conn("c", "other", wiring=Wiring.TRI231, ev_phases=1),  # lands on L2
        conn("d", "sub", wiring=Wiring.MONO1),
    ]
    s = snap(zones, conns)
    leases = {"a": held(30), "b": held(0), "c": held(0), "d": held(0)}
    p = plan(s, {"a": 30, "b": 16, "c": 16, "d": 10}, leases, DS)
    # L2 (other, root): 16 + 16 = 32 <= 32 and <= 40: both go. L1 root: 30 + 10 = 40 fits but
    # sub L1: 30 + 10 > 32 refuses d.
    assert by_kind(p) == {"increase": {"b": 16, "c": 16}}
    assert p.waiting == ["d"]


# ---------------------------------------------------------------------- answers
def test_timeout_keeps_the_higher_value():
    for first, second in ((10.0, 20.0), (20.0, 10.0)):
        lease = held(first)
        record_sent(lease, Send("a", second, "increase"), 1000)
        record_answer(lease, accepted=None, now=1030)
        assert lease.held == max(first, second)
        assert lease.sent is None
        assert lease.sent_at == 990.0  # not a confirmation: renewal still due on time


def test_timeout_of_a_never_confirmed_connector_keeps_the_rating():
    lease = LeaseState()
    record_sent(lease, Send("a", 6, "decrease"), 1000)
    record_answer(lease, accepted=None, now=1030)
    assert lease.held is None
    assert lease.committed(32) == 32


def test_refusal_keeps_the_old_value():
    lease = held(10)
    record_sent(lease, Send("a", 20, "increase"), 1000)
    record_answer(lease, accepted=False, now=1001)
    assert (lease.held, lease.sent, lease.sent_at) == (10, None, 990.0)
    lease = held(20)
    record_sent(lease, Send("a", 10, "decrease"), 1000)
    record_answer(lease, accepted=False, now=1001)
    assert lease.held == 20


def test_acceptance_confirms_and_restarts_the_lease():
    lease = held(10)
    record_sent(lease, Send("a", 20, "increase"), 1000)
    assert lease.last_increase == 1000
    record_answer(lease, accepted=True, now=1001)
    assert (lease.held, lease.sent, lease.sent_at) == (20, None, 1001)


def test_answer_without_send_is_ignored():
    lease = held(10)
    record_answer(lease, accepted=True, now=1001)
    assert (lease.held, lease.sent_at) == (10, 990.0)


def test_one_change_in_flight_per_connector():
    s = snap([zone("z", 32)], [conn("a")])
    lease = held(20)
    record_sent(lease, Send("a", 16, "decrease"), 1000)
    # A lower target now: it waits for the answer (the in-flight value counts meanwhile).
    assert plan(s, {"a": 6}, {"a": lease}, DS).sends == []


# ---------------------------------------------------------------------- dead band, rate limit
def test_dead_band_skips_small_increases_not_small_decreases():
    s = snap([zone("z", 32)], [conn("a")])
    assert plan(s, {"a": 10.4}, {"a": held(10)}, DS).sends == []
    assert plan(s, {"a": 10.5}, {"a": held(10)}, DS).sends == [Send("a", 10.5, "increase")]
    assert plan(s, {"a": 9.9}, {"a": held(10)}, DS).sends == [Send("a", 9.9, "decrease")]


def test_one_increase_per_connector_per_interval():
    s = snap([zone("z", 32)], [conn("a")])
    lease = held(10)
    lease.last_increase = 995.0
    p = plan(s, {"a": 20}, {"a": lease}, DS)
    assert p.sends == []
    assert p.waiting == ["a"]
    assert p.wake_at == 1005.0
    p = plan(replace(s, now=1005.0), {"a": 20}, {"a": lease}, DS)
    assert p.sends == [Send("a", 20, "increase")]


# ---------------------------------------------------------------------- renewal
def test_renewal_after_renewal_period():
    s = snap([zone("z", 32)], [conn("a")])
    lease = LeaseState(held=16, sent_at=1000.0)
    p = plan(replace(s, now=1059.9), {"a": 16}, {"a": lease}, DS)
    assert p.sends == []
    assert p.wake_at == 1060.0
    p = plan(replace(s, now=1060.0), {"a": 16}, {"a": lease}, DS)
    assert p.sends == [Send("a", 16, "renewal")]
    # Within the dead band: the held value is renewed, not the target.
    p = plan(replace(s, now=1060.0), {"a": 16.3}, {"a": lease}, DS)
    assert p.sends == [Send("a", 16, "renewal")]


def test_renewal_also_for_an_increase_waiting_for_room():
    s = snap([zone("z", 32)], [conn("a"), conn("b")], now=1060.0)
    leases = {"a": LeaseState(held=32, sent_at=1059.0), "b": LeaseState(held=0, sent_at=1000)}
    leases["a"].sent = 16.0  # a's decrease in flight
    p = plan(s, {"a": 16, "b": 16}, leases, DS)
    assert p.waiting == ["b"]
    assert p.sends == [Send("b", 0, "renewal")]


def test_renewal_also_for_a_rate_limited_increase():
    s = snap([zone("z", 32)], [conn("a")], now=1060.0)
    lease = LeaseState(held=10, sent_at=1000.0, last_increase=1055.0)
    p = plan(s, {"a": 20}, {"a": lease}, DS)
    assert p.sends == [Send("a", 10, "renewal")]
    assert p.waiting == ["a"]
    assert p.wake_at == 1065.0


def test_increase_that_fits_replaces_the_renewal():
    s = snap([zone("z", 32)], [conn("a")], now=1060.0)
    p = plan(s, {"a": 20}, {"a": LeaseState(held=10, sent_at=1000.0)}, DS)
    assert p.sends == [Send("a", 20, "increase")]


def test_lease_duration():
    assert DS.lease_duration == 180.0
    assert DeliverySettings(renewal_period=30, lease_periods=4).lease_duration == 120.0


# ---------------------------------------------------------------------- fixed loads
def test_fixed_loads_are_counted_and_never_sent():
    conns = [
        conn("u", rating=16, fixed_load=(16.0, 0.0, 0.0)),
        conn("a", wiring=Wiring.MONO1),
        conn("b", wiring=Wiring.MONO2),
    ]
    s = snap([zone("z", 32)], conns)
    leases = {"a": held(0), "b": held(0)}
    # Even a target for the uncontrolled connector is ignored.
    p = plan(s, {"u": 32, "a": 20, "b": 20}, leases, DS)
    assert p.sends == [Send("b", 20, "increase")]
    assert p.waiting == ["a"]
    assert committed_loads(s, leases) == [16, 0, 0]


def test_fixed_load_counted_in_every_ancestor():
    zones = [zone("root", 40), zone("sub", 32, "root"), zone("other", 32, "root")]
    conns = [conn("u", "sub", fixed_load=(30.0, 30.0, 30.0)), conn("a", "other")]
    s = snap(zones, conns)
    p = plan(s, {"a": 16}, {"a": held(0)}, DS)
    assert p.waiting == ["a"]
    p = plan(s, {"a": 10}, {"a": held(0)}, DS)
    assert p.sends == [Send("a", 10, "increase")]


# ---------------------------------------------------------------------- property
WIRINGS = list(Wiring)


@st.composite
def sites(draw):
    """A random zone tree (<= 3 levels), connectors and held values (possibly over budget)."""
    rng = random.Random(draw(st.integers(0, 2**32)))  # noqa: S311  # test data
    nzones = draw(st.integers(1, 5))
    zones: list[ZoneBudget] = []
    depth: dict[str, int] = {}
    for i in range(nzones):
        zid = f"z{i}"
        parents = [z.zone_id for z in zones if depth[z.zone_id] < 3]
        parent = rng.choice([None, *parents]) if parents else None
        depth[zid] = 1 if parent is None else depth[parent] + 1
        amps = tuple(rng.choice([0.0, 6.0, 10.0, 16.0, 25.0, 32.0, 40.0, 63.0]) for _ in "123")
        zones.append(ZoneBudget(zid, amps, parent))
    nconn = draw(st.integers(0, 10))
    conns = []
    leases: dict[str, LeaseState] = {}
    for i in range(nconn):
        cid = f"c{i}"
        rating = rng.choice([16.0, 32.0])
        fixed = None
        if rng.random() < 0.15:
            fixed = tuple(rng.choice([0.0, rating]) for _ in "123")
        conns.append(
            ConnectorSnapshot(
                cid,
                rng.choice(zones).zone_id,
                rating=rating,
                wants_current=rng.random() < 0.8,
                wiring=rng.choice(WIRINGS),
                ev_phases=rng.choice([None, 1, 3]),
                max_current=rng.choice([None, None, 10.0, 20.0]),
                session_energy_wh=rng.uniform(0, 1e4),
                fixed_load=fixed,
            )
        )
        r = rng.random()
        if r < 0.2:
            continue  # never confirmed
        lease = LeaseState(
            held=rng.choice([0.0, 6.0, 10.0, 16.0, rating]),
            sent_at=rng.choice([-math.inf, 0.0, 990.0]),
            last_increase=rng.choice([-math.inf, 995.0]),
        )
        leases[cid] = lease  # changes in flight come from the plans of earlier rounds
    return zones, conns, leases, rng


def _budgets(s: SiteSnapshot) -> list[float]:
    return [max(b, 0.0) for zone in s.zone_index.zones for b in zone.budget]


def _physical(s: SiteSnapshot, actual: dict[str, float]) -> list[float]:
    """Per constraint, what chargers are actually allowed (the truth delivery cannot see)."""
    index = s.zone_index
    loads = [0.0] * (3 * len(index.zones))
    for c in s.connectors:
        z = index.position[c.zone_id]
        if c.fixed_load is not None:
            for a in index.paths[z]:
                for p in range(3):
                    loads[3 * a + p] += c.fixed_load[p]
            continue
        for k in index.constraints[z][c.pattern]:
            loads[k] += actual[c.connector_id]
    return loads


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(), st.integers(1, 6))
def test_property_plans_never_add_load_beyond_budget(site, rounds):  # noqa: C901, PLR0912, PLR0915
    """Whatever the order of the sends and whichever are applied or confirmed:

    - a charger's allowed current only rises when, right after, every zone phase it loads is
      within budget (so the load never exceeds a budget unless it already did, and then never
      grows);
    - delivery's committed loads are always an upper bound of what chargers allow.

    The truth (what each charger allows) is modelled apart: an applied send holds until its
    lease ends, then the base profile (0 A); a charger never confirmed may allow anything from
    0 A to its rating.
    """
    zones, conns, leases, rng = site
    now = 1000.0
    s = snap(zones, conns, now)
    budgets = _budgets(s)
    actual: dict[str, float] = {}
    until: dict[str, float] = {}  # when the lease that sets `actual` ends
    for c in s.connectors:
        lease = leases.get(c.connector_id)
        if lease is None or lease.held is None:
            actual[c.connector_id] = rng.choice([0.0, c.rating])
            until[c.connector_id] = math.inf
        else:
            actual[c.connector_id] = lease.held  # in-flight changes apply when answered
            until[c.connector_id] = lease.sent_at + DS.lease_duration
            if rng.random() < 0.5:
                lease.floor, lease.floor_at = lease.held, lease.sent_at
    by_id = {c.connector_id: c for c in s.connectors}
    sent_at: dict[str, float] = {
        cid: now for cid, lease in leases.items() if lease.sent is not None
    }

    def apply(cid: str, amps: float) -> None:
        rising = amps > actual[cid] + TOL
        actual[cid] = amps
        until[cid] = sent_at[cid] + DS.lease_duration
        if rising:
            index = s.zone_index
            c = by_id[cid]
            physical = _physical(s, actual)
            for k in index.constraints[index.position[c.zone_id]][c.pattern]:
                assert physical[k] <= budgets[k] + TOL, (cid, amps, k, physical[k], budgets[k])

    def check_upper_bound() -> None:
        committed = committed_loads(s, leases)
        for k, value in enumerate(_physical(s, actual)):
            assert value <= committed[k] + TOL  # bookkeeping is an upper bound of the truth

    state = s.state
    for _ in range(rounds):
        for cid, end in until.items():
            if now >= end:
                actual[cid] = 0.0  # the lease ended: the base profile applies
        # The allocator's targets for this instant (EVs come and go, users cap).
        conns = [
            replace(
                c,
                wants_current=rng.random() < 0.8,
                max_current=rng.choice([c.max_current, None, 8.0, 20.0]),
            )
            for c in conns
        ]
        s = SiteSnapshot(tuple(zones), tuple(conns), now, AllocationSettings(), state)
        by_id = {c.connector_id: c for c in s.connectors}
        allocation = allocate(s)
        state = allocation.state
        check_upper_bound()
        before = committed_loads(s, leases)
        p = plan(s, allocation.setpoints, leases, DS)
        sends = list(p.sends)
        assert len({x.connector_id for x in sends}) == len(sends)
        for x in sends:
            assert x.connector_id not in sent_at  # one change in flight per connector
            record_sent(leases.setdefault(x.connector_id, LeaseState()), x, now)
            sent_at[x.connector_id] = now
        after = committed_loads(s, leases)
        for k in range(len(budgets)):
            assert after[k] <= max(budgets[k], before[k]) + TOL, (k, before[k], after[k])
        # Deliver in a random order; each send is applied or not, and answered or not.
        rng.shuffle(sends)
        for x in sends:
            outcome = rng.choice(["accepted", "refused", "lost_applied", "lost", "pending"])
            if outcome in ("accepted", "lost_applied"):
                apply(x.connector_id, x.amps)
            check_upper_bound()
            if outcome == "pending":
                continue
            accepted = {"accepted": True, "refused": False}.get(outcome)
            record_answer(leases[x.connector_id], accepted=accepted, now=now)
            del sent_at[x.connector_id]
            check_upper_bound()
        # Older changes still in flight get their answers now or later.
        for cid in list(sent_at):
            if rng.random() < 0.5:
                lease = leases[cid]
                answer = rng.choice([True, False, None])
                if answer or (answer is None and rng.random() < 0.5):
                    apply(cid, lease.sent)
                record_answer(lease, accepted=answer, now=now)
                del sent_at[cid]
                check_upper_bound()
        now += rng.choice([0.5, 5.0, 10.0, 60.0, 150.0])
