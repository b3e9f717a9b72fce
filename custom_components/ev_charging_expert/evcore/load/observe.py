"""Observing load management from outside: its runs, sends, booked answers and budget checks.

For benchmarks and diagnostics: `LoadManager.observe(observer)` installs one `LoadObserver`
(`observe(None)` removes it). Each callback happens at the one place the thing happens:

- `run_finished`: the end of every run (`LoadManager._run`), a full one (snapshot, allocate,
  plan, send, announce) or a re-plan (delivery only, on the last snapshot);
- `limit_sent`: a lease (`LeaseSender.send`) or a base (`BaseKeeper`) handed to the charger
  port, before the charger answers;
- `answer_booked`: a charger's answer to one of those, or its absence (timeout, connection
  closed), once booked (`record_answer`): what the connector is known to hold from then on;
- `budgets_checked`: a meter reading re-checked the budgets of the zones it drives
  (`LoadManager.meter_updated`).

Not observed: the zero limits sent to a station being removed, and the in-flight limits
booked as unanswered when a charger disconnects.

Without an observer each of these places costs one `is None` check. With one, callbacks run
synchronously on the event loop inside load management: keep them short. An exception in a
callback is logged and ignored (observing never changes what load management does).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..keys import ConnectorKey
    from .delivery import Send

_LOGGER = logging.getLogger(__name__)

stopwatch = time.perf_counter
"""Durations reported to observers (never a timer: timers run on the injected clock)."""
cpu_clock = time.thread_time
"""CPU time of the event loop's thread, for the CPU a check took."""


@dataclass(frozen=True, slots=True)
class RunObserved:
    """One load-management run."""

    started: float
    """The clock's monotonic time at its start."""
    duration: float
    """Seconds it took (wall time), announcing the new allocation included."""
    full: bool
    """Snapshot + allocate + plan; False: delivery re-planned on the last snapshot."""
    sends: int
    """Setpoints it sent (bases follow later and are reported by `limit_sent` only)."""
    snapshot_duration: float | None = None
    """Seconds in the degraded plan and the snapshot (budgets included); None: a re-plan."""
    allocate_duration: float | None = None
    """Seconds in `allocate()`; None: a re-plan."""
    send_duration: float | None = None
    """Seconds handing its setpoints to the charger ports; None: a re-plan."""


@dataclass(frozen=True, slots=True)
class AnswerBooked:
    """A charger's answer to a limit, booked."""

    key: ConnectorKey
    """The connector; connector 0 stands for the station's base."""
    accepted: bool | None
    """True confirmed, False refused, None unknown (timeout, connection closed)."""
    held: float | None
    """What the connector is known to hold from now on (None: never confirmed)."""
    at: float
    """The clock's monotonic time it was booked."""


@dataclass(frozen=True, slots=True)
class BudgetsChecked:
    """A meter's reading re-checked the budgets of the zones it drives."""

    zones: frozenset[str]
    started: float
    """The clock's monotonic time at its start."""
    duration: float
    """Seconds it took (wall time); a run it requests comes later."""
    cpu: float
    """CPU seconds it took (the event loop's thread), without other processes' time slices."""


class LoadObserver:
    """Override the callbacks you need; the others do nothing."""

    def run_finished(self, run: RunObserved) -> None:
        """A run finished."""

    def limit_sent(self, send: Send) -> None:
        """A limit was handed to the charger port (`send.kind` "base" for a base)."""

    def answer_booked(self, answer: AnswerBooked) -> None:
        """A charger's answer (or its absence) was booked."""

    def budgets_checked(self, check: BudgetsChecked) -> None:
        """A meter reading's budget check finished."""


class _Guarded(LoadObserver):
    """An observer whose exceptions are logged, never raised into load management."""

    __slots__ = ("_inner",)

    def __init__(self, inner: LoadObserver) -> None:
        self._inner = inner

    def run_finished(self, run: RunObserved) -> None:
        _call(self._inner.run_finished, run)

    def limit_sent(self, send: Send) -> None:
        _call(self._inner.limit_sent, send)

    def answer_booked(self, answer: AnswerBooked) -> None:
        _call(self._inner.answer_booked, answer)

    def budgets_checked(self, check: BudgetsChecked) -> None:
        _call(self._inner.budgets_checked, check)


def _call[T](callback: Callable[[T], None], record: T) -> None:
    try:
        callback(record)
    except Exception:
        _LOGGER.exception("Load observer failed on %s", record)


def guarded(observer: LoadObserver | None) -> LoadObserver | None:
    """The observer as load management calls it: exceptions logged, not raised."""
    return None if observer is None else _Guarded(observer)
