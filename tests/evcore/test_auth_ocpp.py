"""Authorization end to end: a Controller on loopback and `ocpp`-library charge points.

The peer (`CardReader`) keeps a real configuration and a real local authorization list, so what
the central system sets can be checked on the charger's side. Time is a ManualClock: the delay
that gathers card changes (`CHANGE_DELAY_S`) and the drift check (`RECHECK_S`) pass when a test
advances it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import timedelta
import itertools
from typing import Any

from ocpp.charge_point import remove_nones, snake_to_camel_case
from ocpp.exceptions import NotSupportedError
from ocpp.messages import Call, _validate_payload
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from ocpp_peer import FAILSAFE_S, Charger, close_charger
import pytest
from websockets.asyncio.client import connect

from custom_components.ev_charging_expert.evcore.auth import Card
from custom_components.ev_charging_expert.evcore.auth.authorization import (
    CHANGE_DELAY_S,
    RECHECK_S,
)
from custom_components.ev_charging_expert.evcore.auth.modes import (
    AuthMode,
    OfflineBehaviour,
    desired_keys,
)
from custom_components.ev_charging_expert.evcore.auth.sync import KeyStatus, ListStatus
from custom_components.ev_charging_expert.evcore.charger import LocalListEntry
from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import StationConfig, ZoneConfig
from custom_components.ev_charging_expert.evcore.controller import Controller
from custom_components.ev_charging_expert.evcore.events import CardPresented
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy
from custom_components.ev_charging_expert.evcore.ocpp.v16.handler import local_list_request
from custom_components.ev_charging_expert.evcore.site import MemoryStore, SiteSettings

AUTH_CONFIGURATION = {
    "SupportedFeatureProfiles": "Core,LocalAuthListManagement,SmartCharging",
    "SendLocalListMaxLength": "2",
    "LocalAuthListMaxLength": "100",
    "AuthorizeRemoteTxRequests": "true",
    "LocalAuthorizeOffline": "false",
    "AllowOfflineTxForUnknownId": "false",
    "AuthorizationCacheEnabled": "false",
    "LocalAuthListEnabled": "false",
    "LocalPreAuthorize": "false",
}


class CardReader(Charger):
    """A charger that applies configuration changes and keeps a local authorization list."""

    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection)
        self.configuration.update(AUTH_CONFIGURATION)
        self.list_version = 0
        self.local_list: dict[str, dict[str, Any]] = {}
        self.refuse_keys: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0

    @on(Action.change_configuration)
    async def _change_configuration(self, call_unique_id: str, **kw: Any) -> Any:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0)  # a second request sent meanwhile would overlap
        self.in_flight -= 1
        await self._record("ChangeConfiguration", kw, call_unique_id)
        key, value = kw["key"], kw["value"]
        if key in self.refuse_keys:
            return call_result.ChangeConfiguration(status="Rejected")
        if key not in self.configuration:
            return call_result.ChangeConfiguration(status="NotSupported")
        self.configuration[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.send_local_list)
    async def _send_local_list(self, call_unique_id: str, **kw: Any) -> Any:
        await self._record("SendLocalList", kw, call_unique_id)
        if "LocalAuthListManagement" not in self.configuration["SupportedFeatureProfiles"]:
            raise NotSupportedError
        if kw["update_type"] == "Full":
            self.local_list = {}
        for entry in kw.get("local_authorization_list") or []:
            if "id_tag_info" in entry:
                self.local_list[entry["id_tag"]] = entry["id_tag_info"]
            else:
                self.local_list.pop(entry["id_tag"], None)
        self.list_version = kw["list_version"]
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    async def _get_local_list_version(self, call_unique_id: str, **kw: Any) -> Any:
        await self._record("GetLocalListVersion", kw, call_unique_id)
        if "LocalAuthListManagement" not in self.configuration["SupportedFeatureProfiles"]:
            raise NotSupportedError
        return call_result.GetLocalListVersion(list_version=self.list_version)

    async def authorize(self, id_tag: str) -> str:
        answer = await self.call(call_result_request("Authorize", id_tag=id_tag), suppress=False)
        return str(answer.id_tag_info["status"])


def call_result_request(action: str, **kw: Any) -> Any:
    from ocpp.v16 import call  # noqa: PLC0415  # local: only this helper builds calls

    return getattr(call, action)(**kw)


class Site:
    """A Controller with two zones (z2 inside z1, z3 beside) and helpers."""

    def __init__(self, controller: Controller, clock: ManualClock) -> None:
        self.controller = controller
        self.clock = clock
        self.chargers: list[CardReader] = []
        self.events: list[Any] = []
        controller.subscribe(self.events.append, kinds=(CardPresented,))

    @property
    def auth(self) -> Any:
        return self.controller.auth

    @property
    def cards(self) -> Any:
        return self.controller.cards

    async def connect(
        self,
        station_id: str,
        zone: str | None = "z2",
        configuration: dict[str, str] | None = None,
    ) -> CardReader:
        site = self.controller.site
        site.accept_station(station_id)
        if zone is not None:
            site.configure_station(station_id, StationConfig(zone_id=zone))
        ws = await connect(
            f"ws://127.0.0.1:{self.controller.port}/ocpp/{station_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            ping_interval=None,
        )
        charger = CardReader(station_id, ws)
        charger.configuration.update(configuration or {})
        charger.task = asyncio.create_task(charger.start())
        self.chargers.append(charger)
        await charger.boot()
        await self.synced(station_id)
        return charger

    async def synced(self, station_id: str) -> None:
        """Wait until the station's authorization job ran and nothing is left to do."""

        def done() -> bool:
            state = self.auth.sync_state(station_id)
            return (
                state is not None
                and state.last_sync is not None
                and not state.running
                and not state.dirty
            )

        async with asyncio.timeout(FAILSAFE_S):
            for turn in itertools.count():
                if done() and turn > 20:  # the answers' turns have passed
                    return
                await asyncio.sleep(0)

    async def changes_pushed(self, *station_ids: str) -> None:
        """Let the change delay pass, then wait for the stations' jobs."""
        self.clock.advance(CHANGE_DELAY_S)
        for station_id in station_ids:
            await self.synced(station_id)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    clock = ManualClock()
    controller = Controller(
        clock=clock,
        store=MemoryStore(),
        settings=SiteSettings(new_charger_policy=NewChargerPolicy.ACCEPT),
    )
    await controller.restore()
    controller.set_zones(
        {
            "z1": ZoneConfig("z1", "Building", 100.0),
            "z2": ZoneConfig("z2", "Ground floor", 63.0, parent_id="z1"),
            "z3": ZoneConfig("z3", "Basement", 63.0),
        }
    )
    await controller.start(host="127.0.0.1", port=0, ping_interval=None)
    env = Site(controller, clock)
    yield env
    for charger in env.chargers:
        await close_charger(charger)
    await controller.stop()


