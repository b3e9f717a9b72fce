"""Time-of-use (guide 3.9): tariff periods that cut each zone to a percentage of its max.

A period has a name, a percentage (0-100 % of each zone's max current) and timeslots: weekdays
plus a start and an end at minute resolution, in the site's local time (HA's time zone,
injected as a tzinfo). A slot whose end is not after its start crosses midnight: it starts on
its weekdays and ends the next morning ("Fri 22:00-06:00" runs into Saturday). Instead of (or
besides) slots, a period may follow an outside source (an HA schedule or binary entity) that the
glue reports with `set_source`. Slots of all periods may not overlap; where several periods are
active at once (a source and a slot), the lowest percentage wins (when in doubt, less current).

Per zone, every period applies unless excluded (the guide's "zones where periods apply"
matrix). Outside every period, and while time-of-use is off, the nominal limits apply.

Text form of the slots, as the configuration UI takes them (one field per period):

    Mon-Fri 07:00-12:00 14:00-19:30; Sat 08:00-12:00; Sun 22:00-06:00

Day groups are separated by ";" (or new lines), days by "," or a range "Mon-Fri" ("daily" is
every day), and each group has one or more "HH:MM-HH:MM" ranges ("24:00" is the end of the day).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
import math
import re
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ..config import ZoneConfig

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MAX_PERIODS = 8
"""Periods per site (the guide has 5)."""
MAX_SLOTS_PER_PERIOD = 24
MAX_SLOTS = 120
"""Slots (one day group and one time range each) over all periods (the guide has 20)."""
MAX_NAME = 40

_TIME_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class TimeSlot:
    """Weekdays (0 = Monday) and a time range in minutes; `end <= start` crosses midnight."""

    days: frozenset[int]
    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        """Whether it ends on the next day."""
        return self.end <= self.start

    def active(self, weekday: int, minute: int) -> bool:
        """Whether local weekday and minute of day fall in the slot."""
        if not self.crosses_midnight:
            return weekday in self.days and self.start <= minute < self.end
        return (weekday in self.days and minute >= self.start) or (
            (weekday - 1) % 7 in self.days and minute < self.end
        )

    def week_intervals(self) -> list[tuple[int, int]]:
        """Minutes of the week [a, b) it covers (wrapped at the week's end)."""
        length = (self.end - self.start) % MINUTES_PER_DAY or MINUTES_PER_DAY
        result: list[tuple[int, int]] = []
        for day in sorted(self.days):
            a = day * MINUTES_PER_DAY + self.start
            b = a + length
            if b <= MINUTES_PER_WEEK:
                result.append((a, b))
            else:
                result.extend(((a, MINUTES_PER_WEEK), (0, b - MINUTES_PER_WEEK)))
        return result

    def to_text(self) -> str:
        """Like "Mon-Fri 07:00-22:00"."""
        return f"{format_days(self.days)} {_hhmm(self.start)}-{_hhmm(self.end or 1440)}"


@dataclass(frozen=True, slots=True)
class TouPeriod:
    """A tariff period."""

    name: str
    percent: float
    slots: tuple[TimeSlot, ...] = ()
    source: str | None = None
    """An outside source (an HA entity id) that says when the period is active."""

    def slots_text(self) -> str:
        """The slots in the configuration UI's text form."""
        return "; ".join(slot.to_text() for slot in self.slots)


@dataclass(frozen=True, slots=True)
class TouConfig:
    """The site's time-of-use settings (kept while disabled)."""

    enabled: bool = False
    periods: tuple[TouPeriod, ...] = ()
    excluded: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per zone: the periods that do not apply to it (default: all apply)."""

    def applies(self, zone_id: str, period: str) -> bool:
        """Whether `period` applies to a zone."""
        return period not in self.excluded.get(zone_id, frozenset())

    def period(self, name: str) -> TouPeriod | None:
        """A period by name."""
        return next((p for p in self.periods if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (diagnostics; the config entry stores the same shape)."""
        return {
            "enabled": self.enabled,
            "periods": [
                {
                    "name": p.name,
                    "percent": p.percent,
                    "slots": p.slots_text(),
                    "source": p.source,
                }
                for p in self.periods
            ],
            "excluded": {z: sorted(names) for z, names in sorted(self.excluded.items()) if names},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TouConfig:
        """Parse and validate stored or typed settings; ConfigError names the field."""
        if not data:
            return cls()
        periods = []
        for i, raw in enumerate(data.get("periods") or ()):
            label = f"periods[{i}]"
            name = str(raw.get("name") or "").strip()
            try:
                percent = float(raw.get("percent", 100))
            except (TypeError, ValueError):
                raise ConfigError(f"{label}.percent must be a number") from None
            slots = parse_slots(str(raw.get("slots") or ""), field_name=f"{label}.slots")
            source = raw.get("source") or None
            periods.append(TouPeriod(name, percent, slots, source))
        excluded = {
            str(z): frozenset(str(n) for n in names)
            for z, names in (data.get("excluded") or {}).items()
        }
        return validate_tou(cls(bool(data.get("enabled", False)), tuple(periods), excluded))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def format_days(days: Iterable[int]) -> str:
    """Weekday numbers as "Mon-Fri", "Mon,Wed" or "Daily"."""
    ordered = sorted(set(days))
    if len(ordered) == len(DAYS):
        return "Daily"
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):  # noqa: PLR2004
        return f"{DAYS[ordered[0]].title()}-{DAYS[ordered[-1]].title()}"
    return ",".join(DAYS[d].title() for d in ordered)


def _parse_day(token: str, field_name: str) -> int:
    key = token.strip().lower()[:3]
    if key not in DAYS or len(token.strip()) < 3:  # noqa: PLR2004
        msg = f"{field_name}: {token.strip()!r} is not a weekday (Mon, Tue, ... Sun)"
        raise ConfigError(msg)
    return DAYS.index(key)


def _parse_days(text: str, field_name: str) -> frozenset[int]:
    if text.strip().lower() in {"daily", "every day", "all", "mon-sun"}:
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _parse_day(first, field_name), _parse_day(last, field_name)
            span = range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)]
            days.update(span)
        else:
            days.add(_parse_day(part, field_name))
    return frozenset(days)


