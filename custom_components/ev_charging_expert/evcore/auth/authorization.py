"""Who may charge, for the whole site: modes, the decision point, chargers kept in line.

Built by the Controller. It plugs `LocalAuthorizer` into `Site` (the one decision point), keeps
the installer's modes (`AuthSettings`, saved with the cards), and keeps every connected charger
in line with them (`StationSync`): on boot, on a change of mode, zone or card (a short delay
gathers a burst of changes: a revoked card reaches every list within seconds), and every
`RECHECK_S` to catch a list that drifted. In reader-disabled mode it starts a session with the
site idTag when an EV is plugged in (plug and charge).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING, Any

from ..charger import LocalListEntry
from ..errors import ChargerError, ConfigError
from ..events import (
    SiteEvent,
    StationAccepted,
    StationBooted,
    StationConfigured,
    StationRemoved,
    StationUpdated,
)
from ..keys import ConnectorKey
from ..model import ConnectorStatus, Registration
from .cards import check_id_tag
from .decision import LocalAuthorizer
from .modes import AUTH_KEYS, AuthMode, AuthSettings, OfflineBehaviour, Resolved
from .sync import StationSync

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from enum import StrEnum

    from ..clock import Cancelable
    from ..config import ZoneConfig
    from ..site import Site
    from .cards import CardRegistry
    from .sync import StationAuthState

_LOGGER = logging.getLogger(__name__)

CHANGE_DELAY_S = 2.0
"""Card changes within this delay go to the chargers together."""
RECHECK_S = 900.0
"""Every charger's local list version is checked this often (drift)."""


@dataclass(frozen=True, slots=True)
class StationAuthView:
    """A station's authorization setting and how far its charger follows it."""

    station_id: str
    mode: AuthMode
    offline: OfflineBehaviour
    mode_from: str
    offline_from: str
    sync: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "station_id": self.station_id,
            "mode": self.mode.value,
            "offline": self.offline.value,
            "mode_from": self.mode_from,
            "offline_from": self.offline_from,
            **self.sync,
        }


