"""MQTT export benchmark (issue 12 (b)): messages per second and the CPU the export adds.

Two servers, each in its own process, loaded the same way by bench/ocpp_ingest.py's load
generator (N raw chargers over websockets: BootNotification, StatusNotifications, then
MeterValues with 11 sampled values every T seconds, spread evenly):

  ours   evcore's Controller alone, as ocpp_ingest's "ours" builds it: ingest only
  mqtt   the same Controller with the MQTT state exporter (evcore/export) publishing to a real
         broker (Debian's mosquitto on a free loopback port) through a paho client, the library
         HA's mqtt integration publishes with (its network loop in a thread here, in HA's event
         loop there)

Measured: the server process's CPU share in the paced window (psutil, whole process: the paho
thread included) for both, and the added share; on the broker, a subscriber to `<prefix>/#`
counts the state messages per second in the same window, the objects they are about, and the
shortest gap between two messages about the same object (the coalescing interval must hold).

    .venv/bin/python bench/mqtt_export.py                  # N = 1000, T = 10 s, 60 s window
    .venv/bin/python bench/mqtt_export.py --quick          # N = 50, 10 s window
    .venv/bin/python bench/mqtt_export.py --n 1000 --repeat 3

Results: a table on stdout, JSON and Markdown in bench/results/; docs/performance.md records a
run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from pathlib import Path
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import HOST  # noqa: E402
from bench.harness.core import bench_controller  # noqa: E402
from bench.harness.processes import free_port, python_env, running_server  # noqa: E402
from bench.harness.report import Table, fmt, save_results, utc_stamp, versions  # noqa: E402

INGEST = ROOT / "bench" / "ocpp_ingest.py"
PREFIX = "bench"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


# ---------------------------------------------------------------------------------- broker
@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """Debian's mosquitto on a free loopback port (no persistence); its port."""
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n")
    with running_server(
        [MOSQUITTO, "-c", str(config)],
        log=workdir / "mosquitto.log",
        port=port,
        startup_timeout=20.0,
    ):
        yield port


class Counter:
    """A subscriber that time-stamps every state message by topic."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho  # noqa: PLC0415

        self.arrivals: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.on_message = self._on_message
        self.client.connect(HOST, port)
        self.client.subscribe(f"{PREFIX}/#", qos=0)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self._lock:
            self.arrivals.append((time.time(), message.topic))

    def window(self, start: float, end: float, interval: float) -> dict[str, Any]:
        """Messages per second, objects, and the coalescing check over [start, end]."""
        with self._lock:
            arrivals = [(t, topic) for t, topic in self.arrivals if start <= t <= end]
        last: dict[str, float] = {}
        shortest = None
        for t, topic in arrivals:
            if topic in last:
                gap = t - last[topic]
                shortest = gap if shortest is None else min(shortest, gap)
            last[topic] = t
        seconds = end - start
        objects = {topic for _, topic in arrivals if not topic.endswith("/availability")}
        return {
            "mqtt_messages": len(arrivals),
            "mqtt_messages_per_s": len(arrivals) / seconds if seconds > 0 else None,
            "mqtt_objects": len(objects),
            "mqtt_per_object_per_s": len(arrivals) / seconds / len(objects) if objects else None,
            "mqtt_shortest_gap_s": shortest,
            "mqtt_interval_s": interval,
        }

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---------------------------------------------------------------------------------- servers
async def serve(target: str, port_file: Path, broker_port: int, interval: float) -> None:
    """The Controller as ocpp_ingest's "ours"; with the exporter when target is "mqtt"."""
    import paho.mqtt.client as paho  # noqa: PLC0415

    from custom_components.ev_charging_expert.evcore.export.exporter import (  # noqa: PLC0415
        ExportSettings,
        StateExporter,
    )

    controller = bench_controller(heartbeat_interval=300)
    await controller.restore()
    exporter = None
    client = None
    if target == "mqtt":
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-export")
        client.max_queued_messages_set(0)
        client.connect(HOST, broker_port)
        client.loop_start()

        def publish(topic: str, payload: str, *, retain: bool) -> None:
            client.publish(topic, payload, qos=0, retain=retain)

        exporter = StateExporter(controller, publish, ExportSettings(PREFIX, interval))
        exporter.start()
    await controller.start(host=HOST, port=0)
    port_file.write_text(str(controller.port))  # noqa: ASYNC240  # once, before any load
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if exporter is not None:
        print(json.dumps({"exporter": exporter.diagnostics()}), flush=True)
        exporter.stop()
    if client is not None:
        client.loop_stop()
        client.disconnect()
    await controller.stop()


