"""Measurement helpers: percentiles, CPU of processes and threads, waiting for quiet."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
import resource
import threading
import time
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (nearest rank, no interpolation); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[rank]


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds, None stays None."""
    return None if seconds is None else seconds * 1000.0


def _stat_cpu(stat: str, ticks: int) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads); NaN when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        return _stat_cpu(stat, os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError):
        return float("nan")


def thread_cpu_seconds() -> dict[int, float]:
    """CPU seconds per thread of this process (native thread id -> user + system)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for task in Path("/proc/self/task").iterdir():
            try:
                out[int(task.name)] = _stat_cpu((task / "stat").read_text(encoding="ascii"), ticks)
            except (OSError, IndexError, ValueError):
                continue
    return out


def other_threads_cpu(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds of the threads other than this one between two `thread_cpu_seconds()`."""
    main = threading.get_native_id()
    return sum(v - before.get(tid, 0.0) for tid, v in after.items() if tid != main)


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children, all threads."""
    total = 0.0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident set size of a process and its children."""
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def own_cpu_seconds() -> float:
    """CPU of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_quiet(
    cpu_clocks: Sequence[Callable[[], float]],
    *,
    share: float,
    sample: float,
    max_wait: float,
) -> float:
    """Wait until every clock (CPU seconds of a process) advances by less than `share` of a
    core over `sample` s, twice in a row, or `max_wait` s; return the wait."""
    start = time.perf_counter()
    quiet = 0
    while quiet < 2 and time.perf_counter() - start < max_wait:
        before = [clock() for clock in cpu_clocks]
        await asyncio.sleep(sample)
        busiest = max(clock() - b for clock, b in zip(cpu_clocks, before, strict=True))
        quiet = quiet + 1 if busiest / sample < share else 0
    return time.perf_counter() - start


def raise_nofile() -> None:
    """Raise this process's open-file limit to the hard limit (one socket per charger)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
