"""Time the operating rules (issue 11): the zone-limit pipeline and the time-of-use calendar.

Run from the repo root: `.venv/bin/python bench/rules.py [--quick]`. Prints the median time per
call over repeats:

- `zone_limits` + `effective_limits` (what every allocation run adds) for 20, 50 and 500 zones
  in 3-level trees, half of them dynamic, with two inputs active, a TOU period in most zones and
  a remote setpoint in a third of them;
- `TouCalendar.period_at` and `next_boundary` (what a boundary timer costs) with the
  reference's worst case, 5 periods x 20 timeslots, in Europe/Paris.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
import os
from pathlib import Path
import random
import statistics
import sys
import time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.ev_charging_expert.evcore.config import ZoneConfig, ZoneMode
from custom_components.ev_charging_expert.evcore.load.budgets import ZoneBudgetInfo
from custom_components.ev_charging_expert.evcore.rules import (
    RuleInputs,
    TouCalendar,
    TouConfig,
    effective_limits,
    zone_limits,
)

if TYPE_CHECKING:
    from collections.abc import Callable

ZONE_COUNTS = (20, 50, 500)
type Zones = dict[str, ZoneConfig]
type Budgets = dict[str, ZoneBudgetInfo]


def build(
    zones: int, seed: int = 1
) -> tuple[dict[str, ZoneConfig], dict[str, ZoneBudgetInfo], RuleInputs]:
    rnd = random.Random(seed)
    mids = max(zones // 6, 1)
    tree: dict[str, ZoneConfig] = {"root": ZoneConfig("root", "root", 1000.0)}
    for m in range(mids):
        tree[f"mid{m}"] = ZoneConfig(f"mid{m}", f"mid{m}", 400.0, "root")
    for t in range(zones - 1 - mids):
        dynamic = rnd.random() < 0.5
        tree[f"leaf{t}"] = ZoneConfig(
            f"leaf{t}",
            f"leaf{t}",
            125.0,
            f"mid{t % mids}",
            ZoneMode.DYNAMIC if dynamic else ZoneMode.STATIC,
            degraded_setpoint=30.0,
        )
    budgets = {}
    for z, zone in tree.items():
        if zone.mode is ZoneMode.DYNAMIC:
            b = tuple(rnd.uniform(0, zone.max_current) for _ in range(3))
            budgets[z] = ZoneBudgetInfo((b[0], b[1], b[2]), degraded=rnd.random() < 0.1)
        else:
            m = zone.max_current
            budgets[z] = ZoneBudgetInfo((m, m, m), degraded=False)
    rules = RuleInputs(
        inputs=(("relay", 70.0), ("alarm", 90.0)) if seed % 2 else (),
        tou_period="peak",
        tou={z: ("peak", 60.0) for z in tree if rnd.random() < 0.8},
        remote={z: rnd.uniform(0, 125.0) for z in tree if rnd.random() < 0.33},
    )
    return tree, budgets, rules


def median_us(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def tou_worst_case() -> TouCalendar:
    periods = []
    for p in range(5):
        day = ("Mon", "Tue", "Wed", "Thu", "Fri")[p]
        slots = "; ".join(f"{day} {h:02d}:00-{h:02d}:30" for h in range(20))
        periods.append({"name": f"p{p}", "percent": 20 * p, "slots": slots})
    return TouCalendar(
        ZoneInfo("Europe/Paris"), TouConfig.from_dict({"enabled": True, "periods": periods})
    )


def main() -> int:
    quick = "--quick" in sys.argv or os.environ.get("BENCH_QUICK") == "1"
    repeats = 21 if quick else 201
    print("zone-limit pipeline (zone_limits + effective_limits), median per call")
    print(f"{'zones':>6} {'rules on (us)':>14} {'no rules (us)':>14}")
    for zones in ZONE_COUNTS:
        tree, budgets, rules = build(zones, seed=1)

        def run(rules: RuleInputs, tree: Zones = tree, budgets: Budgets = budgets) -> None:
            effective_limits(tree, zone_limits(tree, budgets, rules))

        with_rules = median_us(partial(run, rules), repeats)
        without = median_us(partial(run, RuleInputs()), repeats)
        print(f"{zones:>6} {with_rules:>14.1f} {without:>14.1f}")
    calendar = tou_worst_case()
    at = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    instants = [at + timedelta(minutes=7 * i) for i in range(200)]
    period_at = median_us(lambda: [calendar.period_at(t) for t in instants], repeats) / len(
        instants
    )
    boundary = median_us(lambda: calendar.next_boundary(at), max(repeats // 10, 5))
    print("time-of-use, 5 periods x 20 timeslots, Europe/Paris")
    print(f"  period_at: {period_at:.1f} us per call; next_boundary: {boundary:.0f} us per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
