"""Cards and authorization in Home Assistant: the card store, signals, tag scans, defaults.

The coordinator calls `setup_cards` once; the card sensors and the authorization selects
follow `signal_cards`; a station's authorization state also refreshes its own entities.
A presented card that HA knows as a tag (Settings > Tags) is scanned as that tag, so tag
automations (open a barrier, greet the owner) work with charger readers too. Unknown idTags
are not scanned: `tag.async_scan_tag` would create a tag for every stranger's card.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import DOMAIN, signal_station, station_device_id
from .evcore.auth.modes import NEW_SITE_MODE
from .store import HaSiteStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant

    from .coordinator import EvChargingCoordinator
    from .evcore.events import CardPresented

_LOGGER = logging.getLogger(__name__)

TAG_DOMAIN = "tag"


def signal_cards(entry_id: str) -> str:
    """Dispatcher signal: the card registry or the authorization settings changed."""
    return f"{DOMAIN}_{entry_id}_cards"


def card_store(hass: HomeAssistant, entry_id: str) -> HaSiteStore:
    """The card registry's file (with the authorization settings), beside the stations'."""
    return HaSiteStore(hass, entry_id, name=f"{DOMAIN}.{entry_id}.cards")


def apply_new_site_default(hub: EvChargingCoordinator) -> None:
    """A brand-new site starts in known-cards mode (the guide's default).

    A site that ran before authorization existed keeps every card charging (all cards) until
    the installer chooses: an upgrade must not lock its users out.
    """
    auth = hub.controller.auth
    if auth.fresh and not hub.site.stations:
        auth.set_site_default(mode=NEW_SITE_MODE)
    elif auth.fresh:
        _LOGGER.info(
            "Authorization: every card is accepted, as before; choose a mode per zone "
            "(known cards is recommended)"
        )


def setup_cards(hass: HomeAssistant, hub: EvChargingCoordinator) -> Callable[[], None]:
    """Forward card and authorization changes to the entities; returns unsubscribe."""
    entry_id = hub.entry.entry_id

    def cards_changed(*_: object) -> None:
        async_dispatcher_send(hass, signal_cards(entry_id))

    def auth_changed(station_id: str | None) -> None:
        if station_id is None:
            for sid in hub.devices.accepted_stations():
                async_dispatcher_send(hass, signal_station(entry_id, sid))
            async_dispatcher_send(hass, signal_cards(entry_id))
        elif hub.site.is_accepted(station_id):
            async_dispatcher_send(hass, signal_station(entry_id, station_id))

    unsubscribes = [
        hub.controller.cards.subscribe(cards_changed),
        hub.controller.auth.subscribe(auth_changed),
    ]

    def unsubscribe() -> None:
        for undo in unsubscribes:
            undo()

    return unsubscribe


def scan_known_tag(hass: HomeAssistant, event: CardPresented) -> None:
    """Scan the idTag as an HA tag when HA knows a tag with that id."""
    if TAG_DOMAIN not in hass.config.components:
        return
    if er.async_get(hass).async_get_entity_id(TAG_DOMAIN, TAG_DOMAIN, event.id_tag) is None:
        return
    from homeassistant.components.tag import async_scan_tag  # noqa: PLC0415  # optional

    device = dr.async_get(hass).async_get_device(identifiers={station_device_id(event.station_id)})
    hass.async_create_task(
        async_scan_tag(hass, event.id_tag, device.id if device else None),
        "ev_charging_expert tag scan",
        eager_start=True,
    )


def auth_diagnostics(hub: EvChargingCoordinator) -> dict[str, Any]:
    """Counts, settings and each station's sync state; no idTag (personal data)."""
    cards = hub.controller.cards
    auth = hub.controller.auth
    settings = auth.settings.to_dict()
    settings["site_id_tag"] = "**REDACTED**"
    return {
        "cards": len(cards) - cards.pending_count,
        "awaiting_approval": cards.pending_count,
        "vip": sum(c.vip for c in cards.cards()),
        "revision": cards.revision,
        "store_problem": None if cards.problem is None else str(cards.problem),
        "settings": settings,
        "stations": {sid: auth.station_view(sid).to_dict() for sid in sorted(hub.site.stations)},
    }
