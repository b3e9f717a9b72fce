"""Malformed input: every bad frame gets a CallError or a clean close; other chargers carry on."""

from __future__ import annotations

import asyncio
import json

from ocpp_peer import FAILSAFE_S, recv_json, wait_until
import pytest
from websockets.exceptions import ConnectionClosed

HEARTBEAT = '[2,"hb","Heartbeat",{}]'


async def assert_serves(ws) -> None:
    """The raw connection still answers a Heartbeat."""
    await ws.send(HEARTBEAT)
    assert await recv_json(ws) == [3, "hb", {"currentTime": "2026-01-01T00:00:00+00:00"}]


async def assert_other_charger_works(site, charger) -> None:
    """A well-behaved charger connected at the same time is unaffected."""
    await charger.status(1, "Charging")
    assert site.stations["GOOD"].connectors[1].status == "charging"
    assert await site.charger("GOOD").clear_cache() == "Accepted"


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param("not json at all", ("-1", "FormatViolation", "not valid JSON"), id="not-json"),
        pytest.param(
            b"\xff\xfe\x00binary", ("-1", "FormatViolation", "not valid JSON"), id="binary"
        ),
        pytest.param('{"a": 1}', ("-1", "ProtocolError", "should be a list"), id="object"),
        pytest.param('"text"', ("-1", "ProtocolError", "should be a list"), id="string"),
        pytest.param("[]", ("-1", "ProtocolError", "MessageTypeId"), id="empty-list"),
        pytest.param(
            '[7,"u1","Heartbeat",{}]',
            ("u1", "PropertyConstraintViolation", "MessageTypeId '7' isn't valid"),
            id="wrong-message-type-id",
        ),
        pytest.param(
            '["2","u2","Heartbeat",{}]',
            ("u2", "PropertyConstraintViolation", "isn't valid"),
            id="message-type-id-as-string",
        ),
        pytest.param('[2,"u3"]', ("u3", "ProtocolError", "missing elements"), id="no-action"),
        pytest.param(
            '[2,"u4","Heartbeat"]', ("u4", "ProtocolError", "missing elements"), id="no-payload"
        ),
        pytest.param(
            '[2,"u5","Heartbeat",{},"extra"]',
            ("u5", "ProtocolError", "missing elements"),
            id="too-many-elements",
        ),
        pytest.param(
            '[2,"u6",["Heartbeat"],{}]',
            ("u6", "ProtocolError", "must be a string"),
            id="list-action",
        ),
        pytest.param(
            '[2,"u7",{"a":1},{}]', ("u7", "ProtocolError", "must be a string"), id="object-action"
        ),
        pytest.param(
            '[2,"u8",42,{}]', ("u8", "ProtocolError", "must be a string"), id="number-action"
        ),
    ],
)
async def test_unparseable_frame_gets_a_call_error(central_system, bad, good, frame, expected):
    site, _, _ = central_system
    unique_id, code, cause = expected

    await bad.send(frame)
    reply = await recv_json(bad)

    assert reply[:3] == [4, unique_id, code]
    assert cause in reply[4]["cause"]
    assert "ocpp_message" not in reply[4]  # the bad frame is not echoed back
    await assert_serves(bad)
    await assert_other_charger_works(site, good)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param(
            '"FooBar",{}',
            "NotSupported",
            id="unknown-action",
        ),
        pytest.param(
            '"GetLocalListVersion",{}',
            "NotImplemented",
            id="action-the-central-system-does-not-handle",
        ),
        pytest.param(
            '"SecurityEventNotification",{"type":"x","timestamp":"2026-01-01T00:00:00Z"}',
            "NotImplemented",
            id="security-extension-not-implemented",
        ),
        pytest.param(
            '"BootNotification",{"chargePointVendor":"Acme"}',
            "ProtocolError",
            id="missing-required-field",
        ),
        pytest.param(
            '"StatusNotification",{"connectorId":"one","errorCode":"NoError","status":"Available"}',
            "TypeConstraintViolation",
            id="wrong-type",
        ),
        pytest.param(
            '"StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Exploded"}',
            "FormatViolation",
            id="value-not-in-enum",
        ),
        pytest.param('"Heartbeat",{"extra":1}', "FormatViolation", id="unknown-field"),
        pytest.param('"Heartbeat",[]', "TypeConstraintViolation", id="payload-not-an-object"),
        pytest.param(
            '"Authorize",{"idTag":"' + "X" * 21 + '"}',
            "TypeConstraintViolation",
            id="string-too-long",
        ),
        pytest.param(
            '"MeterValues",{"connectorId":1,"meterValue":[]}',
            "FormatViolation",
            id="empty-meter-value-list",
        ),
    ],
)
async def test_invalid_call_gets_a_call_error_with_its_unique_id(
    central_system, bad, good, payload, code
):
    site, _, _ = central_system

    await bad.send(f'[2,"call-1",{payload}]')
    reply = await recv_json(bad)

    assert reply[:3] == [4, "call-1", code]
    assert site.stations["BAD"].boot is None
    await assert_serves(bad)
    await assert_other_charger_works(site, good)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param('[3,"nobody-asked",{"status":"Accepted"}]', id="stray-call-result"),
        pytest.param('[4,"nobody-asked","GenericError","",{}]', id="stray-call-error"),
    ],
)
async def test_answer_to_no_request_is_ignored(central_system, bad, good, frame):
    site, _, _ = central_system

    await bad.send(frame)

    await assert_serves(bad)  # the next frame received is the Heartbeat answer
    await assert_other_charger_works(site, good)


