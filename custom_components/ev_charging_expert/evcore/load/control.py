"""What load management knows of each charger and each connector, shared by its parts.

`LoadState` is owned by `LoadManager`; the snapshot builder, the base keeper and the lease
sender read and update it. Nothing outside `load/` writes it; views read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import logging
import math
from typing import TYPE_CHECKING

from ..allocation.model import AllocatorState
from ..config import LoadSettings
from ..errors import ChargerCallError, ChargerError, ChargerRejectedError
from .degraded import DegradedPlan
from .delivery import DeliverySettings, LeaseState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from ..allocation.model import Allocation, ConnectorSnapshot, SiteSnapshot
    from ..charger import Capabilities
    from ..config import ZoneConfig
    from ..keys import ConnectorKey
    from ..meters.external import MeterSource
    from ..rules.pipeline import RuleInputs, ZoneLimit
    from ..site import Site
    from .budgets import NegativeBuildingLoad, ZoneBudgetInfo

_LOGGER = logging.getLogger(__name__)

TARGET_EPSILON = 1e-6


class Control(StrEnum):
    """Whether we can hold a charger's current."""

    UNKNOWN = "unknown"  # configuration not read yet: counted at its rating
    CONTROLLED = "controlled"
    NO_SMART_CHARGING = "no_smart_charging"  # counted at its rating
    REJECTED = "rejected"  # refused our profiles: counted at its rating


UNCONTROLLED = frozenset({Control.NO_SMART_CHARGING, Control.REJECTED})


@dataclass(slots=True)
class ChargerControl:
    """Per station: what it can do and what its base holds."""

    control: Control = Control.UNKNOWN
    capabilities: Capabilities | None = None
    base_installed: bool = False
    """A base was confirmed on the current connection."""
    base: LeaseState = field(default_factory=LeaseState)
    """The base's current per connector: confirmed (`held`; None = never since the charger
    booted, so its rating) and in flight (`sent`). It never expires."""
    base_seq: int = 0
    """Numbers the base sends: an answer to an older one is ignored."""
    connected_since: float | None = None
    """Monotonic time we saw it connect (None: not connected, or not seen yet)."""


@dataclass(slots=True)
class Run:
    """The last allocation run: what it saw, what it decided."""

    snapshot: SiteSnapshot
    allocation: Allocation
    targets: dict[ConnectorKey, float]
    by_key: dict[ConnectorKey, ConnectorSnapshot] = field(default_factory=dict)


@dataclass(slots=True)
class LoadState:
    """Everything load management remembers between two runs."""

    settings: LoadSettings = field(default_factory=LoadSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    request_timeout: float = 30.0
    zones: dict[str, ZoneConfig] = field(default_factory=dict)
    zone_meters: dict[str, MeterSource] = field(default_factory=dict)
    budgets: dict[str, ZoneBudgetInfo] = field(default_factory=dict)
    """Each zone's own budget at the last run, and how it was found."""
    rules: Callable[[], RuleInputs] | None = None
    """The operating rules in force now (time-of-use, inputs, remote setpoints)."""
    limits: dict[str, ZoneLimit] = field(default_factory=dict)
    """Each zone's own limit at the last run (its budget under the rules) and its reason."""
    negative_building: dict[str, NegativeBuildingLoad] = field(default_factory=dict)
    """Dynamic zones whose computed building load is clearly negative, and since when."""
    building_warnings: frozenset[str] = frozenset()
    """Those reported (negative for long enough), as last announced."""
    degraded: DegradedPlan = field(default_factory=DegradedPlan)
    """Each station's degraded current at the last run."""
    leases: dict[ConnectorKey, LeaseState] = field(default_factory=dict)
    controls: dict[str, ChargerControl] = field(default_factory=dict)
    last: Run | None = None
    allocator: AllocatorState = field(default_factory=AllocatorState)
    lease_ends: float = math.inf
    """The first lease of a charger out of reach to end (then it counts at its base)."""
    waiting: bool = False
    """Increases wait for room: a confirmed decrease asks for a re-plan."""
    bases_waiting: set[str] = field(default_factory=set)
    """Stations whose base would rise once their leases are confirmed."""
    bases_blocked: bool = False
    """A base raise did not fit: the others' lower bases, once confirmed, make room."""
    stopped: bool = False
    started_at: float = -math.inf
    """Monotonic time load management started (it knows nothing of the chargers before)."""

    def station_leases(self, station_id: str) -> Iterator[LeaseState]:
        """The leases of a station's connectors."""
        return (lease for key, lease in self.leases.items() if key.station_id == station_id)


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of a limit sent to a charger."""

    accepted: bool | None
    """True confirmed, False refused, None unknown (timeout, connection lost)."""
    refusal: str | None = None
    """Why it was refused (the charger's status or error code)."""
    error: str | None = None
    """Why it is unknown."""


UNANSWERED = Answer(accepted=None, error="no answer (the connection closed)")


async def answer_of(send: Awaitable[None]) -> Answer:
    """Await a limit sent through the charger port and say what became of it.

    The one place where a charger's answer to a base or a lease is read: every sender
    (bases, leases, release) books it the same way.
    """
    try:
        await send
    except ChargerRejectedError as err:
        return Answer(accepted=False, refusal=err.status)
    except ChargerCallError as err:
        return Answer(accepted=False, refusal=err.code)
    except ChargerError as err:
        return Answer(accepted=None, error=str(err))
    return Answer(accepted=True)


def mark_rejected(site: Site, station_id: str, control: ChargerControl, refusal: str) -> None:
    """A charger refused a limit: count it at its rating from now on, and say so."""
    _LOGGER.warning(
        "%s refused our charging profile (%s); it is counted at its rating", station_id, refusal
    )
    control.control = Control.REJECTED
    site.notify_uncontrollable(station_id, refusal)
