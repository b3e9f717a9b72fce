"""Requests the central system sends: answers, refusals, CallErrors, timeouts, no connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import NotSupportedError
from ocpp.v16 import call
from ocpp_peer import FAILSAFE_S, wait_until
import pytest

from custom_components.ev_charging_expert.evcore.charger import TriggerMessage
from custom_components.ev_charging_expert.evcore.errors import (
    ChargerCallError,
    ChargerNotConnectedError,
    ChargerRejectedError,
    ChargerTimeoutError,
    UnknownStationError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from custom_components.ev_charging_expert.evcore.ocpp.v16 import ChargePointV16


@dataclass(frozen=True)
class Operation:
    """One outgoing request: how to send it, what the charger receives, what comes back."""

    action: str
    send: Callable[[ChargePointV16], Awaitable[Any]]
    received: dict[str, Any]
    result: Any


OPERATIONS = {
    "remote-start": Operation(
        "RemoteStartTransaction",
        lambda h: h.remote_start("TAG1", connector_id=2),
        {"id_tag": "TAG1", "connector_id": 2},
        "Accepted",
    ),
    "remote-start-any-connector": Operation(
        "RemoteStartTransaction",
        lambda h: h.remote_start("TAG1"),
        {"id_tag": "TAG1"},
        "Accepted",
    ),
    "remote-stop": Operation(
        "RemoteStopTransaction",
        lambda h: h.remote_stop(7),
        {"transaction_id": 7},
        "Accepted",
    ),
    "reset-soft": Operation("Reset", lambda h: h.reset(hard=False), {"type": "Soft"}, "Accepted"),
    "reset-hard": Operation("Reset", lambda h: h.reset(hard=True), {"type": "Hard"}, "Accepted"),
    "unlock-connector": Operation(
        "UnlockConnector", lambda h: h.unlock(1), {"connector_id": 1}, "Unlocked"
    ),
    "change-availability-station": Operation(
        "ChangeAvailability",
        lambda h: h.set_availability(0, available=False),
        {"connector_id": 0, "type": "Inoperative"},
        "Accepted",
    ),
    "change-availability-connector": Operation(
        "ChangeAvailability",
        lambda h: h.set_availability(2, available=True),
        {"connector_id": 2, "type": "Operative"},
        "Accepted",
    ),
    "trigger-message": Operation(
        "TriggerMessage",
        lambda h: h.trigger(TriggerMessage.HEARTBEAT),
        {"requested_message": "Heartbeat"},
        "Accepted",
    ),
    "update-firmware": Operation(
        "UpdateFirmware",
        lambda h: h.update_firmware(
            "https://example.com/fw.bin",
            datetime(2026, 1, 2, 3, tzinfo=UTC),
            retries=3,
            retry_interval=60,
        ),
        {
            "location": "https://example.com/fw.bin",
            "retrieve_date": "2026-01-02T03:00:00Z",
            "retries": 3,
            "retry_interval": 60,
        },
        None,
    ),
    "get-diagnostics": Operation(
        "GetDiagnostics",
        lambda h: h.get_diagnostics(
            "ftp://example.com/diag/",
            retries=2,
            retry_interval=30,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            stop=datetime(2026, 1, 2, tzinfo=UTC),
        ),
        {
            "location": "ftp://example.com/diag/",
            "retries": 2,
            "retry_interval": 30,
            "start_time": "2026-01-01T00:00:00Z",
            "stop_time": "2026-01-02T00:00:00Z",
        },
        "diagnostics-0001.zip",
    ),
    "get-configuration": Operation(
        "GetConfiguration",
        lambda h: h.get_configuration(["HeartbeatInterval", "NoSuchKey"]),
        {"key": ["HeartbeatInterval", "NoSuchKey"]},
        None,  # checked in its own test
    ),
    "change-configuration": Operation(
        "ChangeConfiguration",
        lambda h: h.set_configuration("HeartbeatInterval", "60"),
        {"key": "HeartbeatInterval", "value": "60"},
        "Accepted",
    ),
    "clear-cache": Operation("ClearCache", lambda h: h.clear_cache(), {}, "Accepted"),
    "data-transfer": Operation(
        "DataTransfer",
        lambda h: h.data_transfer("com.acme", message_id="ping", data="hello"),
        {"vendor_id": "com.acme", "message_id": "ping", "data": "hello"},
        ("Accepted", "pong"),
    ),
}

# Operations whose answer carries a status that may refuse, with the refusing statuses.
REFUSALS = [
    ("remote-start", "Rejected"),
    ("remote-stop", "Rejected"),
    ("reset-soft", "Rejected"),
    ("reset-hard", "Rejected"),
    ("unlock-connector", "UnlockFailed"),
    ("unlock-connector", "NotSupported"),
    ("change-availability-station", "Rejected"),
    ("change-availability-connector", "Rejected"),
    ("trigger-message", "Rejected"),
    ("trigger-message", "NotImplemented"),
    ("change-configuration", "Rejected"),
    ("change-configuration", "NotSupported"),
    ("clear-cache", "Rejected"),
]


@pytest.fixture
async def charger(connect_cp):
    """A booted charger CP1 whose configuration read is over."""
    return await connect_cp("CP1")


@pytest.fixture
def handler(central_system, charger) -> ChargePointV16:
    site, _, _ = central_system
    return site.charger("CP1")


# ---------------------------------------------------------------------- answers
@pytest.mark.parametrize("name", [n for n in OPERATIONS if n != "get-configuration"])
async def test_request_returns_the_charger_answer(charger, handler, name):
    operation = OPERATIONS[name]

    result = await operation.send(handler)

    assert result == operation.result
    assert charger.requests[operation.action] == [operation.received]


async def test_get_configuration_returns_known_and_unknown_keys(charger, handler):
    result = await handler.get_configuration(["HeartbeatInterval", "NoSuchKey"])

    assert result.keys == [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
    assert result.unknown_keys == ["NoSuchKey"]
    assert charger.requests["GetConfiguration"][-1] == {"key": ["HeartbeatInterval", "NoSuchKey"]}


async def test_get_configuration_without_keys_asks_for_everything(charger, handler):
    result = await handler.get_configuration()

    assert charger.requests["GetConfiguration"][-1] == {"key": None}
    assert {entry["key"] for entry in result.keys} == set(charger.configuration)
    assert result.unknown_keys == []


async def test_change_configuration_stores_the_new_value(central_system, charger, handler):
    site, _, _ = central_system

    await handler.set_configuration("HeartbeatInterval", "60")

    assert site.stations["CP1"].configuration["HeartbeatInterval"] == "60"


async def test_change_configuration_reboot_required_counts_as_success(
    central_system, charger, handler
):
    site, _, _ = central_system
    charger.answers["ChangeConfiguration"] = {"status": "RebootRequired"}

    assert await handler.set_configuration("MeterValueSampleInterval", "15") == "RebootRequired"
    assert site.stations["CP1"].configuration["MeterValueSampleInterval"] == "15"


async def test_change_configuration_never_stores_the_authorization_key(
    central_system, charger, handler
):
    site, _, _ = central_system

    assert await handler.set_configuration("AuthorizationKey", "0123456789abcdef") == "Accepted"

    assert charger.requests["ChangeConfiguration"] == [
        {"key": "AuthorizationKey", "value": "0123456789abcdef"}
    ]
    assert "AuthorizationKey" not in site.stations["CP1"].configuration


async def test_change_availability_scheduled_counts_as_success(charger, handler):
    charger.answers["ChangeAvailability"] = {"status": "Scheduled"}

    assert await handler.set_availability(1, available=False) == "Scheduled"


async def test_get_diagnostics_without_file_name_returns_none(charger, handler):
    charger.answers["GetDiagnostics"] = {}

    assert await handler.get_diagnostics("ftp://example.com/") is None


async def test_data_transfer_refusal_is_returned_not_raised(charger, handler):
    charger.answers["DataTransfer"] = {"status": "UnknownMessageId"}

    assert await handler.data_transfer("com.acme", message_id="nope") == (
        "UnknownMessageId",
        None,
    )


async def test_generic_request_returns_the_call_result(charger, handler):
    result = await handler.request(call.Reset(type="Soft"))

    assert result.status == "Accepted"


async def test_concurrent_requests_are_serialised_and_all_answered(charger, handler):
    results = await asyncio.gather(
        handler.reset(hard=False), handler.clear_cache(), handler.unlock(2)
    )

    assert results == ["Accepted", "Accepted", "Unlocked"]


# ---------------------------------------------------------------------- TriggerMessage
async def _trigger_and_wait(site, charger, handler, *, requested, connector_id, check) -> str:
    status = await handler.trigger(requested, connector_id=connector_id)
    await wait_until(site, check)
    async with asyncio.timeout(FAILSAFE_S):  # the charger got the answer to what it sent
        await asyncio.gather(*charger.background)
    return status


@pytest.mark.parametrize(
    ("requested", "on_the_wire"),
    [
        (TriggerMessage.BOOT_NOTIFICATION, "BootNotification"),
        (TriggerMessage.DIAGNOSTICS_STATUS_NOTIFICATION, "DiagnosticsStatusNotification"),
        (TriggerMessage.FIRMWARE_STATUS_NOTIFICATION, "FirmwareStatusNotification"),
        (TriggerMessage.HEARTBEAT, "Heartbeat"),
        (TriggerMessage.METER_VALUES, "MeterValues"),
        (TriggerMessage.STATUS_NOTIFICATION, "StatusNotification"),
    ],
    ids=str,
)
async def test_trigger_message_for_each_message_type(
    central_system, charger, handler, requested, on_the_wire
):
    site, _, clock = central_system
    station = site.stations["CP1"]
    clock.advance(10)
    checks = {
        TriggerMessage.BOOT_NOTIFICATION: (None, lambda: station.last_boot == clock.now()),
        TriggerMessage.DIAGNOSTICS_STATUS_NOTIFICATION: (
            None,
            lambda: station.diagnostics_status == "Idle",
        ),
        TriggerMessage.FIRMWARE_STATUS_NOTIFICATION: (
            None,
            lambda: station.firmware_status == "Idle",
        ),
        TriggerMessage.HEARTBEAT: (None, lambda: station.last_heartbeat is not None),
        TriggerMessage.METER_VALUES: (
            2,
            lambda: 2 in station.connectors and station.connectors[2].energy_wh == 4242,
        ),
        TriggerMessage.STATUS_NOTIFICATION: (
            1,
            lambda: 1 in station.connectors and station.connectors[1].status == "available",
        ),
    }
    connector_id, check = checks[requested]

    status = await _trigger_and_wait(
        site, charger, handler, requested=requested, connector_id=connector_id, check=check
    )

    assert status == "Accepted"
    expected = {"requested_message": on_the_wire}
    if connector_id is not None:
        expected["connector_id"] = connector_id
    assert charger.requests["TriggerMessage"] == [expected]


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("name", "status"), REFUSALS)
async def test_refusal_raises_charger_rejected_error(
    central_system, charger, handler, name, status
):
    site, _, _ = central_system
    operation = OPERATIONS[name]
    charger.answers[operation.action] = {"status": status}
    configuration = dict(site.stations["CP1"].configuration)

    with pytest.raises(ChargerRejectedError) as err:
        await operation.send(handler)

    assert (err.value.station_id, err.value.action, err.value.status) == (
        "CP1",
        operation.action,
        status,
    )
    assert str(err.value) == f"CP1: {operation.action} answered {status}"
    assert site.stations["CP1"].configuration == configuration  # nothing stored on refusal


# ---------------------------------------------------------------------- CallErrors
@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_call_error_answer_raises_charger_call_error(charger, handler, name):
    operation = OPERATIONS[name]
    charger.answers[operation.action] = NotSupportedError(description="not on this model")

    with pytest.raises(ChargerCallError) as err:
        await operation.send(handler)

    assert (err.value.action, err.value.code, err.value.description) == (
        operation.action,
        "NotSupported",
        "not on this model",
    )
    assert str(err.value) == f"CP1: {operation.action} failed: NotSupported not on this model"


async def test_charger_internal_error_raises_charger_call_error(charger, handler):
    charger.answers["Reset"] = RuntimeError("boom")

    with pytest.raises(ChargerCallError) as err:
        await handler.reset(hard=True)

    assert err.value.code == "InternalError"


async def test_action_the_charger_does_not_implement_raises_charger_call_error(charger, handler):
    with pytest.raises(ChargerCallError) as err:
        await handler.request(call.GetLocalListVersion())

    assert err.value.code == "NotImplemented"
    assert err.value.action == "GetLocalListVersion"


async def test_call_error_with_a_non_standard_code_raises_charger_call_error(charger, handler):
    charger.ignore.add("Reset")
    pending = asyncio.create_task(handler.reset(hard=False))
    await charger.wait_request("Reset")

    unique_id = charger.unique_ids["Reset"][-1]
    await charger.send_raw(f'[4,"{unique_id}","VendorBusy","try later",{{}}]')

    with pytest.raises(ChargerCallError) as err:
        await pending
    assert (err.value.action, err.value.code) == ("Reset", "GenericError")
    assert "VendorBusy" in err.value.description


async def test_invalid_answer_raises_charger_call_error(charger, handler):
    charger.ignore.add("Reset")
    pending = asyncio.create_task(handler.reset(hard=False))
    await charger.wait_request("Reset")

    await charger.answer_late("Reset", {"status": "Maybe"})

    with pytest.raises(ChargerCallError) as err:
        await pending
    assert err.value.action == "Reset"


# ---------------------------------------------------------------------- timeouts
@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_no_answer_within_30_s_raises_charger_timeout_error(
    central_system, charger, handler, name
):
    _, _, clock = central_system
    operation = OPERATIONS[name]
    charger.ignore.add(operation.action)
    tasks_before = asyncio.all_tasks()
    pending = asyncio.create_task(operation.send(handler))
    await charger.wait_request(operation.action, count=len(charger.requests[operation.action]) + 1)

    clock.advance(30)

    with pytest.raises(ChargerTimeoutError) as err:
        await pending
    assert asyncio.all_tasks() - tasks_before == set()  # nothing of the request is left running
    assert (err.value.station_id, err.value.action, err.value.timeout) == (
        "CP1",
        operation.action,
        30,
    )
    assert str(err.value) == f"CP1: no answer to {operation.action} within 30 s"


async def test_answer_just_before_the_timeout_is_returned(central_system, charger, handler):
    _, _, clock = central_system
    charger.ignore.add("Reset")
    pending = asyncio.create_task(handler.reset(hard=False))
    await charger.wait_request("Reset")

    clock.advance(29.9)
    await charger.answer_late("Reset", {"status": "Accepted"})

    async with asyncio.timeout(FAILSAFE_S):
        assert await pending == "Accepted"


async def test_late_answer_after_a_timeout_is_ignored_and_the_next_request_works(
    central_system, charger, handler
):
    _, _, clock = central_system
    charger.ignore.add("Reset")
    pending = asyncio.create_task(handler.reset(hard=False))
    await charger.wait_request("Reset")
    clock.advance(30)
    with pytest.raises(ChargerTimeoutError):
        await pending

    await charger.answer_late("Reset", {"status": "Accepted"})
    charger.ignore.clear()

    assert await handler.reset(hard=True) == "Accepted"
    assert charger.requests["Reset"][-1] == {"type": "Hard"}


async def test_request_timeout_is_configurable(start_central_system, connect_cp):
    site, cs, clock = await start_central_system(request_timeout=5)
    charger = await connect_cp("CP1", cs=cs)
    charger.ignore.add("ClearCache")
    pending = asyncio.create_task(site.charger("CP1").clear_cache())
    await charger.wait_request("ClearCache")

    clock.advance(5)

    with pytest.raises(ChargerTimeoutError) as err:
        await pending
    assert err.value.timeout == 5


async def test_per_request_timeout_overrides_the_default(central_system, charger, handler):
    _, _, clock = central_system
    charger.ignore.add("ClearCache")
    pending = asyncio.create_task(handler.request(call.ClearCache(), timeout=2.5))
    await charger.wait_request("ClearCache")

    clock.advance(2.5)

    with pytest.raises(ChargerTimeoutError) as err:
        await pending
    assert err.value.timeout == 2.5
    assert str(err.value) == "CP1: no answer to ClearCache within 2.5 s"


# ---------------------------------------------------------------------- no connection
async def test_request_to_a_disconnected_charger_raises_not_connected(central_system, charger):
    site, _, _ = central_system
    await charger.ws.close()
    await wait_until(site, lambda: not site.stations["CP1"].connected)

    with pytest.raises(ChargerNotConnectedError) as err:
        site.charger("CP1")
    assert str(err.value) == "CP1: not connected"


async def test_request_to_an_unknown_station_raises_unknown_station(central_system):
    site, _, _ = central_system

    with pytest.raises(UnknownStationError, match="unknown station 'CPX'"):
        site.charger("CPX")


async def test_request_on_a_connection_that_just_closed_raises_not_connected(
    central_system, charger, handler
):
    site, _, _ = central_system
    await charger.ws.close()
    await wait_until(site, lambda: not site.stations["CP1"].connected)

    with pytest.raises(ChargerNotConnectedError):
        await handler.reset(hard=False)


async def test_charger_disconnecting_during_a_request_raises_not_connected_at_once(
    charger, handler
):
    charger.ignore.add("Reset")
    tasks_before = asyncio.all_tasks()
    pending = asyncio.create_task(handler.reset(hard=False))
    await charger.wait_request("Reset")

    await charger.ws.close()

    async with asyncio.timeout(FAILSAFE_S):  # not after the 30 s request timeout
        with pytest.raises(ChargerNotConnectedError):
            await pending
    assert asyncio.all_tasks() - tasks_before - {charger.task} == set()


async def test_stopping_the_central_system_fails_requests_in_flight(
    central_system, charger, handler
):
    _, cs, _ = central_system
    charger.ignore.add("GetDiagnostics")
    pending = asyncio.create_task(handler.get_diagnostics("ftp://example.com/"))
    await charger.wait_request("GetDiagnostics")

    await cs.stop()

    async with asyncio.timeout(FAILSAFE_S):
        with pytest.raises(ChargerNotConnectedError):
            await pending
