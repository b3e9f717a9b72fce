"""Memory per connection is bounded: stray answers are dropped, counted and logged once.

Reproduced: CallResults / CallErrors that answer nothing we sent were queued by the `ocpp`
library without bound (400 MB RSS, a 98 MB ERROR log, then a RecursionError).
"""

from __future__ import annotations

import asyncio
import json

from ocpp_peer import FAILSAFE_S, recv_json, wait_until
import pytest

from custom_components.ev_charging_expert.evcore import limits
from custom_components.ev_charging_expert.evcore.ocpp.v16.handler import BOOT_CONFIGURATION_KEYS

HANDLER_LOGGERS = (
    "custom_components.ev_charging_expert.evcore.site",
    "custom_components.ev_charging_expert.evcore.ocpp.v16.handler",
    "custom_components.ev_charging_expert.evcore.ocpp.v16.frames",
)


async def test_stray_answers_are_dropped_counted_and_logged_once(
    central_system, connect_cp, connect_raw, caplog
):
    site, _, _ = central_system
    good = await connect_cp("GOOD")
    site.accept_station("BAD")  # by the user: an unknown identity must boot first
    bad = await connect_raw("/ocpp/BAD")
    handler = site.chargers["BAD"]
    caplog.clear()

    for i in range(1000):
        await bad.send(json.dumps([3, f"nobody-asked-{i}", {"status": "Accepted"}]))
        await bad.send(json.dumps([4, f"nobody-asked-{i}", "GenericError", "", {}]))
    await bad.send('[2,"hb","Heartbeat",{}]')
    assert (await recv_json(bad))[:2] == [3, "hb"]  # every stray frame was read by now

    assert handler._response_queue.qsize() == 0
    assert site.stations["BAD"].rejected == {"answer": 2000}
    logged = [r for r in caplog.records if r.name in HANDLER_LOGGERS and r.levelno >= 30]
    assert len(logged) == 1
    assert await site.charger("GOOD").clear_cache() == "Accepted"
    assert site.stations["GOOD"].rejected == {}
    del good


@pytest.mark.parametrize(
    "frame", ["[3,[1],{}]", '[4,{"a":1},"GenericError","",{}]', "[3,null,{}]", "[3,7,{}]"]
)
async def test_an_answer_with_an_odd_unique_id_is_stray(central_system, connect_raw, frame):
    site, _, _ = central_system
    site.accept_station("BAD")  # by the user: an unknown identity must boot first
    bad = await connect_raw("/ocpp/BAD")

    await bad.send(frame)
    await bad.send('[2,"hb","Heartbeat",{}]')

    assert (await recv_json(bad))[:2] == [3, "hb"]
    assert site.stations["BAD"].rejected == {"answer": 1}


async def _clear_cache_left_unanswered(site, connect_cp):
    """CP1 receives a ClearCache and does not answer it (yet); returns the request's task."""
    charger = await connect_cp("CP1")
    charger.ignore.add("ClearCache")
    handler = site.chargers["CP1"]
    request = asyncio.create_task(handler.clear_cache())
    await charger.wait_request("ClearCache")
    return charger, handler, request


async def test_a_repeated_answer_is_used_once_and_the_rest_is_stray(central_system, connect_cp):
    site, _, _ = central_system
    charger, handler, request = await _clear_cache_left_unanswered(site, connect_cp)

    for _ in range(50):
        await charger.answer_late("ClearCache", {"status": "Accepted"})

    async with asyncio.timeout(FAILSAFE_S):
        assert await request == "Accepted"
    await charger.status(1)  # a round trip: the 50 answers were all read
    assert handler._response_queue.qsize() == 0
    assert site.stations["CP1"].rejected == {"answer": 49}
    charger.ignore.clear()
    assert await handler.reset(hard=False) == "Accepted"


async def test_an_answer_after_the_timeout_is_stray(central_system, connect_cp):
    site, _, clock = central_system
    charger, handler, request = await _clear_cache_left_unanswered(site, connect_cp)
    clock.advance(handler.request_timeout)
    async with asyncio.timeout(FAILSAFE_S):
        await asyncio.gather(request, return_exceptions=True)

    await charger.answer_late("ClearCache", {"status": "Rejected"})
    await charger.status(1)

    assert site.stations["CP1"].rejected == {"answer": 1}
    charger.ignore.clear()
    assert await handler.clear_cache() == "Accepted"


async def test_a_charger_that_boots_in_a_loop_gets_one_configuration_read_at_a_time(
    central_system, connect_cp
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    charger.ignore.add("GetConfiguration")
    handler = site.chargers["CP1"]

    for _ in range(100):
        await charger.boot()
    await charger.wait_request("GetConfiguration", count=2)

    assert len(charger.requests["GetConfiguration"]) == 2  # the first boot's, then one more
    assert len(handler._tasks) == 1


async def test_only_the_configuration_keys_we_asked_for_are_kept(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1", boot=False)
    charger.configuration.update({f"Junk{i}": "x" * 400 for i in range(500)})
    charger.answers["GetConfiguration"] = {
        "configuration_key": [
            {"key": k, "readonly": False, "value": v} for k, v in charger.configuration.items()
        ]
    }

    await charger.boot()
    await wait_until(site, lambda: site.stations["CP1"].configuration)

    assert set(site.stations["CP1"].configuration) <= set(BOOT_CONFIGURATION_KEYS)
    assert "NumberOfConnectors" in site.stations["CP1"].configuration


async def test_configuration_written_by_the_user_is_bounded_too(central_system, connect_cp):
    site, _, _ = central_system
    await connect_cp("CP1")
    keys = [{"key": f"K{i}", "value": "v"} for i in range(limits.MAX_CONFIGURATION_KEYS + 50)]

    site.configuration_read("CP1", keys)

    assert len(site.stations["CP1"].configuration) == limits.MAX_CONFIGURATION_KEYS
    assert site.stations["CP1"].rejected["configuration"] > 0
