"""Consumption optimisation's decision rule (`optimise.decide`): unit and property tests.

The rule is pure: a connector's track, what one run sees, the time. The properties drive it
with arbitrary draw sequences (hypothesis) and check that it never oscillates (a bounded number
of cap changes per hold time whatever the EV does; one cap for a steady EV), that a cap is only
ever below the limit the charger held and at or above the minimum, and that an EV whose draw
comes close to its cap gets its share back at the next decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
from types import SimpleNamespace

from hypothesis import HealthCheck, example, given, settings, strategies as st
import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import LoadSettings
from custom_components.ev_charging_expert.evcore.load.control import LoadState
from custom_components.ev_charging_expert.evcore.load.optimise import (
    Observation,
    Optimiser,
    OptimiseSettings,
    Track,
    decide,
    next_decision,
)
from custom_components.ev_charging_expert.evcore.model import (
    ConnectorState,
    ConnectorStatus,
    Measurement,
    Transaction,
)

S = OptimiseSettings()
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def seen(draw: float | None, held: float | None = 32.0, *, settled: bool = True) -> Observation:
    return Observation(held=held, draw=draw, settled=settled, minimum=6.0)


def run(draws: list[float], *, held: float = 32.0, step: float = 10.0) -> list[Track]:
    """Decide every `step` seconds; the held limit follows the cap like delivery would."""
    track = Track(session=1)
    out = []
    for i, draw in enumerate(draws):
        limit = held if track.cap is None else min(held, track.cap)
        track = decide(track, seen(draw, limit), i * step, S)
        out.append(track)
    return out


def test_ev_drawing_its_limit_is_never_capped() -> None:
    assert all(t.cap is None for t in run([31.5] * 100))


def test_ev_capped_onboard_is_capped_at_its_draw_plus_margin_after_the_detection_time() -> None:
    tracks = run([16.0] * 30)  # a 16 A onboard charger on a 32 A connector
    first = next(i for i, t in enumerate(tracks) if t.cap is not None)
    assert first * 10.0 >= S.detect_after
    assert first * 10.0 < S.detect_after + 10.0
    assert tracks[first].cap == pytest.approx(16.0 + S.margin)
    assert all(t.cap == tracks[first].cap for t in tracks[first:])  # capped once, stays


def test_cap_never_goes_below_the_minimum_current() -> None:
    tracks = run([0.0] * 30)  # a full battery (SuspendedEV): draws nothing
    assert tracks[-1].cap == 6.0


def test_interrupted_under_draw_restarts_the_count() -> None:
    draws = [16.0] * 10 + [31.0] + [16.0] * 10  # 100 s, one full sample, 100 s
    assert all(t.cap is None for t in run(draws))


def test_draw_close_to_the_cap_releases_it_at_the_next_decision() -> None:
    capped = Track(session=1, cap=18.0, changed_at=0.0)
    after = decide(capped, seen(17.6, 18.0), 1.0, S)
    assert after.cap is None
    assert after.changed_at == 1.0


def test_no_fresh_sample_releases_the_cap() -> None:
    capped = Track(session=1, cap=18.0, changed_at=0.0)
    assert decide(capped, seen(None), 1.0, S).cap is None


def test_no_new_cap_within_the_hold_time_after_a_release() -> None:
    released = Track(session=1, cap=None, changed_at=0.0)
    track = released
    for t in range(0, int(S.hold), 10):
        track = decide(track, seen(10.0), float(t), S)
        assert track.cap is None
    track = decide(track, seen(10.0), S.hold, S)
    assert track.cap == 12.0


def test_a_cap_is_lowered_when_the_draw_falls_further_and_never_raised() -> None:
    draws = [16.0] * 20 + [4.0] * 60  # the battery tapers
    caps = [t.cap for t in run(draws)]
    assert 18.0 in caps
    assert caps[-1] == 6.0
    distinct = [c for i, c in enumerate(caps) if c is not None and (i == 0 or c != caps[i - 1])]
    assert distinct == sorted(distinct, reverse=True)


def test_unsettled_samples_neither_start_nor_end_the_count() -> None:
    track = decide(Track(session=1), seen(16.0), 0.0, S)
    assert track.under_since == 0.0
    # The limit changed a moment ago: the EV may still follow the old one.
    track = decide(track, seen(31.0, settled=False), 50.0, S)
    assert track.under_since == 0.0
    track = decide(track, seen(16.0), S.detect_after, S)
    assert track.cap == 18.0


def test_next_decision_is_when_the_detection_time_ends() -> None:
    track = decide(Track(session=1), seen(16.0), 7.0, S)
    assert next_decision(track, S) == 7.0 + S.detect_after
    assert next_decision(Track(session=1), S) == math.inf


@pytest.mark.parametrize(
    ("field", "value"),
    [("margin", 5.0), ("release_within", 2.5), ("detect_after", -1.0), ("hold", math.nan)],
)
def test_settings_without_hysteresis_are_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field.split("_", maxsplit=1)[0]):
        OptimiseSettings(**{field: value})


# --- properties -------------------------------------------------------------------------

draw_values = st.one_of(st.none(), st.floats(min_value=0.0, max_value=40.0))
steps = st.lists(
    st.tuples(st.floats(min_value=0.5, max_value=120.0), draw_values, st.booleans()),
    min_size=1,
    max_size=200,
)


def changes(tracks: list[tuple[float, Track]]) -> list[float]:
    out = []
    previous: float | None = None
    for now, track in tracks:
        if track.cap != previous:
            out.append(now)
        previous = track.cap
    return out


def drive(
    sequence: list[tuple[float, float | None, bool]], held: float
) -> list[tuple[float, Track]]:
    track = Track(session=1)
    now = 0.0
    out = []
    for dt, draw, settled in sequence:
        now += dt
        limit = held if track.cap is None else min(held, track.cap)
        track = decide(track, Observation(limit, draw, settled, 6.0), now, S)
        out.append((now, track))
    return out


@PROPERTY
@given(steps, st.floats(min_value=6.0, max_value=63.0))
def test_cap_changes_are_bounded_whatever_the_ev_draws(
    sequence: list[tuple[float, float | None, bool]], held: float
) -> None:
    tracks = drive(sequence, held)
    times = changes(tracks)
    # Two lowering changes are `hold` apart; a release comes after a lowering; a new cap
    # comes `hold` after a release: at most two changes in any window of length `hold`.
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] >= S.hold - 1e-9


@PROPERTY
@given(steps, st.floats(min_value=6.0, max_value=63.0))
def test_a_cap_is_below_the_held_limit_and_never_below_the_minimum(
    sequence: list[tuple[float, float | None, bool]], held: float
) -> None:
    previous: Track = Track(session=1)
    for _, track in drive(sequence, held):
        if track.cap is not None and track.cap != previous.cap:
            limit = held if previous.cap is None else min(held, previous.cap)
            assert 6.0 <= track.cap < limit
            if previous.cap is not None:
                assert track.cap < previous.cap  # lowered, never raised
        previous = track


@PROPERTY
@given(
    st.floats(min_value=0.0, max_value=28.0),
    st.floats(min_value=-0.4, max_value=0.4),
    st.lists(st.floats(min_value=-0.4, max_value=0.4), min_size=50, max_size=300),
)
def test_a_steady_ev_within_the_hysteresis_is_capped_once_and_stays_capped(
    level: float, first: float, noise: list[float]
) -> None:
    # Samples within +-0.4 A of a steady draw at least `under_by` below 32 A: one cap, for good.
    draws = [max(level + first, 0.0)] + [max(level + n, 0.0) for n in noise]
    tracks = drive([(10.0, d, True) for d in draws], 32.0)
    assert len(changes(tracks)) <= 1
    if len(tracks) * 10.0 > S.detect_after + 10.0:
        assert tracks[-1][1].cap is not None


@PROPERTY
@given(steps, st.floats(min_value=0.0, max_value=40.0))
def test_a_draw_close_to_the_cap_always_gets_the_share_back(
    sequence: list[tuple[float, float | None, bool]], rise: float
) -> None:
    tracks = drive(sequence, 32.0)
    now, last = tracks[-1]
    if last.cap is None:
        return
    draw = last.cap - S.release_within + rise
    after = decide(last, Observation(last.cap, draw, True, 6.0), now + 1.0, S)
    assert after.cap is None


# --- reading the samples ----------------------------------------------------------------
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def optimiser_with(
    samples: dict[str | None, tuple[float, float]],
    *,
    status: ConnectorStatus = ConnectorStatus.CHARGING,
    started: float = 0.0,
) -> tuple[Optimiser, ConnectorState]:
    """An optimiser over one connector; `samples`: phase -> (value A, age s) at T0 + 1000 s."""
    clock = ManualClock(T0)
    clock.advance(1000.0)
    connector = ConnectorState(1, status=status)
    connector.transaction = Transaction(1, 1, "TAG", 0.0, T0 + timedelta(seconds=started))
    for phase, (value, age) in samples.items():
        connector.measurements["Current.Import", phase] = Measurement(
            "Current.Import",
            value,
            "A",
            phase,
            "Sample.Periodic",
            "Outlet",
            clock.now() - timedelta(seconds=age),
        )
    site = SimpleNamespace(clock=clock, stations={"S": SimpleNamespace(connectors={1: connector})})
    state = LoadState(settings=LoadSettings(consumption_optimisation=True))
    return Optimiser(site, state), connector  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ({"L1": (16.0, 5), "L2": (15.2, 5), "L3": (16.4, 5)}, 16.4),  # the highest phase
        ({"L1": (7.0, 5), "L2": (0.0, 5), "L3": (0.0, 5)}, 7.0),  # single-phase EV
        ({None: (12.0, 5)}, 12.0),  # a charger that reports only the total
        ({"L1": (16.0, 500)}, None),  # too old
        ({"L1": (math.nan, 5), "L2": (math.inf, 5)}, None),  # nonsense is ignored
        ({"L1": (-3.0, 5)}, 0.0),  # exporting counts as drawing nothing
    ],
)
def test_draw_is_the_highest_fresh_phase_current_of_the_session(
    samples: dict[str | None, tuple[float, float]], expected: float | None
) -> None:
    optimiser, connector = optimiser_with(samples)
    draw, _ = optimiser._draw(connector, T0 + timedelta(seconds=1000))
    assert draw == expected


def test_samples_of_a_previous_session_or_while_we_suspend_it_say_nothing() -> None:
    optimiser, connector = optimiser_with({"L1": (16.0, 5)}, started=999.0)
    assert optimiser._draw(connector, T0 + timedelta(seconds=1000)) == (None, None)
    optimiser, connector = optimiser_with({"L1": (0.0, 5)}, status=ConnectorStatus.SUSPENDED_EVSE)
    assert optimiser._draw(connector, T0 + timedelta(seconds=1000)) == (None, None)


def test_an_ev_held_at_the_minimum_leaves_nothing_pending() -> None:
    # A full battery capped at the minimum: no further decision is due (no run is scheduled
    # for it), however long it stays.
    track = Track(session=1, cap=6.0, changed_at=0.0)
    for t in range(10, 2000, 10):
        track = decide(track, seen(0.0, 6.0), float(t), S)
        assert track.cap == 6.0
        assert next_decision(track, S) == math.inf
    # The same for an EV that its zone holds at the minimum already.
    track = decide(Track(session=1), seen(2.5, 6.0), 0.0, S)
    assert next_decision(track, S) == math.inf


@PROPERTY
@given(steps, st.floats(min_value=6.0, max_value=63.0))
# Found by CI: 16.579… + 120 + 120 - 136.579… rounds below 120, so a run at the due time
# did not decide, and its decision was left due in the past.
@example([(16.57915786614697, None, False), (120.0, 0.0, True), (120.0, 0.0, True)], 7.0)
def test_a_due_decision_is_taken_by_the_first_run_with_a_settled_sample(
    sequence: list[tuple[float, float | None, bool]], held: float
) -> None:
    # After a run that saw a settled sample, the next decision is in the future (or none):
    # a due time left in the past would be a decision not taken.
    for (now, track), (_, draw, settled) in zip(drive(sequence, held), sequence, strict=True):
        if settled and draw is not None:
            assert next_decision(track, S) > now
