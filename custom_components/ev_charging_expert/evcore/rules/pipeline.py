"""The zone-limit pipeline: a pure function, like the allocator (docs/load-management.md).

For each zone, the limit per grid phase the allocator gets is the least of the rules that apply
now:

- `nominal`: the zone's max current;
- `dynamic`: its budget from its meter (max minus the building's load), or `meter_lost`: its
  degraded setpoint while the meter is lost;
- `input:<name>`: the lowest percentage of the zone's max among the active digital inputs, else
  `tou:<period>`: the active time-of-use period's percentage, when the period applies to the
  zone (a digital input makes time-of-use ignored, guide 3.10.5);
- `remote`: the setpoint a building system set for the zone.

Rules can only lower a limit: none of them is ever above the zone's max (safety rule 6). The
reason given is the rule the limit comes from: the one that equals the limit on the most grid
phases, the earlier in the list above on a tie (a 100 % period does not "limit" a zone).
Sub-zones stay within their parents as before: the allocator applies every ancestor's limit;
`effective_limits` gives that minimum along each zone's path for display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import TYPE_CHECKING

from ..config import ZoneMode

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..allocation.model import Phases
    from ..config import ZoneConfig
    from ..load.budgets import ZoneBudgetInfo

NOMINAL = "nominal"
DYNAMIC = "dynamic"
METER_LOST = "meter_lost"
REMOTE = "remote"
TOU_PREFIX = "tou:"
INPUT_PREFIX = "input:"


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """The operating rules in force at one instant (immutable; built by `Rules.inputs`)."""

    inputs: tuple[tuple[str, float], ...] = ()
    """Active digital inputs as (name, percent); they apply to every zone."""
    tou_period: str | None = None
    """The active time-of-use period (None: none, or time-of-use is off)."""
    tou: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    """Per zone where an active period applies: that period and its percentage."""
    remote: Mapping[str, float] = field(default_factory=dict)
    """Per zone: the remote setpoint (A per phase)."""


NO_RULES = RuleInputs()


@dataclass(frozen=True, slots=True)
class ZoneLimit:
    """A zone's own limit per grid phase and the rule it comes from."""

    limit: Phases
    limited_by: str


def _clamp(value: float, high: float) -> float:
    if not math.isfinite(value):
        return 0.0  # when in doubt, less current
    return min(max(value, 0.0), high)


def _percent_of(top: float, percent: float) -> float:
    return _clamp(top * percent / 100.0, top)


def _candidates(
    zone: ZoneConfig, budget: ZoneBudgetInfo | None, rules: RuleInputs
) -> list[tuple[str, Phases]]:
    top = _clamp(zone.max_current, math.inf)
    found: list[tuple[str, Phases]] = [(NOMINAL, (top, top, top))]
    if budget is not None:
        if budget.degraded:
            name = METER_LOST
        else:
            name = DYNAMIC if zone.mode is ZoneMode.DYNAMIC else NOMINAL
        b = budget.budget
        found.append((name, (_clamp(b[0], top), _clamp(b[1], top), _clamp(b[2], top))))
    if rules.inputs:
        name, percent = min(rules.inputs, key=lambda item: (item[1], item[0]))
        amps = _percent_of(top, percent)
        found.append((INPUT_PREFIX + name, (amps, amps, amps)))
    elif zone.zone_id in rules.tou:
        period, percent = rules.tou[zone.zone_id]
        amps = _percent_of(top, percent)
        found.append((TOU_PREFIX + period, (amps, amps, amps)))
    setpoint = rules.remote.get(zone.zone_id)
    if setpoint is not None:
        amps = _clamp(setpoint, top)
        found.append((REMOTE, (amps, amps, amps)))
    return found


def zone_limit(zone: ZoneConfig, budget: ZoneBudgetInfo | None, rules: RuleInputs) -> ZoneLimit:
    """One zone's own limit per grid phase, and which rule set it."""
    candidates = _candidates(zone, budget, rules)
    limit = (
        min(c[1][0] for c in candidates),
        min(c[1][1] for c in candidates),
        min(c[1][2] for c in candidates),
    )
    best_name, best_hits = NOMINAL, -1
    for name, values in candidates:
        hits = sum(1 for p in range(3) if values[p] <= limit[p])
        if hits > best_hits:
            best_name, best_hits = name, hits
    return ZoneLimit(limit, best_name)


def zone_limits(
    zones: Mapping[str, ZoneConfig],
    budgets: Mapping[str, ZoneBudgetInfo],
    rules: RuleInputs = NO_RULES,
) -> dict[str, ZoneLimit]:
    """Every zone's own limit (the allocator applies the parents' on top)."""
    return {z: zone_limit(zone, budgets.get(z), rules) for z, zone in zones.items()}


def effective_limits(
    zones: Mapping[str, ZoneConfig], limits: Mapping[str, ZoneLimit]
) -> dict[str, ZoneLimit]:
    """Per zone: the least limit along its path to the root, and the rule of the tightest.

    The reason is the zone's own unless an ancestor's limit is lower on some phase (then the
    closest such ancestor's, on the phase where it is lowest).
    """
    result: dict[str, ZoneLimit] = {}
    for zone_id in zones:
        own = limits.get(zone_id)
        if own is None:
            continue
        limit, reason = own.limit, own.limited_by
        seen = {zone_id}
        parent_id = zones[zone_id].parent_id
        while parent_id is not None and parent_id in zones and parent_id not in seen:
            seen.add(parent_id)
            parent = limits.get(parent_id)
            if parent is not None:
                lower = tuple(min(a, b) for a, b in zip(limit, parent.limit, strict=True))
                if lower != limit:
                    reason = parent.limited_by
                    limit = (lower[0], lower[1], lower[2])
            parent_id = zones[parent_id].parent_id
        result[zone_id] = ZoneLimit(limit, reason)
    return result
