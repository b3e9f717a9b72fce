"""Child processes of the benchmarks: helpers driven over pipes, and servers under test."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import psutil

from . import HOST, ROOT
from .measure import process_cpu_seconds

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path


def python_env(**extra: str) -> dict[str, str]:
    """This environment, with the repository root first on PYTHONPATH (plus `extra`)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def emit(obj: dict[str, Any]) -> None:
    """Write one JSON line to stdout (a helper process answering its parent)."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class JsonLineProcess:
    """`python <script> <args>` driven through its pipes: commands in, JSON lines (`emit`) out."""

    def __init__(self, script: str | Path, *args: str) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=python_env(),
            cwd=ROOT,
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    async def read(self, timeout: float) -> dict[str, Any]:
        """Next JSON line from the process (blocking read in a thread)."""
        assert self.proc.stdout is not None  # noqa: S101
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line:
            raise RuntimeError(f"helper process exited ({self.proc.poll()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def send(self, command: str) -> None:
        """Write one command line."""
        assert self.proc.stdin is not None  # noqa: S101
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def cpu_seconds(self) -> float:
        """User + system CPU of the process."""
        return process_cpu_seconds(self.pid)

    def close(self) -> None:
        """Ask it to quit; kill it if it does not."""
        with contextlib.suppress(Exception):
            self.send("quit")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    """A free loopback TCP port (free now; the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until `proc` listens on `port`."""
    # Look for the listening socket rather than connect: a probe connection would show up in
    # the server's log as a failed opening handshake.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(psutil.Error):
            for conn in psutil.Process(proc.pid).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port} after {timeout:.0f} s")


def read_port_file(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The port a server wrote to `path` once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text())
        time.sleep(0.05)
    raise TimeoutError(f"no port in {path} after {timeout:.0f} s")


@dataclass
class RunningServer:
    """A server process under test, listening."""

    pid: int
    port: int
    startup_s: float
    log: Path


@contextlib.contextmanager
def running_server(
    cmd: Sequence[str],
    *,
    log: Path,
    startup_timeout: float,
    port: int | None = None,
    port_file: Path | None = None,
    env: dict[str, str] | None = None,
    started: float | None = None,
) -> Iterator[RunningServer]:
    """Start `cmd` (output to `log`), wait until it listens on `port` (or on the port it
    writes to `port_file`), stop it on exit. `started` (perf_counter) is when its startup began,
    if earlier than now (its configuration written first)."""
    started = time.perf_counter() if started is None else started
    with log.open("wb") as log_file:
        proc = subprocess.Popen(  # noqa: S603
            list(cmd), cwd=ROOT, env=env or python_env(), stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        if port is None:
            if port_file is None:
                raise ValueError("running_server needs a port or a port file")
            port = read_port_file(port_file, proc, startup_timeout)
        wait_listening(port, proc, startup_timeout)
        yield RunningServer(proc.pid, port, time.perf_counter() - started, log)
    finally:
        stop(proc, 60.0)
