"""The identity rule: refused at the handshake (400 and why), before anything is kept or logged."""

from __future__ import annotations

import logging

import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.evcore.admission import (
    IDENTITY_MAX_LENGTH,
    identity_problem,
)
from custom_components.ev_charging_expert.evcore.errors import InvalidIdentityError
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy

BAD_PATHS = {
    "nul": "/ocpp/SECURE%00",
    "newline": "/ocpp/CP1%0A",
    "forged-log-line": "/ocpp/CP1%0D%0AERROR%20fake%20line",
    "tab": "/ocpp/CP%091",
    "delete": "/ocpp/CP%7F",
    "right-to-left-override": "/ocpp/CP%E2%80%AE1",
    "zero-width-space": "/ocpp/CP%E2%80%8B1",
    "line-separator": "/ocpp/CP%E2%80%A81",
    "invalid-utf8": "/ocpp/CP%C3%28",
    "lone-continuation-byte": "/ocpp/CP%80",
    "leading-space": "/ocpp/%20CP1",
    "trailing-space": "/ocpp/CP1%20",
    "too-long": "/ocpp/" + "A" * (IDENTITY_MAX_LENGTH + 1),
}


@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=BAD_PATHS.keys())
@pytest.mark.parametrize("policy", [NewChargerPolicy.ACCEPT, NewChargerPolicy.PENDING])
async def test_identity_breaking_the_rule_is_refused_with_400_before_anything_is_kept(
    start_central_system, connect_raw, caplog, path, policy
):
    caplog.set_level(logging.DEBUG)
    site, cs, _ = await start_central_system(policy=policy)
    events = []
    site.subscribe(events.append)

    with pytest.raises(InvalidStatus) as err:
        await connect_raw(path, cs=cs)

    response = err.value.response
    assert response.status_code == 400
    assert response.body.startswith(b"Invalid charge box identity: it ")
    assert (site.stations, dict(site.pending), site.chargers, events) == ({}, {}, {}, [])
    # No log line carries the identity raw: it can neither forge lines nor hide characters.
    for record in caplog.records:
        message = record.getMessage()
        assert "\n" not in message
        assert "\r" not in message
        assert message.isprintable(), message


async def test_refused_identity_is_logged_once_per_source_with_its_reason(
    central_system, connect_raw, caplog
):
    caplog.set_level(logging.INFO)

    for _ in range(3):
        with pytest.raises(InvalidStatus):
            await connect_raw("/ocpp/CP1%0AERROR%20fake")

    lines = [r for r in caplog.records if "invalid charge box identity" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert lines[0].getMessage() == (
        "127.0.0.1: refused (400), invalid charge box identity: "
        "it contains a control or invisible character"
    )


@pytest.mark.parametrize(
    "identity",
    ["A" * IDENTITY_MAX_LENGTH, "CP 1", "Garageé", "CP#1", "日本語-01", "a:b@c"],
)
async def test_identity_within_the_rule_connects(central_system, connect_cp, identity):
    site, _, _ = central_system

    await connect_cp(identity)

    assert site.is_accepted(identity)


@pytest.mark.parametrize(
    "identity", ["", "CP\x00", "CP\n", " CP", "CP\u202e", "A" * 49, "CP\udcc3"]
)
def test_accepting_an_identity_breaking_the_rule_by_hand_is_refused(central_system, identity):
    site, _, _ = central_system

    with pytest.raises(InvalidIdentityError):
        site.accept_station(identity)

    assert identity_problem(identity) is not None
    assert site.stations == {}