type Setup = Callable[..., Awaitable[CardReader]]


@pytest.mark.parametrize("mode", list(AuthMode))
@pytest.mark.parametrize("offline", list(OfflineBehaviour))
async def test_each_mode_and_offline_behaviour_sets_its_keys_one_at_a_time(
    site: Site, mode: AuthMode, offline: OfflineBehaviour
) -> None:
    site.cards.add(Card("KNOWN1"))
    site.auth.set_zone_mode("z1", mode=mode, offline=offline)  # z2 inherits from z1
    charger = await site.connect("CP1")
    wanted = desired_keys(mode, offline, local_list=True)
    for key, value in wanted.items():
        assert charger.configuration[key] == value, key
    sent = [r["key"] for r in charger.requests["ChangeConfiguration"]]
    changed = [k for k, v in wanted.items() if AUTH_CONFIGURATION[k] != v]
    assert sent == changed  # only what differs, in order
    assert charger.max_in_flight == 1  # each confirmed before the next
    state = site.auth.sync_state("CP1")
    assert all(s.status is KeyStatus.APPLIED for s in state.keys.values())
    view = site.auth.station_view("CP1")
    assert (view.mode, view.offline, view.mode_from) == (mode, offline, "zone:z1")

    known = await charger.authorize("KNOWN1")
    unknown = await charger.authorize("STRANGER")
    assert known == "Accepted"
    assert unknown == ("Invalid" if mode is AuthMode.KNOWN_CARDS else "Accepted")
    # Only known-cards stations keep a local list.
    if mode is AuthMode.KNOWN_CARDS:
        assert set(charger.local_list) == {"KNOWN1"}
        assert state.list_status is ListStatus.IN_SYNC
    else:
        assert not charger.requests["SendLocalList"]
        assert state.list_status is ListStatus.NOT_USED


