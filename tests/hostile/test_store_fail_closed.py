"""A registry that cannot be read fails closed: kept, never written over, every charger refused."""

from __future__ import annotations

import json
import logging

import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.errors import (
    RegistryLockedError,
    StoreCorruptError,
)
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy, Registration
from custom_components.ev_charging_expert.evcore.site import MemoryStore, Site

UNREADABLE = "[refused: the central system cannot read its charger registry]"


class UndecodableStore(MemoryStore):
    """A store whose file did not decode: set aside by the store (as HA's glue does)."""

    def __init__(self, kept_as: str | None = "registry.corrupt.20260101T000000Z") -> None:
        super().__init__()
        self.kept_as = kept_as
        self.corrupt = True

    async def load(self):
        if self.corrupt:
            self.corrupt = False
            raise StoreCorruptError("not valid JSON (unexpected character)", self.kept_as)
        return await super().load()


class StuckStore(MemoryStore):
    """Saved data that cannot be moved aside (a read-only disk, say)."""

    async def set_aside(self):
        raise OSError(30, "Read-only file system")


def saved_registry() -> dict:
    """What a site with a protected charger, a removed one and an open session saved."""
    return {
        "version": 1,
        "next_transaction_id": 57,
        "stations": {
            "CP-A": {"registration": "accepted", "password_hash": "pbkdf2_sha256$1$00$00"},
            "CP-R": {"registration": "removed"},
        },
    }


async def refusal(connect_raw, cs, path: str, **kwargs) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as err:
        await connect_raw(path, cs=cs, **kwargs)
    return err.value.response.status_code, err.value.response.body


@pytest.mark.parametrize("policy", [NewChargerPolicy.ACCEPT, NewChargerPolicy.PENDING])
async def test_undecodable_registry_refuses_every_charger_until_the_user_acts(
    start_central_system, connect_raw, caplog, policy
):
    store = UndecodableStore()
    site, cs, _ = await start_central_system(store=store, policy=policy)

    # Protected, removed and unknown chargers alike: none can be told apart from a new one.
    for path in ("/ocpp/CP-A", "/ocpp/CP-R", "/ocpp/NEW"):
        status, body = await refusal(connect_raw, cs, path)
        assert status == 503
        assert body == b"The central system cannot read its charger registry.\n"
    assert (site.stations, dict(site.pending), site.chargers) == ({}, {}, {})
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "cannot be read (not valid JSON" in errors[0].getMessage()
    assert "kept as registry.corrupt.20260101T000000Z" in errors[0].getMessage()
    assert not errors[0].exc_info
    with pytest.raises(RegistryLockedError):
        site.accept_station("CP-A")


async def test_lock_is_saved_so_that_a_restart_stays_locked(start_central_system, connect_raw):
    store = UndecodableStore()
    site = Site(ManualClock(), store)
    await site.load()

    # The unreadable file was moved aside: what is saved now is the lock, not a registry.
    assert store.data["locked"] == {
        "problem": "not valid JSON (unexpected character)",
        "kept_as": "registry.corrupt.20260101T000000Z",
    }
    assert store.data["stations"] == {}
    again, cs, _ = await start_central_system(store=store)
    assert again.registry_problem is not None
    assert (await refusal(connect_raw, cs, "/ocpp/NEW"))[0] == 503


@pytest.mark.parametrize(
    "content",
    [
        {"stations": {"CP-A": {"registration": "bogus"}}},
        {"stations": {"CP-A": {"boot": {"no_such_field": 1}}}},
        {"stations": ["CP-A"]},
        {"next_transaction_id": "many"},
        {"locked": {}},
    ],
    ids=["bad-enum", "bad-boot", "stations-a-list", "bad-number", "bad-lock"],
)
async def test_registry_of_unexpected_shape_is_set_aside_and_locks(content):
    store = MemoryStore(content)
    site = Site(ManualClock(), store)

    await site.load()

    assert site.registry_problem is not None
    assert site.registry_problem.problem.startswith("unexpected content")
    assert site.stations == {}
    assert store.set_aside_data == [content]
    assert store.data["locked"]["kept_as"] == "set_aside_data[0]"


async def test_data_that_cannot_be_moved_aside_are_never_written_over():
    content = {"stations": {"CP-A": {"registration": "bogus"}}}
    store = StuckStore(content)
    site = Site(ManualClock(), store)

    await site.load()
    site.notify_uncontrollable("CP-A", "anything")  # events go on; saves do not

    assert site.registry_problem is not None
    assert site.registry_problem.kept_as is None
    assert store.saves == 0
    assert store.data is content
    with pytest.raises(OSError, match="Read-only"):
        await site.start_empty()
    assert site.registry_problem is not None
    assert store.saves == 0


async def test_starting_empty_is_an_explicit_choice_that_forgets_the_lost_registry(
    start_central_system, connect_cp, connect_raw
):
    store = MemoryStore({"stations": {"CP-A": {"registration": "bogus"}}})
    site, cs, clock = await start_central_system(store=store, policy=NewChargerPolicy.ACCEPT)
    assert site.registry_problem is not None

    await site.start_empty()

    assert site.registry_problem is None
    assert "locked" not in store.data
    assert store.set_aside_data == [{"stations": {"CP-A": {"registration": "bogus"}}}]
    charger = await connect_cp("CP-A", cs=cs)  # a new charger again, by the policy
    assert site.stations["CP-A"].registration is Registration.ACCEPTED
    started = await charger.start_transaction()
    # Transaction ids do not start again at 1: the lost registry may have used low ones.
    assert started.transaction_id > 100_000_000
    await site.start_empty()  # nothing to do any more
    assert site.stations.keys() == {"CP-A"}
    del clock


async def test_readable_registry_loads_as_before():
    store = MemoryStore(json.loads(json.dumps(saved_registry())))
    site = Site(ManualClock(), store)

    await site.load()

    assert site.registry_problem is None
    assert site.password_required("CP-A")
    assert site.admission_refusal("CP-R") == "charger removed from the central system"
    assert store.saves == 0
