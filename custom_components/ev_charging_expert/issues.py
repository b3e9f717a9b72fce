"""Repair issues the coordinator raises and clears: things the user must fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.helpers import issue_registry as ir

from .const import (
    DOMAIN,
    ISSUE_DEGRADED_ZERO,
    ISSUE_NEGATIVE_BUILDING,
    ISSUE_ORPHAN_ZONE,
    ISSUE_PENDING_CHARGER,
    ISSUE_UNASSIGNED,
    ISSUE_UNCONTROLLABLE,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from homeassistant.core import HomeAssistant

    from .evcore.config import ZoneConfig
    from .evcore.load.budgets import NegativeBuildingLoad

_LISTED = 10  # stations named in a repair; the count says the rest


def raise_issue(
    hass: HomeAssistant,
    issue_id: str,
    key: str,
    placeholders: dict[str, str],
    *,
    error: bool = False,
) -> None:
    """A repair the user must act on (not fixable from the repairs dialog)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR if error else ir.IssueSeverity.WARNING,
        translation_key=key,
        translation_placeholders=placeholders,
    )


def clear_issue(hass: HomeAssistant, issue_id: str) -> None:
    """The problem is gone."""
    ir.async_delete_issue(hass, DOMAIN, issue_id)


def raise_pending(hass: HomeAssistant, station_id: str) -> None:
    """A new charger waits for the user: fixable (accept it) from the repairs dialog."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"{ISSUE_PENDING_CHARGER}_{station_id}",
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_PENDING_CHARGER,
        translation_placeholders={"station_id": station_id},
        data={"station_id": station_id},
    )


def clear_pending(hass: HomeAssistant, station_id: str) -> None:
    """The charger was accepted (or removed)."""
    clear_issue(hass, f"{ISSUE_PENDING_CHARGER}_{station_id}")


def raise_uncontrollable(hass: HomeAssistant, station_id: str, reason: str) -> None:
    """A charger cannot be held to a setpoint: it counts at its rating."""
    raise_issue(
        hass,
        f"{ISSUE_UNCONTROLLABLE}_{station_id}",
        ISSUE_UNCONTROLLABLE,
        {"station_id": station_id, "reason": reason},
    )


def clear_uncontrollable(hass: HomeAssistant, station_id: str) -> None:
    """Load management tries again (a boot) or the station is gone."""
    clear_issue(hass, f"{ISSUE_UNCONTROLLABLE}_{station_id}")


def sync_zone_issues(
    hass: HomeAssistant,
    key: str,
    details: Mapping[str, dict[str, str]],
    zones: Mapping[str, ZoneConfig],
    raised: set[str],
) -> set[str]:
    """One repair `key` per zone in `details`, with its placeholders and the zone's name.

    Clears those raised before and no longer in it; returns the zones raised now.
    """
    for zone_id in raised - details.keys():
        clear_issue(hass, f"{key}_{zone_id}")
    for zone_id, placeholders in details.items():
        zone = zones.get(zone_id)
        raise_issue(
            hass, f"{key}_{zone_id}", key, {"zone": zone.name if zone else zone_id} | placeholders
        )
    return set(details)


def sync_degraded(
    hass: HomeAssistant,
    problems: Mapping[str, str],
    zones: Mapping[str, ZoneConfig],
    raised: set[str],
) -> set[str]:
    """One repair per zone whose stations get 0 A in degraded mode; returns those raised."""
    details = {zone_id: {"reason": reason} for zone_id, reason in problems.items()}
    return sync_zone_issues(hass, ISSUE_DEGRADED_ZERO, details, zones, raised)


def sync_building_warnings(
    hass: HomeAssistant,
    warnings: Mapping[str, NegativeBuildingLoad],
    zones: Mapping[str, ZoneConfig],
    raised: set[str],
) -> set[str]:
    """One repair per dynamic zone whose meter reads less than its EVs draw; returns them."""
    details = {zone_id: {"figures": w.summary()} for zone_id, w in warnings.items()}
    return sync_zone_issues(hass, ISSUE_NEGATIVE_BUILDING, details, zones, raised)


def sync_orphans(hass: HomeAssistant, orphans: Iterable[str]) -> None:
    """Zones cut off from the tree (their parent was deleted): no current for them."""
    names = sorted(orphans)
    if names:
        raise_issue(
            hass, ISSUE_ORPHAN_ZONE, ISSUE_ORPHAN_ZONE, {"zones": ", ".join(names)}, error=True
        )
    else:
        clear_issue(hass, ISSUE_ORPHAN_ZONE)


def sync_unassigned(hass: HomeAssistant, stations: Iterable[str]) -> None:
    """Stations in no zone get no current: name them (the first few)."""
    unassigned = sorted(stations)
    if unassigned:
        shown = ", ".join(unassigned[:_LISTED]) + (" …" if len(unassigned) > _LISTED else "")
        raise_issue(
            hass,
            ISSUE_UNASSIGNED,
            ISSUE_UNASSIGNED,
            {"count": str(len(unassigned)), "stations": shown},
        )
    else:
        clear_issue(hass, ISSUE_UNASSIGNED)