async def test_a_station_overrides_its_zone(site: Site) -> None:
    site.auth.set_zone_mode("z2", mode=AuthMode.KNOWN_CARDS)
    charger = await site.connect("CP1")
    assert await charger.authorize("STRANGER") == "Invalid"
    site.auth.set_station_mode("CP1", mode=AuthMode.ALL_CARDS)
    await site.synced("CP1")
    assert site.auth.station_view("CP1").mode_from == "station"
    assert charger.configuration["LocalPreAuthorize"] == "false"
    assert await charger.authorize("STRANGER") == "Accepted"
    site.auth.set_station_mode("CP1", mode=None)  # inherit again
    assert await charger.authorize("STRANGER") == "Invalid"


async def test_keys_a_charger_lacks_or_refuses_are_reported_and_not_asked_again(
    site: Site,
) -> None:
    site.auth.set_zone_mode("z2", mode=AuthMode.KNOWN_CARDS)
    charger = await site.connect("CP1")
    # Then the charger loses a key (a firmware update) and refuses another value.
    charger.configuration.pop("AllowOfflineTxForUnknownId")
    charger.refuse_keys.add("LocalPreAuthorize")
    charger.configuration["LocalPreAuthorize"] = "false"
    site.auth.set_zone_mode("z2", offline=OfflineBehaviour.AUTHORIZE_ALL)
    await site.synced("CP1")
    state = site.auth.sync_state("CP1")
    assert state.keys["AllowOfflineTxForUnknownId"].status is KeyStatus.NOT_SUPPORTED
    assert state.keys["LocalPreAuthorize"].status is KeyStatus.REJECTED
    asked = len(charger.requests["ChangeConfiguration"])
    site.auth.set_zone_mode("z2", offline=OfflineBehaviour.AUTHORIZE_ALL)  # same again
    await site.synced("CP1")
    assert len(charger.requests["ChangeConfiguration"]) == asked


