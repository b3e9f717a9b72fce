"""The Home Assistant process of the demo, and the demo_config/ it runs on.

`prepare_config` writes a minimal configuration.yaml (once) and links the integration into
custom_components/; `HomeAssistant` runs `python -m homeassistant -c demo_config --skip-pip` as
a child process that dies with the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
import signal
import socket
import sys

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "ev_charging_expert"
HA_HOST = "127.0.0.1"
HA_PORT = 8123
HA_URL = f"http://{HA_HOST}:{HA_PORT}"
HA_RESTART_EXIT_CODE = 100  # what `homeassistant.restart` exits with

CONFIGURATION_YAML = f"""\
# Written by tools/demo (`make demo`); edit freely, the demo does not overwrite it.
# Only integrations whose requirements are pinned in requirements.txt: Home Assistant runs
# with --skip-pip and must not need to install anything.
homeassistant:
  name: EV Charging Expert demo
  unit_system: metric
  currency: EUR

http:
  server_host: {HA_HOST}
  server_port: {HA_PORT}

frontend:
config:
history:
logbook:
energy:
system_health:
input_boolean:

recorder:
  purge_keep_days: 3

logger:
  default: warning
  logs:
    custom_components.{DOMAIN}: info
    custom_components.{DOMAIN}.evcore.ocpp.v16.frames: warning
    homeassistant.setup: info
    homeassistant.requirements: info
    homeassistant.util.package: info
"""


class DemoError(Exception):
    """A step of the demo failed; the message says what to do."""


class HaExitedError(DemoError):
    """Home Assistant exited on its own."""

    def __init__(self, code: int | None, tail: str) -> None:
        super().__init__(f"Home Assistant exited (code {code}); last output:\n{tail}")
        self.code = code


# ---------------------------------------------------------------------- demo_config/
def prepare_config(config_dir: Path) -> None:
    """Create demo_config/ (configuration.yaml, integration symlink); reuse what exists."""
    config_dir.mkdir(exist_ok=True)
    configuration = config_dir / "configuration.yaml"
    if not configuration.exists():
        configuration.write_text(CONFIGURATION_YAML)
        print(f"demo: wrote {configuration.relative_to(REPO)}")
    components = config_dir / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / DOMAIN
    target = Path("..") / ".." / "custom_components" / DOMAIN  # relative: the repo may move
    if link.is_symlink() and link.resolve() == (REPO / "custom_components" / DOMAIN).resolve():
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        raise DemoError(f"{link} exists and is not a symlink; remove it and run again")
    link.symlink_to(target, target_is_directory=True)
    print(f"demo: linked {link.relative_to(REPO)} -> {target}")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# ---------------------------------------------------------------------- the HA process
def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM if the demo dies without cleaning up (no orphan)."""
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class HomeAssistant:
    """`python -m homeassistant -c demo_config` as a child process."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.console_log = config_dir / "ha-console.log"
        self.log = config_dir / "home-assistant.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start it in its own session: the demo decides when it stops."""
        console = self.console_log.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "homeassistant",
                "--config",
                str(self.config_dir),
                "--skip-pip",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            console.close()
        print(f"demo: Home Assistant started (pid {self.process.pid}), log: {self.log}")

    @property
    def running(self) -> bool:
        """The process has not exited."""
        return self.process is not None and self.process.returncode is None

    async def wait(self) -> int:
        """Wait for it to exit; returns the exit code."""
        assert self.process is not None  # noqa: S101
        return await self.process.wait()

    async def stop(self, timeout: float = 120.0) -> None:
        """SIGTERM (HA shuts down cleanly), SIGKILL after `timeout`."""
        if not self.running:
            return
        assert self.process is not None  # noqa: S101
        print("demo: stopping Home Assistant...", flush=True)
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            print("demo: Home Assistant did not stop in time; killing it")
            self.kill()
            await self.process.wait()
        print(f"demo: Home Assistant stopped (exit code {self.process.returncode})")

    def kill(self) -> None:
        """SIGKILL, now."""
        if self.running:
            assert self.process is not None  # noqa: S101
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of its console output, for error messages."""
        for path in (self.console_log, self.log):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()
                if text:
                    return "\n".join(text[-lines:])
        return "(no output)"
