"""Time-of-use periods as the session store sees them, and the energy split between them.

The calendar itself belongs to the operating rules (contract C1: `controller.tou`); this module
only states the protocol it codes against, a calendar for sites without TOU, and the split.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime

NO_PERIOD = "NoPeriod"
"""Energy outside any time-of-use period (the reference guide's column name)."""


class TouCalendar(Protocol):
    """The time-of-use calendar (contract C1, `controller.tou`)."""

    def periods(self) -> tuple[str, ...]:
        """Every period name, in display order."""
        ...

    def period_at(self, at: datetime) -> str | None:
        """The period in force at `at` (aware); None outside any period or with TOU off."""
        ...

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """The instants in (start, end) where the period may change."""
        ...


class NoTou:
    """A site without time-of-use periods: every Wh is "NoPeriod"."""

    def periods(self) -> tuple[str, ...]:
        """No period."""
        return ()

    def period_at(self, at: datetime) -> str | None:
        """Never in a period."""
        del at
        return None

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """Nothing ever changes."""
        del start, end
        return []


NO_TOU = NoTou()


def split_energy(
    calendar: TouCalendar,
    start: datetime,
    end: datetime,
    energy_wh: float,
    into: dict[str, float],
) -> None:
    """Add `energy_wh`, drawn evenly from `start` to `end`, to `into` by period.

    Between two register samples the power is taken as constant: the energy of the interval is
    shared at the period boundaries in proportion to time (linear interpolation of the register).
    """
    if energy_wh == 0:
        return
    if end <= start:
        period = calendar.period_at(end) or NO_PERIOD
        into[period] = into.get(period, 0.0) + energy_wh
        return
    total = (end - start).total_seconds()
    cuts = sorted(b for b in calendar.boundaries(start, end) if start < b < end)
    edges = [start, *cuts, end]
    for left, right in itertools.pairwise(edges):
        seconds = (right - left).total_seconds()
        if seconds <= 0:
            continue
        period = calendar.period_at(left + (right - left) / 2) or NO_PERIOD
        into[period] = into.get(period, 0.0) + energy_wh * seconds / total
