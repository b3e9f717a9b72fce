"""A working day at a 40-connector car park: energy delivered with consumption optimisation off
and on, limit violations, profiles sent.

One process, clock-driven (faster than real time): evcore's `Controller` (Site, central system,
load manager, as production builds them) and 20 simulated two-connector chargers
(`tools.sim`, built on the `ocpp` library, with EV physics: an EV draws the least of its
charger's limit and its onboard maximum, and stops drawing when its battery is full) talk over
loopback websockets; all of them run on one `ManualClock` that the bench moves in steps. The
site, the chargers and the physical invariant are those of the load-management tests
(`tests/evcore/conftest_load.py`: `LoadEnv`, `Physical`), reused as they are.

The site: one switchboard, ZONE_MAX_A per phase, 20 stations x 2 connectors rated 32 A, wired
TRI123 / TRI231 / TRI312 in turn. The day, 07:00 to 19:00 (the same for both runs, seeded):

- 40 EVs arrive between 07:00 and 09:30 and leave between 16:00 and 18:30, one per connector,
  from five kinds (see EV_KINDS): three-phase 32 A with a big battery to fill; three-phase
  capped onboard at 16 A; single-phase 32 A; single-phase capped onboard at 16 A; three-phase
  16 A with little to charge (full by mid-morning, plugged in all day).
- Time of use: "peak" 12:00-14:00 at 60 % of the switchboard's max, else "normal" at 100 %.
- A digital input, a load-shedding relay, 15:00-15:20 at 30 %.
  Until the operating-rules branch (TOU, inputs) is merged, both are emulated the way that
  branch's pipeline ends up: the zone's limit is lowered with `Controller.set_zones` (the
  switchboard's physical max, which the invariant checks, stays the same).

Measured per run: energy delivered (kWh, from the EVs' own batteries); the physical invariant
(what every charger's own profiles allow, per grid phase, within the switchboard's max: checked
after every profile a charger accepts, every plug-in, unplug and clock step) — violations must
be 0; the longest time from a rule cut to every charger allowing no more than the cut limit;
profiles sent per connector per hour (lease and base profiles the chargers accepted); the
wall-clock time and how much faster than real time it ran.

    .venv/bin/python bench/working_day.py            # the whole day, optimisation off then on
    .venv/bin/python bench/working_day.py --quick    # smoke: 07:00-10:00, 12 connectors

Results: a table on stdout; JSON and Markdown in bench/results/ (git-ignored). Exit code 1 when
a violation was seen.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
import logging
from pathlib import Path
import random
import sys
import time
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests" / "evcore"):  # the integration, bench.harness, conftest_load
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from conftest_load import LoadEnv  # noqa: E402

from bench.harness.report import (  # noqa: E402
    Table,
    code_version,
    fmt,
    save_results,
    utc_stamp,
    versions,
)
from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring  # noqa: E402
from custom_components.ev_charging_expert.evcore.clock import ManualClock  # noqa: E402
from custom_components.ev_charging_expert.evcore.config import (  # noqa: E402
    LoadSettings,
    ZoneConfig,
    validate_zones,
)
from custom_components.ev_charging_expert.evcore.controller import Controller  # noqa: E402
from custom_components.ev_charging_expert.evcore.load.observe import LoadObserver  # noqa: E402
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy  # noqa: E402
from custom_components.ev_charging_expert.evcore.site import (  # noqa: E402
    MemoryStore,
    SiteSettings,
)
from tools.sim import Ev  # noqa: E402

if TYPE_CHECKING:
    from conftest_load import TestCharger

    from custom_components.ev_charging_expert.evcore.load.delivery import Send

DAY_START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday
ZONE_ID = "parking"
ZONE_A_PER_CONNECTOR = 15.0
"""The switchboard max per phase, per connector (40 connectors: 600 A)."""
WIRINGS = (Wiring.TRI123, Wiring.TRI231, Wiring.TRI312)
STEP_S = 5.0
METER_INTERVAL_S = 30
GOAL_GAIN = 0.20
COMPLY_GRACE_S = 30.0  # a cut must be delivered within this (reported, not a violation)


@dataclass(frozen=True, slots=True)
class EvKind:
    """One kind of EV of the day."""

    name: str
    phases: int
    max_current: float
    need_kwh: float
    visitor: bool
    """Visitors come and go all day (1.5-3 h stays); commuters stay from morning to evening."""


EV_KINDS = (
    EvKind("visitor 3ph 32 A", 3, 32.0, 80.0, visitor=True),
    EvKind("commuter 3ph 16 A onboard", 3, 16.0, 30.0, visitor=False),
    EvKind("commuter 3ph 16 A, full early", 3, 16.0, 12.0, visitor=False),
    EvKind("commuter 1ph 16 A onboard", 1, 16.0, 15.0, visitor=False),
    EvKind("visitor 1ph 32 A", 1, 32.0, 40.0, visitor=True),
)
"""Connector i sees EVs of kind i mod 5."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A cut of the zone's limit: TOU period or digital input (percent of the max)."""

    name: str
    start_h: float
    end_h: float
    percent: float


