"""LoadManager.observe: runs, sends, booked answers and budget checks, seen from outside."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.keys import ConnectorKey
from custom_components.ev_charging_expert.evcore.load.observe import (
    AnswerBooked,
    BudgetsChecked,
    LoadObserver,
    RunObserved,
)
from custom_components.ev_charging_expert.evcore.meters.external import ExternalMeter

if TYPE_CHECKING:
    from conftest_load import LoadEnv

    from custom_components.ev_charging_expert.evcore.load.delivery import Send

pytest_plugins = ("conftest_load",)  # the `env` fixture

ZONE = ZoneConfig("d", "Garage", 63.0, mode=ZoneMode.DYNAMIC, degraded_setpoint=10.0)


class Recorder(LoadObserver):
    def __init__(self) -> None:
        self.runs: list[RunObserved] = []
        self.sends: list[Send] = []
        self.answers: list[AnswerBooked] = []
        self.checks: list[BudgetsChecked] = []

    def run_finished(self, run: RunObserved) -> None:
        self.runs.append(run)

    def limit_sent(self, send: Send) -> None:
        self.sends.append(send)

    def answer_booked(self, answer: AnswerBooked) -> None:
        self.answers.append(answer)

    def budgets_checked(self, check: BudgetsChecked) -> None:
        self.checks.append(check)


async def test_observer_sees_runs_sends_answers_and_budget_checks(env: LoadEnv) -> None:
    seen = Recorder()
    env.lm.observe(seen)
    env.set_zones(ZONE)
    meter = ExternalMeter("m1", env.clock, max_age=5.0)
    env.lm.set_zone_meters({"d": meter})
    meter.update((20.0, 20.0, 20.0))
    await env.add_charger("S1")
    env.place("S1", "d")
    await env.plug("S1")
    await env.converge()

    key = ConnectorKey("S1", 1)
    assert seen.runs
    assert all(r.duration >= 0 for r in seen.runs)
    assert sum(r.sends for r in seen.runs) == sum(s.kind != "base" for s in seen.sends)
    assert any(r.full for r in seen.runs)
    for run in seen.runs:
        phases = (run.snapshot_duration, run.allocate_duration, run.send_duration)
        if run.full:
            assert all(p is not None and 0 <= p <= run.duration for p in phases)
        else:
            assert phases == (None, None, None)
    assert {s.kind for s in seen.sends if s.connector_id == ConnectorKey("S1", 0)} == {"base"}
    assert any(s.connector_id == key and s.kind != "base" for s in seen.sends)
    last = next(a for a in reversed(seen.answers) if a.key == key)
    assert last.accepted is True
    assert last.held == env.lm.leases[key].held
    assert any(a.key == ConnectorKey("S1", 0) and a.accepted for a in seen.answers)

    meter.update((25.0, 25.0, 25.0))
    env.lm.meter_updated("m1")
    assert seen.checks[-1].zones == frozenset({"d"})
    assert seen.checks[-1].duration >= 0
    assert seen.checks[-1].cpu >= 0
    fresh = env.lm.current_budgets()
    assert fresh["d"].budget == pytest.approx(env.lm.current_budgets({"d"})["d"].budget)
    await env.settle()

    env.lm.observe(None)
    before = (len(seen.runs), len(seen.checks))
    env.lm.meter_updated("m1")
    env.lm.request_run()
    await env.settle()
    assert (len(seen.runs), len(seen.checks)) == before


async def test_a_failing_observer_changes_nothing(
    env: LoadEnv, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(LoadObserver):
        def run_finished(self, run: RunObserved) -> None:
            raise RuntimeError(run)

        def limit_sent(self, send: Send) -> None:
            raise RuntimeError(send)

        def answer_booked(self, answer: AnswerBooked) -> None:
            raise RuntimeError(answer)

    env.lm.observe(Failing())
    env.set_zones(ZoneConfig("z", "Zone", 32.0))
    with caplog.at_level(logging.ERROR):
        await env.add_charger("S1")
        env.place("S1", "z")
        await env.plug("S1")
        await env.converge()
    assert env.converged()
    assert "Load observer failed" in caplog.text


async def test_current_budgets_is_empty_before_the_first_run(env: LoadEnv) -> None:
    assert env.lm.last is None
    assert env.lm.current_budgets() == {}
