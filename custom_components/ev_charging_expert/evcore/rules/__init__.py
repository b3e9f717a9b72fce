"""The site's operating rules: time-of-use, digital inputs, remote setpoints (issue 11).

`pipeline` is the pure zone-limit function load management applies at every run; `engine.Rules`
holds the rules' settings, state and timers (owned by the Controller).
"""

from .engine import Rules, RulesView
from .inputs import DigitalInput
from .pipeline import RuleInputs, ZoneLimit, effective_limits, zone_limit, zone_limits
from .remote import RemoteFallback, RemoteSettings, SetpointResult, SetpointSource
from .tou import TimeSlot, TouCalendar, TouConfig, TouPeriod, parse_slots

__all__ = [
    "DigitalInput",
    "RemoteFallback",
    "RemoteSettings",
    "RuleInputs",
    "Rules",
    "RulesView",
    "SetpointResult",
    "SetpointSource",
    "TimeSlot",
    "TouCalendar",
    "TouConfig",
    "TouPeriod",
    "ZoneLimit",
    "effective_limits",
    "parse_slots",
    "zone_limit",
    "zone_limits",
]
