"""The card registry: every RFID card (idTag) the site knows, in memory, persisted atomically.

Lookups are one dict access on the normalised idTag (`card_key`), so 100,000 cards cost the
Authorize path nothing. idTags are compared as OCPP 1.6 compares its `CiString20` identifiers:
ignoring case; leading and trailing blanks are dropped when a card is entered; every other
character (separators such as `:`, `-` or blanks inside) is significant, because chargers send
the idTag as their reader formats it and two readers that format differently would otherwise
merge two cards. The registry keeps the idTag as it was entered (for the chargers' local lists).

Cards that are presented but unknown are recorded as *seen, not authorized* (swipe-to-add):
`approve` authorizes them in one step. Their number is capped (`MAX_UNKNOWN`): a reader that
sends made-up idTags costs a bounded list, the oldest unknown card making room for the newest.

Every change bumps `revision` and is announced to listeners with the idTags it touched, so
local authorization lists can be kept in sync differentially.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import logging
from typing import TYPE_CHECKING, Any

from ..clock import parse_timestamp
from ..errors import ConfigError, StoreCorruptError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import datetime

    from ..clock import Cancelable, Clock
    from ..site import SiteStore

_LOGGER = logging.getLogger(__name__)

ID_TAG_MAX = 20
"""OCPP 1.6 IdToken: CiString20."""
COMMENT_MAX = 50
MAX_UNKNOWN = 1000
"""Unknown cards remembered as seen-not-authorized; the oldest goes for a new one."""
MAX_CARDS = 200_000
"""Hard cap of the registry (sized for 100,000 cards, with room)."""
STORAGE_VERSION = 1
SIGHTINGS_SAVE_DELAY_S = 300.0
"""Sightings alone (last seen) are saved at most this often: writing 100,000 cards after
every swipe would cost more than the swipe."""

_ROW = (
    "id_tag",
    "authorized",
    "vip",
    "comment",
    "zones",
    "registered_at",
    "last_seen_at",
    "last_seen_station",
    "expires_at",
    "parent_id_tag",
    "pending",
)


class CardError(ConfigError):
    """A card field is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownCardError(ConfigError):
    """No card with this idTag."""

    def __init__(self, id_tag: str) -> None:
        super().__init__(f"unknown card {id_tag!r}")
        self.id_tag = id_tag


def card_key(id_tag: str) -> str:
    """The key two idTags are compared on (case-insensitive, outer blanks ignored)."""
    return id_tag.strip().casefold()


def id_tag_problem(id_tag: object) -> str | None:
    """Why `id_tag` cannot be an OCPP 1.6 idTag, or None."""
    if not isinstance(id_tag, str):
        return "must be text"
    tag = id_tag.strip()
    if not tag:
        return "is empty"
    if len(tag) > ID_TAG_MAX:
        return f"has {len(tag)} characters, at most {ID_TAG_MAX} are allowed"
    if not tag.isascii() or not tag.isprintable():
        return "must be printable ASCII characters"
    return None


def check_id_tag(id_tag: object, field: str = "id_tag") -> str:
    """The idTag without outer blanks; CardError when it is not a valid idTag."""
    problem = id_tag_problem(id_tag)
    if problem is not None:
        raise CardError(field, problem)
    assert isinstance(id_tag, str)  # noqa: S101  # id_tag_problem checked it
    return id_tag.strip()


def check_comment(comment: object) -> str:
    """A comment of at most COMMENT_MAX characters."""
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise CardError("comment", "must be text")
    if len(comment) > COMMENT_MAX:
        raise CardError(
            "comment", f"has {len(comment)} characters, at most {COMMENT_MAX} are allowed"
        )
    return comment