class Authorization:
    """Modes, decisions and charger synchronisation for one site."""

    def __init__(
        self,
        site: Site,
        cards: CardRegistry,
        zones: Callable[[], Mapping[str, ZoneConfig]],
    ) -> None:
        self.site = site
        self.cards = cards
        self._zones = zones
        self.settings = AuthSettings()
        self.fresh = True
        """No settings were ever saved (a new site, or one from before this feature)."""
        self.authorizer = LocalAuthorizer(
            site.clock,
            cards,
            self.settings_for,
            lambda: self.settings.site_id_tag,
            self.zone_path,
        )
        site.authorizer = self.authorizer
        self.sync = StationSync(
            charger=site.chargers.get,
            resolve=self.resolve,
            entries=self.local_list,
            now=site.clock.now,
            on_change=self._synced,
            ready=self._configuration_read,
        )
        self._listeners: list[Callable[[str | None], None]] = []
        self._plugged: set[ConnectorKey] = set()
        self._change_timer: Cancelable | None = None
        self._recheck_timer: Cancelable | None = None
        self._revoked = False
        self._list_cache: tuple[int, dict[tuple[str, ...], dict[str, LocalListEntry]]] = (-1, {})
        self._unsubscribe = [site.subscribe(self._on_site_event), cards.subscribe(self._on_cards)]

    # ------------------------------------------------------------------ lifecycle
    def restore(self) -> None:
        """Take the settings saved with the cards (after `cards.load()`)."""
        self.settings = AuthSettings.from_dict(self.cards.settings)
        self.fresh = not self.cards.settings and self.cards.problem is None
        if self.cards.problem is not None:
            self.settings.default_mode = AuthMode.KNOWN_CARDS  # fail closed

    def start(self) -> None:
        """Check the chargers' lists from time to time."""
        self._arm_recheck()

    def stop(self) -> None:
        """Cancel timers and listeners; pending card sightings are saved."""
        self.cards.flush_sightings()
        for timer in (self._change_timer, self._recheck_timer):
            if timer is not None:
                timer.cancel()
        self._change_timer = self._recheck_timer = None
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def subscribe(self, listener: Callable[[str | None], None]) -> Callable[[], None]:
        """`listener(station_id)` when a station's sync state changed (None: settings)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, station_id: str | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(station_id)
            except Exception:
                _LOGGER.exception("Authorization listener failed")

    def _configuration_read(self, station_id: str) -> bool:
        """Whether the station holds configuration keys other than those we set."""
        station = self.site.stations.get(station_id)
        return station is not None and any(k not in AUTH_KEYS for k in station.configuration)

    def _synced(self, station_id: str) -> None:
        self._notify(station_id)

    # ------------------------------------------------------------------ zones and modes
    def zone_path(self, station_id: str) -> tuple[str, ...]:
        """The station's zone, then its ancestors (empty when unassigned)."""
        station = self.site.stations.get(station_id)
        zones = self._zones()
        path: list[str] = []
        zone_id = station.config.zone_id if station is not None else None
        while zone_id is not None and zone_id in zones and zone_id not in path:
            path.append(zone_id)
            zone_id = zones[zone_id].parent_id
        return tuple(path)

    def settings_for(self, station_id: str, zone_path: tuple[str, ...]) -> Resolved:
        """The station's mode and offline behaviour."""
        return self.settings.resolve(station_id, zone_path)

    def resolve(self, station_id: str) -> Resolved:
        """The station's mode and offline behaviour, from its zone."""
        return self.settings.resolve(station_id, self.zone_path(station_id))

    def station_view(self, station_id: str) -> StationAuthView:
        """The station's setting and its charger's state."""
        resolved = self.resolve(station_id)
        state = self.sync.states.get(station_id)
        return StationAuthView(
            station_id,
            resolved.mode,
            resolved.offline,
            resolved.mode_from,
            resolved.offline_from,
            state.to_dict() if state is not None else {},
        )

    def sync_state(self, station_id: str) -> StationAuthState | None:
        """The charger's keys and local list, as far as we know."""
        return self.sync.states.get(station_id)

    def set_zone_mode(
        self,
        zone_id: str,
        *,
        mode: AuthMode | str | None = "",
        offline: OfflineBehaviour | str | None = "",
    ) -> None:
        """Set (or, with None, inherit) a zone's mode and/or offline behaviour."""
        if zone_id not in self._zones():
            raise ConfigError(f"unknown zone {zone_id!r}")
        _set(self.settings.zone_mode, zone_id, mode, AuthMode)
        _set(self.settings.zone_offline, zone_id, offline, OfflineBehaviour)
        self._settings_changed()

    def set_station_mode(
        self,
        station_id: str,
        *,
        mode: AuthMode | str | None = "",
        offline: OfflineBehaviour | str | None = "",
    ) -> None:
        """Override (or, with None, inherit) a station's mode and/or offline behaviour."""
        self.site.station(station_id)
        _set(self.settings.station_mode, station_id, mode, AuthMode)
        _set(self.settings.station_offline, station_id, offline, OfflineBehaviour)
        self._settings_changed()

    def zones_changed(self) -> None:
        """The zone tree changed: modes and allowed cards may differ now."""
        for station_id in self._stations():
            self.sync.kick(station_id)

    def set_site_default(
        self,
        *,
        mode: AuthMode | str | None = None,
        offline: OfflineBehaviour | str | None = None,
    ) -> None:
        """The mode and offline behaviour of stations whose zones set none."""
        try:
            if mode is not None:
                self.settings.default_mode = AuthMode(mode)
            if offline is not None:
                self.settings.default_offline = OfflineBehaviour(offline)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.fresh = False
        self._settings_changed()

    def set_site_id_tag(self, id_tag: str) -> None:
        """The idTag HA starts plug-and-charge sessions with."""
        self.settings.site_id_tag = check_id_tag(id_tag, "site_id_tag")
        self._settings_changed()

    def _settings_changed(self) -> None:
        self.cards.save_settings(self.settings.to_dict())
        for station_id in self._stations():
            self.sync.kick(station_id)
        self._notify(None)

    # ------------------------------------------------------------------ local lists
    def local_list(self, station_id: str) -> dict[str, LocalListEntry]:
        """What the station's local list must hold: the cards that may charge there."""
        path = self.zone_path(station_id)
        revision, cache = self._list_cache
        if revision != self.cards.revision:
            cache = {}
            self._list_cache = (self.cards.revision, cache)
        entries = cache.get(path)
        if entries is None:
            now = self.site.clock.now()
            entries = cache[path] = {
                card.key: LocalListEntry(
                    card.id_tag, "Accepted", card.expires_at, card.parent_id_tag
                )
                for card in self.cards.cards()
                if card.authorized
                and not card.pending
                and not card.expired(now)
                and (card.zones is None or (path and card.allowed_in(path)))
            }
        return entries

    def _on_cards(self, keys: frozenset[str], revoked: bool) -> None:  # listener
        if not revoked and all(
            (card := self.cards.by_key(key)) is not None and card.pending for key in keys
        ):
            return  # an unknown card was swiped: no charger's list changes
        self._revoked |= revoked
        if self._change_timer is None:
            self._change_timer = self.site.clock.call_later(CHANGE_DELAY_S, self._push_cards)

    def _stations(self) -> list[str]:
        """Connected stations, and those synced before (a disconnected one catches up)."""
        return list(self.site.chargers.keys() | self.sync.states.keys())

    def _push_cards(self) -> None:
        self._change_timer = None
        revoked, self._revoked = self._revoked, False
        for station_id in self._stations():
            if self.resolve(station_id).mode is not AuthMode.KNOWN_CARDS:
                continue
            if revoked:
                self.sync.state(station_id).clear_cache = True
            self.sync.kick(station_id)
        self._notify(None)

    def _arm_recheck(self) -> None:
        self._recheck_timer = self.site.clock.call_later(RECHECK_S, self._recheck)

    def _recheck(self) -> None:
        for station_id in list(self.site.chargers):
            if self.resolve(station_id).mode is AuthMode.KNOWN_CARDS:
                self.sync.kick(station_id)
        self._arm_recheck()

    # ------------------------------------------------------------------ site events
    def _on_site_event(self, event: SiteEvent) -> None:
        match event:
            case StationBooted(station_id=sid):
                if self.site.is_accepted(sid):
                    self.sync.booted(sid)
            case StationAccepted(station_id=sid) | StationConfigured(station_id=sid):
                self.sync.kick(sid)
            case StationRemoved(station_id=sid):
                self.sync.forget(sid)
            case StationUpdated(station_id=sid, connector_id=cid) if cid:
                self._plug_and_charge(sid, cid)
            case StationUpdated(station_id=sid):
                # A charger that reconnects without booting (after an HA restart, a network
                # loss) is brought in line once, or again when a job failed or waited for it.
                self.sync.resume(sid)
            case _:
                pass

    def _plug_and_charge(self, station_id: str, connector_id: int) -> None:
        """Reader disabled: an EV plugged in (Preparing, no session) gets a session from us."""
        station = self.site.stations.get(station_id)
        if station is None or station.registration is not Registration.ACCEPTED:
            return
        connector = station.connectors.get(connector_id)
        if connector is None:
            return
        key = ConnectorKey(station_id, connector_id)
        if connector.status is not ConnectorStatus.PREPARING or connector.transaction is not None:
            self._plugged.discard(key)
            return
        if key in self._plugged:
            return
        if self.resolve(station_id).mode is not AuthMode.READER_DISABLED:
            return
        charger = self.site.chargers.get(station_id)
        if charger is None:
            return
        self._plugged.add(key)
        charger.spawn(self._remote_start(station_id, connector_id))

    async def _remote_start(self, station_id: str, connector_id: int) -> None:
        try:
            await self.site.charger(station_id).remote_start(
                self.settings.site_id_tag, connector_id
            )
        except ChargerError as err:
            _LOGGER.info("%r: plug and charge could not start: %s", station_id, err)
            self._plugged.discard(ConnectorKey(station_id, connector_id))


def _set(target: dict[str, Any], key: str, value: Any, kind: type[StrEnum]) -> None:
    if value == "":
        return  # not given: unchanged
    if value is None:
        target.pop(key, None)
        return
    try:
        target[key] = kind(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not one of {', '.join(kind)}") from None
