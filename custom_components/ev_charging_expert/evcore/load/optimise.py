"""Consumption optimisation: the current an EV does not draw goes to the others.

An EV that draws clearly less than the limit its charger holds (its onboard charger is smaller
than the connector, its battery is nearly full, it paused) keeps that current reserved for
nothing. With the site option on, such an EV gets a cap — what it draws plus a margin — that
the allocator treats like a user cap, so the freed current is shared among the others in the
same run. When its draw comes close to its cap it gets its share back at the next run.

Only the connectors' *maximums* change: the allocator, its guard and delivery run unchanged,
so the safety invariant stays on the limits the chargers hold (a cap is a decrease like any
other, sent first; the others' increases wait until it is confirmed — see `delivery.plan`).
The measured draw never enters a budget.

No oscillation. Per connector (`decide`, a pure function):

- *Capping* needs `detect_after` seconds of settled samples (taken at least `EV_REACTION` after
  the held limit was confirmed, within `sample_max_age`) that all show the EV drawing at least
  `under_by` below the limit it holds; a sample that does not ends the count. The cap is the
  draw plus `margin` (at least the minimum current), strictly below the held limit because
  `under_by > margin`.
- *Lowering* a cap again follows the same rule, and `hold` seconds after its last change.
- *Release* (no cap) as soon as a fresh sample shows a draw within `release_within` of the cap,
  or no fresh sample is left (the optimisation acts only on what it measures). Hysteresis: a
  capped EV must rise by `margin - release_within` above the draw it was capped at.
- After a release, no new cap for `hold` seconds.

So a connector's cap changes at most about twice per `hold` seconds whatever its EV does, and
an EV drawing steadily (within the hysteresis band) is capped once and stays so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
import math
from typing import TYPE_CHECKING, Any

from ..model import ConnectorStatus

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from ..allocation.model import ConnectorSnapshot, SiteSnapshot
    from ..keys import ConnectorKey
    from ..model import ConnectorState
    from ..site import Site
    from .control import LoadState

EV_REACTION = 5.0
"""Seconds an EV may take to follow a new limit (IEC 61851): earlier samples show the old one."""
_RESOLUTION = 0.1  # A: caps are rounded up to this
_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class OptimiseSettings:
    """The thresholds and times of consumption optimisation."""

    under_by: float = 3.0
    """A draw at least this far (A) below the held limit counts as drawing less."""
    margin: float = 2.0
    """A cap is the draw plus this (A): room for the EV's own variations."""
    release_within: float = 0.5
    """A capped EV drawing this close (A) to its cap gets its share back."""
    detect_after: float = 120.0
    """Seconds an EV must draw less, without interruption, before it is capped (or lower)."""
    hold: float = 300.0
    """Seconds between two changes that lower a cap, and after a release before a new cap."""
    sample_max_age: float = 90.0
    """Seconds after which an EV's sample says nothing about now."""

    def __post_init__(self) -> None:
        for name in ("under_by", "margin", "release_within", "detect_after", "hold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not self.sample_max_age > 0:
            raise ValueError(f"sample_max_age must be > 0, got {self.sample_max_age}")
        if not self.release_within < self.margin < self.under_by:
            raise ValueError(
                "release_within < margin < under_by is required (the hysteresis), got "
                f"{self.release_within}, {self.margin}, {self.under_by}"
            )


@dataclass(frozen=True, slots=True)
class Track:
    """What optimisation remembers of one connector's session."""

    session: int | None = None
    """The transaction this track belongs to (a new one starts afresh)."""
    cap: float | None = None
    """The cap in force (A per phase); None = its normal share."""
    under_since: float | None = None
    """Monotonic time of the first of the settled samples in a row that show it drawing less."""
    changed_at: float = -math.inf
    """Monotonic time the cap last changed (set, lowered or released)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What one run sees of a connector."""

    held: float | None
    """The limit its charger confirmed (A); None = none confirmed, or a change in flight."""
    draw: float | None
    """The most it draws on one phase (A), from fresh samples; None = no fresh sample."""
    settled: bool
    """The samples were taken once the EV could follow `held`."""
    minimum: float
    """The minimum current of its load pattern (a cap never goes below it)."""


def decide(track: Track, seen: Observation, now: float, settings: OptimiseSettings) -> Track:
    """The connector's next track (pure; see the module docstring for the rules)."""
    draw, held = seen.draw, seen.held
    if track.cap is not None and (draw is None or draw >= track.cap - settings.release_within):
        return Track(track.session, None, None, now)  # its share back, at once
    if draw is not None and (held is None or not seen.settled):
        return track  # no evidence either way: the count neither starts nor ends
    cap = None if draw is None else _cap_for(draw, seen.minimum, settings)
    if (
        draw is None
        or cap is None
        or held is None
        or draw >= held - settings.under_by
        or not (cap < held - _EPSILON and (track.cap is None or cap < track.cap - _EPSILON))
    ):
        # Not drawing less, or nothing to gain (held at the minimum already, or lower by its
        # zone): nothing pending, else a run would be due at every turn.
        return replace(track, under_since=None)
    since = now if track.under_since is None else track.under_since
    # The same sums as `next_decision`: a run at the instant it gives must decide (with
    # `now - since >= detect_after`, rounding could leave a due decision untaken).
    if now >= since + settings.detect_after and now >= track.changed_at + settings.hold:
        return Track(track.session, cap, None, now)
    return replace(track, under_since=since)


def _cap_for(draw: float, minimum: float, settings: OptimiseSettings) -> float:
    """The draw plus the margin, rounded up to the resolution, at least the minimum."""
    return max(math.ceil((draw + settings.margin) / _RESOLUTION - _EPSILON) * _RESOLUTION, minimum)


def next_decision(track: Track, settings: OptimiseSettings) -> float:
    """Monotonic time from which `decide` may cap this connector (or lower its cap)."""
    if track.under_since is None:
        return math.inf
    return max(track.under_since + settings.detect_after, track.changed_at + settings.hold)


class Optimiser:
    """Turns the EVs' measured draws into per-connector caps for the allocator.

    Owned by `LoadManager`; reads the site (samples) and the load state (leases, settings).
    """

    def __init__(
        self, site: Site, state: LoadState, settings: OptimiseSettings | None = None
    ) -> None:
        self._site = site
        self._state = state
        self.settings = settings or OptimiseSettings()
        self._tracks: dict[ConnectorKey, Track] = {}
        self._now = -math.inf

    @property
    def enabled(self) -> bool:
        """Whether the site option is on."""
        return self._state.settings.consumption_optimisation

    @property
    def caps(self) -> Mapping[ConnectorKey, float]:
        """The caps in force at the last run, per connector (A per phase)."""
        return {key: t.cap for key, t in self._tracks.items() if t.cap is not None}

    @property
    def next_at(self) -> float:
        """Monotonic time a run may cap a connector (schedule a run then).

        A decision already due waits for a settled sample (a change was in flight): the next
        run that has one takes it, whatever triggers it — at the latest the renewal run.
        """
        times = (next_decision(t, self.settings) for t in self._tracks.values())
        return min((t for t in times if t > self._now), default=math.inf)

    def apply(self, snapshot: SiteSnapshot) -> SiteSnapshot:
        """The snapshot with every cap applied to its connector's maximum current."""
        if not self.enabled:
            self._tracks.clear()
            return snapshot
        now = self._now = snapshot.now
        minimum = self._state.settings.minimum_standard
        tracks: dict[ConnectorKey, Track] = {}
        connectors: list[ConnectorSnapshot] = []
        changed = False
        for connector in snapshot.connectors:
            key = connector.connector_id
            state = self._connector_state(key)
            transaction = state.transaction if state is not None else None
            if (
                state is None
                or transaction is None
                or not connector.wants_current
                or connector.fixed_load is not None
                or connector.unconfirmed > 0
            ):
                connectors.append(connector)
                continue
            track = self._tracks.get(key)
            if track is None or track.session != transaction.transaction_id:
                track = Track(session=transaction.transaction_id)
            seen = self._observe(key, state, minimum.minimum(connector.pattern))
            track = decide(track, seen, now, self.settings)
            tracks[key] = track
            if track.cap is not None and track.cap < connector.limit:
                cap = (
                    track.cap
                    if connector.max_current is None
                    else min(track.cap, connector.max_current)
                )
                connectors.append(replace(connector, max_current=cap))
                changed = True
            else:
                connectors.append(connector)
        self._tracks = tracks
        return replace(snapshot, connectors=tuple(connectors)) if changed else snapshot

    def draw_reached_cap(self, key: ConnectorKey) -> bool:
        """Whether a capped connector's latest sample comes close to its cap (run now)."""
        track = self._tracks.get(key)
        if track is None or track.cap is None:
            return False
        state = self._connector_state(key)
        if state is None:
            return True
        draw, _ = self._draw(state, self._site.clock.now())
        return draw is None or draw >= track.cap - self.settings.release_within

    # ------------------------------------------------------------------ measurements
    def _connector_state(self, key: ConnectorKey) -> ConnectorState | None:
        station = self._site.stations.get(key.station_id)
        return station.connectors.get(key.connector_id) if station is not None else None

    def _observe(self, key: ConnectorKey, state: ConnectorState, minimum: float) -> Observation:
        clock = self._site.clock
        wall = clock.now()
        draw, oldest = self._draw(state, wall)
        lease = self._state.leases.get(key)
        held = None if lease is None or lease.sent is not None else lease.held
        settled = False
        if held is not None and oldest is not None and lease is not None:
            confirmed = lease.changed_at
            if math.isinf(confirmed):
                settled = True
            else:
                followed = wall - timedelta(seconds=clock.monotonic() - confirmed - EV_REACTION)
                settled = oldest >= followed
        return Observation(held=held, draw=draw, settled=settled, minimum=minimum)

    def _draw(self, state: ConnectorState, wall: datetime) -> tuple[float | None, datetime | None]:
        """The highest per-phase current of this session's fresh samples, and the oldest.

        A charger that reports no per-phase current is read from its total.
        """
        transaction = state.transaction
        if transaction is None:
            return None, None
        if state.status is ConnectorStatus.SUSPENDED_EVSE:
            return None, None  # we suspended it: its zero draw says nothing about its needs
        recent = wall - timedelta(seconds=self.settings.sample_max_age)
        values: list[float] = []
        oldest: datetime | None = None
        phases: tuple[str | None, ...] = ("L1", "L2", "L3")
        if not any(("Current.Import", p) in state.measurements for p in phases):
            phases = (None,)
        for phase in phases:
            sample = state.measurements.get(("Current.Import", phase))
            if sample is None or sample.timestamp <= transaction.started_at:
                continue
            if sample.timestamp < recent or not math.isfinite(sample.value):
                continue
            values.append(max(sample.value, 0.0))
            oldest = sample.timestamp if oldest is None else min(oldest, sample.timestamp)
        if not values:
            return None, None
        return max(values), oldest


def optimisation_diagnostics(optimiser: Optimiser) -> list[dict[str, Any]]:
    """The caps in force, JSON-friendly (diagnostics)."""
    return [
        {"station_id": key.station_id, "connector_id": key.connector_id, "cap": cap}
        for key, cap in sorted(optimiser.caps.items())
    ]
