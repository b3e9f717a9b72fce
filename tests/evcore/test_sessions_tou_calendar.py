"""The session store's TOU split against the operating rules' real calendar (contracts C1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.ev_charging_expert.evcore.rules.tou import (
    TouCalendar,
    TouConfig,
    TouPeriod,
    parse_slots,
)
from custom_components.ev_charging_expert.evcore.sessions import NO_PERIOD, split_energy

PARIS = ZoneInfo("Europe/Paris")


def _calendar(enabled: bool = True) -> TouCalendar:
    config = TouConfig(
        enabled=enabled,
        periods=(
            TouPeriod("Night", 100, parse_slots("Mon-Sun 22:00-06:00")),
            TouPeriod("Peak", 60, parse_slots("Mon-Fri 17:00-20:00")),
        ),
    )
    return TouCalendar(PARIS, config)


def test_energy_is_split_at_the_boundaries_of_the_real_calendar() -> None:
    calendar = _calendar()
    # Monday 2026-12-07, 19:00 to 23:00 Paris time: 1 h Peak, 2 h outside, 1 h Night.
    start = datetime(2026, 12, 7, 19, 0, tzinfo=PARIS).astimezone(UTC)
    into: dict[str, float] = {}
    split_energy(calendar, start, start + timedelta(hours=4), 4000.0, into)
    assert into == pytest.approx({"Peak": 1000.0, NO_PERIOD: 2000.0, "Night": 1000.0})


def test_a_session_across_midnight_stays_in_the_night_period() -> None:
    calendar = _calendar()
    start = datetime(2026, 12, 7, 23, 0, tzinfo=PARIS)
    into: dict[str, float] = {}
    split_energy(calendar, start, start + timedelta(hours=2), 3000.0, into)
    assert into == pytest.approx({"Night": 3000.0})


def test_with_tou_off_every_wh_is_outside_any_period() -> None:
    calendar = _calendar(enabled=False)
    start = datetime(2026, 12, 7, 19, 0, tzinfo=PARIS)
    into: dict[str, float] = {}
    split_energy(calendar, start, start + timedelta(hours=4), 4000.0, into)
    assert into == pytest.approx({NO_PERIOD: 4000.0})
