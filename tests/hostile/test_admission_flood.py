"""Anyone can connect; nobody can fill the store, the memory or the port for the others."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ocpp.v16 import call
import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.evcore.admission import AdmissionLimits
from custom_components.ev_charging_expert.evcore.config import StationConfig
from custom_components.ev_charging_expert.evcore.events import (
    PendingDropped,
    PendingListFull,
    StationPending,
)
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy, Registration
from custom_components.ev_charging_expert.evcore.site import MemoryStore, SiteSettings

if TYPE_CHECKING:
    from websockets.datastructures import Headers

WIDE_OPEN = AdmissionLimits(max_unauthenticated_per_address=10_000)


async def refused(connect_raw, path: str, **kwargs) -> tuple[int, Headers]:
    with pytest.raises(InvalidStatus) as err:
        await connect_raw(path, **kwargs)
    return err.value.response.status_code, err.value.response.headers


async def until_closed(cs, count: int) -> None:
    """Let the server finish with closed connections, down to `count` (loop turns, not time)."""
    for _ in range(10_000):
        if len(cs._server.handlers) <= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"still {len(cs._server.handlers)} connections")


def test_the_default_policy_holds_new_chargers_pending():
    assert SiteSettings().new_charger_policy is NewChargerPolicy.PENDING
    assert SiteSettings().max_pending == 100


async def test_thousands_of_idle_identities_store_nothing_and_hold_at_most_100(
    start_central_system, connect_raw, connect_cp
):
    store = MemoryStore()
    site, cs, _ = await start_central_system(
        store=store, policy=NewChargerPolicy.PENDING, limits=WIDE_OPEN
    )
    site.accept_station("GOOD")
    good = await connect_cp("GOOD", cs=cs)
    saves = store.saves
    events = []
    site.subscribe(events.append)

    await asyncio.gather(*(connect_raw(f"/ocpp/X{i:04}", cs=cs) for i in range(150)))

    assert store.saves == saves  # nothing about a stranger is written
    assert site.stations.keys() == {"GOOD"}
    assert len(site.pending) == 100
    assert site.pending_dropped == 50
    assert sum(isinstance(e, StationPending) for e in events) == 150
    assert sum(isinstance(e, PendingDropped) for e in events) == 50
    assert [e for e in events if isinstance(e, PendingListFull)] == [PendingListFull(100)]
    # The newest are kept; those dropped come back when they connect again.
    assert set(site.pending) == {f"X{i:04}" for i in range(50, 150)}
    await good.call(call.Heartbeat(), suppress=False)
    assert await site.charger("GOOD").clear_cache() == "Accepted"


async def test_pending_charger_is_stored_only_when_the_user_accepts_it(
    start_central_system, connect_cp
):
    store = MemoryStore()
    site, cs, _ = await start_central_system(store=store, policy=NewChargerPolicy.PENDING)
    charger = await connect_cp("NEW", cs=cs, boot=False)
    assert (await charger.boot()).status == "Pending"
    assert store.data is None

    site.accept_station("NEW")

    assert store.data["stations"]["NEW"]["registration"] == "accepted"
    assert site.stations["NEW"].boot.vendor == "Acme"  # what it said while pending
    assert site.stations["NEW"].connected
    assert "NEW" not in site.pending


async def test_accept_policy_stores_a_new_charger_at_its_boot_and_never_in_a_zone(
    start_central_system, connect_raw, connect_cp
):
    store = MemoryStore()
    site, cs, _ = await start_central_system(store=store, policy=NewChargerPolicy.ACCEPT)

    idle = [await connect_raw(f"/ocpp/IDLE{i}", cs=cs) for i in range(5)]
    assert store.data is None  # connecting is not enough
    strangers = [await connect_cp(f"T{i}", cs=cs) for i in range(14)]

    assert set(site.stations) == {f"T{i}" for i in range(14)}
    # A station in no zone gets no current and reserves none: throw-away identities cannot
    # take the current of a zone's EVs away, also after they leave.
    assert all(site.stations[f"T{i}"].config == StationConfig() for i in range(14))
    assert set(site.pending) == {f"IDLE{i}" for i in range(5)}
    del idle, strangers


async def test_unauthenticated_connections_are_capped_per_source_address(
    start_central_system, connect_raw, connect_cp
):
    site, cs, _ = await start_central_system(
        policy=NewChargerPolicy.PENDING,
        limits=AdmissionLimits(max_unauthenticated_per_address=3),
    )
    site.accept_station("KNOWN")
    site.accept_station("LOCKED")
    site.set_password("LOCKED", "s3cret-s3cret-s3cret")
    strangers = [await connect_raw(f"/ocpp/S{i}", cs=cs) for i in range(3)]

    status, headers = await refused(connect_raw, "/ocpp/S3", cs=cs)

    assert status == 429
    assert headers["Retry-After"] == "60"
    # Known chargers, with or without a password, do not count and still come in.
    await connect_cp("KNOWN", cs=cs)
    await connect_cp("LOCKED", cs=cs, user_info="LOCKED:s3cret-s3cret-s3cret")
    # A stranger that leaves frees its place.
    await strangers[0].close()
    await until_closed(cs, 4)
    await connect_raw("/ocpp/S3", cs=cs)


async def test_a_stranger_accepted_meanwhile_no_longer_counts(start_central_system, connect_raw):
    site, cs, _ = await start_central_system(
        policy=NewChargerPolicy.PENDING,
        limits=AdmissionLimits(max_unauthenticated_per_address=1),
    )
    await connect_raw("/ocpp/S0", cs=cs)
    assert (await refused(connect_raw, "/ocpp/S1", cs=cs))[0] == 429

    site.accept_station("S0")

    await connect_raw("/ocpp/S1", cs=cs)


async def test_connections_are_capped_for_everyone_and_the_port_recovers(
    start_central_system, connect_raw, connect_cp
):
    site, cs, _ = await start_central_system(
        policy=NewChargerPolicy.ACCEPT, limits=AdmissionLimits(max_connections=4)
    )
    open_ = [await connect_cp(f"CP{i}", cs=cs) for i in range(4)]

    status, headers = await refused(connect_raw, "/ocpp/CP4", cs=cs)

    assert status == 503
    assert headers["Retry-After"] == "60"
    await open_[0].ws.close()
    await until_closed(cs, 3)
    await connect_cp("CP4", cs=cs)
    assert site.stations["CP4"].registration is Registration.ACCEPTED