@dataclass(frozen=True, slots=True)
class Card:
    """One RFID card."""

    id_tag: str
    authorized: bool = True
    vip: bool = False
    comment: str = ""
    zones: frozenset[str] | None = None
    """Zone ids where it may charge (their sub-zones included); None = every zone."""
    registered_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_seen_station: str | None = None
    expires_at: datetime | None = None
    parent_id_tag: str | None = None
    """OCPP group: cards with the same parent belong together."""
    pending: bool = False
    """Seen at a charger, never approved (swipe-to-add): waiting for approval."""

    @property
    def key(self) -> str:
        """The registry key."""
        return card_key(self.id_tag)

    def allowed_in(self, zone_path: Iterable[str]) -> bool:
        """Whether it may charge in a zone, given the zone and its ancestors."""
        return self.zones is None or any(z in self.zones for z in zone_path)

    def expired(self, now: datetime) -> bool:
        """Whether its expiry is past."""
        return self.expires_at is not None and self.expires_at <= now

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (the HA services' answers; diagnostics redact `id_tag`)."""
        return {
            "id_tag": self.id_tag,
            "authorized": self.authorized,
            "vip": self.vip,
            "comment": self.comment,
            "zones": None if self.zones is None else sorted(self.zones),
            "registered_at": _iso(self.registered_at),
            "last_seen_at": _iso(self.last_seen_at),
            "last_seen_station": self.last_seen_station,
            "expires_at": _iso(self.expires_at),
            "parent_id_tag": self.parent_id_tag,
            "pending": self.pending,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class CardFilter:
    """What a listing keeps; None = no condition on that field."""

    id_tag: str | None = None
    """A part of the idTag (case-insensitive)."""
    comment: str | None = None
    """A part of the comment (case-insensitive)."""
    zone: str | None = None
    """Cards allowed in this zone id (cards for every zone included)."""
    vip: bool | None = None
    authorized: bool | None = None
    pending: bool | None = None
    """True: only cards seen but waiting for approval."""

    def keeps(self, card: Card) -> bool:  # one test per condition
        """Whether `card` passes every condition."""
        if self.id_tag and self.id_tag.casefold() not in card.key:
            return False
        if self.comment and self.comment.casefold() not in card.comment.casefold():
            return False
        if self.zone is not None and card.zones is not None and self.zone not in card.zones:
            return False
        if self.vip is not None and card.vip != self.vip:
            return False
        if self.authorized is not None and card.authorized != self.authorized:
            return False
        return self.pending is None or card.pending == self.pending


@dataclass(frozen=True, slots=True)
class CardPage:
    """One page of a listing."""

    total: int
    offset: int
    cards: tuple[Card, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "total": self.total,
            "offset": self.offset,
            "cards": [c.to_dict() for c in self.cards],
        }


type CardListener = Callable[[frozenset[str], bool], None]
"""Called with the keys that changed and whether a card lost its right to charge."""


class CardRegistry:
    """Every card, by `card_key`."""

    def __init__(self, clock: Clock, store: SiteStore) -> None:
        self.clock = clock
        self._store = store
        self._cards: dict[str, Card] = {}
        self._unknown: dict[str, None] = {}  # insertion-ordered keys of pending cards
        self.revision = 0
        """Bumped by every change (local lists compare it)."""
        self.settings: dict[str, Any] = {}
        """The authorization settings, saved with the cards (see `auth.modes`)."""
        self._listeners: list[CardListener] = []
        self._sightings_timer: Cancelable | None = None
        self.problem: StoreCorruptError | None = None
        """Why the saved cards could not be read (the registry started empty)."""
        self._may_save = True

    # ------------------------------------------------------------------ persistence
    async def load(self) -> None:
        """Restore the saved cards; unreadable ones leave the registry empty (`problem`)."""
        try:
            data = await self._store.load()
        except StoreCorruptError as err:
            self.problem = err
            # Never write over unreadable cards that could not be moved aside.
            self._may_save = err.kept_as is not None
            _LOGGER.error(  # noqa: TRY400  # a damaged file, not a bug: no traceback
                "The card registry cannot be read (%s): it starts empty, in known-cards mode",
                err,
            )
            return
        if not data:
            return
        fields = data.get("fields", list(_ROW))
        cards: dict[str, Card] = {}
        for row in data.get("cards", []):
            card = _card_from_row(dict(zip(fields, row, strict=False)))
            cards[card.key] = card
        self._cards = cards
        self._unknown = {k: None for k, c in cards.items() if c.pending}
        self.settings = dict(data.get("settings") or {})
        self.revision = int(data.get("revision", 0))

    def _dump(self) -> dict[str, Any]:
        return {
            "version": STORAGE_VERSION,
            "revision": self.revision,
            "settings": self.settings,
            "fields": list(_ROW),
            "cards": [_card_to_row(card) for card in self._cards.values()],
        }

    def save_settings(self, settings: dict[str, Any]) -> None:
        """Keep the authorization settings (saved with the cards)."""
        self.settings = settings
        self._save()

    def _save(self) -> None:
        if self._may_save:
            self._store.schedule_save(self._dump)

    def _changed(self, keys: Iterable[str], *, revoked: bool) -> None:
        self.revision += 1
        self._save()
        changed = frozenset(keys)
        for listener in list(self._listeners):
            try:
                listener(changed, revoked)
            except Exception:
                _LOGGER.exception("Card listener failed")

    def subscribe(self, listener: CardListener) -> Callable[[], None]:
        """Call `listener(keys, revoked)` after every change; returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # ------------------------------------------------------------------ reads
    def __len__(self) -> int:
        return len(self._cards)

    def __contains__(self, id_tag: object) -> bool:
        return isinstance(id_tag, str) and card_key(id_tag) in self._cards

    def get(self, id_tag: str) -> Card | None:
        """The card, or None."""
        return self._cards.get(card_key(id_tag))

    def by_key(self, key: str) -> Card | None:
        """The card with this registry key, or None."""
        return self._cards.get(key)

    def cards(self) -> Iterable[Card]:
        """Every card, in registration order."""
        return self._cards.values()

    def comment_of(self, id_tag: str) -> str | None:
        """The card's comment (usually its owner), None for an unknown card (contract C2)."""
        card = self._cards.get(card_key(id_tag))
        return None if card is None else card.comment

    def is_vip(self, id_tag: str) -> bool:
        """Whether a known, authorized card is VIP."""
        card = self._cards.get(card_key(id_tag))
        return card is not None and card.vip and card.authorized

    @property
    def pending_count(self) -> int:
        """Cards seen but waiting for approval."""
        return len(self._unknown)

    def query(self, where: CardFilter | None = None, offset: int = 0, limit: int = 100) -> CardPage:
        """The cards that pass `where`, by idTag, `limit` of them from `offset`."""
        where = where or CardFilter()
        chosen = sorted((c for c in self._cards.values() if where.keeps(c)), key=lambda c: c.key)
        offset = max(offset, 0)
        return CardPage(len(chosen), offset, tuple(chosen[offset : offset + max(limit, 0)]))

    # ------------------------------------------------------------------ writes
    def add(self, card: Card) -> Card:
        """Register a new card (a seen one is replaced); CardError when it exists."""
        id_tag = check_id_tag(card.id_tag)
        existing = self._cards.get(card_key(id_tag))
        if existing is not None and not existing.pending:
            raise CardError("id_tag", f"{id_tag!r} is registered already")
        if existing is None and len(self._cards) >= MAX_CARDS:
            raise CardError("id_tag", f"the registry is full ({MAX_CARDS} cards)")
        card = replace(
            card,
            id_tag=id_tag,
            comment=check_comment(card.comment),
            parent_id_tag=_parent(card.parent_id_tag),
            registered_at=card.registered_at or self.clock.now(),
            pending=False,
            last_seen_at=existing.last_seen_at if existing else card.last_seen_at,
            last_seen_station=existing.last_seen_station if existing else card.last_seen_station,
        )
        self._cards[card.key] = card
        self._unknown.pop(card.key, None)
        self._changed((card.key,), revoked=False)
        return card

    def update(self, id_tag: str, **changes: Any) -> Card:
        """Change some fields of a card (not its idTag)."""
        card = self._require(id_tag)
        changes.pop("id_tag", None)
        if "comment" in changes:
            changes["comment"] = check_comment(changes["comment"])
        if "parent_id_tag" in changes:
            changes["parent_id_tag"] = _parent(changes["parent_id_tag"])
        updated = replace(card, **changes)
        if "authorized" in changes and updated.authorized:
            updated = replace(updated, pending=False)
        self._cards[card.key] = updated
        if not updated.pending:
            self._unknown.pop(card.key, None)
        self._changed((card.key,), revoked=_revokes(card, updated))
        return updated

    def approve(self, id_tag: str) -> Card:
        """Authorize a card that was seen (or any card) in one step."""
        return self.update(id_tag, authorized=True, pending=False)

    def remove(self, id_tag: str) -> None:
        """Forget a card."""
        card = self._require(id_tag)
        del self._cards[card.key]
        self._unknown.pop(card.key, None)
        self._changed((card.key,), revoked=card.authorized)

    def bulk_edit(self, id_tags: Iterable[str], **changes: Any) -> list[Card]:
        """Set `authorized`, `vip` and/or `zones` on many cards, all or none."""
        allowed = {"authorized", "vip", "zones"}
        if unknown := set(changes) - allowed:
            raise CardError(min(unknown), "cannot be edited in bulk")
        cards = [self._require(tag) for tag in id_tags]
        updated = []
        revoked = False
        for card in cards:
            new = replace(card, **changes)
            if new.authorized:
                new = replace(new, pending=False)
                self._unknown.pop(card.key, None)
            revoked |= _revokes(card, new)
            self._cards[card.key] = new
            updated.append(new)
        self._changed((c.key for c in cards), revoked=revoked)
        return updated

    def replace_all(self, cards: Iterable[Card], *, add_only: bool = False) -> int:
        """One atomic swap: the registry becomes `cards` (validated already).

        `add_only`: cards of the same idTag are updated, others added, none removed. Seen
        cards keep their last sighting either way. `prepare_swap` then `commit_swap` do the
        same in two steps, the slow one off the event loop.
        """
        return self.commit_swap(self.prepare_swap(cards, add_only=add_only))

    def prepare_swap(self, cards: Iterable[Card], *, add_only: bool = False) -> PreparedSwap:
        """Build the registry to be (reads the current one, changes nothing; thread-safe)."""
        old_cards = dict(self._cards)
        new: dict[str, Card] = dict(old_cards) if add_only else {}
        now = self.clock.now()
        for card in cards:
            key = card.key
            old = old_cards.get(key)
            if old is None and card.registered_at is not None:
                new[key] = card
                continue
            new[key] = _merged(card, old, now)
            if len(new) > MAX_CARDS:
                raise CardError("file", f"more than {MAX_CARDS} cards")
        changed = old_cards.keys() ^ new.keys()
        changed |= {k for k in new.keys() & old_cards.keys() if new[k] != old_cards[k]}
        revoked = any(
            k not in new or _revokes(card, new[k])
            for k, card in old_cards.items()
            if card.authorized
        )
        return PreparedSwap(new, frozenset(changed), revoked=revoked)

    def commit_swap(self, prepared: PreparedSwap) -> int:
        """Make the prepared registry the registry (fast: one assignment)."""
        self._cards = prepared.cards
        self._unknown = {k: None for k, c in prepared.cards.items() if c.pending}
        self._changed(prepared.changed, revoked=prepared.revoked)
        return len(prepared.cards)

    def seen(self, id_tag: str, station_id: str) -> Card:
        """A card was presented: note when and where; an unknown one waits for approval."""
        key = card_key(id_tag)
        now = self.clock.now()
        card = self._cards.get(key)
        if card is None:
            card = Card(
                id_tag=id_tag.strip(),
                authorized=False,
                registered_at=now,
                pending=True,
            )
            if len(self._unknown) >= MAX_UNKNOWN:
                oldest = next(iter(self._unknown))
                del self._unknown[oldest]
                self._cards.pop(oldest, None)
            self._unknown[key] = None
            card = replace(card, last_seen_at=now, last_seen_station=station_id)
            self._cards[key] = card
            self._changed((key,), revoked=False)
            return card
        # A sighting is not a change of rights: saved later, local lists are not re-sent.
        card = replace(card, last_seen_at=now, last_seen_station=station_id)
        self._cards[key] = card
        if self._sightings_timer is None:
            self._sightings_timer = self.clock.call_later(
                SIGHTINGS_SAVE_DELAY_S, self._save_sightings
            )
        return card

    def _save_sightings(self) -> None:
        self._sightings_timer = None
        self._save()

    def flush_sightings(self) -> None:
        """Save pending sightings now (at stop)."""
        if self._sightings_timer is not None:
            self._sightings_timer.cancel()
            self._save_sightings()

    def _require(self, id_tag: str) -> Card:
        card = self._cards.get(card_key(id_tag))
        if card is None:
            raise UnknownCardError(id_tag)
        return card


@dataclass(frozen=True, slots=True)
class PreparedSwap:
    """A registry ready to be swapped in (`CardRegistry.prepare_swap`)."""

    cards: dict[str, Card]
    changed: frozenset[str]
    revoked: bool


def _merged(card: Card, old: Card | None, now: datetime) -> Card:
    """An imported card, with the registration and sightings of the one it replaces."""
    # Built directly: dataclasses.replace costs twice as much, and imports make 100,000.
    return Card(
        card.id_tag,
        card.authorized,
        card.vip,
        card.comment,
        card.zones,
        card.registered_at or (old.registered_at if old else now),
        card.last_seen_at or (old.last_seen_at if old else None),
        card.last_seen_station or (old.last_seen_station if old else None),
        card.expires_at,
        card.parent_id_tag,
        card.pending,
    )


def _parent(id_tag: str | None) -> str | None:
    return check_id_tag(id_tag, "parent_id_tag") if id_tag else None


def _revokes(old: Card, new: Card) -> bool:
    """Whether a change takes a right away (chargers must forget the card)."""
    if not old.authorized:
        return False
    if not new.authorized:
        return True
    if new.expires_at is not None and (old.expires_at is None or new.expires_at < old.expires_at):
        return True
    return new.zones is not None and (old.zones is None or not old.zones <= new.zones)


def _card_to_row(card: Card) -> list[Any]:
    return [
        card.id_tag,
        card.authorized,
        card.vip,
        card.comment,
        None if card.zones is None else sorted(card.zones),
        _iso(card.registered_at),
        _iso(card.last_seen_at),
        card.last_seen_station,
        _iso(card.expires_at),
        card.parent_id_tag,
        card.pending,
    ]


def _time(value: Any) -> datetime | None:
    return parse_timestamp(value, None) if value else None  # type: ignore[arg-type]


def _card_from_row(row: Mapping[str, Any]) -> Card:
    zones = row.get("zones")
    return Card(
        id_tag=str(row["id_tag"]),
        authorized=bool(row.get("authorized", True)),
        vip=bool(row.get("vip", False)),
        comment=str(row.get("comment") or ""),
        zones=None if zones is None else frozenset(str(z) for z in zones),
        registered_at=_time(row.get("registered_at")),
        last_seen_at=_time(row.get("last_seen_at")),
        last_seen_station=row.get("last_seen_station"),
        expires_at=_time(row.get("expires_at")),
        parent_id_tag=row.get("parent_id_tag"),
        pending=bool(row.get("pending", False)),
    )