RULES = (Rule("tou:peak", 5.0, 7.0, 60.0), Rule("input:load_shedding", 8.0, 8.0 + 1 / 3, 30.0))


@dataclass(slots=True)
class Visit:
    """One EV's stay on one connector."""

    station_id: str
    connector_id: int
    kind: EvKind
    arrive_s: float
    leave_s: float
    ev: Ev | None = None


@dataclass(slots=True)
class Outcome:
    """What one run measured."""

    optimise: bool
    energy_kwh: float = 0.0
    energy_by_kind: dict[str, float] = field(default_factory=dict)
    violations: int = 0
    checks: int = 0
    peak_share: float = 0.0
    slowest_cut_s: float = 0.0
    late_cut_steps: int = 0
    profiles: int = 0
    profiles_per_connector_hour: float = 0.0
    sends: dict[str, int] = field(default_factory=dict)
    """Limits sent by kind: decrease, increase, renewal (leases), base."""
    guard_violations: int = 0
    runs: int = 0
    wall_s: float = 0.0
    speedup: float = 0.0
    max_caps: int = 0


class SendCounter(LoadObserver):
    """Counts the limits load management sends, by kind (the observation hook)."""

    def __init__(self, sends: dict[str, int]) -> None:
        self.sends = sends

    def limit_sent(self, send: Send) -> None:
        self.sends[send.kind] = self.sends.get(send.kind, 0) + 1


def plan_day(connectors: int, hours: float, seed: int) -> list[Visit]:
    """Who comes when: the same for every run with the same seed."""
    rng = random.Random(seed)
    end = hours * 3600
    visits = []
    for index in range(connectors):
        station_id, connector_id = f"P{index // 2 + 1:02d}", index % 2 + 1
        kind = EV_KINDS[index % len(EV_KINDS)]
        if not kind.visitor:
            arrive = rng.uniform(0.0, min(2.5 * 3600, end / 4))
            leave = end - rng.uniform(0.5, 3.0) * end / 12
            visits.append(Visit(station_id, connector_id, kind, arrive, leave))
            continue
        at = rng.uniform(0.0, 1200.0)
        while at < end - 1800:
            leave = min(at + rng.uniform(1.5, 3.0) * 3600, end - 60)
            visits.append(Visit(station_id, connector_id, kind, at, leave))
            at = leave + rng.uniform(300.0, 1200.0)
    return visits


def zone(zone_max: float, percent: float = 100.0) -> ZoneConfig:
    return ZoneConfig(ZONE_ID, "Car park", zone_max * percent / 100.0)


def limit_percent(at_h: float) -> tuple[float, str]:
    """The lowest rule that applies at this hour of the day (inputs win over TOU)."""
    active = [r for r in RULES if r.start_h <= at_h < r.end_h]
    inputs = [r for r in active if r.name.startswith("input:")]
    chosen = inputs or active
    if not chosen:
        return 100.0, "nominal"
    rule = min(chosen, key=lambda r: r.percent)
    return rule.percent, rule.name


