"""Charge data records: a million sessions in SQLite and PostgreSQL, and the cost on OCPP.

Wall times on a shared machine depend on the other work; the CPU time of this process
(`*_cpu_s`) is what the export costs (the database server's CPU is not in it).

Storage (per database):
  insert     N sessions (default 1,000,000, a year of them over 200 stations) written through
             the store's writer path (batched upserts, one commit per batch)
  size       the database's size on disk (SQLite file + WAL; pg_database_size)
  export     CSV of all of them, streamed (`write_csv(iter_export())`): time and the growth
             of the process's peak RSS during it (constant memory: a few MB whatever N)
  month      CSV of one month (~N/12 sessions)
  list       `list_page` first page (50, newest first): median of 20, unfiltered and for one
             station

Latency (per database, and without a store): this process runs evcore's Controller on the
system clock with the recorder attached (or not); a child process (`--client`) connects C
raw OCPP 1.6 chargers (default 1000), then C/10 of them run sessions one message at a time:
Heartbeat, StartTransaction, MeterValues, StopTransaction, each a round trip timed by the
charger. Reported: p50/p99 per action (the store's cost: Start/Stop p99 with it minus
without it, and over Heartbeat), and the recorder's own work on the event loop per session
start or end (p50/p99/max, the part of a round trip the store adds directly).

    .venv/bin/python bench/sessions.py                      # 1,000,000 sessions, 1000 chargers
    .venv/bin/python bench/sessions.py --n 100000 --chargers 200
    .venv/bin/python bench/sessions.py --quick              # smoke: 20,000 sessions, 50 chargers
    .venv/bin/python bench/sessions.py --databases sqlite   # skip PostgreSQL

PostgreSQL: Debian's binaries (`initdb`, `pg_ctl`), started in a temp dir on a free loopback
port (as user `postgres` when run as root); skipped with a message when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import pwd
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.harness import HOST, RESULTS
from bench.harness.measure import percentile
from bench.harness.ocpp_client import (
    SMART_CHARGER_CONFIGURATION,
    RawCharger,
    compact,
    connect,
    connect_all,
)
from bench.harness.processes import JsonLineProcess, emit, free_port
from custom_components.ev_charging_expert.evcore.clock import SystemClock
from custom_components.ev_charging_expert.evcore.controller import Controller
from custom_components.ev_charging_expert.evcore.events import SessionEnded, SessionStarted
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy
from custom_components.ev_charging_expert.evcore.sessions import (
    RECORDER_EVENTS,
    EndedBy,
    SessionFilter,
    SessionRecord,
    SessionRecorder,
    SessionStatus,
    SessionStore,
    write_csv,
)
from custom_components.ev_charging_expert.evcore.sessions.schema import ensure_schema
from custom_components.ev_charging_expert.evcore.sessions.store import _upsert
from custom_components.ev_charging_expert.evcore.site import MemoryStore, SiteSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

YEAR = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 5000


# ---------------------------------------------------------------------- PostgreSQL
@contextlib.contextmanager
def postgres() -> Iterator[sa.URL | None]:
    """A throwaway PostgreSQL server on loopback (None when it cannot run here)."""
    initdb = shutil.which("initdb") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None
    )
    pg_ctl = shutil.which("pg_ctl") or (str(Path(initdb).parent / "pg_ctl") if initdb else None)
    if initdb is None or pg_ctl is None:
        print("bench: PostgreSQL binaries not found (apt-get install postgresql): skipped")
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="evce-bench-pg-"))
    root.chmod(0o755)
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    try:
        subprocess.run(  # noqa: S603
            [*prefix, initdb, "-D", str(data), "-U", "evce", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        subprocess.run(  # noqa: S603
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                f"-p {port} -k {root} -c listen_addresses={HOST}",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield sa.URL.create(
            "postgresql+psycopg", username="evce", host=HOST, port=port, database="postgres"
        )
    finally:
        subprocess.run(  # noqa: S603
            [*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def database(kind: str, workdir: Path, server: sa.URL | None, name: str) -> sa.URL:
    """An empty database of `kind`."""
    if kind == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return sa.make_url(f"sqlite:///{path}")
    assert server is not None  # noqa: S101
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.set(database=name)


def size_mb(store: SessionStore) -> float:
    url = store.url
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        total = sum(
            Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()
        )
        return total / 1e6
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.pg_database_size(url.database))).scalar_one()
    return float(value) / 1e6


# ---------------------------------------------------------------------- storage
def fake_record(i: int, rng: random.Random, n: int) -> SessionRecord:
    start = YEAR + timedelta(seconds=i * (365 * 86400 / n))
    duration = rng.uniform(600, 36000)
    energy = rng.uniform(500, 60000)
    off = energy * rng.uniform(0, 0.6)
    record = SessionRecord(
        session_id=f"{i:032x}",
        transaction_id=i + 1,
        station_id=f"CP-{i % 200:03d}",
        connector_id=1 + i % 2,
        id_tag=f"TAG{rng.randrange(5000):05d}",
        started_at=start,
        start_received_at=start,
        meter_start_wh=float(i * 10),
        zone_id=f"zone{i % 8}",
        card_comment="Fleet" if i % 7 == 0 else None,
        status=SessionStatus.CLOSED,
        ended_by=EndedBy.CHARGER,
        stop_reason="EVDisconnected",
        stopped_at=start + timedelta(seconds=duration),
        stop_received_at=start + timedelta(seconds=duration),
        meter_stop_wh=float(i * 10) + energy,
        energy_wh=energy,
        plugged_s=duration,
        charging_s=duration * 0.7,
        peak_power_w=11000.0,
        tou_wh={"Peak": energy - off, "OffPeak": off},
    )
    record.updated_at = record.stop_received_at
    return record


def bench_storage(kind: str, url: sa.URL, n: int, workdir: Path) -> dict[str, Any]:
    store = SessionStore(url)
    ensure_schema(store.engine)
    store.open()
    rng = random.Random(1)
    started, cpu = time.perf_counter(), time.process_time()
    batch: list[dict[str, Any]] = []
    for i in range(n):
        batch.append(fake_record(i, rng, n).to_row())
        if len(batch) == BATCH:
            with store.engine.begin() as conn:
                _upsert(conn, batch)
            batch = []
    if batch:
        with store.engine.begin() as conn:
            _upsert(conn, batch)
    insert_s = time.perf_counter() - started
    insert_cpu = time.process_time() - cpu
    if kind == "sqlite":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE evce_sessions")
    size = size_mb(store)

    out = workdir / "export.csv"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    rows = write_csv(out, store.iter_export(SessionFilter()), periods=("Peak", "OffPeak"))
    export_s = time.perf_counter() - started
    export_cpu = time.process_time() - cpu
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    csv_mb = out.stat().st_size / 1e6

    month = SessionFilter(start=YEAR + timedelta(days=181), end=YEAR + timedelta(days=212))
    started = time.perf_counter()
    month_rows = write_csv(out, store.iter_export(month), periods=("Peak", "OffPeak"))
    month_s = time.perf_counter() - started
    out.unlink()

    def median_ms(query: SessionFilter) -> float:
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            store.list_page(query, limit=50)
            times.append((time.perf_counter() - t0) * 1000)
        return sorted(times)[len(times) // 2]

    list_ms = median_ms(SessionFilter())
    list_station_ms = median_ms(SessionFilter(station_id="CP-042"))
    store.close()
    return {
        "database": kind,
        "sessions": n,
        "insert_s": round(insert_s, 1),
        "insert_per_s": round(n / insert_s),
        "insert_cpu_s": round(insert_cpu, 1),
        "size_mb": round(size, 1),
        "export_s": round(export_s, 1),
        "export_cpu_s": round(export_cpu, 1),
        "export_rows": rows,
        "export_csv_mb": round(csv_mb, 1),
        "export_peak_rss_growth_mb": round(rss_growth, 1),
        "month_rows": month_rows,
        "month_s": round(month_s, 2),
        "list_first_page_ms": round(list_ms, 1),
        "list_station_first_page_ms": round(list_station_ms, 1),
    }


# ---------------------------------------------------------------------- latency: chargers
ANSWERS = {
    "GetConfiguration": SMART_CHARGER_CONFIGURATION,
    "SetChargingProfile": compact({"status": "Accepted"}),
    "ClearChargingProfile": compact({"status": "Accepted"}),
    "ChangeConfiguration": compact({"status": "Accepted"}),
    "TriggerMessage": compact({"status": "Accepted"}),
}


async def client_main(url: str, count: int, active: int, rounds: int) -> None:
    async def start(index: int) -> RawCharger:
        ws = await connect(f"{url}/B{index:05d}")
        charger = RawCharger(index, ws, ANSWERS, timeout=60)
        boot = compact({"chargePointVendor": "Bench", "chargePointModel": "Raw"})
        await charger.call("BootNotification", boot)
        await charger.call(
            "StatusNotification",
            compact({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        )
        return charger

    chargers, failures = await connect_all(count, start)
    serving = [asyncio.create_task(c.serve()) for c in chargers[active:]]
    emit({"connected": len(chargers), "failures": failures[:3]})
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    times: dict[str, list[float]] = {
        "Heartbeat": [],
        "StartTransaction": [],
        "MeterValues": [],
        "StopTransaction": [],
    }

    async def timed(charger: RawCharger, action: str, payload: str) -> str | None:
        t0 = time.perf_counter()
        charger.seq += 1
        uid = str(charger.seq)
        await charger.ws.send(f'[2,"{uid}","{action}",{payload}]')
        while True:
            msg = await charger.ws.recv()
            if isinstance(msg, str) and msg.startswith(f'[3,"{uid}"'):
                times[action].append(time.perf_counter() - t0)
                return msg
            if isinstance(msg, str) and msg.startswith(f'[4,"{uid}"'):
                return None
            await charger.answer(msg)  # type: ignore[arg-type]

    async def session(charger: RawCharger, r: int) -> None:
        now = datetime.now(UTC)
        await timed(charger, "Heartbeat", "{}")
        answer = await timed(
            charger,
            "StartTransaction",
            compact(
                {
                    "connectorId": 1,
                    "idTag": f"T{charger.index}",
                    "meterStart": r * 10000,
                    "timestamp": now.isoformat(),
                }
            ),
        )
        tx = json.loads(answer)[2]["transactionId"] if answer else 0
        sample = {
            "timestamp": (now + timedelta(seconds=60)).isoformat(),
            "sampledValue": [
                {
                    "value": str(r * 10000 + 100),
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                }
            ],
        }
        await timed(
            charger,
            "MeterValues",
            compact({"connectorId": 1, "transactionId": tx, "meterValue": [sample]}),
        )
        await timed(
            charger,
            "StopTransaction",
            compact(
                {
                    "transactionId": tx,
                    "meterStop": r * 10000 + 200,
                    "timestamp": (now + timedelta(seconds=120)).isoformat(),
                    "reason": "EVDisconnected",
                }
            ),
        )

    # One message at a time: a round trip is the server's work on it, not a queue behind
    # the others (the other chargers stay connected and answer the server).
    for r in range(rounds):
        for charger in chargers[:active]:
            await session(charger, r)
    emit({"times": times})
    await asyncio.to_thread(sys.stdin.readline)
    for task in serving:
        task.cancel()


async def latency(
    url: sa.URL | None, chargers: int, rounds: int, settle: float = 10.0
) -> dict[str, Any]:
    # The stations are registered already (as the installer left them): the admission
    # limits on unknown identities are not what is measured here.
    registry = {
        "version": 1,
        "next_transaction_id": 1,
        "stations": {f"B{i:05d}": {"registration": "accepted"} for i in range(chargers)},
    }
    controller = Controller(
        clock=SystemClock(),
        store=MemoryStore(registry),
        settings=SiteSettings(new_charger_policy=NewChargerPolicy.ACCEPT, heartbeat_interval=3600),
    )
    await controller.restore()
    store = recorder = None
    loop_work: list[float] = []
    if url is not None:
        store = SessionStore(url)
        recorder = SessionRecorder(controller.site, store, clock=controller.clock)
        await recorder.restore()
        store.start()
        inner = recorder.on_event

        def on_event(event: Any) -> None:
            t0 = time.perf_counter()
            inner(event)
            if isinstance(event, (SessionStarted, SessionEnded)):
                loop_work.append(time.perf_counter() - t0)

        controller.subscribe(on_event, kinds=RECORDER_EVENTS)
    port = free_port()
    await controller.start(host=HOST, port=port, ping_interval=None)
    active = max(chargers // 10, 1)
    client = JsonLineProcess(
        Path(__file__),
        "--client",
        f"ws://{HOST}:{port}/ocpp",
        str(chargers),
        str(active),
        str(rounds),
    )
    try:
        ready = await client.read(timeout=900)
        if ready["failures"]:
            print(f"bench: {chargers - ready['connected']} chargers failed: {ready['failures']}")
        await asyncio.sleep(settle)  # boot-time configuration reads and profiles are over
        client.send("go")
        result = await client.read(timeout=900)
        times = result["times"]
    finally:
        client.close()
        await controller.stop()
        if store is not None:
            await store.flush()
            written = store.count()
            store.close()
    summary: dict[str, Any] = {"connected": ready["connected"], "active": active, "rounds": rounds}
    for action, values in times.items():
        summary[f"{action}_p50_ms"] = round((percentile(values, 50) or 0) * 1000, 2)
        summary[f"{action}_p99_ms"] = round((percentile(values, 99) or 0) * 1000, 2)
    if store is not None:
        summary["records_written"] = written
        summary["recorder_on_loop_p50_us"] = round((percentile(loop_work, 50) or 0) * 1e6, 1)
        summary["recorder_on_loop_p99_us"] = round((percentile(loop_work, 99) or 0) * 1e6, 1)
        summary["recorder_on_loop_max_us"] = round(max(loop_work, default=0) * 1e6, 1)
    return summary


# ---------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--skip-storage", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--quick", action="store_true")
    return parser.parse_args()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, count, active, rounds = sys.argv[2], *map(int, sys.argv[3:6])
        asyncio.run(client_main(url, count, active, rounds))
        return 0
    args = parse_args()
    if args.quick or os.environ.get("BENCH_QUICK"):
        args.n, args.chargers, args.rounds = 20_000, 50, 3
    kinds = [k for k in args.databases.split(",") if k]
    results: dict[str, Any] = {"storage": [], "latency": {}}
    workdir = Path(tempfile.mkdtemp(prefix="evce-bench-sessions-"))
    try:
        with postgres() if "postgresql" in kinds else contextlib.nullcontext() as server:
            usable = [k for k in kinds if k == "sqlite" or server is not None]
            if not args.skip_storage:
                for kind in usable:
                    url = database(kind, workdir, server, "bench_storage")
                    row = bench_storage(kind, url, args.n, workdir)
                    print(json.dumps(row))
                    results["storage"].append(row)
            if not args.skip_latency:
                plan: list[tuple[str, sa.URL | None]] = [("no store", None)]
                plan += [(k, database(k, workdir, server, "bench_latency")) for k in usable]
                for label, url in plan:
                    row = asyncio.run(latency(url, args.chargers, args.rounds))
                    print(json.dumps({"store": label, **row}))
                    results["latency"][label] = row
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sessions.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
