"""The demo's cards: a few badges imported from CSV, one zone in known-cards mode, and the
simulated EVs presenting those badges — plus a few the site does not know, so the list of
cards awaiting approval (swipe-to-add) fills up while the demo runs.

Everything goes through the integration's service actions over the REST API, as a user would
do it; the other zones stay in "authorize all cards" (the site default set here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.demo.ha_process import DemoError

if TYPE_CHECKING:
    from tools.demo.rest import HaApi

DOMAIN = "ev_charging_expert"

# idTag, comment, VIP. Our CSV format: the import validates the whole file, then swaps.
DEMO_CARDS = (
    ("04A1B2C3D4", "Alice Martin", True),
    ("04B2C3D4E5", "Bruno Keller", False),
    ("04C3D4E5F6", "Chloé Dubois", False),
    ("04D4E5F6A7", "Dimitri Ivanov", False),
    ("04E5F6A7B8", "Emma Rossi", False),
    ("04F6A7B8C9", "Farid Haddad", False),
)
UNKNOWN_CARDS = ("0499AABBCC", "0488DDEEFF")
"""Badges the demo never registers: presented, refused, waiting for approval."""
FLEET_ID_TAGS = (
    *(tag for tag, _, _ in DEMO_CARDS),
    *(tag for tag, _, _ in DEMO_CARDS),
    *UNKNOWN_CARDS,
)
"""What the simulated EVs present (known ones twice as often)."""


def demo_cards_csv() -> str:
    """The demo badges in the integration's CSV format (every zone)."""
    lines = ["id_tag,authorized,vip,comment,zones"]
    lines += [
        f"{tag},true,{'true' if vip else 'false'},{comment}," for tag, comment, vip in DEMO_CARDS
    ]
    return "\n".join(lines) + "\n"


async def _service(
    api: HaApi, service: str, data: dict[str, Any], *, response: bool = False
) -> Any:
    query = "?return_response" if response else ""
    return await api.request("POST", f"/api/services/{DOMAIN}/{service}{query}", json_body=data)


async def setup_cards(api: HaApi, known_cards_zone: str) -> None:
    """Import the demo badges (add or update: cards you added stay) and set the modes."""
    try:
        result = await _service(
            api,
            "import_cards",
            {"csv": demo_cards_csv(), "mode": "add_update"},
            response=True,
        )
        await _service(api, "set_authorization", {"mode": "all_cards", "offline": "use_cache"})
        await _service(api, "set_authorization", {"zone": known_cards_zone, "mode": "known_cards"})
    except DemoError as err:
        print(f"demo: warning: could not set up the demo cards: {err}")
        return
    imported = result.get("service_response", result).get("imported")
    print(
        f"demo: imported {imported} RFID cards (one VIP); zone {known_cards_zone!r} accepts "
        f"only known cards, the EVs also present {len(UNKNOWN_CARDS)} unknown badges "
        "(they wait for approval: sensor 'Cards awaiting approval', service approve_card)"
    )


async def report_cards(api: HaApi) -> None:
    """During --check: how many badges are registered, and how many wait for approval."""
    try:
        known = await _service(api, "list_cards", {"pending": False, "limit": 1}, response=True)
        waiting = await _service(api, "list_cards", {"pending": True}, response=True)
    except DemoError as err:
        print(f"demo: warning: could not list the cards: {err}")
        return
    known, waiting = known["service_response"], waiting["service_response"]
    tags = ", ".join(card["id_tag"] for card in waiting["cards"]) or "none yet"
    print(
        f"demo: cards: {known['total']} registered, {waiting['total']} awaiting approval ({tags})"
    )