async def simulate(optimise: bool, visits: list[Visit], hours: float, zone_max: float) -> Outcome:  # noqa: C901, PLR0915
    """One day on a fresh site."""
    clock = ManualClock(DAY_START)
    controller = Controller(
        clock=clock,
        store=MemoryStore(),
        settings=SiteSettings(new_charger_policy=NewChargerPolicy.ACCEPT),
        load_settings=LoadSettings(consumption_optimisation=optimise),
    )
    await controller.restore()
    await controller.start(host="127.0.0.1", port=0, ping_interval=None)
    env = LoadEnv(controller, clock)
    outcome = Outcome(optimise=optimise)
    controller.load.observe(SendCounter(outcome.sends))
    try:
        env.set_zones(zone(zone_max))
        stations = sorted({v.station_id for v in visits})
        for index, station_id in enumerate(stations):
            await env.add_charger(station_id, connectors=2, meter_interval=METER_INTERVAL_S)
            env.place(station_id, ZONE_ID, {1: WIRINGS[index % 3], 2: WIRINGS[(index + 1) % 3]})
        started_wall = time.monotonic()
        start = clock.monotonic()
        events: list[tuple[float, int, Visit]] = sorted(
            [(v.arrive_s, 0, v) for v in visits] + [(v.leave_s, 1, v) for v in visits],
            key=lambda e: (e[0], e[1], e[2].station_id, e[2].connector_id),
        )
        current_rule = "nominal"
        cut_at: float | None = None
        cut_limit = zone_max
        elapsed = 0.0
        end = hours * 3600
        while elapsed < end:
            while events and events[0][0] <= elapsed:
                _, kind, visit = events.pop(0)
                if kind == 0:
                    await arrive(env, visit)
                else:
                    await env.unplug(visit.station_id, visit.connector_id)
            percent, rule = limit_percent(elapsed / 3600)
            if rule != current_rule:
                current_rule = rule
                controller.set_zones(validate_zones([zone(zone_max, percent)]))
                cut_limit = zone_max * percent / 100
                cut_at = elapsed
            clock.advance(STEP_S)
            elapsed = clock.monotonic() - start
            env.check("clock step")
            await env.settle()
            loads = env.physical.loads()[ZONE_ID]
            outcome.peak_share = max(outcome.peak_share, max(loads) / zone_max)
            if cut_at is not None:
                if max(loads) <= cut_limit + 1e-6:
                    outcome.slowest_cut_s = max(outcome.slowest_cut_s, elapsed - cut_at)
                    cut_at = None
                elif elapsed - cut_at > COMPLY_GRACE_S:
                    outcome.late_cut_steps += 1
            outcome.max_caps = max(outcome.max_caps, len(controller.load.optimiser.caps))
        outcome.wall_s = time.monotonic() - started_wall
        outcome.speedup = end / outcome.wall_s if outcome.wall_s > 0 else 0.0
        for cp in env.sims.values():
            cp._integrate()  # noqa: SLF001  # the energy drawn since the last sample
        for visit in visits:
            kwh = visit.ev.delivered_wh / 1000 if visit.ev is not None else 0.0
            outcome.energy_kwh += kwh
            outcome.energy_by_kind[visit.kind.name] = (
                outcome.energy_by_kind.get(visit.kind.name, 0.0) + kwh
            )
        outcome.violations = len(env.physical.violations)
        outcome.checks = env.physical.checks
        outcome.profiles = sum(cp.accepted_profiles for cp in env.sims.values())
        outcome.profiles_per_connector_hour = outcome.profiles / 2 / len(env.sims) / hours
        outcome.guard_violations = controller.load.guard_violations
        outcome.runs = controller.load.runs
    finally:
        env.strict = False
        await env.close()
    return outcome


async def arrive(env: LoadEnv, visit: Visit) -> None:
    """The EV is plugged in (checked before the central system can react) and starts."""
    cp: TestCharger = env.sims[visit.station_id]
    kind = visit.kind
    visit.ev = Ev(
        phases=kind.phases,
        max_current=kind.max_current,
        need_wh=kind.need_kwh * 1000,
        stay=1e9,  # the bench unplugs it
        id_tag=f"TAG-{visit.station_id}-{visit.connector_id}",
    )
    connector = cp.connectors[visit.connector_id]
    connector.ev = visit.ev
    env.check(f"EV plugged into {visit.station_id}/{visit.connector_id}")
    connector.ev = None
    await cp.plug_in(visit.connector_id, visit.ev)
    env.check(f"session started on {visit.station_id}/{visit.connector_id}")