async def test_stray_answer_does_not_confuse_the_next_request(central_system, good):
    site, _, _ = central_system
    await good.send_raw('[3,"nobody-asked",{"status":"Rejected"}]')

    assert await site.charger("GOOD").reset(hard=False) == "Accepted"


async def test_oversized_frame_closes_the_connection_with_1009(
    start_central_system, connect_cp, connect_raw
):
    site, cs, _ = await start_central_system(max_frame=1024)
    good = await connect_cp("GOOD", cs=cs)
    site.accept_station("BAD")
    bad = await connect_raw("/ocpp/BAD", cs=cs)
    filler = "a" * (1024 - len('[2,"ok","DataTransfer",{"vendorId":"x","data":""}]'))
    fits = '[2,"ok","DataTransfer",{"vendorId":"x","data":"' + filler + '"}]'
    assert len(fits) == 1024

    await bad.send(fits)
    assert (await recv_json(bad))[:2] == [3, "ok"]
    await bad.send(fits.replace('"data":"', '"data":"a'))  # one byte too many

    with pytest.raises(ConnectionClosed) as err:
        await recv_json(bad)
    assert err.value.rcvd.code == 1009
    await wait_until(site, lambda: not site.stations["BAD"].connected)
    await assert_other_charger_works(site, good)


async def test_deeply_nested_frame_gets_a_formation_violation(central_system, bad, good):
    site, _, _ = central_system

    await bad.send("[" * 100_000 + "]" * 100_000)

    reply = await recv_json(bad)
    assert reply[:3] == [4, "-1", "FormationViolation"]
    await assert_serves(bad)
    await assert_other_charger_works(site, good)


async def test_burst_of_garbage_is_answered_frame_by_frame(central_system, bad, good):
    site, _, _ = central_system
    frames = [f'[2,"g{i}","NoSuchAction",{{}}]' for i in range(20)]

    for frame in frames:
        await bad.send(frame)
    async with asyncio.timeout(FAILSAFE_S):
        replies = [json.loads(await bad.recv()) for _ in frames]

    assert [r[1] for r in replies] == [f"g{i}" for i in range(20)]
    assert {r[2] for r in replies} == {"NotSupported"}
    await assert_other_charger_works(site, good)
