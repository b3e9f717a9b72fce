"""`allocate`: a pure function from a `SiteSnapshot` to an `Allocation`.

Constraints. Every grid phase of every zone is a constraint `3 * zone + phase`: the setpoints
of the connectors below the zone that land on that phase, plus the fixed load of uncontrolled
connectors there, must stay within the zone's budget on that phase.

Steps.

1. Classify connectors: uncontrolled (fixed load, subtracted from every constraint it loads),
   held at an unconfirmed limit (the same, on the grid phases of its pattern; it gets 0 A),
   not charging, maximum below the minimum current, or a candidate. Candidates form two tiers:
   VIP (card or station) first, then everyone else.
2. Per tier, in order, against what the fixed loads and the previous tier left:
   a. Admission. Candidates are taken in priority order (least energy, or shortest charging time,
      first; ties by the other measure, then by id); one is admitted when its minimum current
      still fits on every constraint it loads, given the minimums already admitted. Between two
      revisits (`reevaluation_period`), a connector suspended in the previous run stays
      suspended; running ones and newly plugged ones compete, so a running EV only loses its
      place to a newly plugged one with higher priority, or when its minimum no longer fits
      (budget drop, VIP arrival). At a revisit everyone competes: that is the rotation.
   b. Filling. The admitted connectors share what is left max-min fairly (water-filling): a
      common level L rises from 0; a connector gets clamp(L, its minimum, its maximum) until a
      constraint it loads becomes full, when it freezes. Connectors of one zone with one load
      pattern (a *cell*) always freeze together, so the sweep works on cells: it keeps, per
      constraint, its load and slope (how many connectors are rising) as L moves through the
      sorted breakpoints (a cell's minimum, its connectors' maximums), and a heap of the levels
      at which constraints become full. Cost: O(n log n) for sorting plus O(cells x depth)
      per event; no per-connector work inside the sweep.
3. Setpoints are rounded down to the resolution, never below the minimum.

Unconfirmed limits go away as soon as their chargers confirm 0 A, and provisional fixed loads
(chargers that just connected, counted at their rating until we control them) as soon as
their base is confirmed: usually within a second. So who is admitted and who is suspended (and
the state kept for the next run) is decided as if they were settled already; an admitted EV
whose minimum does not fit beside them gets 0 A for now without being suspended, and gets its
share at the next run instead of after the resume delay (after a reconnection storm, the
whole site would otherwise wait that long).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from heapq import heappop, heappush
import math
from types import MappingProxyType
from typing import TYPE_CHECKING

from .model import (
    Allocation,
    AllocatorState,
    Reason,
    ShedPriority,
    SiteSnapshot,
    ZoneAllocation,
    effective_budget,
)
from .phases import NUM_PHASES, THREE_PHASE

if TYPE_CHECKING:
    from ..keys import ConnectorKey
    from .model import ConnectorSnapshot

EPSILON = 1e-9
"""Slack (A) for floating-point noise when testing whether a minimum fits."""

# A candidate: (priority key, connector id, constraints, minimum, maximum, cell key).
type _Candidate = tuple[
    tuple[float, float, ConnectorKey], ConnectorKey, tuple[int, ...], float, float, int
]


def allocate(snapshot: SiteSnapshot) -> Allocation:
    """Return a setpoint per controllable connector for this snapshot.

    Pure and deterministic: the result depends only on the snapshot (not on the order of its
    zones and connectors). Pass `result.state` back in the next snapshot.
    """
    plan: Allocation | None = None
    if any(_settled(c) is not c for c in snapshot.connectors):
        plan = allocate(replace(snapshot, connectors=tuple(map(_settled, snapshot.connectors))))
    settings = snapshot.settings
    index = snapshot.zone_index
    state = snapshot.state
    zones = index.zones
    nk = NUM_PHASES * len(zones)
    setpoints: dict[ConnectorKey, float] = {}
    reasons: dict[ConnectorKey, Reason] = {}
    limited_by: dict[ConnectorKey, str] = {}
    fixed = [0.0] * nk
    vip, regular = _classify(snapshot, fixed, setpoints, reasons)
    residual = [effective_budget(b) for zone in zones for b in zone.budget]
    for k in range(nk):
        residual[k] -= fixed[k]
    allocated = [0.0] * nk

    now = snapshot.now
    period = settings.reevaluation_period
    previous = state.reevaluated_at
    reevaluate = previous is None or not previous <= now < previous + period
    reevaluated_at = now if reevaluate or previous is None else previous

    running: list[ConnectorKey] = []
    suspended: list[ConnectorKey] = []
    resumed: set[ConnectorKey] = set() if reevaluate else set(state.resumed)
    zone_ids = tuple(zone.zone_id for zone in zones)
    for tier in (vip, regular):
        if not tier:
            continue
        tier.sort()
        if plan is None:
            admitted, held_back = _admit(
                tier,
                residual,
                state,
                reevaluate=reevaluate,
                resume_from=now - settings.resume_delay,
                resumed=resumed,
            )
        else:
            admitted = [cand for cand in tier if cand[1] in plan.state.running]
            held_back = [(c[1], plan.reasons[c[1]]) for c in tier if c[1] in plan.state.suspended]
        for cid, reason in held_back:
            reasons[cid] = reason
            setpoints[cid] = 0.0
            suspended.append(cid)
        if admitted:
            served = admitted if plan is None else _room_now(admitted, residual, setpoints, reasons)
            limits = _fill(
                served,
                residual,
                allocated,
                settings.resolution,
                setpoints=setpoints,
                reasons=reasons,
            )
            for cid, k in limits.items():
                limited_by[cid] = zone_ids[k // NUM_PHASES]
            running.extend(cand[1] for cand in admitted)

    zone_allocations = {
        zone.zone_id: ZoneAllocation(
            zone.zone_id,
            zone.budget,
            (fixed[3 * z], fixed[3 * z + 1], fixed[3 * z + 2]),
            (allocated[3 * z], allocated[3 * z + 1], allocated[3 * z + 2]),
        )
        for z, zone in enumerate(zones)
    }
    if plan is not None:
        return replace(
            plan,
            setpoints=MappingProxyType(setpoints),
            reasons=MappingProxyType(reasons),
            limited_by=MappingProxyType(limited_by),
            zones=MappingProxyType(zone_allocations),
        )
    previous_since = state.suspended_since
    since = {cid: previous_since.get(cid, now) for cid in suspended}
    since = {cid: min(t, now) for cid, t in since.items()}  # a clock gone back
    resume_at = [t + settings.resume_delay for c, t in since.items() if c not in resumed]
    return Allocation(
        setpoints=MappingProxyType(setpoints),
        reasons=MappingProxyType(reasons),
        limited_by=MappingProxyType(limited_by),
        zones=MappingProxyType(zone_allocations),
        state=AllocatorState(
            reevaluated_at,
            frozenset(running),
            frozenset(suspended),
            MappingProxyType(since),
            frozenset(resumed & (set(running) | set(suspended))),
        ),
        reevaluated=reevaluate,
        next_reevaluation_at=reevaluated_at + period,
        next_resume_at=min((t for t in resume_at if t > now), default=math.inf),
    )


def _settled(c: ConnectorSnapshot) -> ConnectorSnapshot:
    """The connector once its charger has confirmed 0 A, or that we control it."""
    if c.fixed_load is not None:
        return replace(c, fixed_load=None, provisional=False) if c.provisional else c
    if c.unconfirmed > 0:
        return replace(c, wants_current=False, unconfirmed=0.0)
    return c


def _classify(
    snapshot: SiteSnapshot,
    fixed: list[float],
    setpoints: dict[ConnectorKey, float],
    reasons: dict[ConnectorKey, Reason],
) -> tuple[list[_Candidate], list[_Candidate]]:
    """Sort connectors out; add fixed loads; return the VIP and the regular candidates.

    Unconfirmed limits count as fixed loads.
    """
    index = snapshot.zone_index
    position = index.position
    paths = index.paths
    constraints = index.constraints
    standard = snapshot.settings.minimum_standard
    single, three = standard.single_phase, standard.three_phase
    by_energy = snapshot.settings.shed_priority is ShedPriority.ENERGY
    vip: list[_Candidate] = []
    regular: list[_Candidate] = []
    for c in snapshot.connectors:
        cid = c.connector_id
        z = position[c.zone_id]
        if c.fixed_load is not None:
            reasons[cid] = Reason.UNCONTROLLED
            f1, f2, f3 = c.fixed_load
            for a in paths[z]:
                k = 3 * a
                fixed[k] += f1
                fixed[k + 1] += f2
                fixed[k + 2] += f3
            continue
        pattern = c.pattern
        if c.unconfirmed > 0:
            # Its limit may land where nobody counted it: it takes that room, and gets
            # nothing more until its charger confirms a new limit.
            for k in constraints[z][pattern]:
                fixed[k] += c.unconfirmed
            reasons[cid] = Reason.SUSPENDED_NO_CAPACITY if c.wants_current else Reason.NOT_CHARGING
            setpoints[cid] = 0.0
            continue
        if not c.wants_current:
            reasons[cid] = Reason.NOT_CHARGING
            setpoints[cid] = 0.0
            continue
        minimum = three if pattern == THREE_PHASE else single
        if c.limit < minimum:
            reasons[cid] = Reason.BELOW_MINIMUM
            setpoints[cid] = 0.0
            continue
        energy, duration = c.session_energy_wh, c.charging_duration_s
        key = (energy, duration, cid) if by_energy else (duration, energy, cid)
        cand = (key, cid, constraints[z][pattern], minimum, c.limit, 4 * z + pattern)
        if c.vip_card or c.vip_station:
            vip.append(cand)
        else:
            regular.append(cand)
    return vip, regular


def _admit(
    tier: list[_Candidate],
    residual: list[float],
    state: AllocatorState,
    *,
    reevaluate: bool,
    resume_from: float,
    resumed: set[ConnectorKey],
) -> tuple[list[_Candidate], list[tuple[ConnectorKey, Reason]]]:
    """Choose who charges in this tier: return the admitted and the suspended (with why).

    `tier` is in priority order. Greedy: admit a candidate when its minimum fits beside the
    minimums already admitted, else suspend it. Between revisits, connectors suspended in the
    previous run come last: one suspended since `resume_from` or before, and not restarted
    that way since the last revisit (`resumed`, updated here), starts again if its minimum
    fits in what the others leave (it takes nobody's place); the others wait.
    """
    avail = residual.copy()
    running = state.running
    held = state.suspended
    since = state.suspended_since
    admitted: list[_Candidate] = []
    suspended: list[tuple[ConnectorKey, Reason]] = []
    late: list[_Candidate] = []
    for cand in tier:
        cid = cand[1]
        if reevaluate or cid in running or cid not in held:
            if _fits(cand, avail):
                admitted.append(cand)
            else:
                suspended.append((cid, _why(cand, residual)))
        elif cid not in resumed and since.get(cid, -math.inf) <= resume_from:
            late.append(cand)
        else:
            suspended.append((cid, _why(cand, residual)))
    for cand in late:
        if _fits(cand, avail):
            admitted.append(cand)
            resumed.add(cand[1])
        else:
            suspended.append((cand[1], _why(cand, residual)))
    return admitted, suspended


def _room_now(
    admitted: list[_Candidate],
    residual: list[float],
    setpoints: dict[ConnectorKey, float],
    reasons: dict[ConnectorKey, Reason],
) -> list[_Candidate]:
    """The admitted whose minimum fits beside the unconfirmed limits, in priority order.

    The others get 0 A for now, without being suspended (see the module docstring).
    """
    avail = residual.copy()
    served: list[_Candidate] = []
    for cand in admitted:
        if _fits(cand, avail):
            served.append(cand)
        else:
            reasons[cand[1]] = _why(cand, residual)
            setpoints[cand[1]] = 0.0
    return served


def _fits(cand: _Candidate, avail: list[float]) -> bool:
    """Take the candidate's minimum from `avail` if it fits on every constraint it loads."""
    ks, minimum = cand[2], cand[3]
    for k in ks:
        if avail[k] < minimum - EPSILON:
            return False
    for k in ks:
        avail[k] -= minimum
    return True


def _why(cand: _Candidate, residual: list[float]) -> Reason:
    """Why a candidate is suspended (would its minimum fit if it were alone in its tier?)."""
    for k in cand[2]:
        if residual[k] < cand[3] - EPSILON:
            return Reason.SUSPENDED_NO_CAPACITY
    return Reason.SUSPENDED_PRIORITY


def _fill(
    admitted: list[_Candidate],
    residual: list[float],
    allocated: list[float],
    resolution: float,
    *,
    setpoints: dict[ConnectorKey, float],
    reasons: dict[ConnectorKey, Reason],
) -> dict[ConnectorKey, int]:
    """Share `residual` max-min fairly among `admitted`, each between its minimum and maximum.

    The admitted minimums fit in `residual`. Writes setpoints and reasons; subtracts the
    setpoints from `residual` and adds them to `allocated`. Returns, per connector capped below
    its maximum, the constraint that capped it.
    """
    # Cells: connectors of one zone with one load pattern share every constraint.
    cell_of: dict[int, int] = {}
    cell_cons: list[tuple[int, ...]] = []
    cell_min: list[float] = []
    cell_maxes: list[list[float]] = []
    member: list[int] = []
    for cand in admitted:
        ci = cell_of.get(cand[5])
        if ci is None:
            ci = cell_of[cand[5]] = len(cell_cons)
            cell_cons.append(cand[2])
            cell_min.append(cand[3])
            cell_maxes.append([])
        cell_maxes[ci].append(cand[4])
        member.append(ci)

    level = _Sweep(cell_cons, cell_min, cell_maxes, residual).run()

    limits: dict[ConnectorKey, int] = {}
    cell_sum = [0.0] * len(cell_cons)
    for cand, ci in zip(admitted, member, strict=True):
        lv, limiter = level[ci]
        minimum, maximum = cand[3], cand[4]
        cid = cand[1]
        value = maximum if lv >= maximum else max(minimum, lv)
        if value >= maximum:
            reasons[cid] = Reason.ALLOCATED
        else:
            reasons[cid] = Reason.CAPPED_BY_ZONE
            limits[cid] = limiter
        if resolution > 0:
            rounded = round(math.floor(value / resolution + EPSILON) * resolution, 9)
            value = max(rounded, minimum) if rounded < value else value
        setpoints[cid] = value
        cell_sum[ci] += value
    for ci, ks in enumerate(cell_cons):
        total = cell_sum[ci]
        for k in ks:
            residual[k] -= total
            allocated[k] += total
    return limits


class _Sweep:
    """Progressive filling over cells (see the module docstring).

    Per constraint k: `load[k]` at level `ref[k]`, and `slope[k]` = connectors on k rising with
    the level. `heap` holds (level at which k becomes full, version, k); an entry whose version
    is not `version[k]` is stale.
    """

    __slots__ = (
        "cell_cons",
        "cells_of",
        "events",
        "frozen_at",
        "heap",
        "level",
        "limiter",
        "load",
        "next_event",
        "ref",
        "residual",
        "rising",
        "slope",
        "touched",
        "version",
    )

    def __init__(
        self,
        cell_cons: list[tuple[int, ...]],
        cell_min: list[float],
        cell_maxes: list[list[float]],
        residual: list[float],
    ) -> None:
        nk = len(residual)
        ncells = len(cell_cons)
        self.cell_cons = cell_cons
        self.residual = residual
        self.load = load = [0.0] * nk
        self.slope = [0] * nk
        self.ref = [0.0] * nk
        self.version = [0] * nk
        cells_of: list[list[int]] = [[] for _ in range(nk)]
        # Breakpoints: (level, cell, change of the cell's rising count).
        events: list[tuple[float, int, int]] = []
        self.cells_of = cells_of
        self.events = events
        for ci in range(ncells):
            minimum = cell_min[ci]
            maxes = cell_maxes[ci]
            start = minimum * len(maxes)
            for k in cell_cons[ci]:
                load[k] += start
                cells_of[k].append(ci)
            counts = Counter(maxes)
            rising = len(maxes) - counts.get(minimum, 0)
            if rising:
                events.append((minimum, ci, rising))
                events.extend((mx, ci, -n) for mx, n in counts.items() if mx > minimum)
        events.sort()
        self.next_event = 0
        self.frozen_at = [math.inf] * ncells
        self.limiter = [-1] * ncells
        self.rising = [0] * ncells
        self.heap: list[tuple[float, int, int]] = []
        self.touched: set[int] = set()
        self.level = 0.0

    def run(self) -> list[tuple[float, int]]:
        """Return per cell its freeze level and the constraint that froze it.

        A cell that never freezes gets level +inf (its connectors at their maximum) and -1.
        """
        heap, version, events = self.heap, self.version, self.events
        inf = math.inf
        ne = len(events)
        while True:
            while heap and heap[0][1] != version[heap[0][2]]:
                heappop(heap)
            next_full = heap[0][0] if heap else inf
            i = self.next_event
            next_break = events[i][0] if i < ne else inf
            if next_full == inf and i >= ne:
                break
            if next_full <= next_break:
                self._saturate(heappop(heap)[2], next_full)
            else:
                self._breakpoint(next_break)
            self._reschedule()
        return list(zip(self.frozen_at, self.limiter, strict=True))

    def _saturate(self, k: int, at: float) -> None:
        """Constraint k is full: freeze every cell on it."""
        self.level = lvl = max(self.level, at)
        frozen_at, limiter, rising = self.frozen_at, self.limiter, self.rising
        for ci in self.cells_of[k]:
            if frozen_at[ci] != math.inf:
                continue
            frozen_at[ci] = lvl
            limiter[ci] = k
            if rising[ci]:
                self._shift(ci, -rising[ci])
                rising[ci] = 0

    def _breakpoint(self, lvl: float) -> None:
        """Cells start rising (level = their minimum) or connectors reach their maximum."""
        self.level = lvl
        events, frozen_at, rising = self.events, self.frozen_at, self.rising
        i, ne = self.next_event, len(events)
        while i < ne and events[i][0] == lvl:
            _, ci, delta = events[i]
            i += 1
            if frozen_at[ci] == math.inf:
                rising[ci] += delta
                self._shift(ci, delta)
        self.next_event = i

    def _shift(self, ci: int, delta: int) -> None:
        """Change by `delta` the slope of every constraint that cell ci loads, at this level."""
        lvl, load, slope, ref, touched = self.level, self.load, self.slope, self.ref, self.touched
        for k in self.cell_cons[ci]:
            load[k] += slope[k] * (lvl - ref[k])
            ref[k] = lvl
            slope[k] += delta
            touched.add(k)

    def _reschedule(self) -> None:
        """Push the new level at which each changed constraint becomes full."""
        heap, version, slope, ref, load, residual = (
            self.heap,
            self.version,
            self.slope,
            self.ref,
            self.load,
            self.residual,
        )
        for k in self.touched:
            version[k] += 1
            s = slope[k]
            if s > 0:
                heappush(heap, (ref[k] + (residual[k] - load[k]) / s, version[k], k))
        self.touched.clear()
