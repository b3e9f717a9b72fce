"""HA bus events: a card presented, a session started, a session ended."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.ev_charging_expert.const import (
    DOMAIN,
    EVENT_CARD_PRESENTED,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
)

from .conftest import START, ConnectCharger, wait_for

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from custom_components.ev_charging_expert.evcore.clock import ManualClock


async def test_authorize_fires_card_presented(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    cards = async_capture_events(hass, EVENT_CARD_PRESENTED)
    charger = await connect_charger("CP1")

    # A new site accepts only known cards: the first swipe is refused and waits for approval.
    refused = await charger.authorize("04A1B2C3")
    await hass.services.async_call(DOMAIN, "approve_card", {"id_tag": "04a1b2c3"}, blocking=True)
    answer = await charger.authorize("04A1B2C3")

    assert refused.id_tag_info["status"] == "Invalid"
    assert answer.id_tag_info["status"] == "Accepted"
    await wait_for(hass, lambda: len(cards) == 2)
    card = {"station_id": "CP1", "connector_id": None, "id_tag": "04A1B2C3"}
    assert [event.data for event in cards] == [
        {**card, "accepted": False, "decision": "Invalid", "reason": "unknown_card"},
        {**card, "accepted": True, "decision": "Accepted", "reason": "known_card"},
    ]


async def test_session_start_and_end_fire_their_events(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    cards = async_capture_events(hass, EVENT_CARD_PRESENTED)
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    charger = await connect_charger("CP1", connectors=2)
    await hass.services.async_call(DOMAIN, "add_card", {"id_tag": "04A1B2C3"}, blocking=True)

    answer = await charger.start_transaction(2, "04A1B2C3", meter_start=1000, timestamp=START)
    await wait_for(hass, lambda: started)

    assert [event.data for event in cards] == [
        {
            "station_id": "CP1",
            "connector_id": 2,
            "id_tag": "04A1B2C3",
            "accepted": True,
            "decision": "Accepted",
            "reason": "known_card",
        }
    ]
    assert [event.data for event in started] == [
        {
            "station_id": "CP1",
            "connector_id": 2,
            "transaction_id": answer.transaction_id,
            "id_tag": "04A1B2C3",
            "started_at": "2026-01-01T10:00:00+00:00",
            "stopped_at": None,
            "meter_start_wh": 1000.0,
            "meter_stop_wh": None,
            "energy_wh": None,
            "reason": None,
        }
    ]
    assert not ended

    await charger.stop_transaction(
        answer.transaction_id,
        13500,
        timestamp="2026-01-01T11:30:00+00:00",
        reason="EVDisconnected",
        id_tag="04A1B2C3",
    )
    await wait_for(hass, lambda: ended)

    # The session-ended event carries the charge data record too.
    record = ended[0].data["record"]
    assert record["energy_wh"] == 12500.0
    assert record["status"] == "closed"
    assert record["ended_by"] == "charger"
    assert record["plugged_s"] == 5400.0
    assert [{k: v for k, v in event.data.items() if k != "record"} for event in ended] == [
        {
            "station_id": "CP1",
            "connector_id": 2,
            "transaction_id": answer.transaction_id,
            "id_tag": "04A1B2C3",
            "started_at": "2026-01-01T10:00:00+00:00",
            "stopped_at": "2026-01-01T11:30:00+00:00",
            "meter_start_wh": 1000.0,
            "meter_stop_wh": 13500.0,
            "energy_wh": 12500.0,
            "reason": "EVDisconnected",
        }
    ]


async def test_stop_without_reason_is_a_local_stop(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    charger = await connect_charger("CP1")
    answer = await charger.start_transaction(1, "TAG1", meter_start=0)

    await charger.stop_transaction(answer.transaction_id, 500)
    await wait_for(hass, lambda: ended)

    assert ended[0].data["reason"] == "Local"
    assert ended[0].data["energy_wh"] == 500.0


async def test_stop_of_an_unknown_session_fires_nothing(
    hass: HomeAssistant, clock: ManualClock, connect_charger: ConnectCharger
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    charger = await connect_charger("CP1")

    await charger.stop_transaction(999, 500)
    await hass.async_block_till_done()

    assert not ended
