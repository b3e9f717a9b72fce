"""The decision point: whether this idTag may charge here, now.

`Site.authorize` (Authorize) and `Site.start_session` (StartTransaction) ask one `Authorizer`.
Today it is `LocalAuthorizer` (the card registry and the zones' modes); an upstream CPO will
plug in as another `Authorizer`, and nothing else changes. Deciding is synchronous and cheap
(one dict lookup): it runs inside the OCPP handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from .cards import card_key
from .modes import AuthMode

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ..clock import Clock
    from .cards import CardRegistry
    from .modes import Resolved


class AuthStatus(StrEnum):
    """OCPP's AuthorizationStatus, version-neutral."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


class Reason(StrEnum):
    """Why a decision was taken (recorded with the event)."""

    ALL_CARDS = "all_cards"
    READER_DISABLED = "reader_disabled"
    SITE_ID_TAG = "site_id_tag"
    KNOWN_CARD = "known_card"
    UNKNOWN_CARD = "unknown_card"
    AWAITING_APPROVAL = "awaiting_approval"
    NOT_AUTHORIZED = "not_authorized"
    EXPIRED = "expired"
    OTHER_ZONE = "other_zone"
    NO_ZONE = "no_zone"
    IN_SESSION = "in_session"
    NO_REGISTRY = "no_registry"


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """An idTag presented at a station (`connector_id` None for an Authorize)."""

    station_id: str
    connector_id: int | None
    id_tag: str
    busy_elsewhere: bool
    """The idTag runs a session already (anywhere on the site; Authorize only)."""
    start: bool = False
    """A StartTransaction (the session runs whatever we answer) rather than an Authorize."""


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """The answer, and what it is based on."""

    status: AuthStatus
    reason: str
    vip: bool = False
    parent_id_tag: str | None = None
    expires_at: datetime | None = None

    @property
    def accepted(self) -> bool:
        """Whether the idTag may charge."""
        return self.status is AuthStatus.ACCEPTED


class Authorizer(Protocol):
    """Decides for every idTag presented at every station."""

    def decide(self, request: AuthRequest) -> AuthDecision:
        """The decision for `request`; never raises for a card it does not know."""


class AcceptAll:
    """Every card charges: a Site without the card registry (tests, tools)."""

    def decide(self, request: AuthRequest) -> AuthDecision:  # the protocol's
        """Accepted."""
        return AuthDecision(AuthStatus.ACCEPTED, "")


class LocalAuthorizer:
    """The card registry and the authorization modes decide."""

    def __init__(
        self,
        clock: Clock,
        cards: CardRegistry,
        resolve: Callable[[str, tuple[str, ...]], Resolved],
        site_id_tag: Callable[[], str],
        zone_path: Callable[[str], tuple[str, ...]],
    ) -> None:
        """`zone_path(station_id)`: the station's zone then its ancestors (empty: none)."""
        self._zone_path = zone_path
        self._clock = clock
        self._cards = cards
        self._resolve = resolve
        self._site_id_tag = site_id_tag

    def decide(self, request: AuthRequest) -> AuthDecision:  # noqa: C901, PLR0911  # one per rule
        """Apply the station's mode; a known-cards station checks the card."""
        if card_key(request.id_tag) == card_key(self._site_id_tag()):
            return AuthDecision(AuthStatus.ACCEPTED, Reason.SITE_ID_TAG)
        zone_path = self._zone_path(request.station_id)
        mode = self._resolve(request.station_id, zone_path).mode
        card = self._cards.seen(request.id_tag, request.station_id)
        vip = card.vip and card.authorized
        if mode is AuthMode.READER_DISABLED:
            return AuthDecision(AuthStatus.ACCEPTED, Reason.READER_DISABLED, vip=vip)
        if mode is AuthMode.ALL_CARDS:
            return AuthDecision(AuthStatus.ACCEPTED, Reason.ALL_CARDS, vip=vip)
        if card.pending:
            first = card.last_seen_at == card.registered_at
            reason = Reason.UNKNOWN_CARD if first else Reason.AWAITING_APPROVAL
            return AuthDecision(AuthStatus.INVALID, reason)
        if not card.authorized:
            return AuthDecision(AuthStatus.BLOCKED, Reason.NOT_AUTHORIZED)
        if card.expired(self._clock.now()):
            return AuthDecision(AuthStatus.EXPIRED, Reason.EXPIRED, expires_at=card.expires_at)
        if card.zones is not None:
            if not zone_path:
                return AuthDecision(AuthStatus.INVALID, Reason.NO_ZONE)
            if not card.allowed_in(zone_path):
                return AuthDecision(AuthStatus.INVALID, Reason.OTHER_ZONE)
        if request.busy_elsewhere and not request.start:
            return AuthDecision(AuthStatus.CONCURRENT_TX, Reason.IN_SESSION)
        return AuthDecision(
            AuthStatus.ACCEPTED,
            Reason.KNOWN_CARD,
            vip=vip,
            parent_id_tag=card.parent_id_tag,
            expires_at=card.expires_at,
        )
