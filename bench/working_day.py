"""A working day at a 40-connector car park: energy delivered with consumption optimisation off
and on, limit violations, profiles sent.

One process, clock-driven (faster than real time): evcore's `Controller` (Site, central system,
load manager, as production builds them) and 20 simulated two-connector chargers
(`tools.sim`, built on the `ocpp` library, with EV physics: an EV draws the least of its
charger's limit and its onboard maximum, and stops drawing when its battery is full) talk over
loopback websockets; all of them run on one `ManualClock` that the bench moves in steps. The
site, the chargers and the physical invariant are those of the load-management tests
(`tests/evcore/conftest_load.py`: `LoadEnv`, `Physical`), reused as they are.

The site: one switchboard (15 A per phase per connector: 600 A for 40), 20 stations x 2
connectors rated 32 A, wired TRI123 / TRI231 / TRI312 in turn. The day, 07:00 to 19:00 (the
same for both runs, seeded); connector i sees EVs of kind i mod 5 (EV_KINDS):

- commuters (3/5 of the connectors) arrive between 07:00 and 09:30 and leave between 16:00 and
  18:30: three-phase with a 16 A onboard charger and 30 kWh to charge; three-phase 16 A with
  12 kWh (full by mid-morning); single-phase 16 A with 15 kWh. Most are full by early
  afternoon and stay plugged in (SuspendedEV).
- visitors (2/5) come and go all day, 1.5-3 h each, 5-20 min apart: three-phase 32 A and
  single-phase 32 A, with more to charge than they can take in their stay.
- The operating rules (`evcore/rules`, through the Controller): time of use, "peak" 12:00-14:00
  at 60 % of the switchboard's max ("normal" 100 % otherwise); a digital input, a load-shedding
  relay, active 15:00-15:20 at 30 % (`Controller.set_input_state`).

Measured per run: energy delivered (kWh, from the EVs' own batteries); the physical invariant
(what every charger's own profiles allow, per grid phase, within the switchboard's max: checked
after every profile a charger accepts, every plug-in, unplug and clock step) — violations must
be 0; the longest time from a rule cut (the zone's effective limit dropping) to every charger
allowing no more than it;
profiles sent per connector per hour (lease and base profiles the chargers accepted); the
wall-clock time and how much faster than real time it ran.

    .venv/bin/python bench/working_day.py            # the whole day, optimisation off then on
    .venv/bin/python bench/working_day.py --quick    # smoke: 11:00-14:30, 12 connectors

Results: a table on stdout; JSON and Markdown in bench/results/ (git-ignored). Exit code 1 when
a violation was seen.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
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
)
from custom_components.ev_charging_expert.evcore.controller import Controller  # noqa: E402
from custom_components.ev_charging_expert.evcore.load.observe import LoadObserver  # noqa: E402
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy  # noqa: E402
from custom_components.ev_charging_expert.evcore.rules import (  # noqa: E402
    DigitalInput,
    TimeSlot,
    TouConfig,
    TouPeriod,
)
from custom_components.ev_charging_expert.evcore.site import (  # noqa: E402
    MemoryStore,
    SiteSettings,
)
from tools.sim import Ev  # noqa: E402

if TYPE_CHECKING:
    from conftest_load import TestCharger

    from custom_components.ev_charging_expert.evcore.load.delivery import Send
    from custom_components.ev_charging_expert.evcore.view import ZoneView

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
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


ALL_DAYS = frozenset(range(7))
TOU = TouConfig(
    enabled=True,
    periods=(
        TouPeriod("peak", 60.0, (TimeSlot(ALL_DAYS, 12 * 60, 14 * 60),)),
        TouPeriod("normal", 100.0, (TimeSlot(ALL_DAYS, 14 * 60, 12 * 60),)),
    ),
)
INPUT = DigitalInput("load_shedding", 30.0)
INPUT_ON, INPUT_OFF = (15, 0), (15, 20)  # local hour, minute


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
    limited_by: set[str] = field(default_factory=set)
    """The rules seen cutting the zone."""


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


def zone(zone_max: float) -> ZoneConfig:
    return ZoneConfig(ZONE_ID, "Car park", zone_max)


async def simulate(
    optimise: bool, visits: list[Visit], hours: float, zone_max: float, start_hour: float
) -> Outcome:
    """One day on a fresh site."""
    clock = ManualClock(DAY + timedelta(hours=start_hour))
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
        await set_up(env, visits, zone_max)
        started_wall = time.monotonic()
        await run_day(env, visits, hours * 3600, zone_max, outcome)
        outcome.wall_s = time.monotonic() - started_wall
        outcome.speedup = hours * 3600 / outcome.wall_s if outcome.wall_s > 0 else 0.0
        collect(env, visits, hours, outcome)
    finally:
        env.strict = False
        await env.close()
    return outcome


async def set_up(env: LoadEnv, visits: list[Visit], zone_max: float) -> None:
    """The zone, the rules (TOU on, the relay off) and the chargers, placed and controlled."""
    controller = env.controller
    env.set_zones(zone(zone_max))
    controller.set_timezone(UTC)
    controller.set_tou(TOU)
    controller.set_inputs([INPUT])
    controller.set_input_state(INPUT.name, active=False)
    stations = sorted({v.station_id for v in visits})
    for index, station_id in enumerate(stations):
        await env.add_charger(station_id, connectors=2, meter_interval=METER_INTERVAL_S)
        env.place(station_id, ZONE_ID, {1: WIRINGS[index % 3], 2: WIRINGS[(index + 1) % 3]})


async def run_day(
    env: LoadEnv, visits: list[Visit], end: float, zone_max: float, outcome: Outcome
) -> None:
    """Move the clock in steps; EVs come and go, the relay switches, the invariant is checked."""
    controller, clock = env.controller, env.clock
    start = clock.monotonic()
    events: list[tuple[float, int, Visit]] = sorted(
        [(v.arrive_s, 0, v) for v in visits] + [(v.leave_s, 1, v) for v in visits],
        key=lambda e: (e[0], e[1], e[2].station_id, e[2].connector_id),
    )
    cut = Cut(zone_max)
    elapsed = 0.0
    while elapsed < end:
        while events and events[0][0] <= elapsed:
            _, kind, visit = events.pop(0)
            if kind == 0:
                await arrive(env, visit)
            else:
                await env.unplug(visit.station_id, visit.connector_id)
        local = clock.now()
        relay = INPUT_ON <= (local.hour, local.minute) < INPUT_OFF
        controller.set_input_state(INPUT.name, active=relay)
        await env.settle()  # a relay change is allocated now, not after the step
        cut.look(controller.zone_view(ZONE_ID), elapsed, outcome)
        clock.advance(STEP_S)  # a TOU boundary fires on the clock
        elapsed = clock.monotonic() - start
        env.check("clock step")
        await env.settle()
        cut.look(controller.zone_view(ZONE_ID), elapsed, outcome)
        loads = env.physical.loads()[ZONE_ID]
        outcome.peak_share = max(outcome.peak_share, max(loads) / zone_max)
        cut.delivered(max(loads), elapsed, outcome)
        outcome.max_caps = max(outcome.max_caps, len(controller.load.optimiser.caps))


@dataclass(slots=True)
class Cut:
    """Follows the zone's effective limit: when it drops, how long until the chargers follow."""

    limit: float
    since: float | None = None

    def look(self, view: ZoneView | None, elapsed: float, outcome: Outcome) -> None:
        if view is None:
            return
        limit = max(view.effective_limit)
        if limit < self.limit - 1e-6:
            self.since = elapsed if self.since is None else self.since
            outcome.limited_by.add(view.limited_by)
        self.limit = limit

    def delivered(self, allowed: float, elapsed: float, outcome: Outcome) -> None:
        if self.since is None:
            return
        if allowed <= self.limit + 1e-6:
            outcome.slowest_cut_s = max(outcome.slowest_cut_s, elapsed - self.since)
            self.since = None
        elif elapsed - self.since > COMPLY_GRACE_S:
            outcome.late_cut_steps += 1


