"""The operating rules (time-of-use, digital inputs, remote setpoints) bound to HA.

Reads them from the config entry (TOU periods and digital inputs are subentries; the TOU switch
and the remote-setpoint settings are options), pushes them into the Controller, watches the
input and source entities (`async_track_state_change_event`), and maps the rules' events to HA
bus events, dispatcher signals and repairs. An input entity that is unavailable, unknown or
missing counts as active (when in doubt, less current) and raises a repair.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from homeassistant.const import STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util

from .const import (
    CONF_EXCLUDED_ZONES,
    CONF_INPUT_ENABLED,
    CONF_INPUT_ENTITY,
    CONF_INPUT_NAME,
    CONF_PERCENT,
    CONF_PERIOD_NAME,
    CONF_REMOTE_ENABLED,
    CONF_REMOTE_FALLBACK,
    CONF_REMOTE_HEARTBEAT,
    CONF_REMOTE_MIN_PERIOD,
    CONF_REMOTE_SOURCE,
    CONF_SLOTS,
    CONF_SOURCE_ENTITY,
    CONF_TOU_ENABLED,
    EVENT_REMOTE_SETPOINT_LAPSED,
    EVENT_TOU_PERIOD_CHANGED,
    ISSUE_INPUT_UNAVAILABLE,
    ISSUE_REMOTE_LAPSED,
    ISSUE_RULES_INVALID,
    SUBENTRY_DIGITAL_INPUT,
    SUBENTRY_TOU_PERIOD,
    signal_rules,
)
from .evcore.errors import ConfigError
from .evcore.events import RemoteSetpointLapsed, RulesChanged, TouPeriodChanged
from .evcore.rules import DigitalInput, RemoteFallback, RemoteSettings, SetpointSource, TouConfig
from .evcore.rules.inputs import validate_inputs
from .issues import clear_issue, raise_issue

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant, State

    from .evcore.config import ZoneConfig
    from .evcore.controller import Controller
    from .evcore.events import ControllerEvent

_LOGGER = logging.getLogger(__name__)

DEFAULT_TOU_ENABLED = True


def tou_period_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """A TOU period subentry's data in evcore's `TouConfig.from_dict` shape."""
    return {
        "name": data.get(CONF_PERIOD_NAME, ""),
        "percent": data.get(CONF_PERCENT, 100),
        "slots": data.get(CONF_SLOTS, ""),
        "source": data.get(CONF_SOURCE_ENTITY) or None,
    }


def tou_from_entry(entry: ConfigEntry, zone_ids: set[str] | None = None) -> TouConfig:
    """The time-of-use settings of the entry (raises ConfigError naming the field)."""
    periods = []
    excluded: dict[str, list[str]] = {}
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_TOU_PERIOD:
            continue
        period = tou_period_data(subentry.data)
        periods.append(period)
        for zone_id in subentry.data.get(CONF_EXCLUDED_ZONES) or ():
            if zone_ids is None or zone_id in zone_ids:
                excluded.setdefault(zone_id, []).append(period["name"])
    enabled = bool(entry.options.get(CONF_TOU_ENABLED, DEFAULT_TOU_ENABLED))
    return TouConfig.from_dict({"enabled": enabled, "periods": periods, "excluded": excluded})


def inputs_from_entry(entry: ConfigEntry) -> dict[str, DigitalInput]:
    """The digital inputs of the entry, by subentry id (raises ConfigError naming the field)."""
    inputs = {
        sid: DigitalInput(
            name=str(sub.data.get(CONF_INPUT_NAME, "")).strip(),
            percent=float(sub.data.get(CONF_PERCENT, 0.0)),
            enabled=bool(sub.data.get(CONF_INPUT_ENABLED, True)),
            source=sub.data.get(CONF_INPUT_ENTITY) or None,
        )
        for sid, sub in entry.subentries.items()
        if sub.subentry_type == SUBENTRY_DIGITAL_INPUT
    }
    validate_inputs(inputs.values())
    return inputs


def remote_from_entry(entry: ConfigEntry) -> RemoteSettings:
    """The remote-setpoint settings of the entry's options."""
    options = entry.options
    return RemoteSettings(
        enabled=bool(options.get(CONF_REMOTE_ENABLED, False)),
        source=SetpointSource(options.get(CONF_REMOTE_SOURCE, SetpointSource.HA)),
        min_period=float(options.get(CONF_REMOTE_MIN_PERIOD, 60)),
        heartbeat=float(options.get(CONF_REMOTE_HEARTBEAT, 600)),
        fallback=RemoteFallback(options.get(CONF_REMOTE_FALLBACK, RemoteFallback.DEGRADED)),
    )


def input_active(state: State | None) -> tuple[bool, bool]:
    """(active, known) of an input entity's state: only "off" is inactive."""
    if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
        return True, False
    return state.state == STATE_ON, True


