"""What the benchmarks share (bench/*.py import it as `bench.harness`).

- `ocpp_client`: `RawCharger`, the minimal OCPP-J 1.6 websocket client that drives many
  chargers from one process (pre-serialised frames out, only the server's CALLs parsed in).
- `processes`: child processes: JSON lines over pipes, a server that must listen on a port,
  free ports, the Python environment of a child.
- `ha`: Home Assistant with the integration in a child process (config entry pre-stored).
- `measure`: percentiles, CPU of processes and threads, waiting for quiet, file limits.
- `report`: number formatting, fixed-width and Markdown tables, cProfile dumps, versions of
  what was measured, result files in bench/results/.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
