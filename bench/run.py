"""Run every benchmark in bench/ in turn (`make bench`).

A benchmark is a module bench/<name>.py with a top-level `main()`; run.py itself and modules
whose name starts with "_" are not benchmarks. Each one runs in its own process, from the
repository root, as `main()` with `sys.argv = [its path, *forwarded arguments]`, and fails when
it raises or returns a non-zero int.

    .venv/bin/python bench/run.py                    # all of them
    .venv/bin/python bench/run.py ocpp_ingest        # some of them, by name
    .venv/bin/python bench/run.py --quick            # smoke run: BENCH_QUICK=1 for all, and
                                                     # --quick for those that accept it
    .venv/bin/python bench/run.py ocpp_ingest -- --n 1000 --targets ours
    .venv/bin/python bench/run.py working_day       # consumption optimisation off vs on
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path
import subprocess
import sys
import time

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Imports the module under its own name (not __main__) and calls its main().
_RUNNER = """
import importlib.util, sys
path = sys.argv[1]
sys.argv = sys.argv[1:]
spec = importlib.util.spec_from_file_location("bench_" + path.rsplit("/", 1)[-1][:-3], path)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
result = module.main()
sys.exit(result if isinstance(result, int) else 0)
"""


def _tree(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def has_main(path: Path) -> bool:
    """Whether the module defines a top-level `main` function."""
    tree = _tree(path)
    return tree is not None and any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
        for node in tree.body
    )


def accepts_quick(path: Path) -> bool:
    """Whether the module mentions a `--quick` option (then it gets one in quick mode)."""
    tree = _tree(path)
    return tree is not None and any(
        isinstance(node, ast.Constant) and node.value == "--quick" for node in ast.walk(tree)
    )


def discover() -> list[Path]:
    """Benchmark modules, by name."""
    return [
        path
        for path in sorted(BENCH.glob("*.py"))
        if path.name != Path(__file__).name and not path.name.startswith("_") and has_main(path)
    ]


def run(path: Path, args: list[str], *, quick: bool) -> int:
    """Run one benchmark in its own process; return its exit code."""
    forwarded = list(args)
    if quick and accepts_quick(path) and "--quick" not in forwarded:
        forwarded.insert(0, "--quick")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if quick:
        env["BENCH_QUICK"] = "1"
    cmd = [sys.executable, "-c", _RUNNER, str(path), *forwarded]
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode  # noqa: S603


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks in turn; non-zero when any failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    forwarded: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, forwarded = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    available = {path.stem: path for path in discover()}
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [name for name in args.names if name not in available]
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    selected = [available[name] for name in args.names] if args.names else list(available.values())
    if not selected:
        print("no benchmarks found in bench/")
        return 1

    outcomes: list[tuple[str, int, float]] = []
    for path in selected:
        print(f"=== {path.stem}", flush=True)
        started = time.monotonic()
        code = run(path, forwarded, quick=args.quick)
        outcomes.append((path.stem, code, time.monotonic() - started))
    print("\n=== summary")
    for name, code, seconds in outcomes:
        print(f"{name:24} {'ok' if code == 0 else f'FAILED ({code})':12} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
