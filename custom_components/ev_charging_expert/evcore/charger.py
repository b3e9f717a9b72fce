"""The charger port: what the rest of evcore (and the HA glue) may ask of a connected charger.

Version-neutral on purpose: `Site`, load management, services and buttons speak only this
protocol. Each OCPP version implements it (`ocpp/v16/`); nothing outside that package knows
a message name. Failures raise the `ChargerError` family (`errors.py`): not connected, timed
out, answered with an error, or refused (status other than success).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence
    from datetime import datetime

REQUEST_TIMEOUT = 30.0
"""Seconds a charger has to answer a request, unless the caller says otherwise."""

LEASE_STACK_LEVEL = 1
"""Bases sit at stack level 0, leases above them: a charger needs at least this level."""


class CommandStatus(StrEnum):
    """A charger's answer to a command that it accepted (refusals raise instead)."""

    ACCEPTED = "Accepted"
    SCHEDULED = "Scheduled"
    """Accepted, applied once the running session ends (availability changes)."""
    REBOOT_REQUIRED = "RebootRequired"
    """Accepted, applied at the next reboot (configuration changes)."""
    UNLOCKED = "Unlocked"


class TriggerMessage(StrEnum):
    """Messages a charger can be asked to send now."""

    BOOT_NOTIFICATION = "boot_notification"
    DIAGNOSTICS_STATUS_NOTIFICATION = "diagnostics_status_notification"
    FIRMWARE_STATUS_NOTIFICATION = "firmware_status_notification"
    HEARTBEAT = "heartbeat"
    METER_VALUES = "meter_values"
    STATUS_NOTIFICATION = "status_notification"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a charger can do for load management, as its configuration says."""

    smart_charging: bool
    max_stack_level: int | None
    accepts_amps: bool
    accepts_watts: bool

    @property
    def controllable(self) -> bool:
        """Whether we can hold a base and a lease limit on this charger."""
        if not self.smart_charging or not (self.accepts_amps or self.accepts_watts):
            return False
        return self.max_stack_level is None or self.max_stack_level >= LEASE_STACK_LEVEL


@dataclass(frozen=True, slots=True)
class ConfigurationResult:
    """Configuration keys read from a charger: `{"key", "value", "readonly"}` each."""

    keys: list[dict[str, Any]]
    unknown_keys: list[str]


@dataclass(frozen=True, slots=True)
class LocalListEntry:
    """One card of a charger's local authorization list; `status` None removes it."""

    id_tag: str
    status: str | None = "Accepted"
    expires_at: datetime | None = None
    parent_id_tag: str | None = None


class Charger(Protocol):
    """One connected charger, whatever protocol version it speaks."""

    @property
    def station_id(self) -> str:
        """The charge box identity."""

    @property
    def capabilities(self) -> Capabilities | None:
        """Its load-management abilities; None until its configuration was read."""

    # ------------------------------------------------------------------ load management
    async def set_base(self, amps: float, *, voltage: float, timeout: float) -> None:
        """Install the station-wide fallback limit (A per phase) that never expires."""

    async def set_limit(
        self,
        connector_id: int,
        amps: float,
        *,
        valid_to: datetime,
        phases: int,
        voltage: float,
        timeout: float,
    ) -> None:
        """Install a connector's limit (A per phase) above the base, until `valid_to`."""

    # ------------------------------------------------------------------ operations
    async def remote_start(self, id_tag: str, connector_id: int | None = None) -> CommandStatus:
        """Ask the charger to start a session for `id_tag`."""

    async def remote_stop(self, transaction_id: int) -> CommandStatus:
        """Ask the charger to stop a session."""

    async def reset(self, *, hard: bool) -> CommandStatus:
        """Reboot the charger (soft: after its sessions end)."""

    async def unlock(self, connector_id: int) -> CommandStatus:
        """Unlock a connector's cable."""

    async def set_availability(self, connector_id: int, *, available: bool) -> CommandStatus:
        """Make a connector (0: the station) available or not."""

    async def trigger(
        self, message: TriggerMessage, connector_id: int | None = None
    ) -> CommandStatus:
        """Ask the charger to send `message` now."""

    async def update_firmware(
        self,
        location: str,
        retrieve_at: datetime,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> None:
        """Tell the charger to fetch and install firmware from `location`."""

    async def get_diagnostics(
        self,
        location: str,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        start: datetime | None = None,
        stop: datetime | None = None,
    ) -> str | None:
        """Ask for a diagnostics upload; returns the file name it will upload, if it says."""

    async def get_configuration(self, keys: list[str] | None = None) -> ConfigurationResult:
        """Read configuration keys (all of them without `keys`)."""

    async def set_configuration(self, key: str, value: str) -> CommandStatus:
        """Change one configuration key."""

    async def clear_cache(self) -> CommandStatus:
        """Clear the charger's authorization cache."""

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> tuple[str, str | None]:
        """Send vendor data; returns the charger's status and data."""

    async def send_local_list(
        self, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> CommandStatus:
        """Replace (`full`) or amend the local authorization list, which becomes `version`."""

    async def get_local_list_version(self) -> int:
        """The version of the charger's local list (0: empty, -1: no list support)."""

    # ------------------------------------------------------------------ lifecycle
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a job tied to this connection (cancelled when it closes)."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection."""
