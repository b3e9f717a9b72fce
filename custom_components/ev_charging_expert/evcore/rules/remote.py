"""Remote zone setpoints from one building system (guide 3.11.4).

One command for every source (HA service and number entity, the Modbus slave, MQTT): a source
that is not the configured controlling one is refused, a zone is updated at most once per
`min_period` (the first value counts, later ones are refused until the period ends), and the
controlling source must renew a heartbeat: when it lapses, every remote setpoint falls back
(to its zone's degraded setpoint, or is dropped for the nominal limits) and that is reported.

Setpoints can only lower a zone's limit: a value above the zone's max or negative is refused
(the pipeline clamps as well). Pure state plus the clock's time: timers belong to `Rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import math
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..config import ZoneConfig

DEFAULT_MIN_PERIOD = 60.0
DEFAULT_HEARTBEAT = 600.0
MIN_HEARTBEAT = 10.0
MAX_PERIOD = 86_400.0


class SetpointSource(StrEnum):
    """Who may send remote setpoints."""

    HA = "ha"
    MODBUS = "modbus"
    MQTT = "mqtt"


class RemoteFallback(StrEnum):
    """What the remote setpoints become when the heartbeat lapses."""

    DEGRADED = "degraded"  # each zone's degraded setpoint
    NOMINAL = "nominal"  # dropped: the zones' other rules apply


@dataclass(frozen=True, slots=True)
class SetpointResult:
    """The answer to a remote command; `code` is stable for machines, `message` for people."""

    accepted: bool
    code: str
    message: str


def refused(code: str, message: str) -> SetpointResult:
    """A refusal."""
    return SetpointResult(accepted=False, code=code, message=message)


def accepted(message: str) -> SetpointResult:
    """An acceptance."""
    return SetpointResult(accepted=True, code=ACCEPTED, message=message)


ACCEPTED = "accepted"
DISABLED = "disabled"
NOT_CONTROLLING_SOURCE = "not_controlling_source"
TOO_SOON = "too_soon"
OUT_OF_RANGE = "out_of_range"
UNKNOWN_ZONE = "unknown_zone"


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    """Site settings of remote energy management (off by default)."""

    enabled: bool = False
    source: SetpointSource = SetpointSource.HA
    min_period: float = DEFAULT_MIN_PERIOD
    """Seconds between two updates of one zone's setpoint."""
    heartbeat: float = DEFAULT_HEARTBEAT
    """Seconds the controlling source has to renew its heartbeat."""
    fallback: RemoteFallback = RemoteFallback.DEGRADED

    def __post_init__(self) -> None:
        """Refuse nonsense, naming the field."""
        if not (math.isfinite(self.min_period) and 0 <= self.min_period <= MAX_PERIOD):
            msg = f"min_period must be between 0 and {MAX_PERIOD:g} s, got {self.min_period}"
            raise ConfigError(msg)
        if not (math.isfinite(self.heartbeat) and MIN_HEARTBEAT <= self.heartbeat <= MAX_PERIOD):
            msg = (
                f"heartbeat must be between {MIN_HEARTBEAT:g} and {MAX_PERIOD:g} s, "
                f"got {self.heartbeat}"
            )
            raise ConfigError(msg)


@dataclass(slots=True)
class RemoteState:
    """The remote setpoints and the controlling source's heartbeat."""

    setpoints: dict[str, float] = field(default_factory=dict)
    updated_at: dict[str, float] = field(default_factory=dict)
    """Monotonic time of each zone's last accepted update."""
    deadline: float | None = None
    """When the heartbeat lapses (None: no contact yet since enabled)."""
    lapsed: bool = False

    def contact(self, now: float, settings: RemoteSettings) -> None:
        """The controlling source spoke: renew its heartbeat."""
        self.deadline = now + settings.heartbeat
        self.lapsed = False

    def check(
        self,
        settings: RemoteSettings,
        source: SetpointSource | str,
        zones: Mapping[str, ZoneConfig],
        zone_id: str | None,
    ) -> SetpointResult | None:
        """The refusal that applies to any command of `source` (None: go on)."""
        if not settings.enabled:
            return refused(DISABLED, "remote setpoints are disabled on this site")
        if source != settings.source:
            return refused(
                NOT_CONTROLLING_SOURCE,
                f"source {source} does not control the setpoints ({settings.source} does)",
            )
        if zone_id is not None and zone_id not in zones:
            return refused(UNKNOWN_ZONE, f"zone_id {zone_id!r} is not a zone")
        return None

    def too_soon(self, zone_id: str, now: float, settings: RemoteSettings) -> SetpointResult | None:
        """Refuse a second update of a zone within the minimum period."""
        last = self.updated_at.get(zone_id)
        if last is not None and now - last < settings.min_period:
            wait = settings.min_period - (now - last)
            return refused(
                TOO_SOON,
                f"zone {zone_id!r} was updated {now - last:.0f} s ago; the minimum period is "
                f"{settings.min_period:g} s (retry in {math.ceil(wait)} s)",
            )
        return None

    def lapse(self, settings: RemoteSettings, zones: Mapping[str, ZoneConfig]) -> None:
        """The heartbeat lapsed: fall back."""
        self.lapsed = True
        self.deadline = None
        if settings.fallback is RemoteFallback.NOMINAL:
            self.setpoints.clear()
            return
        for zone_id in list(self.setpoints):
            zone = zones.get(zone_id)
            if zone is None:
                del self.setpoints[zone_id]
            else:
                self.setpoints[zone_id] = min(max(zone.degraded_setpoint, 0.0), zone.max_current)


def check_amps(zone: ZoneConfig, amps: float) -> SetpointResult | None:
    """Refuse a setpoint outside 0..the zone's max."""
    if not (math.isfinite(amps) and 0 <= amps <= zone.max_current):
        return refused(
            OUT_OF_RANGE,
            f"amps must be between 0 and the zone's max {zone.max_current:g} A, got {amps}",
        )
    return None
