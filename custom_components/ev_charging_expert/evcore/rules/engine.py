"""The site's operating rules at runtime: time-of-use, digital inputs, remote setpoints.

`Rules` holds their settings and state, runs their timers on the injected clock (the next
time-of-use boundary, the remote heartbeat) and asks load management for a run whenever what
the rules say changes, so a new limit takes effect in the next allocation run. Load management
reads `inputs()` at each run and applies `pipeline.zone_limits` (a pure function).

Owned by the Controller; commands go through it (`Controller.set_zone_setpoint`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
import logging
from typing import TYPE_CHECKING

from ..events import RemoteSetpointLapsed, RulesChanged, TouPeriodChanged
from ..view import _View
from .inputs import DigitalInput, validate_inputs
from .pipeline import RuleInputs
from .remote import (
    RemoteSettings,
    RemoteState,
    SetpointResult,
    SetpointSource,
    accepted,
    check_amps,
)
from .tou import TouCalendar, TouConfig, TouPeriod, validate_tou

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ..clock import Cancelable, Clock
    from ..config import ZoneConfig
    from ..events import ControllerEvent

_LOGGER = logging.getLogger(__name__)

_EPSILON = 1e-6
TOU_RECHECK = 3600.0
"""Seconds between two looks at the time-of-use period at most (a wall clock that jumped)."""


@dataclass(frozen=True, slots=True)
class RulesView(_View):
    """The operating rules' state (HA sensors, diagnostics, the BMS and MQTT exports)."""

    remote_enabled: bool
    remote_source: str
    heartbeat_lapsed: bool
    setpoints: dict[str, float] = field(default_factory=dict)
    tou_enabled: bool = False
    tou_period: str | None = None
    active_inputs: tuple[str, ...] = ()


