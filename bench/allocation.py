"""Time `allocate` (and the `check` guard) on synthetic 3-level sites.

Run from the repo root: `.venv/bin/python bench/allocation.py`. Prints the median time per
call over repeats, for 10 to 5000 connectors in trees of 20 and 50 zones (1 root, mid zones,
terminal zones). Sites are seeded, so runs are comparable.

Site model: 70 % three-phase connectors (all three rotations), 30 % single-phase (MONO1-3);
EVs 50 % three-phase, 30 % single-phase, 20 % unknown; ratings 16 or 32 A, 20 % with a user
cap; 85 % of connectors want current; 5 % VIP; 2 % uncontrolled (fixed load). Budgets are set
below demand at every level (terminal 80 %, mid 70 %, root 40 % of what is below), so that
shedding and water-filling both happen. The "distinct maxima" column gives every connector a
different maximum current (the worst case for the sweep's breakpoints).
"""

from __future__ import annotations

from dataclasses import replace
import gc
from pathlib import Path
import random
import statistics
import sys
import time
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.ev_charging_expert.evcore.allocation import (
    ConnectorSnapshot,
    SiteSnapshot,
    Wiring,
    ZoneBudget,
    allocate,
    check,
)
from custom_components.ev_charging_expert.evcore.allocation.phases import (
    PATTERN_PHASES,
    load_pattern,
)

if TYPE_CHECKING:
    from collections.abc import Callable

SIZES = (10, 100, 1000, 5000)
ZONE_COUNTS = (20, 50)
MID_ZONES = {20: 4, 50: 7}


def repeats(connectors: int) -> int:
    return 15 if connectors >= 5000 else 51


def build_site(
    connectors: int, zones: int, *, seed: int = 1, distinct: bool = False
) -> SiteSnapshot:
    rnd = random.Random(seed)
    mids = [f"mid{m}" for m in range(MID_ZONES[zones])]
    leaves = [f"leaf{t}" for t in range(zones - 1 - len(mids))]
    parent = dict.fromkeys(mids, "root") | {
        leaf: mids[t % len(mids)] for t, leaf in enumerate(leaves)
    }
    cons = []
    for i in range(connectors):
        three = rnd.random() < 0.7
        wiring = rnd.choice(
            [Wiring.TRI123, Wiring.TRI231, Wiring.TRI312]
            if three
            else [Wiring.MONO1, Wiring.MONO2, Wiring.MONO3]
        )
        rating = round(rnd.uniform(6.0, 32.0), 6) if distinct else rnd.choice([16.0, 32.0])
        cap = float(rnd.randint(10, 32)) if rnd.random() < 0.2 else None
        fixed = None
        if rnd.random() < 0.02:
            fixed = (10.0, 10.0, 10.0) if three else (10.0, 0.0, 0.0)
        vip = rnd.random() < 0.05
        cons.append(
            ConnectorSnapshot(
                connector_id=f"cs{i // 2:04d}/{i % 2 + 1}",
                zone_id=rnd.choice(leaves),
                rating=rating,
                wants_current=rnd.random() < 0.85,
                wiring=wiring,
                ev_phases=rnd.choice([3, 3, 3, 3, 3, 1, 1, 1, None, None]),
                max_current=cap,
                session_energy_wh=round(rnd.uniform(0, 40_000), 1),
                charging_duration_s=round(rnd.uniform(0, 30_000), 1),
                vip_card=vip and rnd.random() < 0.5,
                vip_station=vip,
                fixed_load=fixed,
            )
        )
    demand: dict[str, list[float]] = {z: [0.0, 0.0, 0.0] for z in [*leaves, *mids, "root"]}
    for c in cons:
        for p in PATTERN_PHASES[load_pattern(c.wiring, c.ev_phases)]:
            demand[c.zone_id][p] += c.limit
    budgets: dict[str, tuple[float, float, float]] = {}
    for leaf in leaves:
        budgets[leaf] = tuple(max(6.0, 0.8 * d) for d in demand[leaf])
    for level, share in ((mids, 0.7), (["root"], 0.4)):
        for zone in level:
            below = [budgets[z] for z in budgets if parent.get(z) == zone]
            budgets[zone] = tuple(max(6.0, share * sum(b[p] for b in below)) for p in range(3))
    zone_list = [ZoneBudget(z, budgets[z], parent.get(z)) for z in budgets]
    return SiteSnapshot(tuple(zone_list), tuple(cons), 0.0)


def median_ms(function: Callable[[], object], count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(n: int) -> list[float]:
    """Median ms: allocate on 20 and 50 zones, held state, distinct maxima, check, snapshot."""
    count = repeats(n)
    small, site, distinct = build_site(n, 20), build_site(n, 50), build_site(n, 50, distinct=True)
    first = allocate(site)
    if problems := check(site, first):
        raise SystemExit(f"guard failed: {problems[:3]}")
    # Between two revisits: the previous state holds the suspensions.
    held = replace(site, now=60.0, state=first.state)
    return [
        median_ms(lambda: allocate(small), count),
        median_ms(lambda: allocate(site), count),
        median_ms(lambda: allocate(held), count),
        median_ms(lambda: allocate(distinct), count),
        median_ms(lambda: check(site, first), count),
        median_ms(lambda: SiteSnapshot(site.zones, site.connectors, 0.0), count),
    ]


def reasons_summary(n: int) -> str:
    counts: dict[str, int] = {}
    for reason in allocate(build_site(n, 50)).reasons.values():
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


COLUMNS = (
    "allocate 20 zones",
    "allocate 50 zones",
    "50 z, held state",
    "50 z, distinct max",
    "check 50 z",
    "snapshot 50 z",
)


def main() -> None:
    gc.collect()
    print(f"median ms per call (Python {sys.version.split()[0]})")
    print(f"{'connectors':>10} | " + " | ".join(COLUMNS))
    for n in SIZES:
        cells = [f"{ms:>{len(title)}.3f}" for ms, title in zip(measure(n), COLUMNS, strict=True)]
        print(f"{n:>10} | " + " | ".join(cells))
    print()
    for n in SIZES:
        print(f"reasons, {n} connectors, 50 zones: {reasons_summary(n)}")


if __name__ == "__main__":
    main()
