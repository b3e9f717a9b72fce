"""Huge numbers and deep nesting get a CallError, without a traceback or closing the connection.

Reproduced: integers of more than 4,300 digits and 20,000 levels of nesting closed the
connection with a traceback in the log; `meterStart` 10^400 raised an InternalError with one.
"""

from __future__ import annotations

from ocpp_peer import recv_json
import pytest

from custom_components.ev_charging_expert.evcore import limits

HEARTBEAT = '[2,"hb","Heartbeat",{}]'


async def assert_serves(ws) -> None:
    await ws.send(HEARTBEAT)
    assert (await recv_json(ws))[:2] == [3, "hb"]


def _start(meter_start: str) -> str:
    return (
        '[2,"s1","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":'
        + meter_start
        + ',"timestamp":"2026-01-01T00:00:00Z"}]'
    )


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            ('[2,"n1","Heartbeat",{"x":' + "9" * 5000 + "}]", ("n1", "TypeConstraintViolation")),
            id="5000-digit-integer",
        ),
        pytest.param((_start("1" + "0" * 400), ("s1", "TypeConstraintViolation")), id="int-10e400"),
        pytest.param((_start("1e400"), ("s1", "TypeConstraintViolation")), id="float-1e400"),
        pytest.param((_start("-1e400"), ("s1", "TypeConstraintViolation")), id="float-minus-1e400"),
        pytest.param((_start("NaN"), ("s1", "TypeConstraintViolation")), id="nan-literal"),
        pytest.param(
            (_start("Infinity"), ("s1", "TypeConstraintViolation")), id="infinity-literal"
        ),
        pytest.param(
            (_start("0." + "1" * 100), ("s1", "TypeConstraintViolation")), id="100-digit-float"
        ),
        pytest.param(
            (_start("100000000000000"), ("s1", "PropertyConstraintViolation")), id="1e14-wh"
        ),
        pytest.param((_start("-5"), ("s1", "PropertyConstraintViolation")), id="negative-wh"),
        pytest.param(
            ("[" * 20_000 + "]" * 20_000, ("-1", "FormationViolation")), id="20000-levels"
        ),
        pytest.param(
            (
                '[2,"d1","DataTransfer",{"vendorId":"x","data":'
                + "[" * (limits.MAX_JSON_DEPTH + 1)
                + "]" * (limits.MAX_JSON_DEPTH + 1)
                + "}]",
                ("d1", "FormationViolation"),
            ),
            id="just-too-deep",
        ),
    ],
)
async def test_unusable_numbers_and_nesting_get_a_call_error_and_the_connection_lives(
    central_system, good, bad, caplog, case
):
    site, _, _ = central_system
    frame, expected = case
    caplog.clear()

    await bad.send(frame)
    reply = await recv_json(bad)

    assert reply[:3] == [4, *expected]
    await assert_serves(bad)
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
    assert "Traceback" not in caplog.text
    assert site.stations["BAD"].connectors == {}
    await good.status(1, "Charging")
    assert site.stations["GOOD"].connectors[1].status == "charging"


async def test_the_deepest_real_message_passes(central_system, connect_cp):
    """SetChargingProfile, the deepest OCPP 1.6 message, is well inside the depth limit."""
    site, _, _ = central_system
    await connect_cp("CP1")
    charger = site.chargers["CP1"]

    await charger.set_limit(
        1, 16.0, valid_to=site.clock.now(), phases=3, voltage=230.0, timeout=10.0
    )
