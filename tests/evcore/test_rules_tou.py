"""Time-of-use (guide 3.9): slots, overlaps, local time, midnight, weekdays, DST, the clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings, strategies as st
import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import ZoneConfig, validate_zones
from custom_components.ev_charging_expert.evcore.controller import Controller
from custom_components.ev_charging_expert.evcore.errors import ConfigError
from custom_components.ev_charging_expert.evcore.events import TouPeriodChanged
from custom_components.ev_charging_expert.evcore.rules import (
    DigitalInput,
    TouCalendar,
    TouConfig,
    parse_slots,
)
from custom_components.ev_charging_expert.evcore.site import MemoryStore

PARIS = ZoneInfo("Europe/Paris")


def _config(*periods: tuple[str, float, str], **kwargs: object) -> TouConfig:
    return TouConfig.from_dict(
        {
            "enabled": True,
            "periods": [{"name": n, "percent": p, "slots": s} for n, p, s in periods],
            **kwargs,
        }
    )


def _local(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


# ---------------------------------------------------------------------- parsing
def test_slots_parse_and_print_back() -> None:
    slots = parse_slots("Mon-Fri 08:00-12:00 14:00-19:30; Sat 08:00-12:00\nsun,wed 22:00-06:00")
    assert [s.to_text() for s in slots] == [
        "Mon-Fri 08:00-12:00",
        "Mon-Fri 14:00-19:30",
        "Sat 08:00-12:00",
        "Wed,Sun 22:00-06:00",
    ]
    assert parse_slots("Daily 00:00-24:00")[0].to_text() == "Daily 00:00-24:00"
    assert parse_slots("Fri-Mon 10:00-11:00")[0].days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Mon-Fri", "no time range"),
        ("08:00-12:00", "no weekdays"),
        ("Mon 25:00-26:00", "not a time of day"),
        ("Mon 08:61-09:00", "not a time of day"),
        ("Mon 08:00-08:00", "empty"),
        ("Funday 08:00-09:00", "not a weekday"),
        ("08:00-09:00 Mon", "weekdays first"),
    ],
)
def test_malformed_slots_are_refused_naming_the_field(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=rf"periods\[0\]\.slots.*{words}"):
        _config(("peak", 80, text))


@pytest.mark.parametrize(
    ("periods", "words"),
    [
        ([("a", 80, "Mon 08:00-12:00"), ("b", 50, "Mon 11:00-13:00")], "overlap.*'a' and 'b'"),
        ([("a", 80, "Mon-Fri 08:00-12:00 11:59-13:00")], "overlap.*period 'a'"),
        # Sunday night into Monday morning: across the week's end.
        ([("a", 80, "Sun 22:00-06:00"), ("b", 50, "Mon 05:00-07:00")], "overlap"),
        ([("a", 101, "Mon 08:00-12:00")], r"periods\[0\]\.percent"),
        ([("a", -1, "Mon 08:00-12:00")], r"periods\[0\]\.percent"),
        ([("a", 50, "Mon 08:00-12:00"), ("A", 50, "Tue 08:00-12:00")], r"periods\[1\]\.name"),
        ([("", 50, "Mon 08:00-12:00")], r"periods\[0\]\.name"),
        ([("a", 50, "")], r"periods\[0\]\.slots"),
        (
            [
                (
                    "a",
                    50,
                    "; ".join(f"Mon {h:02d}:00-{h:02d}:30" for h in range(24))
                    + "; Tue 01:00-02:00",
                )
            ],
            "at most",
        ),
        ([(f"p{i}", 50, f"Mon {i:02d}:00-{i:02d}:30") for i in range(9)], "at most"),
    ],
)
def test_bad_periods_are_refused_with_a_clear_message(
    periods: list[tuple[str, float, str]], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        _config(*periods)


def test_adjacent_slots_do_not_overlap_and_five_periods_of_twenty_slots_fit() -> None:
    _config(("a", 80, "Mon 08:00-12:00"), ("b", 50, "Mon 12:00-13:00; Sun 22:00-08:00"))
    periods = []
    for p in range(5):
        day = ("Mon", "Tue", "Wed", "Thu", "Fri")[p]
        slots = "; ".join(f"{day} {h:02d}:00-{h:02d}:30" for h in range(20))
        periods.append((f"period {p}", 10.0 * p, slots))
    config = _config(*periods)
    assert sum(len(p.slots) for p in config.periods) == 100


def test_settings_survive_a_round_trip() -> None:
    config = _config(("peak", 80, "Mon-Fri 08:00-12:00; Sat 22:00-06:00"), excluded={"z": ["peak"]})
    assert TouConfig.from_dict(config.to_dict()) == config


# ---------------------------------------------------------------------- the calendar
def test_period_at_reads_local_time_weekdays_and_midnight() -> None:
    calendar = TouCalendar(
        PARIS,
        _config(("day", 80, "Mon-Fri 08:00-20:00"), ("night", 50, "Fri 22:00-06:00")),
    )
    # 2026-03-06 is a Friday (winter: UTC+1).
    assert calendar.period_at(_local(2026, 3, 6, 7, 59)) is None
    assert calendar.period_at(_local(2026, 3, 6, 8, 0)) == "day"
    assert calendar.period_at(datetime(2026, 3, 6, 7, 0, tzinfo=UTC)) == "day"  # 08:00 local
    assert calendar.period_at(_local(2026, 3, 6, 19, 59)) == "day"
    assert calendar.period_at(_local(2026, 3, 6, 20, 0)) is None
    assert calendar.period_at(_local(2026, 3, 6, 23, 0)) == "night"
    assert calendar.period_at(_local(2026, 3, 7, 5, 59)) == "night"  # Saturday morning
    assert calendar.period_at(_local(2026, 3, 7, 6, 0)) is None
    assert calendar.period_at(_local(2026, 3, 7, 9, 0)) is None  # Saturday: no day period
    assert calendar.period_at(_local(2026, 3, 5, 23, 0)) is None  # Thursday night
    off = TouCalendar(PARIS, TouConfig(enabled=False, periods=calendar.config.periods))
    assert off.period_at(_local(2026, 3, 6, 9, 0)) is None


def test_boundaries_are_the_slot_edges_in_local_time() -> None:
    calendar = TouCalendar(PARIS, _config(("day", 80, "Mon-Fri 08:00-20:00")))
    start = _local(2026, 3, 6, 0, 0)
    found = calendar.boundaries(start, start + timedelta(days=1))
    assert found == [
        datetime(2026, 3, 6, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 6, 19, 0, tzinfo=UTC),
    ]


def test_spring_forward_a_slot_in_the_skipped_hour_starts_when_clocks_jump() -> None:
    # 2026-03-29 (Sunday): 02:00 CET becomes 03:00 CEST.
    calendar = TouCalendar(PARIS, _config(("night", 50, "Sun 02:30-05:00")))
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert calendar.period_at(jump - timedelta(seconds=1)) is None  # 01:59:59 CET
    assert calendar.period_at(jump) == "night"  # 03:00 CEST
    assert calendar.period_at(datetime(2026, 3, 29, 3, 0, tzinfo=UTC)) is None  # 05:00 CEST
    found = calendar.boundaries(jump - timedelta(hours=3), jump + timedelta(hours=5))
    assert jump + timedelta(minutes=30) in found or jump in found
    assert datetime(2026, 3, 29, 3, 0, tzinfo=UTC) in found
    # The slot is 2 h of local wall time minus the skipped half hour: 1.5 h... of which
    # only 03:00-05:00 CEST exist: 2 h of real time.
    active = [
        t
        for t in (jump + timedelta(minutes=m) for m in range(-60, 180, 15))
        if calendar.period_at(t) == "night"
    ]
    assert active[0] == jump
    assert active[-1] == datetime(2026, 3, 29, 2, 45, tzinfo=UTC)


def test_fall_back_a_slot_in_the_repeated_hour_happens_twice() -> None:
    # 2026-10-25 (Sunday): 03:00 CEST becomes 02:00 CET; 02:00-03:00 local happens twice.
    calendar = TouCalendar(PARIS, _config(("night", 50, "Sun 02:15-02:45")))
    first = _local(2026, 10, 25, 2, 15, fold=0).astimezone(UTC)
    second = _local(2026, 10, 25, 2, 15, fold=1).astimezone(UTC)
    assert second - first == timedelta(hours=1)
    for start in (first, second):
        assert calendar.period_at(start) == "night"
        assert calendar.period_at(start + timedelta(minutes=29)) == "night"
        assert calendar.period_at(start + timedelta(minutes=30)) is None
    found = calendar.boundaries(first - timedelta(hours=1), second + timedelta(hours=1))
    assert first in found
    assert second in found
    assert first + timedelta(minutes=30) in found
    assert second + timedelta(minutes=30) in found


def test_a_source_period_follows_its_source_and_the_lowest_active_period_wins() -> None:
    config = TouConfig.from_dict(
        {
            "enabled": True,
            "periods": [
                {"name": "day", "percent": 80, "slots": "Daily 08:00-20:00"},
                {"name": "solar", "percent": 100, "source": "schedule.solar"},
                {"name": "shed", "percent": 30, "source": "binary_sensor.shed"},
            ],
        }
    )
    calendar = TouCalendar(PARIS, config)
    calendar.sources.update({"solar": False, "shed": False})
    at = _local(2026, 3, 6, 9, 0)
    assert calendar.period_at(at) == "day"
    calendar.sources["solar"] = True
    assert calendar.period_at(at) == "day"  # 80 % < 100 %
    calendar.sources["shed"] = True
    assert calendar.period_at(at) == "shed"


def test_the_summary_gives_each_zone_per_period() -> None:
    zones = validate_zones([ZoneConfig("a", "A", 150.0), ZoneConfig("b", "B", 150.0)])
    config = _config(("on-peak", 90, "Mon 08:00-12:00"), ("off-peak", 0, "Mon 12:00-14:00"))
    config = TouConfig(config.enabled, config.periods, {"b": frozenset({"on-peak"})})
    summary = TouCalendar(PARIS, config).summary(zones)
    rows = {row["zone_id"]: row for row in summary["zones"]}
    assert rows["a"]["periods"]["on-peak"] == {"amps": 135.0, "applies": True}
    assert rows["a"]["periods"]["off-peak"] == {"amps": 0.0, "applies": True}
    assert rows["b"]["periods"]["on-peak"] == {"amps": 150.0, "applies": False}
    assert summary["periods"] == ["on-peak", "off-peak"]


# ---------------------------------------------------------------------- driven by the clock
async def _site(start: datetime) -> tuple[Controller, ManualClock, list[TouPeriodChanged]]:
    clock = ManualClock(start.astimezone(UTC))
    controller = Controller(clock=clock, store=MemoryStore())
    controller.set_zones(validate_zones([ZoneConfig("a", "A", 100.0), ZoneConfig("b", "B", 100.0)]))
    controller.set_timezone(PARIS)
    controller.rules.start()
    events: list[TouPeriodChanged] = []
    controller.subscribe(events.append, kinds=(TouPeriodChanged,))  # type: ignore[arg-type]
    return controller, clock, events


async def _runs() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def _limit(controller: Controller, zone: str) -> tuple[float, str]:
    view = controller.zone_view(zone)
    assert view is not None
    return view.effective_limit[0], view.limited_by


async def test_the_clock_crossing_a_boundary_changes_the_limit_and_fires_an_event() -> None:
    controller, clock, events = await _site(_local(2026, 3, 6, 21, 0))  # Friday
    config = _config(
        ("peak", 60, "Mon-Fri 08:00-20:00"),
        ("night", 20, "Fri 22:00-06:00"),
        excluded={"b": ["night"]},
    )
    controller.set_tou(config)
    await _runs()
    assert _limit(controller, "a") == (100.0, "nominal")
    clock.advance(3600 - 1)  # 21:59:59
    await _runs()
    assert controller.tou.period_at(clock.now()) is None
    assert events == []
    clock.advance(1)  # 22:00 Friday: the night period, only in zone a
    await _runs()
    assert events == [TouPeriodChanged("night", None)]
    assert _limit(controller, "a") == (20.0, "tou:night")
    assert _limit(controller, "b") == (100.0, "nominal")
    assert controller.rules_view().tou_period == "night"
    clock.advance(8 * 3600)  # 06:00 Saturday: past midnight, then the end of the slot
    await _runs()
    assert events[-1] == TouPeriodChanged(None, "night")
    assert _limit(controller, "a") == (100.0, "nominal")
    clock.advance(2 * 24 * 3600 + 2 * 3600)  # Monday 08:00: weekday period
    await _runs()
    assert events[-1] == TouPeriodChanged("peak", None)
    assert _limit(controller, "b") == (60.0, "tou:peak")
    # The site switch: off keeps the settings, nominal limits apply.
    controller.set_tou(TouConfig(False, config.periods, config.excluded))
    await _runs()
    assert events[-1] == TouPeriodChanged(None, "peak")
    assert _limit(controller, "b") == (100.0, "nominal")
    assert controller.tou.periods() == ("peak", "night")
    await controller.stop()


async def test_an_active_input_overrides_time_of_use() -> None:
    controller, _clock, _events = await _site(_local(2026, 3, 6, 9, 0))
    controller.set_tou(_config(("peak", 60, "Mon-Fri 08:00-20:00")))
    controller.set_inputs([DigitalInput("relay", 80.0), DigitalInput("spare", 0.0, enabled=False)])
    await _runs()
    # Never reported yet: counts as active (when in doubt, less current).
    assert _limit(controller, "a") == (80.0, "input:relay")
    assert controller.set_input_state("relay", False)
    await _runs()
    assert _limit(controller, "a") == (60.0, "tou:peak")
    assert controller.rules_view().active_inputs == ()
    assert controller.set_input_state("spare", True)  # disabled: does not count
    await _runs()
    assert _limit(controller, "a") == (60.0, "tou:peak")
    assert not controller.set_input_state("nope", True)
    with pytest.raises(ConfigError, match="percent"):
        controller.set_inputs([DigitalInput("bad", 120.0)])
    await controller.stop()


async def test_a_source_change_between_boundaries_reads_the_period_now() -> None:
    controller, clock, events = await _site(_local(2026, 3, 6, 7, 0))  # Friday 07:00
    config = TouConfig.from_dict(
        {
            "enabled": True,
            "periods": [
                {"name": "day", "percent": 60, "slots": "Mon-Fri 08:00-20:00"},
                {"name": "shed", "percent": 10, "source": "binary_sensor.shed"},
            ],
        }
    )
    controller.set_tou_source("shed", active=False)
    controller.set_tou(config)
    await _runs()
    clock.advance(1800)  # 07:30: the timer is armed for 08:00
    controller.set_tou_source("shed", active=True)
    controller.set_tou_source("shed", active=False)
    await _runs()
    assert controller.rules_view().tou_period is None  # not "day": it is 07:30
    assert [e.period for e in events] == ["shed", None]
    clock.advance(1800)
    await _runs()
    assert controller.rules_view().tou_period == "day"
    await controller.stop()


_minute = st.integers(min_value=0, max_value=24 * 60)


@st.composite
def _slots(draw: st.DrawFn) -> str:
    groups = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        days = draw(
            st.sets(
                st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
                min_size=1,
                max_size=3,
            )
        )
        start, end = draw(_minute.filter(lambda m: m < 1440)), draw(_minute)
        if start == end:
            end = (end + 30) % 1440
        groups.append(
            f"{','.join(days)} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
        )
    return "; ".join(groups)


@settings(max_examples=60, deadline=None)
@given(
    slots=_slots(),
    # Naive bounds: hypothesis draws naive datetimes, taken as UTC below.
    start=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001
        max_value=datetime(2026, 12, 25),  # noqa: DTZ001
    ),
    tz=st.sampled_from(["Europe/Paris", "America/New_York", "UTC", "Australia/Lord_Howe"]),
)
def test_the_period_changes_only_at_a_boundary(slots: str, start: datetime, tz: str) -> None:
    try:
        config = _config(("a", 50, slots))
    except ConfigError:
        assume(False)
        return
    calendar = TouCalendar(ZoneInfo(tz), config)
    begin = start.replace(tzinfo=UTC)
    end = begin + timedelta(days=2)
    edges = [begin, *calendar.boundaries(begin, end), end]
    for a, b in pairwise(edges):
        # Sample the interval between two boundaries: one period throughout.
        points = [a + (b - a) * k / 4 for k in range(4)]
        if a in edges[1:-1]:
            points[0] = a  # a boundary belongs to what follows it
        assert len({calendar.period_at(t) for t in points}) == 1, (a, b, slots)


async def test_controller_tou_is_one_object_that_follows_the_settings() -> None:
    controller, _clock, _events = await _site(_local(2026, 3, 6, 9, 0))
    calendar = controller.tou
    controller.set_tou(_config(("peak", 60, "Mon-Fri 08:00-20:00")))
    assert controller.tou is calendar
    assert calendar.periods() == ("peak",)
    assert calendar.period_at(_local(2026, 3, 6, 9, 0)) == "peak"
    await controller.stop()
