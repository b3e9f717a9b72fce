"""Phase arithmetic: which grid phases a connector loads, given its wiring and the EV.

Grid phases are numbered 0, 1, 2 (L1, L2, L3) inside the allocator. A connector's *load
pattern* says where a setpoint of x A lands on the grid: on one grid phase (patterns 0, 1, 2) or
on all three (pattern `THREE_PHASE`). An OCPP limit is per connector phase, so a three-phase
setpoint of x A draws x A on each grid phase.
"""

from __future__ import annotations

from enum import StrEnum

GRID_PHASES = ("L1", "L2", "L3")
NUM_PHASES = 3
THREE_PHASE = 3
"""Load pattern of a connector drawing on all three grid phases."""

PATTERN_PHASES: tuple[tuple[int, ...], ...] = ((0,), (1,), (2,), (0, 1, 2))
"""Grid phases (0-based) loaded by each load pattern."""


class Wiring(StrEnum):
    """How a connector's phases are wired to the grid's (phase rotation)."""

    TRI123 = "TRI123"  # L1->L1, L2->L2, L3->L3
    TRI231 = "TRI231"  # L1->L2, L2->L3, L3->L1
    TRI312 = "TRI312"  # L1->L3, L2->L1, L3->L2
    MONO1 = "MONO1"  # single phase on grid L1
    MONO2 = "MONO2"  # single phase on grid L2
    MONO3 = "MONO3"  # single phase on grid L3

    @property
    def three_phase(self) -> bool:
        """Whether the connector is wired on three phases."""
        return self in _ROTATION

    def grid_phase(self, connector_phase: int) -> int:
        """Return the grid phase (1..3) that the connector's phase (1..3) is wired to.

        A single-phase connector only has phase 1.
        """
        if self in _ROTATION:
            if not 1 <= connector_phase <= NUM_PHASES:
                raise ValueError(f"connector phase must be 1..3, got {connector_phase}")
            return _ROTATION[self][connector_phase - 1] + 1
        if connector_phase != 1:
            raise ValueError(f"{self} has only connector phase 1, got {connector_phase}")
        return _MONO[self] + 1


_ROTATION: dict[Wiring, tuple[int, int, int]] = {
    Wiring.TRI123: (0, 1, 2),
    Wiring.TRI231: (1, 2, 0),
    Wiring.TRI312: (2, 0, 1),
}
_MONO: dict[Wiring, int] = {Wiring.MONO1: 0, Wiring.MONO2: 1, Wiring.MONO3: 2}

EV_PHASES = (None, 1, 2, 3)
"""Accepted values for the number of phases an EV charges on (None = not known yet)."""


def load_pattern(wiring: Wiring, ev_phases: int | None) -> int:
    """Return where the connector's setpoint lands on the grid.

    A single-phase connector loads its one grid phase whatever the EV. On a three-phase connector
    a single-phase EV loads the grid phase that the connector's L1 is wired to; a three-phase EV,
    a two-phase EV and an EV whose phases are not known yet are counted on all three grid phases
    (worst case).
    """
    if wiring in _MONO:
        return _MONO[wiring]
    if ev_phases == 1:
        return _ROTATION[wiring][0]
    return THREE_PHASE
