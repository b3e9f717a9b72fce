"""Authorization modes and offline behaviour: per zone, inherited, overridable per station.

A station takes its own setting when it has one, else its zone's, else the nearest ancestor
zone's that has one, else the site default (`default_mode`: known cards for a new
installation, all cards for a site that charged before this feature existed; offline: use the
cache). Each
(mode, offline behaviour) pair maps to the OCPP 1.6 configuration keys the charger gets
(`desired_keys`); see docs/authorization.md for the table and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping


class AuthMode(StrEnum):
    """Who may charge."""

    ALL_CARDS = "all_cards"
    """Any card is accepted (a reader is needed)."""
    KNOWN_CARDS = "known_cards"
    """Only the registry's authorized cards (the default)."""
    READER_DISABLED = "reader_disabled"
    """Plug and charge: HA starts the session itself with the site idTag."""


class OfflineBehaviour(StrEnum):
    """What a charger does when it cannot reach us."""

    AUTHORIZE_ALL = "authorize_all"
    REJECT_ALL = "reject_all"
    USE_CACHE = "use_cache"


NEW_SITE_MODE = AuthMode.KNOWN_CARDS
"""The site default of a new installation (the guide's default)."""
UPGRADE_MODE = AuthMode.ALL_CARDS
"""The site default of a site that ran before authorization existed (or with no saved
choice, as in tests and tools): every card charges, as it did."""
DEFAULT_OFFLINE = OfflineBehaviour.USE_CACHE
DEFAULT_SITE_ID_TAG = "HA-PLUGANDCHARGE"

# One value per key and mode/behaviour. The remote-start key is always off: HA decides before
# it sends a RemoteStartTransaction (plug and charge, the start button), so the charger must
# not ask again with an Authorize that a known-cards zone would refuse for the site idTag.
_MODE_KEYS: dict[AuthMode, dict[str, str]] = {
    AuthMode.ALL_CARDS: {"LocalPreAuthorize": "false", "LocalAuthListEnabled": "false"},
    AuthMode.KNOWN_CARDS: {"LocalPreAuthorize": "true", "LocalAuthListEnabled": "true"},
    AuthMode.READER_DISABLED: {"LocalPreAuthorize": "false", "LocalAuthListEnabled": "false"},
}
_OFFLINE_KEYS: dict[OfflineBehaviour, dict[str, str]] = {
    OfflineBehaviour.AUTHORIZE_ALL: {
        "LocalAuthorizeOffline": "true",
        "AllowOfflineTxForUnknownId": "true",
        "AuthorizationCacheEnabled": "true",
    },
    OfflineBehaviour.REJECT_ALL: {
        "LocalAuthorizeOffline": "false",
        "AllowOfflineTxForUnknownId": "false",
        "AuthorizationCacheEnabled": "false",
    },
    OfflineBehaviour.USE_CACHE: {
        "LocalAuthorizeOffline": "true",
        "AllowOfflineTxForUnknownId": "false",
        "AuthorizationCacheEnabled": "true",
    },
}
AUTH_KEYS = (
    "AuthorizeRemoteTxRequests",
    "LocalAuthorizeOffline",
    "AllowOfflineTxForUnknownId",
    "AuthorizationCacheEnabled",
    "LocalAuthListEnabled",
    "LocalPreAuthorize",
)
"""The keys set, in the order they are sent."""


def desired_keys(mode: AuthMode, offline: OfflineBehaviour, *, local_list: bool) -> dict[str, str]:
    """The configuration keys (in `AUTH_KEYS` order) for a station's mode and behaviour.

    `local_list`: the charger has the LocalAuthListManagement profile (else the list key is
    left alone: such chargers usually do not know it).
    """
    values = {"AuthorizeRemoteTxRequests": "false", **_MODE_KEYS[mode], **_OFFLINE_KEYS[offline]}
    if not local_list:
        values.pop("LocalAuthListEnabled")
    return {key: values[key] for key in AUTH_KEYS if key in values}