# ---------------------------------------------------------------------------------- one point
def run_point(
    target: str, args: argparse.Namespace, workdir: Path, broker_port: int, counter: Counter
) -> dict[str, Any]:
    """Start the server, run the ingest load generator's paced phase, collect both sides."""
    point = workdir / f"{target}-{args.n}"
    point.mkdir(parents=True)
    port_file = point / "port"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_serve",
        target,
        str(port_file),
        str(broker_port),
        str(args.interval),
    ]
    with running_server(
        cmd, log=point / "server.log", port_file=port_file, startup_timeout=60.0
    ) as server:
        load = [
            sys.executable,
            str(INGEST),
            "_load",
            f"--port={server.port}",
            f"--server-pid={server.pid}",
            f"--n={args.n}",
            f"--period={args.period}",
            f"--duration={args.duration}",
            "--sat-duration=0",
            "--settle-max=30",
            "--idle-sample=1",
        ]
        out = subprocess.run(  # noqa: S603
            load,
            cwd=ROOT,
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=300 + 3 * args.duration + args.n * 0.1,
            check=False,
        )
        finished = time.time()
        if out.returncode != 0:
            msg = f"load generator failed for {target}:\n{out.stderr[-3000:]}"
            raise RuntimeError(msg)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        paced = result.get("paced") or {}
        # The generator stops right after its window: the window is the last `window_s`.
        window = float(paced.get("window_s") or args.duration)
        end = finished - 0.3
        result.update(counter.window(end - window, end, args.interval))
    text = (point / "server.log").read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith('{"exporter"'):
            result["exporter"] = json.loads(line)["exporter"]
    result["target"] = target
    return result


# ---------------------------------------------------------------------------------- main
def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/mqtt_export.py", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="simulated chargers")
    parser.add_argument("--period", type=float, default=10.0, help="MeterValues period (s)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured window (s)")
    parser.add_argument("--interval", type=float, default=1.0, help="export interval (s)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="N = 50, a 10 s window")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.duration = 50, 10.0
    return args


_PACED = frozenset({"messages_per_s", "server_cpu_share", "cpu_s_per_1000"})


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [(r.get("paced") or {}).get(key) if key in _PACED else r.get(key) for r in runs]
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "_serve":
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(serve(argv[1], Path(argv[2]), int(argv[3]), float(argv[4])))
        return 0
    args = _parse(argv)
    if not Path(MOSQUITTO).exists():
        print("mqtt_export: Debian's mosquitto is not installed (apt-get install mosquitto)")
        return 1
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "mqtt": []}
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        workdir = Path(tmp)
        with mosquitto(workdir) as broker_port:
            counter = Counter(broker_port)
            try:
                for repeat in range(args.repeat):
                    for target in ("ours", "mqtt"):
                        point_dir = workdir / f"r{repeat}"
                        point_dir.mkdir(exist_ok=True)
                        result = run_point(target, args, point_dir, broker_port, counter)
                        runs[target].append(result)
                        print(json.dumps(_summary(result)), flush=True)
            finally:
                counter.stop()
    ours = _median(runs["ours"], "server_cpu_share")
    mqtt = _median(runs["mqtt"], "server_cpu_share")
    added = (mqtt - ours) / ours if ours and mqtt is not None else None
    table = Table(
        ("target", 6),
        ("N", 5),
        ("ingest msg/s", 12),
        ("server CPU %", 12),
        ("CPU s/1000 msg", 14),
        ("MQTT msg/s", 10),
        ("objects", 7),
        ("msg/object/s", 12),
        ("shortest gap s", 14),
    )
    rows = [
        [
            target,
            str(args.n),
            fmt(_median(results, "messages_per_s")),
            fmt(100 * cpu if (cpu := _median(results, "server_cpu_share")) is not None else None),
            fmt(_median(results, "cpu_s_per_1000"), 3),
            fmt(_median(results, "mqtt_messages_per_s")),
            fmt(_median(results, "mqtt_objects"), 0),
            fmt(_median(results, "mqtt_per_object_per_s"), 3),
            fmt(_median(results, "mqtt_shortest_gap_s"), 3),
        ]
        for target, results in runs.items()
    ]
    added_text = "-" if added is None else f"{100 * added:+.1f} %"
    print(table.header())
    for row in rows:
        print(table.row(row))
    markdown = "\n".join(
        [*table.markdown(rows), "", f"CPU the export adds over ingest alone: {added_text}", ""]
    )
    print(f"CPU the export adds over ingest alone: {added_text}")
    stamp = utc_stamp()
    payload = {
        "settings": vars(args),
        "runs": runs,
        "added_cpu": added,
        "versions": versions("paho-mqtt"),
    }
    path = save_results("mqtt_export", stamp, payload, markdown)
    print(f"results: {path}")
    return 0


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    paced = result.get("paced") or {}
    return {
        "target": result["target"],
        "connected": result.get("connected"),
        "ingest_msg_s": paced.get("messages_per_s"),
        "server_cpu_share": paced.get("server_cpu_share"),
        "mqtt_msg_s": result.get("mqtt_messages_per_s"),
        "mqtt_objects": result.get("mqtt_objects"),
        "shortest_gap_s": result.get("mqtt_shortest_gap_s"),
    }


if __name__ == "__main__":
    sys.exit(main())
