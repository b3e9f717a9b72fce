"""The registry file's checks, and the repairs of admission.

The repairs: an unreadable registry, a full list of waiting chargers, a known charger whose
password keeps failing.
The registry fails closed: a file that cannot be decoded is renamed (kept, never written over)
and evcore's site refuses every charger until the user restores a backup or starts an empty
registry from the repair (`repairs.RegistryUnreadableFlow`).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Final

from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, ISSUE_PENDING_CHARGER
from .evcore.events import (
    PendingDropped,
    PendingListFull,
    StationAuthFailing,
    StationAuthRecovered,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant

    from .evcore.events import SiteEvent
    from .evcore.ocpp.server import CentralSystem
    from .evcore.site import Site

ISSUE_PENDING_FULL: Final = "pending_list_full"
ISSUE_PASSWORD_FAILING: Final = "charger_password_failing"  # noqa: S105  # an issue id


def admission_listener(hass: HomeAssistant) -> Callable[[SiteEvent], None]:
    """A site listener that keeps the admission repairs in step with the site."""
    return partial(_on_admission_event, hass)


def _on_admission_event(hass: HomeAssistant, event: SiteEvent) -> None:
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
    return {
        "pending": list(site.pending),
        "pending_dropped": site.pending_dropped,
        "refusals_by_status": {
            str(status): count for status, count in sorted(central_system.refusals.counts.items())
        }
        if central_system
        else {},
    }
