"""Connector ids are checked: within NumberOfConnectors when reported, else within the site cap.

Reproduced: a charger that declares one connector sent StatusNotification / StartTransaction /
MeterValues for connectors 2-11; they were created and counted (11 x 32 A in the allocator, the
other chargers of the zone dropped to 0 A), and ids up to 10^100 were accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call
from ocpp_peer import Charger, wait_until
import pytest

from custom_components.ev_charging_expert.evcore import limits
from custom_components.ev_charging_expert.evcore.config import ZoneConfig
from custom_components.ev_charging_expert.evcore.events import SessionEnded
from custom_components.ev_charging_expert.evcore.site import REASON_NO_SUCH_CONNECTOR

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

SITE_LOGGER = "custom_components.ev_charging_expert.evcore.site"
OUT_OF_RANGE = [2, 3, 11, -1, 10**30]


async def _one_connector_charger(connect_cp: Any, site: Any, station_id: str = "CP1") -> Charger:
    charger = await connect_cp(station_id, boot=False)
    charger.configuration["NumberOfConnectors"] = "1"
    await charger.boot()
    await wait_until(site, lambda: site.stations[station_id].configuration)
    return charger


def _meter_values(connector_id: int) -> call.MeterValues:
    return call.MeterValues(
        connector_id=connector_id,
        meter_value=[
            {
                "timestamp": "2026-01-01T00:00:00+00:00",
                "sampled_value": [{"value": "32", "measurand": "Current.Import", "unit": "A"}],
            }
        ],
    )


@pytest.mark.parametrize("connector_id", OUT_OF_RANGE)
async def test_messages_for_a_connector_the_charger_does_not_have_are_refused(
    central_system, connect_cp, caplog, connector_id
):
    site, _, _ = central_system
    charger = await _one_connector_charger(connect_cp, site)
    await charger.status(1, "Available")
    caplog.clear()

    for request in (
        call.StatusNotification(connector_id=connector_id, error_code="NoError", status="Charging"),
        _meter_values(connector_id),
        call.StartTransaction(
            connector_id=connector_id,
            id_tag="T",
            meter_start=0,
            timestamp="2026-01-01T00:00:00+00:00",
        ),
    ):
        with pytest.raises(PropertyConstraintViolationError):
            await charger.call(request, suppress=False)

    station = site.stations["CP1"]
    assert set(station.connectors) == {1}
    assert station.rejected == {"connectorId": 3}
    refused = [r for r in caplog.records if r.name == SITE_LOGGER]
    assert len(refused) == 1
    assert "connectorId" in refused[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]  # an answer, not a traceback


async def test_a_transaction_cannot_start_on_connector_zero(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    with pytest.raises(PropertyConstraintViolationError):
        await charger.start_transaction(connector_id=0)

    assert 0 not in site.stations["CP1"].connectors


async def test_without_number_of_connectors_the_site_cap_applies(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1", boot=False)
    del charger.configuration["NumberOfConnectors"]
    await charger.boot()
    await wait_until(site, lambda: site.stations["CP1"].configuration)

    await charger.status(limits.MAX_CONNECTORS, "Available")
    with pytest.raises(PropertyConstraintViolationError):
        await charger.status(limits.MAX_CONNECTORS + 1, "Available")

    assert set(site.stations["CP1"].connectors) == {limits.MAX_CONNECTORS}


async def test_a_reported_count_above_the_cap_is_capped(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1", boot=False)
    charger.configuration["NumberOfConnectors"] = "100000"
    await charger.boot()
    await wait_until(site, lambda: site.stations["CP1"].configuration)

    with pytest.raises(PropertyConstraintViolationError):
        await charger.status(limits.MAX_CONNECTORS + 1, "Available")


async def test_connectors_used_before_the_count_was_read_are_forgotten(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1", boot=False)
    charger.ignore.add("GetConfiguration")
    await charger.boot()
    await charger.wait_request("GetConfiguration")
    await charger.status(1, "Available")
    await charger.status(5, "Charging")
    await charger.start_transaction(connector_id=5)
    events = []
    site.subscribe(events.append)

    await charger.answer_late(
        "GetConfiguration",
        {"configurationKey": [{"key": "NumberOfConnectors", "readonly": True, "value": "1"}]},
    )
    await wait_until(site, lambda: site.stations["CP1"].configuration)

    assert set(site.stations["CP1"].connectors) == {1}
    ended = [e for e in events if isinstance(e, SessionEnded)]
    assert [e.transaction.stop_reason for e in ended] == [REASON_NO_SUCH_CONNECTOR]


async def test_phantom_connectors_take_no_current_from_the_other_chargers(env: LoadEnv) -> None:
    env.set_zones(ZoneConfig("z", "Zone", 32.0))
    hostile = await env.add_charger("S1")  # declares one connector
    await env.add_charger("S2")
    env.place("S1", "z")
    env.place("S2", "z")
    await env.plug("S2")
    await env.converge()
    before = env.limits()
    assert before[("S2", 1)] == 32.0

    for connector_id in range(2, 12):
        for request in (
            call.StatusNotification(
                connector_id=connector_id, error_code="NoError", status="Charging"
            ),
            call.StartTransaction(
                connector_id=connector_id,
                id_tag="T",
                meter_start=0,
                timestamp=env.clock.now().isoformat(),
            ),
        ):
            with pytest.raises(PropertyConstraintViolationError):
                await hostile.call(request, suppress=False)
    await env.converge()

    assert env.limits() == before
    assert set(env.site.stations["S1"].connectors) <= {0, 1}