def _parse_minute(hours: str, minutes: str, field_name: str, text: str) -> int:
    h, m = int(hours), int(minutes)
    if h > 24 or m > 59 or (h == 24 and m != 0):  # noqa: PLR2004
        raise ConfigError(f"{field_name}: {text!r} is not a time of day (00:00 to 24:00)")
    return h * 60 + m


def parse_slots(text: str, *, field_name: str = "slots") -> tuple[TimeSlot, ...]:
    """Parse "Mon-Fri 07:00-22:00; Sat 08:00-12:00"; ConfigError names the field and part."""
    slots: list[TimeSlot] = []
    for raw_group in re.split(r"[;\n]", text):
        group = raw_group.strip()
        if not group:
            continue
        tokens = group.replace(" - ", "-").split()
        ranges = [t for t in tokens if _TIME_RANGE.match(t)]
        day_tokens = [t for t in tokens if not _TIME_RANGE.match(t)]
        if not ranges:
            msg = f"{field_name}: {group!r} has no time range like 07:00-22:00"
            raise ConfigError(msg)
        if not day_tokens:
            msg = f"{field_name}: {group!r} has no weekdays (like Mon-Fri, or Daily)"
            raise ConfigError(msg)
        first_range = tokens.index(ranges[0])
        if tokens[first_range:] != ranges:
            msg = f"{field_name}: {group!r}: put the weekdays first, then the time ranges"
            raise ConfigError(msg)
        days = _parse_days(" ".join(day_tokens).replace(" ", ""), field_name)
        for token in ranges:
            match = _TIME_RANGE.match(token)
            assert match is not None  # noqa: S101  # filtered above
            start = _parse_minute(match[1], match[2], field_name, token)
            end = _parse_minute(match[3], match[4], field_name, token)
            if start == MINUTES_PER_DAY:
                msg = f"{field_name}: {token!r} cannot start at 24:00"
                raise ConfigError(msg)
            if start == end:
                msg = f"{field_name}: {token!r} is empty (start and end are the same)"
                raise ConfigError(msg)
            slots.append(TimeSlot(days, start, end % MINUTES_PER_DAY if end != start else end))
    return tuple(slots)


def validate_tou(config: TouConfig) -> TouConfig:  # noqa: C901  # one check per field
    """Check a time-of-use configuration; raise ConfigError naming the field."""
    if len(config.periods) > MAX_PERIODS:
        raise ConfigError(f"periods: at most {MAX_PERIODS} periods, got {len(config.periods)}")
    names: set[str] = set()
    total = 0
    for i, period in enumerate(config.periods):
        label = f"periods[{i}]"
        name = period.name.strip()
        if not name:
            raise ConfigError(f"{label}.name: a period needs a name")
        if len(name) > MAX_NAME:
            raise ConfigError(f"{label}.name: at most {MAX_NAME} characters")
        if name.casefold() in names:
            raise ConfigError(f"{label}.name: two periods are called {name!r}")
        names.add(name.casefold())
        if not (math.isfinite(period.percent) and 0 <= period.percent <= 100):  # noqa: PLR2004
            msg = f"{label}.percent: must be between 0 and 100 %, got {period.percent}"
            raise ConfigError(msg)
        if not period.slots and not period.source:
            raise ConfigError(f"{label}.slots: period {name!r} needs a timeslot or a source")
        if len(period.slots) > MAX_SLOTS_PER_PERIOD:
            msg = f"{label}.slots: at most {MAX_SLOTS_PER_PERIOD} timeslots per period"
            raise ConfigError(msg)
        for slot in period.slots:
            if not slot.days:
                raise ConfigError(f"{label}.slots: a timeslot needs at least one weekday")
        total += len(period.slots)
    if total > MAX_SLOTS:
        raise ConfigError(f"slots: at most {MAX_SLOTS} timeslots in all, got {total}")
    _check_overlaps(config.periods)
    return config


