"""`check`: the runtime guard run on every allocation before anything is sent.

It recomputes every zone phase load from the snapshot and the setpoints alone (it does not trust
the allocation's own totals), in O(connectors x depth). An empty list means safe to send; any
entry is a bug in the allocator (safety rule 5: log it and keep the previous safe values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import effective_budget
from .phases import GRID_PHASES, NUM_PHASES, THREE_PHASE

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..keys import ConnectorKey
    from .model import Allocation, ConnectorSnapshot, Phases, SiteSnapshot

TOLERANCE = 1e-6
"""Amperes of floating-point noise tolerated before a limit counts as violated."""


def check(snapshot: SiteSnapshot, allocation: Allocation) -> list[str]:
    """List every limit the allocation violates for this snapshot.

    Checked: every controllable connector has a setpoint, which is a number, 0 or at least the
    minimum current, and at most the connector's maximum; no setpoint for an unknown or an
    uncontrolled connector, 0 A for one held at an unconfirmed limit; on every grid phase of
    every zone (sub-zones included), the setpoints fit in what the budget leaves after the
    uncontrolled loads and the unconfirmed limits. A zone phase that those alone overload is
    not a violation of the allocation, unless it also gives current there.
    """
    index = snapshot.zone_index
    nk = NUM_PHASES * len(index.zones)
    given = [0.0] * nk
    fixed = [0.0] * nk
    problems: list[str] = []
    setpoints = allocation.setpoints
    known = _connector_problems(snapshot, setpoints, given, fixed, problems)
    if known != len(setpoints):
        ids = {c.connector_id for c in snapshot.connectors}
        problems.extend(
            f"connector {cid}: setpoint for an unknown connector"
            for cid in sorted(set(setpoints) - ids)
        )
    for z, zone in enumerate(index.zones):
        for p in range(NUM_PHASES):
            k = 3 * z + p
            room = effective_budget(zone.budget[p]) - fixed[k]
            if given[k] > 0 and given[k] > room + TOLERANCE:
                problems.append(
                    f"zone {zone.zone_id} {GRID_PHASES[p]}: {given[k]:.3f} A given, "
                    f"{room:.3f} A available (budget {zone.budget[p]} A, "
                    f"uncontrolled {fixed[k]:.3f} A)"
                )
    return problems


def _connector_problems(
    snapshot: SiteSnapshot,
    setpoints: Mapping[ConnectorKey, float],
    given: list[float],
    fixed: list[float],
    problems: list[str],
) -> int:
    """Check each connector's setpoint; add up loads per constraint; return setpoints seen."""
    index = snapshot.zone_index
    position, constraints, paths = index.position, index.constraints, index.paths
    known = 0
    for c in snapshot.connectors:
        cid = c.connector_id
        z = position[c.zone_id]
        value = setpoints.get(cid)
        if value is not None:
            known += 1
        if c.fixed_load is not None:
            _add_fixed(c.fixed_load, paths[z], fixed)
            if value is not None:
                problems.append(f"connector {cid}: setpoint for an uncontrolled connector")
        elif value is None:
            problems.append(f"connector {cid}: no setpoint")
        elif c.unconfirmed > 0:
            for k in constraints[z][c.pattern]:
                fixed[k] += c.unconfirmed
            if value != 0:
                problems.append(f"connector {cid}: {value} A while held at an unconfirmed limit")
        else:
            _check_setpoint(
                snapshot, c, value, constraints[z][c.pattern], given=given, problems=problems
            )
    return known


def _check_setpoint(
    snapshot: SiteSnapshot,
    c: ConnectorSnapshot,
    value: float,
    constraints: tuple[int, ...],
    *,
    given: list[float],
    problems: list[str],
) -> None:
    if not value >= 0:
        problems.append(f"connector {c.connector_id}: invalid setpoint {value!r}")
    elif value > 0:
        standard = snapshot.settings.minimum_standard
        minimum = standard.three_phase if c.pattern == THREE_PHASE else standard.single_phase
        if not minimum - TOLERANCE <= value <= c.limit + TOLERANCE:
            problems.append(
                f"connector {c.connector_id}: {value} A is outside [{minimum}, {c.limit}] A "
                "(minimum current, maximum current)"
            )
        for k in constraints:
            given[k] += value


def _add_fixed(load: Phases, path: tuple[int, ...], fixed: list[float]) -> None:
    for a in path:
        for p in range(NUM_PHASES):
            fixed[3 * a + p] += load[p]