class Rules:
    """Settings, state and timers of the operating rules of one site."""

    def __init__(
        self,
        clock: Clock,
        *,
        zones: Callable[[], Mapping[str, ZoneConfig]],
        request_run: Callable[[], None],
        emit: Callable[[ControllerEvent], None],
        tz: tzinfo = UTC,
    ) -> None:
        self._clock = clock
        self._zones = zones
        self._request_run = request_run
        self._emit = emit
        self.tou = TouCalendar(tz)
        self._active: list[TouPeriod] = []
        self._period: str | None = None
        self._inputs: tuple[DigitalInput, ...] = ()
        self._input_states: dict[str, bool] = {}
        self.remote_settings = RemoteSettings()
        self._remote = RemoteState()
        self._tou_timer: Cancelable | None = None
        self._tou_due: datetime | None = None
        self._heartbeat_timer: Cancelable | None = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Run the timers (the event loop is running)."""
        self._started = True
        self._refresh_tou()

    def stop(self) -> None:
        """Cancel the timers. Idempotent."""
        self._started = False
        for timer in (self._tou_timer, self._heartbeat_timer):
            if timer is not None:
                timer.cancel()
        self._tou_timer = self._heartbeat_timer = None

    # ------------------------------------------------------------------ settings
    def set_timezone(self, tz: tzinfo) -> None:
        """The site's local time zone (HA's), in which timeslots are read."""
        if tz != self.tou.tz:
            self.tou.tz = tz
            self._refresh_tou()

    def set_tou(self, config: TouConfig) -> None:
        """Replace the time-of-use settings (raises ConfigError naming the field)."""
        validate_tou(config)
        if config == self.tou.config:
            return
        self.tou.configure(config)
        self._refresh_tou(force_run=True)

    def set_tou_source(self, period: str, *, active: bool) -> None:
        """An outside source (an HA schedule or binary entity) says whether `period` is on."""
        if self.tou.sources.get(period) == active:
            return
        self.tou.sources[period] = active
        self._refresh_tou()

    def set_inputs(self, inputs: Iterable[DigitalInput]) -> None:
        """Replace the digital inputs (raises ConfigError naming the field)."""
        validated = validate_inputs(inputs)
        if validated == self._inputs:
            return
        before = self.active_inputs()
        self._inputs = validated
        names = {i.name for i in validated}
        self._input_states = {n: s for n, s in self._input_states.items() if n in names}
        self._changed(run=True, inputs_before=before)

    @property
    def inputs_config(self) -> tuple[DigitalInput, ...]:
        """The configured digital inputs."""
        return self._inputs

    def set_input_state(self, name: str, *, active: bool) -> bool:
        """A digital input's state (unavailable counts as active); False: no such input."""
        if name not in {i.name for i in self._inputs}:
            return False
        if self._input_states.get(name) == active:
            return True
        before = self.active_inputs()
        self._input_states[name] = active
        self._changed(run=self.active_inputs() != before, inputs_before=before)
        return True

    def active_inputs(self) -> tuple[str, ...]:
        """Enabled inputs that are active (or never reported: when in doubt, less current)."""
        return tuple(
            i.name for i in self._inputs if i.enabled and self._input_states.get(i.name, True)
        )

    def set_remote_settings(self, settings: RemoteSettings) -> None:
        """Replace the remote-setpoint settings; disabling drops every remote setpoint."""
        if settings == self.remote_settings:
            return
        old, self.remote_settings = self.remote_settings, settings
        if not settings.enabled or settings.source != old.source:
            self._remote = RemoteState()
            if self._heartbeat_timer is not None:
                self._heartbeat_timer.cancel()
                self._heartbeat_timer = None
        self._changed(run=True)

    # ------------------------------------------------------------------ remote commands
    def set_zone_setpoint(
        self, zone_id: str, amps: float, *, source: SetpointSource | str
    ) -> SetpointResult:
        """Set a zone's remote setpoint (A per phase, 0..its max)."""
        zones = self._zones()
        state, settings = self._remote, self.remote_settings
        refused = state.check(settings, source, zones, zone_id)
        if refused is None:
            refused = check_amps(zones[zone_id], amps)
        now = self._clock.monotonic()
        if refused is None:
            refused = state.too_soon(zone_id, now, settings)
        if refused is not None:
            return refused
        state.setpoints[zone_id] = float(amps)
        state.updated_at[zone_id] = now
        self._contact(now)
        self._changed(run=True)
        return accepted(f"zone {zone_id!r} setpoint {amps:g} A per phase accepted")

    def clear_zone_setpoint(self, zone_id: str, *, source: SetpointSource | str) -> SetpointResult:
        """Drop a zone's remote setpoint (its other rules apply)."""
        zones = self._zones()
        state, settings = self._remote, self.remote_settings
        refused = state.check(settings, source, zones, zone_id)
        now = self._clock.monotonic()
        if refused is None and zone_id in state.setpoints:
            refused = state.too_soon(zone_id, now, settings)
        if refused is not None:
            return refused
        self._contact(now)
        if state.setpoints.pop(zone_id, None) is not None:
            state.updated_at[zone_id] = now
            self._changed(run=True)
        return accepted(f"zone {zone_id!r} setpoint cleared")

    def remote_heartbeat(self, source: SetpointSource | str) -> SetpointResult:
        """The controlling source says it is alive."""
        refused = self._remote.check(self.remote_settings, source, self._zones(), None)
        if refused is not None:
            return refused
        was_lapsed = self._remote.lapsed
        self._contact(self._clock.monotonic())
        if was_lapsed:
            self._changed(run=False)
        return accepted("heartbeat renewed")

    def remote_setpoint(self, zone_id: str) -> float | None:
        """A zone's remote setpoint (None: none)."""
        return self._remote.setpoints.get(zone_id)

    def _contact(self, now: float) -> None:
        self._remote.contact(now, self.remote_settings)
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
        self._heartbeat_timer = self._clock.call_later(
            self.remote_settings.heartbeat, self._heartbeat_due
        )

    def _heartbeat_due(self) -> None:
        self._heartbeat_timer = None
        state = self._remote
        deadline = state.deadline
        if deadline is None or state.lapsed:
            return
        remaining = deadline - self._clock.monotonic()
        if remaining > _EPSILON:
            self._heartbeat_timer = self._clock.call_later(remaining, self._heartbeat_due)
            return
        source = str(self.remote_settings.source)
        _LOGGER.warning(
            "Remote setpoints: no heartbeat from %s for %g s; falling back to the %s limits",
            source,
            self.remote_settings.heartbeat,
            self.remote_settings.fallback,
        )
        state.lapse(self.remote_settings, self._zones())
        self._emit(RemoteSetpointLapsed(source))
        self._changed(run=True)

    # ------------------------------------------------------------------ time-of-use
    def _refresh_tou(self, at: datetime | None = None, *, force_run: bool = False) -> None:
        """Look at the period now (or at the boundary just reached); re-arm the timer."""
        if at is None:
            at = self._clock.now()
        active = self.tou.active_periods(at)
        period = self.tou.period_at(at)
        changed = [p.name for p in active] != [p.name for p in self._active]
        previous, self._active, self._period = self._period, active, period
        if period != previous:
            _LOGGER.info("Time-of-use period: %s (was %s)", period, previous)
            self._emit(TouPeriodChanged(period, previous))
        if changed or period != previous or force_run:
            self._changed(run=True)
        self._arm_tou(at)

    def _arm_tou(self, at: datetime) -> None:
        if self._tou_timer is not None:
            self._tou_timer.cancel()
            self._tou_timer = None
        self._tou_due = None
        if not self._started or not self.tou.config.enabled:
            return
        if not any(p.slots for p in self.tou.config.periods):
            return
        boundary = self.tou.next_boundary(at)
        delay = TOU_RECHECK
        if boundary is not None and (boundary - at).total_seconds() <= TOU_RECHECK:
            delay = max((boundary - at).total_seconds(), 0.0)
            self._tou_due = boundary
        self._tou_timer = self._clock.call_later(delay, self._tou_tick)

    def _tou_tick(self) -> None:
        self._tou_timer = None
        now, due = self._clock.now(), self._tou_due
        # A timer may fire a hair before its boundary (float time): the boundary is reached.
        self._refresh_tou(now if due is None else max(now, due))

    # ------------------------------------------------------------------ reading
    def inputs(self) -> RuleInputs:
        """The rules in force now, for the zone-limit pipeline (called at every run)."""
        pct = {i.name: i.percent for i in self._inputs}
        active_inputs = tuple((n, pct[n]) for n in self.active_inputs())
        tou: dict[str, tuple[str, float]] = {}
        if self._active:
            for zone_id in self._zones():
                applying = [p for p in self._active if self.tou.config.applies(zone_id, p.name)]
                if applying:
                    best = min(applying, key=lambda p: p.percent)
                    tou[zone_id] = (best.name, best.percent)
        return RuleInputs(
            inputs=active_inputs,
            tou_period=self._period,
            tou=tou,
            remote=dict(self._remote.setpoints),  # the pipeline looks up existing zones
        )

    @property
    def tou_period(self) -> str | None:
        """The active time-of-use period (None: nominal)."""
        return self._period

    @property
    def heartbeat_lapsed(self) -> bool:
        """The controlling source's heartbeat lapsed (until it speaks again)."""
        return self._remote.lapsed

    def view(self) -> RulesView:
        """The rules' state now."""
        settings = self.remote_settings
        zones = self._zones()
        return RulesView(
            remote_enabled=settings.enabled,
            remote_source=str(settings.source),
            heartbeat_lapsed=self._remote.lapsed,
            setpoints={z: a for z, a in self._remote.setpoints.items() if z in zones},
            tou_enabled=self.tou.config.enabled,
            tou_period=self._period,
            active_inputs=self.active_inputs(),
        )

    def summary(self) -> dict[str, object]:
        """The time-of-use summary per zone and period (the guide's Summary tab)."""
        return self.tou.summary(self._zones())

    def _changed(self, *, run: bool, inputs_before: tuple[str, ...] | None = None) -> None:
        if inputs_before is not None and inputs_before != self.active_inputs():
            _LOGGER.info("Digital inputs active: %s", ", ".join(self.active_inputs()) or "none")
        if run:
            self._request_run()
        self._emit(RulesChanged())
