"""The registry file's checks, and the repairs of admission.

The repairs: an unreadable registry, a full list of waiting chargers, a known charger whose
password keeps failing.
The registry fails closed: a file that cannot be decoded is renamed (kept, never written over)
and evcore's site refuses every charger until the user restores a backup or starts an empty
registry from the repair (`repairs.RegistryUnreadableFlow`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from homeassistant.helpers import issue_registry as ir
from homeassistant.util.json import json_loads

from .const import DOMAIN, ISSUE_PENDING_CHARGER
from .evcore.events import (
    PendingDropped,
    PendingListFull,
    StationAuthFailing,
    StationAuthRecovered,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from homeassistant.core import HomeAssistant

    from .evcore.events import ControllerEvent
    from .evcore.ocpp.server import CentralSystem
    from .evcore.site import Site

ISSUE_REGISTRY_UNREADABLE: Final = "registry_unreadable"
ISSUE_PENDING_FULL: Final = "pending_list_full"
ISSUE_PASSWORD_FAILING: Final = "charger_password_failing"  # noqa: S105  # an issue id


def registry_file_problem(path: str) -> str | None:
    """Why the registry file cannot be used; None when it can, or does not exist (blocking).

    Other read errors (permissions, I/O) raise OSError: they are not the file's fault.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json_loads(raw)
    except ValueError as err:
        return f"not valid JSON ({err})"
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("version"), int)
        or not isinstance(data.get("data"), dict)
    ):
        return "not a registry this integration saved"
    return None


def set_aside_file(path: str, now: datetime) -> str | None:
    """Rename the file to `<path>.corrupt.<UTC time>`; None when there is none (blocking)."""
    source = Path(path)
    if not source.exists():
        return None
    target = source.with_name(f"{source.name}.corrupt.{now.strftime('%Y%m%dT%H%M%SZ')}")
    source.rename(target)
    return str(target)


def sync_registry_issue(hass: HomeAssistant, site: Site, path: str) -> None:
    """Raise the repair of an unreadable registry, or clear it."""
    problem = site.registry_problem
    if problem is None:
        ir.async_delete_issue(hass, DOMAIN, ISSUE_REGISTRY_UNREADABLE)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_REGISTRY_UNREADABLE,
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.CRITICAL,
        translation_key=ISSUE_REGISTRY_UNREADABLE,
        translation_placeholders={
            "problem": problem.problem,
            "path": path,
            "kept_as": problem.kept_as or path,
        },
    )


def admission_listener(hass: HomeAssistant) -> Callable[[ControllerEvent], None]:
    """A site listener that keeps the admission repairs in step with the site."""
    return partial(_on_admission_event, hass)


def _on_admission_event(hass: HomeAssistant, event: ControllerEvent) -> None:
    match event:
        case PendingDropped(station_id=sid):
            ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_PENDING_CHARGER}_{sid}")
        case PendingListFull(limit=limit):
            ir.async_create_issue(
                hass,
                DOMAIN,
                ISSUE_PENDING_FULL,
                is_fixable=True,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_PENDING_FULL,
                translation_placeholders={"limit": str(limit)},
            )
        case StationAuthFailing(station_id=sid):
            ir.async_create_issue(
                hass,
                DOMAIN,
                f"{ISSUE_PASSWORD_FAILING}_{sid}",
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_PASSWORD_FAILING,
                translation_placeholders={"station_id": sid},
            )
        case StationAuthRecovered(station_id=sid):
            ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_PASSWORD_FAILING}_{sid}")


def admission_diagnostics(site: Site, central_system: CentralSystem | None) -> dict[str, Any]:
    """What the admission holds and refused (no secrets: identities and counts)."""
    problem = site.registry_problem
    return {
        "registry_problem": None if problem is None else str(problem),
        "pending": list(site.pending),
        "pending_dropped": site.pending_dropped,
        "refusals_by_status": {
            str(status): count for status, count in sorted(central_system.refusals.counts.items())
        }
        if central_system
        else {},
    }
