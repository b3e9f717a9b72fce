"""The card registry and its CSV import/export (no charger involved)."""

from __future__ import annotations

from datetime import timedelta
import json

import pytest

from custom_components.ev_charging_expert.evcore.auth import (
    Card,
    CardError,
    CardFilter,
    CardImportError,
    CardRegistry,
    UnknownCardError,
    export_csv,
    parse_csv,
)
from custom_components.ev_charging_expert.evcore.auth.cards import MAX_UNKNOWN
from custom_components.ev_charging_expert.evcore.auth.csv_io import MAX_IMPORT_BYTES
from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.site import MemoryStore

ZONES = {"Ground floor": "z1", "Basement": "z2"}
NAMES = {v: k for k, v in ZONES.items()}
HEADER = "id_tag,authorized,vip,comment,zones\n"


def _registry(store: MemoryStore | None = None) -> CardRegistry:
    return CardRegistry(ManualClock(), store or MemoryStore())


def _import(registry: CardRegistry, text: str | bytes, **kwargs: object) -> int:
    return registry.replace_all(parse_csv(text, ZONES), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- registry
def test_id_tags_compare_without_case_and_outer_blanks_but_with_separators() -> None:
    registry = _registry()
    registry.add(Card(" 04A1:B2c3 ", comment="Alice"))
    assert registry.get("04a1:b2C3") is not None
    assert registry.get("04A1B2C3") is None  # separators count
    assert registry.comment_of("04A1:B2C3") == "Alice"
    assert registry.comment_of("nobody") is None
    assert registry.get("04A1:B2C3").id_tag == "04A1:B2c3"  # kept as entered


@pytest.mark.parametrize(
    ("card", "field"),
    [
        (Card(""), "id_tag"),
        (Card("X" * 21), "id_tag"),
        (Card("caf\u00e9"), "id_tag"),
        (Card("OK1", comment="c" * 51), "comment"),
    ],
)
def test_bad_cards_are_refused_naming_the_field(card: Card, field: str) -> None:
    registry = _registry()
    with pytest.raises(CardError) as err:
        registry.add(card)
    assert err.value.field == field
    assert len(registry) == 0


def test_a_card_is_added_once() -> None:
    registry = _registry()
    registry.add(Card("A1"))
    with pytest.raises(CardError):
        registry.add(Card("a1"))


def test_update_remove_approve_and_bulk_edit() -> None:
    registry = _registry()
    for tag in ("A1", "A2", "A3"):
        registry.add(Card(tag))
    registry.update("A1", comment="Bob", vip=True)
    assert registry.is_vip("a1")
    registry.bulk_edit(["A2", "A3"], authorized=False, zones=frozenset({"z1"}))
    assert not registry.get("A2").authorized
    assert registry.get("A3").zones == {"z1"}
    registry.remove("A3")
    assert "A3" not in registry
    with pytest.raises(UnknownCardError):
        registry.update("A3", vip=True)
    with pytest.raises(CardError):
        registry.bulk_edit(["A1"], comment="no")
    # All or nothing: one unknown idTag and no card changes.
    with pytest.raises(UnknownCardError):
        registry.bulk_edit(["A1", "nope"], vip=False)
    assert registry.is_vip("A1")


def test_a_presented_unknown_card_waits_for_approval() -> None:
    registry = _registry()
    card = registry.seen("NEW1", "CP1")
    assert card.pending
    assert not card.authorized
    assert registry.pending_count == 1
    assert registry.query(CardFilter(pending=True)).total == 1
    approved = registry.approve("new1")
    assert approved.authorized
    assert not approved.pending
    assert approved.last_seen_station == "CP1"
    assert registry.pending_count == 0


def test_unknown_cards_are_bounded() -> None:
    registry = _registry()
    for i in range(MAX_UNKNOWN + 5):
        registry.seen(f"U{i}", "CP1")
    assert registry.pending_count == MAX_UNKNOWN
    assert "U0" not in registry
    assert f"U{MAX_UNKNOWN + 4}" in registry


def test_listing_filters_and_pages() -> None:
    registry = _registry()
    for i in range(25):
        registry.add(
            Card(
                f"T{i:02}",
                vip=i % 5 == 0,
                comment=f"owner {i}",
                zones=frozenset({"z1"}) if i % 2 else None,
            )
        )
    page = registry.query(CardFilter(), offset=20, limit=10)
    assert page.total == 25
    assert [c.id_tag for c in page.cards] == ["T20", "T21", "T22", "T23", "T24"]
    assert registry.query(CardFilter(vip=True)).total == 5
    assert registry.query(CardFilter(comment="OWNER 1")).total == 11  # 1, 10..19
    assert registry.query(CardFilter(zone="z2")).total == 13  # the cards for every zone
    assert registry.query(CardFilter(id_tag="t0")).total == 10


def test_a_change_tells_listeners_whether_a_right_was_taken() -> None:
    registry = _registry()
    seen: list[tuple[frozenset[str], bool]] = []
    registry.subscribe(lambda keys, revoked: seen.append((keys, revoked)))
    registry.add(Card("A1"))
    registry.update("A1", vip=True)
    registry.update("A1", zones=frozenset({"z1"}))
    registry.update("A1", authorized=False)
    assert [r for _, r in seen] == [False, False, True, True]


async def test_a_registry_of_100000_cards_survives_a_restart() -> None:
    store = MemoryStore()
    registry = _registry(store)
    cards = [Card(f"{i:08X}", vip=i % 1000 == 0, comment=f"n{i}") for i in range(100_000)]
    registry.replace_all(cards)
    # Through JSON text, as HA's Store writes it.
    restored_store = MemoryStore(json.loads(json.dumps(store.data)))
    restored = _registry(restored_store)
    await restored.load()
    assert len(restored) == 100_000
    assert restored.get("0001869F").comment == "n99999"
    assert restored.is_vip("000003E8")
    assert restored.revision == registry.revision


# ---------------------------------------------------------------------- CSV
def test_export_then_import_gives_the_same_registry() -> None:
    registry = _registry()
    registry.add(Card("A1", vip=True, comment='Alice, "boss"', zones=frozenset({"z1", "z2"})))
    registry.add(Card("B2", authorized=False, expires_at=registry.clock.now() + timedelta(1)))
    registry.seen("PENDING", "CP1")  # not exported: never approved
    text = export_csv(registry.cards(), NAMES)
    assert text.splitlines()[0].startswith("id_tag,authorized,vip,comment,zones")
    other = _registry()
    assert _import(other, text) == 2
    for tag in ("A1", "B2"):
        assert other.get(tag) == registry.get(tag)


def test_import_replaces_the_registry_or_adds_only() -> None:
    registry = _registry()
    registry.add(Card("OLD"))
    _import(registry, "NEW1\nNEW2\n", add_only=True)
    assert {c.id_tag for c in registry.cards()} == {"OLD", "NEW1", "NEW2"}
    _import(registry, "NEW3\n")
    assert {c.id_tag for c in registry.cards()} == {"NEW3"}


def test_charger_format_with_an_idtag_column() -> None:
    cards = parse_csv("Name;x,idTag,Other\nAlice,AA11,1\nBob,BB22,2\n", ZONES)
    assert [c.id_tag for c in cards] == ["AA11", "BB22"]
    assert all(c.authorized and c.zones is None for c in cards)


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (HEADER + "A1,true,false,,\nA2,maybe,false,,\n", 3, "authorized"),
        (HEADER + "A1,true,false,,Roof\n", 2, "zones"),
        (HEADER + f"A1,true,false,{'x' * 51},\n", 2, "comment"),
        (HEADER + f"{'X' * 21},true,false,,\n", 2, "id_tag"),
        ("id_tag,authorized,vip,comment\nA1,true,false,\n", 1, "zones"),
        ("A1\n\nA2\na1\n", 4, "id_tag"),
        ("a,b\nc,d\n", 1, "id_tag"),
    ],
)
def test_a_bad_line_refuses_the_whole_file_and_names_line_and_field(
    text: str, line: int, field: str
) -> None:
    registry = _registry()
    registry.add(Card("KEEP"))
    revision = registry.revision
    file_format = "ours" if text.startswith("id_tag") else "auto"
    with pytest.raises(CardImportError) as err:
        registry.replace_all(parse_csv(text, ZONES, file_format=file_format))
    problem = err.value.problems[0]
    assert (problem.line, problem.field) == (line, field)
    assert [c.id_tag for c in registry.cards()] == ["KEEP"]
    assert registry.revision == revision