def collect(env: LoadEnv, visits: list[Visit], hours: float, outcome: Outcome) -> None:
    """Energy, invariant checks, profiles: what the day measured."""
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
    outcome.guard_violations = env.controller.load.guard_violations
    outcome.runs = env.controller.load.runs


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
        print(f"rules that cut the zone ({mode}): {', '.join(sorted(o.limited_by)) or '-'}")
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
    parser.add_argument("--start", type=float, default=7.0, help="hour of day it starts (UTC)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--zone", type=float, help="switchboard max per phase (A)")
    parser.add_argument("--only", choices=("off", "on"), help="one run only")
    args = parser.parse_args()
    if args.quick:
        args.connectors, args.hours, args.start = 12, 3.5, 11.0
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    zone_max = args.zone or ZONE_A_PER_CONNECTOR * args.connectors
    modes = [False, True] if args.only is None else [args.only == "on"]
    outcomes = []
    for optimise in modes:
        visits = plan_day(args.connectors, args.hours, args.seed)
        print(f"running the day with optimisation {'on' if optimise else 'off'}...", flush=True)
        outcomes.append(asyncio.run(simulate(optimise, visits, args.hours, zone_max, args.start)))
    markdown, gain = report(outcomes, args.hours, args.connectors, zone_max)
    payload: dict[str, Any] = {
        "versions": versions("ocpp", "websockets"),
        "code": code_version(),
        "connectors": args.connectors,
        "hours": args.hours,
        "seed": args.seed,
        "zone_max_a": zone_max,
        "tou": [
            {"name": p.name, "percent": p.percent, "slots": p.slots_text()} for p in TOU.periods
        ],
        "input": {**asdict(INPUT), "on": INPUT_ON, "off": INPUT_OFF},
        "ev_kinds": [asdict(k) for k in EV_KINDS],
        "outcomes": [{**asdict(o), "limited_by": sorted(o.limited_by)} for o in outcomes],
        "gain": gain,
        "goal_gain": GOAL_GAIN,
    }
    save_results("working_day", utc_stamp(), payload, markdown)
    return 1 if any(o.violations or o.guard_violations for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