@dataclass(frozen=True, slots=True)
class Resolved:
    """A station's effective setting and where it comes from."""

    mode: AuthMode
    offline: OfflineBehaviour
    mode_from: str
    """"station", "zone:<id>" or "site"."""
    offline_from: str


@dataclass(slots=True)
class AuthSettings:
    """What the installer set; None = inherit."""

    zone_mode: dict[str, AuthMode] = field(default_factory=dict)
    zone_offline: dict[str, OfflineBehaviour] = field(default_factory=dict)
    station_mode: dict[str, AuthMode] = field(default_factory=dict)
    station_offline: dict[str, OfflineBehaviour] = field(default_factory=dict)
    site_id_tag: str = DEFAULT_SITE_ID_TAG
    default_mode: AuthMode = UPGRADE_MODE
    """The mode of stations whose zones set none."""
    default_offline: OfflineBehaviour = DEFAULT_OFFLINE

    def resolve(self, station_id: str, zone_path: tuple[str, ...]) -> Resolved:
        """The station's mode and behaviour; `zone_path` is its zone then its ancestors."""
        mode, mode_from = _pick(station_id, zone_path, self.station_mode, self.zone_mode)
        offline, offline_from = _pick(
            station_id, zone_path, self.station_offline, self.zone_offline
        )
        return Resolved(
            AuthMode(mode or self.default_mode),
            OfflineBehaviour(offline or self.default_offline),
            mode_from,
            offline_from,
        )

    def to_dict(self) -> dict[str, Any]:
        """Saved with the cards."""
        return {
            "zone_mode": dict(self.zone_mode),
            "zone_offline": dict(self.zone_offline),
            "station_mode": dict(self.station_mode),
            "station_offline": dict(self.station_offline),
            "site_id_tag": self.site_id_tag,
            "default_mode": self.default_mode.value,
            "default_offline": self.default_offline.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AuthSettings:
        """Read saved settings; unknown values are dropped (inherit)."""
        data = data or {}
        return cls(
            zone_mode=_enums(data.get("zone_mode"), AuthMode),
            zone_offline=_enums(data.get("zone_offline"), OfflineBehaviour),
            station_mode=_enums(data.get("station_mode"), AuthMode),
            station_offline=_enums(data.get("station_offline"), OfflineBehaviour),
            site_id_tag=str(data.get("site_id_tag") or DEFAULT_SITE_ID_TAG),
            default_mode=_enums({"x": data.get("default_mode")}, AuthMode).get("x", UPGRADE_MODE),
            default_offline=_enums({"x": data.get("default_offline")}, OfflineBehaviour).get(
                "x", DEFAULT_OFFLINE
            ),
        )


def _pick[T](
    station_id: str,
    zone_path: tuple[str, ...],
    station: Mapping[str, T],
    zone: Mapping[str, T],
) -> tuple[T | None, str]:
    if station_id in station:
        return station[station_id], "station"
    for zone_id in zone_path:
        if zone_id in zone:
            return zone[zone_id], f"zone:{zone_id}"
    return None, "site"


def _enums[E: StrEnum](raw: Any, kind: type[E]) -> dict[str, E]:
    result: dict[str, E] = {}
    for key, value in dict(raw or {}).items():
        try:
            result[str(key)] = kind(value)
        except ValueError:
            continue
    return result


def parse_mode(value: str) -> AuthMode:
    """An AuthMode from its value; ConfigError names the allowed ones."""
    try:
        return AuthMode(value)
    except ValueError:
        raise ConfigError(f"unknown authorization mode {value!r} ({', '.join(AuthMode)})") from None


def parse_offline(value: str) -> OfflineBehaviour:
    """An OfflineBehaviour from its value; ConfigError names the allowed ones."""
    try:
        return OfflineBehaviour(value)
    except ValueError:
        raise ConfigError(
            f"unknown offline behaviour {value!r} ({', '.join(OfflineBehaviour)})"
        ) from None
