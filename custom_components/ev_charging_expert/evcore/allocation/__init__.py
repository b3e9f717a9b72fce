"""The allocator: a pure function from a site snapshot to a setpoint per connector.

`allocate(snapshot)` shares every zone's per-phase budget between the connectors that want
current; `check(snapshot, allocation)` is the guard run before anything is sent.
"""

from .allocator import allocate
from .guard import check
from .model import (
    Allocation,
    AllocationSettings,
    AllocatorState,
    ConnectorSnapshot,
    MinimumStandard,
    Phases,
    Reason,
    ShedPriority,
    SiteSnapshot,
    ZoneAllocation,
    ZoneBudget,
)
from .phases import Wiring, load_pattern

__all__ = [
    "Allocation",
    "AllocationSettings",
    "AllocatorState",
    "ConnectorSnapshot",
    "MinimumStandard",
    "Phases",
    "Reason",
    "ShedPriority",
    "SiteSnapshot",
    "Wiring",
    "ZoneAllocation",
    "ZoneBudget",
    "allocate",
    "check",
    "load_pattern",
]
