"""Safe delivery of setpoints: decreases first, increases only into confirmed room.

For each connector we track what the charger is *committed* to be allowed: the value it
confirmed, or — while a change is in flight — the higher of the old and the new value. The
committed values, not the targets, are what must fit every zone phase. A decrease is always
sent at once; an increase is sent only when, with every other connector at its committed value,
it still fits. A charger that does not confirm a change is assumed to hold the higher of the two
values; a connector whose limit we have never had confirmed counts at its rating.

Counting high is not knowing: a charger may allow less than its committed value (never
confirmed, a change unanswered, a lease that ended). So a "decrease" or a renewal above what the
charger is known to allow (`floor`) is itself checked like an increase; when it does not fit,
the connector is sent its floor (0 A when nothing is known) instead.

Pure planning (`plan`) is separated from the bookkeeping of answers, so the rules are testable
without a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import TYPE_CHECKING

from ..allocation.model import effective_budget

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..allocation.model import SiteSnapshot
    from ..keys import ConnectorKey

_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Timing and flash-sparing rules of delivery."""

    renewal_period: float = 60.0
    """Seconds between two renewals of a lease."""
    lease_periods: int = 3
    """A lease is valid for this many renewal periods."""
    dead_band: float = 0.5
    """Increases smaller than this (A) are not sent."""
    increase_interval: float = 10.0
    """At most one increase per connector in this many seconds."""
    fallback_margin: float = 20.0
    """Seconds between the last fall to the base that lowers a charger and the first that
    raises one, when we stop renewing (see `short_lease_duration`)."""

    @property
    def lease_duration(self) -> float:
        """Validity of a lease (s) that holds no more than the base profile."""
        return self.renewal_period * self.lease_periods

    @property
    def short_lease_duration(self) -> float:
        """Validity of a lease (s) above the base profile.

        When we stop renewing (Home Assistant stops), every charger falls back to its base,
        each at its own time: a lease above the base ends in a decrease, one below it in a
        raise. The bases fit every zone together, and so do the leases; a mix of the two may
        not. So leases above the base end early: the last renewal of each charger was at most
        one renewal period before we stopped, so every such lease has ended `fallback_margin`
        seconds before the first lease below a base can end.
        """
        return self.renewal_period * (self.lease_periods - 1) - self.fallback_margin


@dataclass(slots=True)
class LeaseState:
    """What we know of one connector's limit."""

    held: float | None = None
    """The limit the charger confirmed (A); None = never confirmed (counts at the rating)."""
    sent: float | None = None
    """A value sent and not answered yet."""
    sent_at: float = -math.inf
    """Monotonic time of the last confirmed send (for renewal)."""
    last_sent_at: float = -math.inf
    """Monotonic time of the last send, answered or not: the charger may have applied it, so
    a lease may run until this time plus the lease duration."""
    last_increase: float = -math.inf
    floor: float = 0.0
    """The least the charger is known to allow (A) while its lease runs: the value it
    confirmed, or the lower of the old and the new when a change was not answered."""
    floor_at: float = -math.inf
    """Monotonic time the lease that gives `floor` was sent (it ends a lease duration later;
    then the base profile applies and nothing is known to be allowed)."""
    previous: float | None = None
    """The confirmed limit before the last confirmed change (the EV may still follow it)."""
    changed_at: float = -math.inf
    """Monotonic time that change was confirmed."""
    pattern: int | None = None
    """The load pattern its EV drew on at the last run (every wired phase when unknown)."""
    session: int | None = None
    """The transaction `session_phases` belongs to."""
    session_phases: int | None = None
    """Phases the EV of that session was last seen drawing on."""
    unplanned: bool = False
    """Its committed limit may be drawn on grid phases it was not counted on when the others'
    limits were planned (its EV left or changed): the allocator counts it there until the
    charger confirms 0 A (see `snapshot.SnapshotBuilder`)."""

    def may_run_until(self, lease_duration: float) -> float:
        """Monotonic time the last lease sent may run until (answered or not)."""
        return max(self.sent_at, self.last_sent_at) + lease_duration

    def committed(self, rating: float) -> float:
        """The most the charger may draw right now, as far as we can prove."""
        if self.held is None:
            return rating if self.sent is None else max(rating, self.sent)
        return self.held if self.sent is None else max(self.held, self.sent)


@dataclass(frozen=True, slots=True)
class Send:
    """One limit to send to one connector."""

    connector_id: ConnectorKey
    amps: float
    kind: str  # "decrease", "increase" or "renewal"


@dataclass(slots=True)
class Plan:
    """What to send now, and when to look again."""

    sends: list[Send] = field(default_factory=list)
    waiting: list[ConnectorKey] = field(default_factory=list)
    """Increases that wait for room (decreases to be confirmed) or for the rate limit."""
    wake_at: float = math.inf
    """Monotonic time of the next renewal or rate-limit expiry."""


def committed_loads(
    snapshot: SiteSnapshot, leases: Mapping[ConnectorKey, LeaseState]
) -> list[float]:
    """Committed load on every zone-phase constraint (index 3 * zone + phase)."""
    index = snapshot.zone_index
    loads = [0.0] * (3 * len(index.zones))
    for connector in snapshot.connectors:
        zone = index.position[connector.zone_id]
        if connector.fixed_load is not None:
            for z in index.paths[zone]:
                for p in range(3):
                    loads[3 * z + p] += connector.fixed_load[p]
            continue
        lease = leases.get(connector.connector_id) or LeaseState()
        value = lease.committed(connector.rating)
        for k in index.constraints[zone][connector.pattern]:
            loads[k] += value
    return loads


