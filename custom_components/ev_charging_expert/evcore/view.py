"""The read model: what HA entities, diagnostics, exporters and the panel show.

Built by the Controller from the owner's state on demand, immutable, with `to_dict()`.
Nobody outside `evcore` reads load management's run state, leases or controls directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .allocation.model import Reason
from .events import jsonable

if TYPE_CHECKING:
    from datetime import datetime

    from .allocation.model import Phases
    from .config import ZoneMode
    from .keys import ConnectorKey
    from .load.control import Control
    from .meters import MeterReading, MeterState

SUSPENDED_REASONS = frozenset({Reason.SUSPENDED_PRIORITY, Reason.SUSPENDED_NO_CAPACITY})


class _View:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly data."""
        data = jsonable(self)
        assert isinstance(data, dict)  # noqa: S101  # a dataclass always gives a dict
        return data


@dataclass(frozen=True, slots=True)
class AllocationView(_View):
    """A connector's share at the last allocation run."""

    key: ConnectorKey
    setpoint: float | None
    """The limit we want it to hold (A per phase); None when it is not ours to set."""
    reason: Reason | None
    limited_by: str | None
    """The zone whose phase is full, when the setpoint is capped below the maximum."""
    held: float | None
    """The limit the charger confirmed (its lease); None when never confirmed."""
    sent: float | None
    """A limit sent and not answered yet."""

    @property
    def suspended(self) -> bool:
        """Whether it wants current and gets none for lack of room."""
        return self.reason in SUSPENDED_REASONS


@dataclass(frozen=True, slots=True)
class ZoneView(_View):
    """A zone (a switchboard) as the last allocation run saw it; sub-zones included."""

    zone_id: str
    name: str
    parent_id: str | None
    max_current: float
    mode: ZoneMode
    degraded_setpoint: float
    budget: Phases
    """Its own budget per grid phase (static max, from a meter, or degraded)."""
    allocated: Phases
    """Sum of the setpoints given below it."""
    fixed: Phases
    """Load of what cannot be controlled below it (counted at what it may draw)."""
    charging: int
    """EVs given current below it."""
    suspended: int
    """EVs that want current and get none for lack of room."""
    degraded: bool
    """A dynamic zone without a valid reading: it runs on its degraded setpoint."""
    measured: Phases | None
    """The meter's current per phase, when used."""
    building: Phases | None
    """Measured minus our EVs: the building's own load, when known."""
    degraded_problem: str | None
    """Why its stations get 0 A in degraded mode, if they do."""
    limited_by: str = "nominal"
    """The operating rule its limit comes from: nominal, dynamic, meter_lost, tou:<period>,
    input:<name>, remote (a parent's when the parent is lower; rules/pipeline.py)."""
    effective_limit: Phases = (0.0, 0.0, 0.0)
    """Its limit under the operating rules, the least along its path to the root."""
    remote_setpoint: float | None = None
    """The remote setpoint a building system set (A per phase), if any."""


@dataclass(frozen=True, slots=True)
class StationLoadView(_View):
    """What load management knows of a station."""

    station_id: str
    control: Control
    degraded_current: float | None
    """What it may draw (whole station) when it loses us; None when in no zone."""
    base_held: float | None
    """What its base holds per connector, as confirmed; None when never confirmed."""
    base_sent: float | None
    base_planned: float | None
    """Its degraded current per connector: what its base should hold."""


@dataclass(frozen=True, slots=True)
class MeterView(_View):
    """A power meter's state and last reading."""

    meter_id: str
    state: MeterState
    reason: str | None
    last_success: datetime | None
    reading: MeterReading | None
    """The latest reading while the meter is connected, else None."""


@dataclass(frozen=True, slots=True)
class LoadView(_View):
    """Load management as a whole."""

    runs: int
    guard_violations: int
    zones: tuple[ZoneView, ...]
    stations: tuple[StationLoadView, ...]
    connectors: tuple[AllocationView, ...]