class RulesSync:
    """Keeps the Controller's operating rules in step with the entry and the HA entities."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, controller: Controller) -> None:
        self.hass = hass
        self.entry = entry
        self.controller = controller
        self.inputs: dict[str, DigitalInput] = {}
        self._unwatch: list[Callable[[], None]] = []
        self._unavailable: set[str] = set()
        controller.set_timezone(dt_util.get_default_time_zone())
        self._unsubscribe = controller.subscribe(
            self._on_event, kinds=(TouPeriodChanged, RemoteSetpointLapsed, RulesChanged)
        )

    @callback
    def apply(self, zones: Mapping[str, ZoneConfig]) -> None:
        """Push the entry's rules into the Controller and watch their entities."""
        problem: str | None = None
        try:
            self.controller.set_tou(tou_from_entry(self.entry, set(zones)))
        except ConfigError as err:
            problem = f"time-of-use: {err}"
        try:
            inputs = inputs_from_entry(self.entry)
        except (ConfigError, ValueError) as err:
            problem = f"digital inputs: {err}"
        else:
            self.inputs = inputs
            self.controller.set_inputs(inputs.values())
        try:
            self.controller.set_remote_settings(remote_from_entry(self.entry))
        except (ConfigError, ValueError) as err:
            problem = f"remote setpoints: {err}"
        if problem is not None:
            # The flows validate every change: a hand-edited or corrupt entry. What was in force
            # stays (an input that was never set up counts as active: less current).
            _LOGGER.error("Operating rules refused: %s", problem)
            raise_issue(self.hass, ISSUE_RULES_INVALID, ISSUE_RULES_INVALID, {"error": problem})
        else:
            clear_issue(self.hass, ISSUE_RULES_INVALID)
        self._watch()

    def _watch(self) -> None:
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch = []
        inputs = {i.source: sid for sid, i in self.inputs.items() if i.source}
        periods = {p.source: p.name for p in self.controller.tou.config.periods if p.source}
        for entity_id in inputs:
            self._input_changed(entity_id, self.hass.states.get(entity_id))
        for entity_id, name in periods.items():
            active, _known = input_active(self.hass.states.get(entity_id))
            self.controller.set_tou_source(name, active=active)
        for gone in self._unavailable - set(self.inputs):
            clear_issue(self.hass, f"{ISSUE_INPUT_UNAVAILABLE}_{gone}")
        self._unavailable &= set(self.inputs)
        entities = sorted(set(inputs) | set(periods))
        if not entities:
            return

        @callback
        def _changed(event: Event[EventStateChangedData]) -> None:
            entity_id = event.data["entity_id"]
            state = event.data["new_state"]
            if entity_id in inputs:
                self._input_changed(entity_id, state)
            if entity_id in periods:
                active, _known = input_active(state)
                self.controller.set_tou_source(periods[entity_id], active=active)

        self._unwatch.append(async_track_state_change_event(self.hass, entities, _changed))

    def _input_changed(self, entity_id: str, state: State | None) -> None:
        active, known = input_active(state)
        for subentry_id, item in self.inputs.items():
            if item.source != entity_id:
                continue
            self.controller.set_input_state(item.name, active)
            issue_id = f"{ISSUE_INPUT_UNAVAILABLE}_{subentry_id}"
            if known or not item.enabled:
                if subentry_id in self._unavailable:
                    self._unavailable.discard(subentry_id)
                    clear_issue(self.hass, issue_id)
            elif subentry_id not in self._unavailable:
                self._unavailable.add(subentry_id)
                raise_issue(
                    self.hass,
                    issue_id,
                    ISSUE_INPUT_UNAVAILABLE,
                    {"name": item.name, "entity_id": entity_id, "percent": f"{item.percent:g}"},
                )

    @callback
    def _on_event(self, event: ControllerEvent) -> None:
        entry_id = self.entry.entry_id
        match event:
            case TouPeriodChanged(period=period, previous=previous):
                self.hass.bus.async_fire(
                    EVENT_TOU_PERIOD_CHANGED,
                    {"entry_id": entry_id, "period": period, "previous": previous},
                )
            case RemoteSetpointLapsed(source=source):
                self.hass.bus.async_fire(
                    EVENT_REMOTE_SETPOINT_LAPSED, {"entry_id": entry_id, "source": source}
                )
                settings = self.controller.rules.remote_settings
                raise_issue(
                    self.hass,
                    ISSUE_REMOTE_LAPSED,
                    ISSUE_REMOTE_LAPSED,
                    {
                        "source": source,
                        "heartbeat": f"{settings.heartbeat:g}",
                        "fallback": str(settings.fallback),
                    },
                )
            case RulesChanged():
                if not self.controller.rules.heartbeat_lapsed:
                    clear_issue(self.hass, ISSUE_REMOTE_LAPSED)
                async_dispatcher_send(self.hass, signal_rules(entry_id))
            case _:
                pass

    def diagnostics(self) -> dict[str, Any]:
        """Settings and state of the rules, and the TOU summary."""
        controller = self.controller
        return {
            "state": controller.rules_view().to_dict(),
            "tou": controller.tou.config.to_dict(),
            "tou_timezone": str(controller.tou.tz),
            "tou_summary": controller.tou_summary(),
            "inputs": [i.to_dict() for i in self.inputs.values()],
            "remote": {
                k: str(v) if not isinstance(v, (bool, float, int)) else v
                for k, v in vars_of(controller.rules.remote_settings).items()
            },
            "zone_limits": {
                zone_id: {"limited_by": view.limited_by, "effective_limit": view.effective_limit}
                for zone_id, view in controller.zone_views().items()
            },
        }

    @callback
    def stop(self) -> None:
        """Stop watching entities and events."""
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch = []
        self._unsubscribe()


def vars_of(settings: RemoteSettings) -> dict[str, Any]:
    """A frozen slots dataclass's fields."""
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}
