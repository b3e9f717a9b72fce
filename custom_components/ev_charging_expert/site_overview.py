"""The site at a glance for HA: cached site totals, and who holds current while offline.

Every charger sample changes the site's totals: recomputing them per entity per message would
cost O(stations) each time, so the view is recomputed at most once per SITE_OVERVIEW_DELAY and
the site entities are told once. The same pass keeps the per-zone repair that names offline
stations still holding current there (safety rule 3 keeps them counted: nothing else says why
EVs are suspended) after `offline_repair_minutes`.
"""

from __future__ import annotations

from datetime import timedelta
import json
import logging
from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later, async_track_time_interval

from .const import (
    CONF_OFFLINE_REPAIR_MINUTES,
    DEFAULT_OFFLINE_REPAIR_MINUTES,
    DOMAIN,
    ISSUE_OFFLINE_RESERVE,
    SITE_OVERVIEW_DELAY,
    signal_site,
)
from .evcore.events import (
    AllocationUpdated,
    StationAccepted,
    StationAdded,
    StationPending,
    StationRemoved,
    StationUpdated,
)

if TYPE_CHECKING:
    from datetime import datetime

    from homeassistant.core import HomeAssistant

    from .coordinator import EvChargingCoordinator
    from .evcore.events import ControllerEvent
    from .evcore.overview import OfflineReserve, SiteView
    from .evcore.view import ZoneView

_LOGGER = logging.getLogger(__name__)
_LISTED = 10  # stations named in a repair; the count says the rest
_OFFLINE_CHECK = timedelta(minutes=1)
_SITE_EVENTS = (
    AllocationUpdated,
    StationAccepted,
    StationAdded,
    StationPending,
    StationRemoved,
    StationUpdated,
)


class SiteOverview:
    """The hub device's figures, recomputed at most once per SITE_OVERVIEW_DELAY."""

    def __init__(self, hass: HomeAssistant, hub: EvChargingCoordinator) -> None:
        self.hass = hass
        self.hub = hub
        self._view: SiteView | None = None
        self._flush: CALLBACK_TYPE | None = None
        self._offline_raised: set[str] = set()
        self._stop_timer: CALLBACK_TYPE | None = None
        self._stopped = False

    def start(self) -> None:
        """Look for stations offline too long every minute (also when nothing happens)."""
        self._stop_timer = async_track_time_interval(self.hass, self._check_offline, _OFFLINE_CHECK)

    @property
    def view(self) -> SiteView:
        """The site's totals (recomputed when stale)."""
        if self._view is None:
            self._view = self.hub.controller.site_view()
        return self._view

    @callback
    def on_event(self, event: ControllerEvent) -> None:
        """Something that moves the totals happened: tell the site entities soon."""
        if self._stopped or not isinstance(event, _SITE_EVENTS):
            return
        self._view = None
        if self._flush is None:
            self._flush = async_call_later(self.hass, SITE_OVERVIEW_DELAY, self._flush_now)

    @callback
    def _flush_now(self, _now: datetime | None = None) -> None:
        if self._flush is not None:
            self._flush()
            self._flush = None
        self._view = None
        async_dispatcher_send(self.hass, signal_site(self.hub.entry.entry_id))
        self.sync_offline()

    @callback
    def _check_offline(self, _now: datetime) -> None:
        self.sync_offline()

    def stop(self) -> None:
        """The entry unloads."""
        self._stopped = True
        if self._flush is not None:
            self._flush()
            self._flush = None
        if self._stop_timer is not None:
            self._stop_timer()
            self._stop_timer = None

    # ------------------------------------------------------------------ offline stations
    def offline_too_long(self) -> dict[str, list[OfflineReserve]]:
        """Per zone the station is in: offline stations holding current for too long."""
        minutes = float(
            self.hub.entry.options.get(CONF_OFFLINE_REPAIR_MINUTES, DEFAULT_OFFLINE_REPAIR_MINUTES)
        )
        now = self.hub.controller.clock.now()
        views = {z: v for z in self.hub.zones if (v := self.hub.zone_view(z)) is not None}
        deepest: dict[str, tuple[int, str, OfflineReserve]] = {}
        for zone_id, view in views.items():
            depth = _depth(views, view)
            for reserve in view.offline_reserve:
                if reserve.since is not None and (now - reserve.since).total_seconds() < (
                    minutes * 60
                ):
                    continue
                known = deepest.get(reserve.station_id)
                if known is None or depth > known[0]:
                    deepest[reserve.station_id] = (depth, zone_id, reserve)
        result: dict[str, list[OfflineReserve]] = {}
        for _, zone_id, reserve in deepest.values():
            result.setdefault(zone_id, []).append(reserve)
        for reserves in result.values():
            reserves.sort(key=lambda r: (-r.amps, r.station_id))
        return result

    @callback
    def sync_offline(self) -> None:
        """One fixable repair per zone that has stations offline too long holding current."""
        details = self.offline_too_long()
        for zone_id in self._offline_raised - details.keys():
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_OFFLINE_RESERVE}_{zone_id}")
        for zone_id, reserves in details.items():
            zone = self.hub.zones.get(zone_id)
            shown = [describe_reserve(r) for r in reserves[:_LISTED]]
            if len(reserves) > _LISTED:
                shown.append("…")
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"{ISSUE_OFFLINE_RESERVE}_{zone_id}",
                is_fixable=True,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_OFFLINE_RESERVE,
                translation_placeholders={
                    "zone": zone.name if zone else zone_id,
                    "count": str(len(reserves)),
                    "amps": f"{sum(r.amps for r in reserves):.1f}",
                    "stations": ", ".join(shown),
                },
                # Issue data holds scalars only: the identities as a JSON list.
                data={"zone_id": zone_id, "stations": json.dumps([r.station_id for r in reserves])},
            )
        self._offline_raised = set(details)


def describe_reserve(reserve: OfflineReserve) -> str:
    """A station and what it holds, e.g. "CP1 (16.0 A)"; short enough for an attribute."""
    return f"{reserve.station_id} ({reserve.amps:.1f} A)"


def _depth(views: dict[str, ZoneView], view: ZoneView) -> int:
    depth = 0
    parent = view.parent_id
    while parent is not None and parent in views and depth < len(views):
        depth += 1
        parent = views[parent].parent_id
    return depth