async def test_swipe_to_add(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    charger = await site.connect("CP1")
    assert await charger.authorize("04AABBCC") == "Invalid"
    checks = len(charger.requests["GetLocalListVersion"])
    await site.changes_pushed("CP1")
    assert len(charger.requests["GetLocalListVersion"]) == checks  # no list changed
    card = site.cards.get("04aabbcc")
    assert card.pending
    assert card.last_seen_station == "CP1"
    assert site.events[-1] == CardPresented(
        "CP1", None, "04AABBCC", accepted=False, decision="Invalid", reason="unknown_card"
    )
    site.cards.approve("04AABBCC")
    assert await charger.authorize("04AABBCC") == "Accepted"
    await site.changes_pushed("CP1")
    assert "04AABBCC" in charger.local_list


async def test_a_card_restricted_to_other_zones_is_refused_here(site: Site) -> None:
    site.auth.set_site_default(mode=AuthMode.KNOWN_CARDS)
    site.cards.add(Card("BUILDING", zones=frozenset({"z1"})))
    site.cards.add(Card("BASEMENT", zones=frozenset({"z3"})))
    ground = await site.connect("CP1", zone="z2")
    basement = await site.connect("CP2", zone="z3")
    unassigned = await site.connect("CP3", zone=None)
    assert await ground.authorize("BUILDING") == "Accepted"  # z2 is inside z1
    assert await ground.authorize("BASEMENT") == "Invalid"
    assert site.events[-1].reason == "other_zone"
    assert await basement.authorize("BASEMENT") == "Accepted"
    assert await basement.authorize("BUILDING") == "Invalid"
    assert await unassigned.authorize("BUILDING") == "Invalid"
    # Each local list holds only the cards allowed there.
    assert set(ground.local_list) == {"BUILDING"}
    assert set(basement.local_list) == {"BASEMENT"}


async def test_blocked_expired_and_concurrent_cards(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    site.cards.add(Card("BLOCKED", authorized=False))
    site.cards.add(Card("OLD", expires_at=site.clock.now() - timedelta(days=1)))
    site.cards.add(Card("BUSY"))
    charger = await site.connect("CP1")
    assert await charger.authorize("BLOCKED") == "Blocked"
    assert await charger.authorize("OLD") == "Expired"
    started = await charger.start_transaction(1, id_tag="BUSY")
    assert started.id_tag_info["status"] == "Accepted"
    assert await charger.authorize("BUSY") == "ConcurrentTx"
    site.auth.set_zone_mode("z3", mode=AuthMode.KNOWN_CARDS)
    other = await site.connect("CP2", zone="z3")
    assert await other.authorize("busy") == "ConcurrentTx"  # anywhere on the site
    refused = await charger.start_transaction(2, id_tag="BLOCKED")
    assert refused.id_tag_info["status"] == "Blocked"  # the session is open: the charger stops it


async def test_local_list_full_then_differential_with_versions(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    for tag in ("C1", "C2", "C3", "C4", "C5"):
        site.cards.add(Card(tag))
    charger = await site.connect("CP1")
    sent = charger.requests["SendLocalList"]
    # Five cards, two per message: one Full then two Differential, versions 1..3.
    assert [(m["update_type"], m["list_version"]) for m in sent] == [
        ("Full", 1),
        ("Differential", 2),
        ("Differential", 3),
    ]
    assert set(charger.local_list) == {"C1", "C2", "C3", "C4", "C5"}
    state = site.auth.sync_state("CP1")
    assert (state.list_version, state.full_syncs) == (3, 1)

    site.cards.add(Card("C6", expires_at=site.clock.now() + timedelta(days=30)))
    await site.changes_pushed("CP1")
    last = sent[-1]
    assert (last["update_type"], last["list_version"]) == ("Differential", 4)
    assert [e["id_tag"] for e in last["local_authorization_list"]] == ["C6"]
    assert "expiry_date" in charger.local_list["C6"]
    assert not charger.requests["ClearCache"]

    # Nothing changed: a drift check sends nothing.
    site.clock.advance(RECHECK_S)
    await site.synced("CP1")
    assert len(sent) == 4


async def test_a_revoked_card_leaves_every_list_and_caches_are_cleared(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    site.auth.set_zone_mode("z3", mode=AuthMode.KNOWN_CARDS)
    site.cards.add(Card("KEEP"))
    site.cards.add(Card("LOST"))
    first = await site.connect("CP1", zone="z2")
    second = await site.connect("CP2", zone="z3")
    site.cards.update("LOST", authorized=False)
    await site.changes_pushed("CP1", "CP2")
    for charger in (first, second):
        assert set(charger.local_list) == {"KEEP"}
        removal = charger.requests["SendLocalList"][-1]
        assert removal["update_type"] == "Differential"
        assert removal["local_authorization_list"] == [{"id_tag": "LOST"}]
        assert len(charger.requests["ClearCache"]) == 1
    assert await first.authorize("LOST") == "Blocked"


async def test_a_list_that_drifted_is_sent_again_in_full(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    site.cards.add(Card("C1"))
    charger = await site.connect("CP1")
    charger.local_list, charger.list_version = {}, 0  # a factory reset behind our back
    site.clock.advance(RECHECK_S)
    await site.synced("CP1")
    last = charger.requests["SendLocalList"][-1]
    assert last["update_type"] == "Full"
    assert set(charger.local_list) == {"C1"}
    assert charger.list_version == 2  # after ours (1), never back to an old number


async def test_a_charger_without_local_list_support_is_reported_not_hammered(
    site: Site,
) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    site.cards.add(Card("C1"))
    charger = await site.connect(
        "CP1", configuration={"SupportedFeatureProfiles": "Core,SmartCharging"}
    )
    state = site.auth.sync_state("CP1")
    assert state.list_status is ListStatus.NOT_SUPPORTED
    assert "LocalAuthListEnabled" not in state.keys
    site.cards.add(Card("C2"))
    await site.changes_pushed("CP1")
    site.clock.advance(RECHECK_S)
    await site.synced("CP1")
    assert not charger.requests["SendLocalList"]
    assert not charger.requests["GetLocalListVersion"]
    assert await charger.authorize("C2") == "Accepted"  # online, HA still decides


async def test_reader_disabled_starts_the_session_with_the_site_id_tag(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.READER_DISABLED)
    site.auth.set_site_id_tag("PARKING-HQ")
    charger = await site.connect("CP1")
    await charger.status(1, "Preparing")
    request = await charger.wait_request("RemoteStartTransaction")
    assert request == {"id_tag": "PARKING-HQ", "connector_id": 1}
    started = await charger.start_transaction(1, id_tag="PARKING-HQ")
    assert started.id_tag_info["status"] == "Accepted"
    assert site.cards.get("PARKING-HQ") is None  # the site's own idTag is no card
    await charger.status(1, "Charging")
    assert len(charger.requests["RemoteStartTransaction"]) == 1


async def test_a_malformed_id_tag_never_reaches_the_registry(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    charger = await site.connect("CP1")
    await charger.send_raw('[2,"x1","Authorize",{"idTag":"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}]')
    await charger.authorize("AFTER")  # answered after the refusal: the connection lives
    assert "ABCDEFGHIJKLMNOPQRSTUVWXYZ" not in site.cards
    assert [e.id_tag for e in site.events] == ["AFTER"]


async def test_settings_and_cards_survive_a_restart() -> None:
    clock = ManualClock()
    cards = MemoryStore()
    controller = Controller(clock=clock, store=MemoryStore(), card_store=cards)
    await controller.restore()
    controller.set_zones({"z1": ZoneConfig("z1", "Building", 63.0)})
    controller.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    controller.auth.set_site_id_tag("SITE1")
    controller.cards.add(Card("A1", vip=True))
    again = Controller(clock=clock, store=MemoryStore(), card_store=MemoryStore(cards.data))
    await again.restore()
    assert again.cards.is_vip("A1")
    assert again.auth.settings.zone_mode == {"z1": AuthMode.KNOWN_CARDS}
    assert again.auth.settings.site_id_tag == "SITE1"
    assert not again.auth.fresh
    await controller.stop()
    await again.stop()


@pytest.mark.parametrize("full", [True, False])
def test_local_lists_we_build_match_the_ocpp_schema(full: bool) -> None:
    # Sent without the library's per-message schema check (lists are long): checked here.
    expiry = ManualClock().now() + timedelta(days=1)
    for entries in (
        [],
        [LocalListEntry("A" * 20)],
        [LocalListEntry("B1", "Accepted", expiry, "GROUP1"), LocalListEntry("GONE", None)],
    ):
        payload = local_list_request(7, entries, full=full)
        body = remove_nones(snake_to_camel_case(asdict(payload)))
        _validate_payload(Call("1", "SendLocalList", body), "1.6")


async def test_a_charger_that_reconnects_without_booting_is_brought_in_line(site: Site) -> None:
    site.auth.set_zone_mode("z1", mode=AuthMode.KNOWN_CARDS)
    site.cards.add(Card("C1"))
    charger = await site.connect("CP1")
    await close_charger(charger)
    site.cards.update("C1", authorized=False)  # revoked while the charger is away
    site.clock.advance(CHANGE_DELAY_S)
    ws = await connect(
        f"ws://127.0.0.1:{site.controller.port}/ocpp/CP1",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ping_interval=None,
    )
    again = CardReader("CP1", ws)
    again.local_list, again.list_version = dict(charger.local_list), charger.list_version
    again.task = asyncio.create_task(again.start())
    site.chargers.append(again)
    await again.call(call_result_request("Heartbeat"), suppress=False)  # no boot
    await site.synced("CP1")
    assert again.local_list == {}
    assert len(again.requests["ClearCache"]) == 1