def test_duplicates_name_their_lines() -> None:
    with pytest.raises(CardImportError) as err:
        parse_csv("A1\nB2\nA1\n", ZONES)
    assert "lines 1, 3" in str(err.value)


def test_wrong_encoding_and_huge_files_are_refused() -> None:
    with pytest.raises(CardImportError, match="not UTF-8"):
        parse_csv("A1\nB\xe92\n".encode("latin-1"), ZONES)
    with pytest.raises(CardImportError, match="bytes"):
        parse_csv(b"A" * (MAX_IMPORT_BYTES + 1), ZONES)


def test_a_100000_line_import_is_one_swap() -> None:
    registry = _registry()
    seen: list[frozenset[str]] = []
    registry.subscribe(lambda keys, _: seen.append(keys))
    text = "".join(f"{i:010d}\n" for i in range(100_000))
    assert _import(registry, text) == 100_000
    assert len(seen) == 1


def test_sightings_are_saved_later_and_at_stop() -> None:
    store = MemoryStore()
    clock = ManualClock()
    registry = CardRegistry(clock, store)
    registry.add(Card("A1"))
    saves = store.saves
    for _ in range(100):
        registry.seen("A1", "CP1")
    assert store.saves == saves  # a swipe does not write 100,000 cards
    clock.advance(300)
    assert store.saves == saves + 1
    registry.seen("A1", "CP2")
    registry.flush_sightings()
    assert store.saves == saves + 2
    assert store.data["cards"][0][7] == "CP2"  # last_seen_station