def plan(
    snapshot: SiteSnapshot,
    targets: Mapping[ConnectorKey, float],
    leases: Mapping[ConnectorKey, LeaseState],
    settings: DeliverySettings,
    *,
    now: float | None = None,
) -> Plan:
    """Decide what to send: every decrease, the increases that fit, the renewals due.

    `now` defaults to the snapshot's time; a re-plan after a charger's answer reuses the
    last snapshot at a later time.
    """
    now = snapshot.now if now is None else now
    index = snapshot.zone_index
    budgets = [effective_budget(b) for zone in index.zones for b in zone.budget]
    loads = committed_loads(snapshot, leases)
    result = Plan()
    increases: list[_Increase] = []
    for connector in snapshot.connectors:
        cid = connector.connector_id
        if connector.fixed_load is None and cid in targets:
            lease = leases.get(cid) or LeaseState()
            increase = _decide(cid, targets[cid], lease, now=now, settings=settings, result=result)
            if increase is not None:
                zone = index.position[connector.zone_id]
                increases.append((*increase, index.constraints[zone][connector.pattern]))
    # Decreases (and never-confirmed connectors) are counted at their committed (higher) value
    # until confirmed, so the increases below only use room that is already proven free.
    # Smallest first: the most connectors get their increase when room is short.
    for cid, target, delta, renewal, constraints in sorted(increases, key=lambda i: (i[2], i[0])):
        if all(loads[k] + delta <= budgets[k] + _EPSILON for k in constraints):
            for k in constraints:
                loads[k] += delta
            result.sends.append(Send(cid, target, "increase"))
        else:
            result.waiting.append(cid)
            if renewal is not None:
                result.sends.append(Send(cid, renewal, "renewal"))
    _gate(snapshot, leases, loads, budgets, result, now=now, settings=settings)
    return result


def _gate(
    snapshot: SiteSnapshot,
    leases: Mapping[ConnectorKey, LeaseState],
    loads: list[float],
    budgets: list[float],
    result: Plan,
    *,
    now: float,
    settings: DeliverySettings,
) -> None:
    """Hold back a decrease or renewal that may *raise* what a charger allows without room.

    Below its committed value is not below what the charger allows now: that may be less (a
    connector never confirmed, a change not answered, a lease that ended). Such a send goes
    out only if, with it, every zone phase the connector loads fits with all the others at
    their committed values; otherwise the connector is sent what it is known to allow already
    (0 A when nothing is known), which never raises its current.
    """
    index = snapshot.zone_index
    by_id = {c.connector_id: c for c in snapshot.connectors}
    for i, send in enumerate(result.sends):
        if send.kind == "increase":
            continue  # checked against the room above
        lease = leases.get(send.connector_id) or LeaseState()
        floor = lease.floor if lease.held is not None else 0.0
        if now >= lease.floor_at + settings.short_lease_duration:
            floor = 0.0  # the lease may have ended: nothing above the base is known
        if send.amps <= floor + _EPSILON:
            continue
        connector = by_id[send.connector_id]
        own = lease.committed(connector.rating)
        constraints = index.constraints[index.position[connector.zone_id]][connector.pattern]
        if any(loads[k] - own + send.amps > budgets[k] + _EPSILON for k in constraints):
            result.sends[i] = Send(send.connector_id, floor, "decrease")


type _Increase = tuple[ConnectorKey, float, float, float | None, tuple[int, ...]]
"""connector, target, delta, renewal value (or None), constraints it loads."""


def _decide(
    cid: ConnectorKey,
    target: float,
    lease: LeaseState,
    *,
    now: float,
    settings: DeliverySettings,
    result: Plan,
) -> tuple[ConnectorKey, float, float, float | None] | None:
    """Add this connector's decrease or renewal to `result`; return a wanted increase."""
    if lease.sent is not None:
        return None  # one change in flight per connector; its answer triggers a new plan
    held = lease.held
    if held is None or target < held - _EPSILON:
        result.sends.append(Send(cid, target, "decrease"))
        return None
    renew_at = lease.sent_at + settings.renewal_period
    renewal = held if now >= renew_at else None
    if renewal is None:
        result.wake_at = min(result.wake_at, renew_at)
    wants_increase = target > held + _EPSILON and target - held >= settings.dead_band
    if wants_increase and now - lease.last_increase < settings.increase_interval:
        result.waiting.append(cid)
        result.wake_at = min(result.wake_at, lease.last_increase + settings.increase_interval)
    elif wants_increase:
        return cid, target, target - held, renewal
    if renewal is not None:
        result.sends.append(Send(cid, renewal, "renewal"))
    return None


def record_sent(lease: LeaseState, send: Send, now: float) -> None:
    """Bookkeeping when a send goes out: it counts at the higher value until answered."""
    lease.sent = send.amps
    lease.last_sent_at = now
    if send.kind == "increase":
        lease.last_increase = now


def record_answer(lease: LeaseState, *, accepted: bool | None, now: float) -> None:
    """Bookkeeping of the charger's answer: True accepted, False refused, None unknown.

    Unknown (timeout, connection lost) keeps the higher of the old and the new value: the
    charger may or may not have applied it.
    """
    sent = lease.sent
    lease.sent = None
    if sent is None:
        return
    if accepted:
        if lease.held != sent:
            lease.previous, lease.changed_at = lease.held, now
        lease.held = sent
        lease.sent_at = now
        lease.floor = sent
        lease.floor_at = lease.last_sent_at
    elif accepted is None:
        if lease.held is not None:
            lease.held = max(lease.held, sent)
        lease.floor = min(lease.floor, sent)  # its lease time: the older one's (`floor_at`)
    # Refused: the charger keeps what it had.