def _check_overlaps(periods: Iterable[TouPeriod]) -> None:
    intervals: list[tuple[int, int, str, TimeSlot]] = [
        (a, b, period.name, slot)
        for period in periods
        for slot in period.slots
        for a, b in slot.week_intervals()
    ]
    intervals.sort(key=lambda item: (item[0], item[1]))
    # Sorted by start, an interval overlaps an earlier one iff it starts before the latest
    # end seen so far.
    end, owner = -1, ("", TimeSlot(frozenset(), 0, 0))
    for a, b, name, slot in intervals:
        if a < end:
            where = f"period {name!r}" if name == owner[0] else f"periods {owner[0]!r} and {name!r}"
            msg = (
                f"slots: {owner[1].to_text()} and {slot.to_text()} overlap ({where}, on "
                f"{DAYS[a // MINUTES_PER_DAY].title()} at {_hhmm(a % MINUTES_PER_DAY)})"
            )
            raise ConfigError(msg)
        if b > end:
            end, owner = b, (name, slot)


class TouCalendar:
    """The time-of-use calendar: which period is active when (`controller.tou`).

    `period_at` reads slots in the local time zone, and the last reported state of each
    outside source (a source period is taken as active at any instant while its source is).
    """

    def __init__(self, tz: tzinfo = UTC, config: TouConfig | None = None) -> None:
        self.tz = tz
        self.config = config or TouConfig()
        self.sources: dict[str, bool] = {}
        """Per period with a source: whether the source says it is active."""

    def periods(self) -> tuple[str, ...]:
        """Every configured period's name, in order."""
        return tuple(p.name for p in self.config.periods)

    def active_periods(self, at: datetime) -> list[TouPeriod]:
        """Every period active at `at` (an aware datetime); none while time-of-use is off."""
        if not self.config.enabled:
            return []
        local = at.astimezone(self.tz)
        weekday, minute = local.weekday(), local.hour * 60 + local.minute
        return [
            p
            for p in self.config.periods
            if (p.source is not None and self.sources.get(p.name, True))
            or any(slot.active(weekday, minute) for slot in p.slots)
        ]

    def period_at(self, at: datetime) -> str | None:
        """The period in force at `at` (the lowest percentage if several); None: nominal."""
        active = self.active_periods(at)
        if not active:
            return None
        return min(active, key=lambda p: p.percent).name

    def zone_period(self, zone_id: str, at: datetime) -> TouPeriod | None:
        """The period that limits a zone at `at`: the lowest of those active that apply."""
        active = [p for p in self.active_periods(at) if self.config.applies(zone_id, p.name)]
        return min(active, key=lambda p: p.percent) if active else None

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """Instants in (start, end) where the period may change (slot edges, local time).

        A slot edge that falls in the hour skipped when clocks go forward happens when the
        clocks jump; one in the hour repeated when they go back happens twice.
        """
        edges = sorted(
            {slot.start for p in self.config.periods for slot in p.slots}
            | {slot.end for p in self.config.periods for slot in p.slots}
        )
        if not edges or end <= start:
            return []
        first = start.astimezone(self.tz).date() - timedelta(days=1)
        last = end.astimezone(self.tz).date() + timedelta(days=1)
        found: set[datetime] = set()
        day = first
        while day <= last:
            for minute in edges:
                found.update(_instants(day, minute, self.tz))
            day += timedelta(days=1)
        return sorted(t for t in found if start < t < end)

    def next_boundary(self, after: datetime) -> datetime | None:
        """The first instant after `after` where the period may change (within 8 days)."""
        found = self.boundaries(after, after + timedelta(days=8))
        return found[0] if found else None

    def configure(self, config: TouConfig) -> None:
        """Take other settings (the same object stays: holders see the change)."""
        self.config = config
        self.sources = {p.name: self.sources.get(p.name, True) for p in config.periods if p.source}

    def summary(self, zones: Mapping[str, ZoneConfig]) -> dict[str, Any]:
        """The max current per zone per period (the guide's Summary tab)."""
        names = self.periods()
        rows = []
        for zone in zones.values():
            per_period = {}
            for period in self.config.periods:
                applies = self.config.applies(zone.zone_id, period.name)
                amps = zone.max_current * period.percent / 100 if applies else zone.max_current
                per_period[period.name] = {"amps": round(amps, 1), "applies": applies}
            rows.append(
                {
                    "zone_id": zone.zone_id,
                    "name": zone.name,
                    "parent_id": zone.parent_id,
                    "nominal": zone.max_current,
                    "periods": per_period,
                }
            )
        return {"enabled": self.config.enabled, "periods": list(names), "zones": rows}


def _instants(day: date, minute: int, tz: tzinfo) -> set[datetime]:
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    return {naive.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)}


def without_zone(config: TouConfig, zone_ids: Iterable[str]) -> TouConfig:
    """The settings restricted to existing zones (exclusions of deleted zones dropped)."""
    keep = set(zone_ids)
    return replace(config, excluded={z: n for z, n in config.excluded.items() if z in keep})