def changes_per_connector_hour(outcome: Outcome, hours: float, connectors: int) -> float:
    """Lease decreases and increases (not renewals, not bases) per connector per hour."""
    changes = outcome.sends.get("decrease", 0) + outcome.sends.get("increase", 0)
    return changes / connectors / hours


def report(
    outcomes: list[Outcome], hours: float, connectors: int, zone_max: float
) -> tuple[str, float]:
    """The console table and Markdown; returns (markdown, gain)."""
    table = Table(
        ("optimisation", 12),
        ("energy kWh", 10),
        ("violations", 10),
        ("checks", 8),
        ("peak % max", 10),
        ("slowest cut s", 13),
        ("profiles/conn/h", 15),
        ("changes/conn/h", 14),
        ("caps (max)", 10),
        ("wall s", 7),
        ("x real time", 11),
    )
    rows = [
        [
            "on" if o.optimise else "off",
            fmt(o.energy_kwh),
            str(o.violations),
            str(o.checks),
            fmt(100 * o.peak_share),
            fmt(o.slowest_cut_s, 0),
            fmt(o.profiles_per_connector_hour, 1),
            fmt(changes_per_connector_hour(o, hours, connectors), 1),
            str(o.max_caps),
            fmt(o.wall_s, 0),
            fmt(o.speedup, 0),
        ]
        for o in outcomes
    ]
    print(table.header())
    for row in rows:
        print(table.row(row))
    by_mode = {o.optimise: o for o in outcomes}
    gain = 0.0
    if True in by_mode and False in by_mode and by_mode[False].energy_kwh > 0:
        gain = by_mode[True].energy_kwh / by_mode[False].energy_kwh - 1
        print(f"energy delivered with optimisation on: {100 * gain:+.1f} % (goal +20 %)")
    for o in outcomes:
        mode = "on" if o.optimise else "off"
        print(f"limits sent ({mode}): {dict(sorted(o.sends.items()))}")
    kinds = [k.name for k in EV_KINDS]
    print("energy by kind of EV (kWh), off / on:")
    for name in kinds:
        values = " / ".join(fmt(o.energy_by_kind.get(name, 0.0)) for o in outcomes)
        print(f"  {name:30} {values}")
    markdown = [
        f"# Working day: {connectors} connectors, {hours:g} h, switchboard {zone_max:g} A",
        "",
        *table.markdown(rows),
        "",
        f"Energy delivered with optimisation on: {100 * gain:+.1f} %.",
        "",
    ]
    return "\n".join(markdown), gain


def main() -> int:
    """Run the day with optimisation off, then on; report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke: 3 h, 12 connectors")
    parser.add_argument("--connectors", type=int, default=40)
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--zone", type=float, help="switchboard max per phase (A)")
    parser.add_argument("--only", choices=("off", "on"), help="one run only")
    args = parser.parse_args()
    if args.quick:
        args.connectors, args.hours = 12, 3.0
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    zone_max = args.zone or ZONE_A_PER_CONNECTOR * args.connectors
    modes = [False, True] if args.only is None else [args.only == "on"]
    outcomes = []
    for optimise in modes:
        visits = plan_day(args.connectors, args.hours, args.seed)
        print(f"running the day with optimisation {'on' if optimise else 'off'}...", flush=True)
        outcomes.append(asyncio.run(simulate(optimise, visits, args.hours, zone_max)))
    markdown, gain = report(outcomes, args.hours, args.connectors, zone_max)
    payload: dict[str, Any] = {
        "versions": versions("ocpp", "websockets"),
        "code": code_version(),
        "connectors": args.connectors,
        "hours": args.hours,
        "seed": args.seed,
        "zone_max_a": zone_max,
        "rules": [asdict(r) for r in RULES],
        "ev_kinds": [asdict(k) for k in EV_KINDS],
        "outcomes": [asdict(o) for o in outcomes],
        "gain": gain,
        "goal_gain": GOAL_GAIN,
    }
    save_results("working_day", utc_stamp(), payload, markdown)
    return 1 if any(o.violations or o.guard_violations for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
