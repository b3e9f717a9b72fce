"""Output of the benchmarks: numbers, tables, profiles, versions, result files."""

from __future__ import annotations

from datetime import UTC, datetime
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from . import RESULTS, ROOT

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence
    import cProfile
    from pathlib import Path


def fmt(value: float | None, digits: int = 1) -> str:
    """`value` with `digits` decimals; "-" for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def loadavg_text(loadavg: Sequence[float]) -> str:
    """A load average triple as printed by `uptime`."""
    return " ".join(f"{x:.2f}" for x in loadavg)


class Table:
    """Columns of a result table: fixed-width rows for the console, Markdown for the files."""

    def __init__(self, *columns: tuple[str, int], text_columns: Collection[int] = (0,)) -> None:
        self.columns = columns
        """(title, console width) of each column."""
        self.text_columns = text_columns
        """Columns aligned left in Markdown (the others are numbers, aligned right)."""

    def header(self) -> str:
        """The console header line."""
        return " | ".join(f"{title:>{width}}" for title, width in self.columns)

    def row(self, cells: Sequence[str]) -> str:
        """One console line."""
        return " | ".join(
            f"{cell:>{width}}" for cell, (_, width) in zip(cells, self.columns, strict=True)
        )

    def markdown(self, rows: Iterable[Sequence[str]]) -> list[str]:
        """The table in Markdown, one line per element."""
        align = ("---" if i in self.text_columns else "--:" for i in range(len(self.columns)))
        return [
            "| " + " | ".join(title for title, _ in self.columns) + " |",
            "|" + "|".join(align) + "|",
            *("| " + " | ".join(cells) + " |" for cells in rows),
        ]


def write_cprofile(
    profiler: cProfile.Profile, path: Path, *, sorts: Sequence[tuple[str, int]]
) -> Path:
    """The profile as text at `path` (the top functions by each (key, count) of `sorts`), and
    as pstats data next to it (.prof, for snakeviz and the like)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    for key, count in sorts:
        stats.sort_stats(key).print_stats(count)
    path.write_text(out.getvalue())
    profiler.dump_stats(str(path.with_suffix(".prof")))
    return path


def package_version(name: str) -> str:
    """The installed version of distribution `name`, "?" when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        return subprocess.run(  # noqa: S603
            [git, *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_version(subdir: str = "custom_components/ev_charging_expert") -> str:
    """Git HEAD, plus a digest of the Python files under `subdir` when they differ from it."""
    head = _git("rev-parse", "--short", "HEAD") or "?"
    if not _git("status", "--porcelain", "--", subdir):
        return head
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted((ROOT / subdir).rglob("*.py")):
        digest.update(path.read_bytes())
    return f"{head}+dirty:{digest.hexdigest()[:8]}"


def versions(*packages: str) -> dict[str, Any]:
    """Python, cores and the versions of `packages` (by distribution name)."""
    return {
        "python": f"Python {platform.python_version()}",
        "cores": os.cpu_count(),
        **{name: package_version(name) for name in packages},
    }


def utc_stamp() -> str:
    """Now, for result file names: 20260301T101500Z."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def save_results(name: str, stamp: str, payload: dict[str, Any], markdown: str) -> Path:
    """bench/results/<name>-<stamp>.json, <name>-latest.json and <name>-latest.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, default=str) + "\n"
    stamped = RESULTS / f"{name}-{stamp}.json"
    for path in (stamped, RESULTS / f"{name}-latest.json"):
        path.write_text(text)
    (RESULTS / f"{name}-latest.md").write_text(markdown)
    return stamped
