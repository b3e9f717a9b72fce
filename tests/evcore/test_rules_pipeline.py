"""The zone-limit pipeline (rules/pipeline.py): guide examples and properties."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.load.budgets import ZoneBudgetInfo
from custom_components.ev_charging_expert.evcore.rules.pipeline import (
    RuleInputs,
    ZoneLimit,
    effective_limits,
    zone_limit,
    zone_limits,
)

DYN = ZoneConfig("z", "Zone", 100.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=30.0)
STATIC = ZoneConfig("z", "Zone", 100.0)


def _dynamic(amps: float) -> ZoneBudgetInfo:
    return ZoneBudgetInfo((amps, amps, amps), degraded=False)


def _lost(amps: float) -> ZoneBudgetInfo:
    return ZoneBudgetInfo((amps, amps, amps), degraded=True)


@pytest.mark.parametrize(
    ("zone", "budget", "rules", "expected", "reason"),
    [
        # Guide 3.10.5, static: 100 A, input at 80 % -> 80 A.
        (STATIC, _dynamic(100), RuleInputs(inputs=(("relay", 80.0),)), 80.0, "input:relay"),
        # Guide 3.10.5 example 1: 100 A, 70 %, dynamic 90 A -> 70 A.
        (DYN, _dynamic(90), RuleInputs(inputs=(("relay", 70.0),)), 70.0, "input:relay"),
        # Example 2: dynamic 50 A -> 50 A.
        (DYN, _dynamic(50), RuleInputs(inputs=(("relay", 70.0),)), 50.0, "dynamic"),
        # Example 3: 10 % while the meter is lost with a 30 A degraded setpoint -> 10 A.
        (DYN, _lost(30), RuleInputs(inputs=(("relay", 10.0),)), 10.0, "input:relay"),
        # Meter lost, no rule: the degraded setpoint.
        (DYN, _lost(30), RuleInputs(), 30.0, "meter_lost"),
        # 0 % suspends everything.
        (STATIC, _dynamic(100), RuleInputs(inputs=(("fire", 0.0),)), 0.0, "input:fire"),
        # Several inputs: the lowest percentage.
        (
            STATIC,
            _dynamic(100),
            RuleInputs(inputs=(("a", 60.0), ("b", 40.0), ("c", 50.0))),
            40.0,
            "input:b",
        ),
        # Guide 3.9.3.1: 100 A zone, 80 % period -> 80 A (static).
        (
            STATIC,
            _dynamic(100),
            RuleInputs(tou_period="peak", tou={"z": ("peak", 80.0)}),
            80.0,
            "tou:peak",
        ),
        # Dynamic: the lower of the period and the dynamic current.
        (
            DYN,
            _dynamic(60),
            RuleInputs(tou_period="peak", tou={"z": ("peak", 80.0)}),
            60.0,
            "dynamic",
        ),
        # An active input makes time-of-use ignored, even when the period is lower.
        (
            STATIC,
            _dynamic(100),
            RuleInputs(inputs=(("relay", 90.0),), tou_period="off", tou={"z": ("off", 0.0)}),
            90.0,
            "input:relay",
        ),
        # A period that does not apply to the zone: nominal.
        (STATIC, _dynamic(100), RuleInputs(tou_period="peak", tou={}), 100.0, "nominal"),
        # A 100 % period does not limit anything.
        (
            STATIC,
            _dynamic(100),
            RuleInputs(tou_period="p", tou={"z": ("p", 100.0)}),
            100.0,
            "nominal",
        ),
        # Remote setpoint.
        (DYN, _dynamic(90), RuleInputs(remote={"z": 42.0}), 42.0, "remote"),
        # A remote setpoint above the max can never raise it.
        (STATIC, _dynamic(100), RuleInputs(remote={"z": 500.0}), 100.0, "nominal"),
    ],
)
def test_guide_examples(
    zone: ZoneConfig, budget: ZoneBudgetInfo, rules: RuleInputs, expected: float, reason: str
) -> None:
    result = zone_limit(zone, budget, rules)
    assert result.limit == pytest.approx((expected, expected, expected))
    assert result.limited_by == reason


def test_the_reason_is_the_rule_binding_on_most_phases() -> None:
    budget = ZoneBudgetInfo((90.0, 50.0, 90.0), degraded=False)
    result = zone_limit(DYN, budget, RuleInputs(inputs=(("relay", 70.0),)))
    assert result.limit == (70.0, 50.0, 70.0)
    assert result.limited_by == "input:relay"


def test_a_subzone_reports_its_parents_lower_limit() -> None:
    zones = {
        "root": ZoneConfig("root", "Root", 100.0),
        "sub": ZoneConfig("sub", "Sub", 80.0, parent_id="root"),
    }
    budgets = {z: _dynamic(c.max_current) for z, c in zones.items()}
    rules = RuleInputs(tou_period="peak", tou={"root": ("peak", 50.0)})
    limits = zone_limits(zones, budgets, rules)
    assert limits["sub"] == ZoneLimit((80.0, 80.0, 80.0), "nominal")
    effective = effective_limits(zones, limits)
    assert effective["sub"] == ZoneLimit((50.0, 50.0, 50.0), "tou:peak")
    assert effective["root"] == ZoneLimit((50.0, 50.0, 50.0), "tou:peak")


_amps = st.floats(min_value=0.0, max_value=400.0, allow_nan=False)
_pct = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    max_current=st.floats(min_value=0.0, max_value=400.0, allow_nan=False),
    dynamic=st.booleans(),
    degraded=st.booleans(),
    budget=st.tuples(_amps, _amps, _amps),
    inputs=st.lists(st.tuples(st.sampled_from("abcd"), _pct), max_size=3, unique_by=lambda i: i[0]),
    tou=st.one_of(st.none(), _pct),
    remote=st.one_of(st.none(), _amps),
)
def test_the_limit_never_exceeds_a_rule_and_the_reason_set_it(  # noqa: PLR0917
    max_current: float,
    dynamic: bool,
    degraded: bool,
    budget: tuple[float, float, float],
    inputs: list[tuple[str, float]],
    tou: float | None,
    remote: float | None,
) -> None:
    zone = ZoneConfig(
        "z", "Zone", max_current, mode=ZoneMode.DYNAMIC if dynamic else ZoneMode.STATIC
    )
    if not dynamic:
        budget = (max_current,) * 3  # what zone_budgets gives a static zone
    info = ZoneBudgetInfo(budget, degraded=degraded and dynamic)
    rules = RuleInputs(
        inputs=tuple(inputs),
        tou_period=None if tou is None else "p",
        tou={} if tou is None else {"z": ("p", tou)},
        remote={} if remote is None else {"z": remote},
    )
    result = zone_limit(zone, info, rules)
    applying: dict[str, tuple[float, float, float]] = {
        "nominal": (max_current,) * 3,
    }
    clamp = tuple(min(b, max_current) for b in budget)
    if dynamic:
        applying["meter_lost" if degraded else "dynamic"] = clamp  # type: ignore[assignment]
    if inputs:
        name, pct = min(inputs, key=lambda i: (i[1], i[0]))
        applying[f"input:{name}"] = (max_current * pct / 100,) * 3
    elif tou is not None:
        applying["tou:p"] = (max_current * tou / 100,) * 3
    if remote is not None:
        applying["remote"] = (min(remote, max_current),) * 3
    for p in range(3):
        assert 0.0 <= result.limit[p] <= max_current + 1e-9
        for values in applying.values():
            assert result.limit[p] <= values[p] + 1e-9
    assert result.limited_by in applying
    chosen = applying[result.limited_by]
    assert any(abs(chosen[p] - result.limit[p]) <= 1e-9 for p in range(3))
    for p in range(3):  # the limit is one of the rules on every phase
        assert any(abs(v[p] - result.limit[p]) <= 1e-9 for v in applying.values())
