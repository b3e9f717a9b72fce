"""Service actions: every OCPP operation through HA, targeted at station and connector devices."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, HomeAssistant, ServiceResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
from ocpp.exceptions import NotSupportedError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
import voluptuous as vol
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.const import DOMAIN
from custom_components.ev_charging_expert.services import SERVICES

from .conftest import ConnectCharger, HaCharger, basic_auth, open_websocket, wait_for

if TYPE_CHECKING:
    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

PASSWORD = "s3cret-key-of-20-ch"  # 16..40 characters, as OCPP requires
ADMIN_SERVICES = sorted(name for name, (_, _, admin) in SERVICES.items() if admin)
USER_SERVICES = sorted(name for name, (_, _, admin) in SERVICES.items() if not admin)


@pytest.fixture
async def charger(clock: ManualClock, connect_charger: ConnectCharger) -> HaCharger:
    """CP1, booted, with two connectors."""
    return await connect_charger("CP1", connectors=2)


@pytest.fixture
def station_device(hass: HomeAssistant, charger: HaCharger) -> str:
    """The device id of CP1."""
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, "CP1")})
    assert device is not None
    return device.id


@pytest.fixture
def connector_device(hass: HomeAssistant, charger: HaCharger) -> str:
    """The device id of CP1's connector 2."""
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, "CP1#2")})
    assert device is not None
    return device.id


async def _call(
    hass: HomeAssistant, service: str, data: dict[str, Any], context: Context | None = None
) -> ServiceResponse:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, context=context
    )


# service, target ("station" / "connector"), data, OCPP action, request payload, response
CASES: list[tuple[str, str, dict[str, Any], str, dict[str, Any], dict[str, Any]]] = [
    (
        "remote_start_transaction",
        "station",
        {"id_tag": "TAG1"},
        "RemoteStartTransaction",
        {"id_tag": "TAG1"},
        {"status": "Accepted"},
    ),
    (
        "remote_start_transaction",
        "connector",
        {"id_tag": "TAG1"},
        "RemoteStartTransaction",
        {"id_tag": "TAG1", "connector_id": 2},
        {"status": "Accepted"},
    ),
    (
        "remote_stop_transaction",
        "station",
        {"transaction_id": 42},
        "RemoteStopTransaction",
        {"transaction_id": 42},
        {"status": "Accepted", "transaction_id": 42},
    ),
    ("reset", "station", {}, "Reset", {"type": "Soft"}, {"status": "Accepted"}),
    ("reset", "connector", {"type": "hard"}, "Reset", {"type": "Hard"}, {"status": "Accepted"}),
    (
        "unlock_connector",
        "connector",
        {},
        "UnlockConnector",
        {"connector_id": 2},
        {"status": "Unlocked"},
    ),
    (
        "unlock_connector",
        "station",
        {"connector_id": 1},
        "UnlockConnector",
        {"connector_id": 1},
        {"status": "Unlocked"},
    ),
    (
        "change_availability",
        "station",
        {"operative": False},
        "ChangeAvailability",
        {"connector_id": 0, "type": "Inoperative"},
        {"status": "Accepted"},
    ),
    (
        "change_availability",
        "connector",
        {"operative": True},
        "ChangeAvailability",
        {"connector_id": 2, "type": "Operative"},
        {"status": "Accepted"},
    ),
    (
        "trigger_message",
        "station",
        {"message": "heartbeat"},
        "TriggerMessage",
        {"requested_message": "Heartbeat"},
        {"status": "Accepted"},
    ),
    (
        "trigger_message",
        "connector",
        {"message": "status_notification"},
        "TriggerMessage",
        {"requested_message": "StatusNotification", "connector_id": 2},
        {"status": "Accepted"},
    ),
    (
        "update_firmware",
        "station",
        {
            "location": "https://firmware.example.com/wallbox-2.0.bin",
            "retrieve_date": "2026-02-01T12:00:00+01:00",
            "retries": 3,
            "retry_interval": 60,
        },
        "UpdateFirmware",
        {
            "location": "https://firmware.example.com/wallbox-2.0.bin",
            "retrieve_date": "2026-02-01T11:00:00Z",
            "retries": 3,
            "retry_interval": 60,
        },
        {"status": "Accepted"},
    ),
    (
        "update_firmware",
        "station",
        # HA's date-time selector sends local time (the test instance runs on US/Pacific).
        {"location": "https://firmware.example.com/fw.bin", "retrieve_date": "2026-02-01 12:00"},
        "UpdateFirmware",
        {
            "location": "https://firmware.example.com/fw.bin",
            "retrieve_date": "2026-02-01T20:00:00Z",
        },
        {"status": "Accepted"},
    ),
    (
        "update_firmware",
        "station",
        {"location": "https://firmware.example.com/fw.bin"},
        "UpdateFirmware",
        # Now, on the site's clock.
        {
            "location": "https://firmware.example.com/fw.bin",
            "retrieve_date": "2026-01-01T10:00:00Z",
        },
        {"status": "Accepted"},
    ),
    (
        "get_diagnostics",
        "connector",
        {
            "location": "ftp://logs.example.com/upload/",
            "start_time": "2026-01-01T00:00:00+00:00",
            "stop_time": "2026-01-01T06:00:00+00:00",
            "retries": 1,
            "retry_interval": 30,
        },
        "GetDiagnostics",
        {
            "location": "ftp://logs.example.com/upload/",
            "start_time": "2026-01-01T00:00:00Z",
            "stop_time": "2026-01-01T06:00:00Z",
            "retries": 1,
            "retry_interval": 30,
        },
        {"file_name": "diagnostics-0001.zip"},
    ),
    (
        "get_configuration",
        "station",
        {"keys": ["HeartbeatInterval", "NoSuchKey"]},
        "GetConfiguration",
        {"key": ["HeartbeatInterval", "NoSuchKey"]},
        {
            "configuration_key": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
            "unknown_key": ["NoSuchKey"],
        },
    ),
    (
        "change_configuration",
        "station",
        {"key": "HeartbeatInterval", "value": "60"},
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "60"},
        {"status": "Accepted"},
    ),
    ("clear_cache", "connector", {}, "ClearCache", {}, {"status": "Accepted"}),
    (
        "data_transfer",
        "station",
        {"vendor_id": "com.acme", "message_id": "ping", "data": "hello"},
        "DataTransfer",
        {"vendor_id": "com.acme", "message_id": "ping", "data": "hello"},
        {"status": "Accepted", "data": "pong"},
    ),
    (
        "set_charger_password",
        "station",
        {"password": PASSWORD},
        "ChangeConfiguration",
        {"key": "AuthorizationKey", "value": PASSWORD},
        {"status": "Accepted"},
    ),
]


@pytest.mark.parametrize(
    ("service", "target", "data", "action", "payload", "response"),
    CASES,
    ids=[f"{case[0]}-{case[1]}-{i}" for i, case in enumerate(CASES)],
)
async def test_service_sends_its_request_and_returns_the_answer(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    charger: HaCharger,
    station_device: str,
    connector_device: str,
    service: str,
    target: str,
    data: dict[str, Any],
    action: str,
    payload: dict[str, Any],
    response: dict[str, Any],
) -> None:
    device_id = station_device if target == "station" else connector_device
    before = len(charger.requests[action])

    result = await _call(hass, service, {"device_id": device_id, **data})

    assert result == response
    assert len(charger.requests[action]) == before + 1
    assert charger.requests[action][-1] == payload


async def test_every_service_is_covered_by_the_table() -> None:
    assert {case[0] for case in CASES} == set(SERVICES)


async def test_service_without_return_response_returns_nothing(
    hass: HomeAssistant, charger: HaCharger, station_device: str
) -> None:
    result = await hass.services.async_call(
        DOMAIN, "clear_cache", {"device_id": station_device}, blocking=True
    )

    assert result is None
    assert charger.requests["ClearCache"] == [{}]


async def test_change_configuration_updates_the_known_configuration(
    hass: HomeAssistant, hub: EvChargingCoordinator, charger: HaCharger, station_device: str
) -> None:
    await _call(
        hass, "change_configuration", {"device_id": station_device, "key": "K", "value": "v"}
    )

    assert hub.site.stations["CP1"].configuration["K"] == "v"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")  # a diagnostic sensor
async def test_triggered_firmware_status_reaches_the_sensor(
    hass: HomeAssistant, charger: HaCharger, station_device: str
) -> None:
    await _call(
        hass,
        "trigger_message",
        {"device_id": station_device, "message": "firmware_status_notification"},
    )

    await wait_for(hass, lambda: hass.states.get("sensor.cp1_firmware_update").state == "idle")


async def test_remote_stop_finds_the_running_transaction(
    hass: HomeAssistant, charger: HaCharger, station_device: str, connector_device: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "remote_stop_transaction", {"device_id": station_device})
    assert err.value.translation_key == "no_single_transaction"

    answer = await charger.start_transaction(2, "TAG1")
    result = await _call(hass, "remote_stop_transaction", {"device_id": connector_device})

    assert result == {"status": "Accepted", "transaction_id": answer.transaction_id}
    assert charger.requests["RemoteStopTransaction"] == [{"transaction_id": answer.transaction_id}]

    # On the station, with sessions on both connectors, the transaction must be named.
    await charger.start_transaction(1, "TAG2")
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "remote_stop_transaction", {"device_id": station_device})
    assert err.value.translation_key == "no_single_transaction"
    assert err.value.translation_placeholders == {"station_id": "CP1"}


@pytest.mark.parametrize(
    ("service", "data"),
    [
        ("reset", {"type": "medium"}),
        ("remote_start_transaction", {"id_tag": "X" * 21}),
        ("remote_start_transaction", {}),
        ("unlock_connector", {"connector_id": 0}),
        ("trigger_message", {"message": "start_transaction"}),
        ("update_firmware", {"location": "not a url"}),
        ("get_diagnostics", {"location": "file:///etc/passwd"}),
        ("update_firmware", {"location": "https://firmware.example.com/x", "retries": -1}),
        ("get_configuration", {"keys": ["K" * 51]}),
        ("change_configuration", {"key": "", "value": "1"}),
        ("data_transfer", {"vendor_id": ""}),
        ("set_charger_password", {"password": "short"}),
        ("set_charger_password", {"password": "P" * 41}),
    ],
)
@pytest.mark.usefixtures("init_integration")
async def test_bad_input_is_refused_by_the_schema(
    hass: HomeAssistant, service: str, data: dict[str, Any]
) -> None:
    # The schema runs before the device is even looked up.
    with pytest.raises(vol.Invalid):
        await _call(hass, service, {"device_id": "any", **data})


@pytest.mark.usefixtures("init_integration")
async def test_device_id_is_required(hass: HomeAssistant) -> None:
    with pytest.raises(vol.Invalid):
        await _call(hass, "clear_cache", {})


async def test_unknown_device_is_refused_as_invalid_device(
    hass: HomeAssistant, charger: HaCharger
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "clear_cache", {"device_id": "no-such-device"})

    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "invalid_device"
    assert err.value.translation_placeholders == {"device_id": "no-such-device"}


async def test_devices_that_are_not_chargers_are_refused_as_invalid_device(
    hass: HomeAssistant, init_integration: MockConfigEntry, charger: HaCharger
) -> None:
    registry = dr.async_get(hass)
    other_entry = MockConfigEntry(domain="other")
    other_entry.add_to_hass(hass)
    other = registry.async_get_or_create(
        config_entry_id=other_entry.entry_id, identifiers={("other", "x")}
    )
    central = registry.async_get_device(identifiers={(DOMAIN, init_integration.entry_id)})
    assert central is not None

    for device_id in (other.id, central.id):
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, "clear_cache", {"device_id": device_id})
        assert err.value.translation_key == "invalid_device"


async def test_unlock_on_the_station_needs_a_connector(
    hass: HomeAssistant, charger: HaCharger, station_device: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "unlock_connector", {"device_id": station_device})

    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "connector_required"
    assert err.value.translation_placeholders == {"station_id": "CP1"}
    assert "UnlockConnector" not in charger.requests


async def test_offline_charger_raises_not_connected(
    hass: HomeAssistant, hub: EvChargingCoordinator, charger: HaCharger, station_device: str
) -> None:
    await charger.close()
    await wait_for(hass, lambda: not hub.site.stations["CP1"].connected)

    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "reset", {"device_id": station_device})

    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "not_connected"
    assert err.value.translation_placeholders == {"station_id": "CP1"}


async def test_unanswered_request_raises_timeout_on_the_site_clock(
    hass: HomeAssistant, clock: ManualClock, charger: HaCharger, station_device: str
) -> None:
    charger.ignore.add("Reset")
    call = asyncio.ensure_future(_call(hass, "reset", {"device_id": station_device}))
    await charger.wait_request("Reset")
    assert not call.done()

    clock.advance(30)

    with pytest.raises(HomeAssistantError) as err:
        await call
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "timeout"
    assert err.value.translation_placeholders == {
        "station_id": "CP1",
        "action": "Reset",
        "timeout": "30",
    }

    # The connection is still usable afterwards.
    charger.ignore.clear()
    assert await _call(hass, "reset", {"device_id": station_device}) == {"status": "Accepted"}


async def test_call_error_answer_raises_call_error(
    hass: HomeAssistant, charger: HaCharger, station_device: str
) -> None:
    charger.answers["DataTransfer"] = NotSupportedError(description="no vendor extensions")

    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "data_transfer", {"device_id": station_device, "vendor_id": "com.acme"})

    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "call_error"
    assert err.value.translation_placeholders == {
        "station_id": "CP1",
        "action": "DataTransfer",
        "code": "NotSupported",
        "description": "no vendor extensions",
    }


@pytest.mark.parametrize(
    ("service", "action", "answer", "data"),
    [
        ("remote_start_transaction", "RemoteStartTransaction", "Rejected", {"id_tag": "T"}),
        ("reset", "Reset", "Rejected", {}),
        ("clear_cache", "ClearCache", "Rejected", {}),
        ("trigger_message", "TriggerMessage", "NotImplemented", {"message": "meter_values"}),
        ("change_configuration", "ChangeConfiguration", "NotSupported", {"key": "K", "value": "v"}),
    ],
)
async def test_refused_request_raises_rejected(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    charger: HaCharger,
    station_device: str,
    service: str,
    action: str,
    answer: str,
    data: dict[str, Any],
) -> None:
    charger.answers[action] = {"status": answer}

    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, service, {"device_id": station_device, **data})

    assert err.value.translation_key == "rejected"
    assert err.value.translation_placeholders == {
        "station_id": "CP1",
        "action": action,
        "status": answer,
    }


# Minimal valid data per admin-only service.
ADMIN_DATA: dict[str, dict[str, Any]] = {
    "change_availability": {"operative": True},
    "change_configuration": {"key": "K", "value": "v"},
    "clear_cache": {},
    "data_transfer": {"vendor_id": "com.acme"},
    "get_diagnostics": {"location": "ftp://logs.example.com/"},
    "reset": {},
    "set_charger_password": {"password": PASSWORD, "send_to_charger": False},
    "update_firmware": {"location": "https://firmware.example.com/fw.bin"},
}


async def test_admin_only_services_are_refused_for_a_non_admin_user(
    hass: HomeAssistant,
    charger: HaCharger,
    station_device: str,
    hass_read_only_user: MockUser,
) -> None:
    assert sorted(ADMIN_DATA) == ADMIN_SERVICES
    before = {action: len(requests) for action, requests in charger.requests.items()}

    for service in ADMIN_SERVICES:
        with pytest.raises(Unauthorized):
            await _call(
                hass,
                service,
                {"device_id": station_device, **ADMIN_DATA[service]},
                Context(user_id=hass_read_only_user.id),
            )

    # Nothing reached the charger.
    assert {action: len(requests) for action, requests in charger.requests.items()} == before


async def test_admin_only_services_are_allowed_for_an_admin(
    hass: HomeAssistant, charger: HaCharger, station_device: str, hass_admin_user: MockUser
) -> None:
    # Calls without a user (automations, scripts: the system) are the table test above.
    context = Context(user_id=hass_admin_user.id)
    for service in ADMIN_SERVICES:
        result = await _call(
            hass, service, {"device_id": station_device, **ADMIN_DATA[service]}, context
        )
        assert isinstance(result, dict), service


async def test_user_services_are_allowed_for_a_non_admin_user(
    hass: HomeAssistant,
    charger: HaCharger,
    station_device: str,
    connector_device: str,
    hass_read_only_user: MockUser,
) -> None:
    assert USER_SERVICES == [
        "get_configuration",
        "remote_start_transaction",
        "remote_stop_transaction",
        "trigger_message",
        "unlock_connector",
    ]
    context = Context(user_id=hass_read_only_user.id)

    assert await _call(hass, "get_configuration", {"device_id": station_device}, context)
    assert await _call(hass, "unlock_connector", {"device_id": connector_device}, context)
    assert await _call(
        hass, "remote_start_transaction", {"device_id": station_device, "id_tag": "T"}, context
    )


async def test_unknown_user_is_refused(
    hass: HomeAssistant, charger: HaCharger, station_device: str
) -> None:
    with pytest.raises(Unauthorized):
        await _call(hass, "reset", {"device_id": station_device}, Context(user_id="ghost"))


async def test_charger_password_is_required_after_it_was_set(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    port: int,
    charger: HaCharger,
    station_device: str,
    connect_charger: ConnectCharger,
) -> None:
    await _call(hass, "set_charger_password", {"device_id": station_device, "password": PASSWORD})

    # The charger learnt the key before the central system started to require it.
    assert charger.requests["ChangeConfiguration"] == [
        {"key": "AuthorizationKey", "value": PASSWORD}
    ]
    assert hub.site.stations["CP1"].password_hash is not None
    assert PASSWORD not in hub.site.stations["CP1"].password_hash

    for headers in (None, basic_auth("CP1", "wrong-password-xyz"), basic_auth("CP2", PASSWORD)):
        with pytest.raises(InvalidStatus) as err:
            await open_websocket(port, "CP1", additional_headers=headers)
        assert err.value.response.status_code == 401

    again = await connect_charger("CP1", connectors=2, headers=basic_auth("CP1", PASSWORD))
    assert again.requests["GetConfiguration"]
    assert hub.site.stations["CP1"].connected


async def test_charger_password_can_be_set_without_sending_it(
    hass: HomeAssistant, port: int, charger: HaCharger, station_device: str
) -> None:
    await _call(
        hass,
        "set_charger_password",
        {"device_id": station_device, "password": PASSWORD, "send_to_charger": False},
    )

    assert "ChangeConfiguration" not in charger.requests
    with pytest.raises(InvalidStatus) as err:
        await open_websocket(port, "CP1")
    assert err.value.response.status_code == 401


async def test_refused_authorization_key_leaves_the_charger_without_password(
    hass: HomeAssistant, hub: EvChargingCoordinator, charger: HaCharger, station_device: str
) -> None:
    charger.answers["ChangeConfiguration"] = {"status": "Rejected"}

    with pytest.raises(HomeAssistantError) as err:
        await _call(
            hass, "set_charger_password", {"device_id": station_device, "password": PASSWORD}
        )

    assert err.value.translation_key == "rejected"
    # Requiring a key the charger does not know would lock it out.
    assert hub.site.stations["CP1"].password_hash is None


async def test_accept_charger_is_admin_only(
    hass: HomeAssistant, hub: EvChargingCoordinator, hass_read_only_user: MockUser
) -> None:
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "accept_charger",
            {"charge_box_id": "CP9"},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert "CP9" not in hub.site.stations


async def test_accept_charger_lets_a_charger_in_before_it_ever_connected(
    hass: HomeAssistant, hub: EvChargingCoordinator, hass_admin_user: MockUser
) -> None:
    await hass.services.async_call(
        DOMAIN,
        "accept_charger",
        {"charge_box_id": "CP9"},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )

    assert hub.site.is_accepted("CP9")


async def test_services_refuse_when_the_entry_is_not_loaded(
    hass: HomeAssistant, init_integration: MockConfigEntry, charger: HaCharger, station_device: str
) -> None:
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()

    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "accept_charger", {"charge_box_id": "CP9"}, blocking=True
        )
    assert err.value.translation_key == "not_loaded"

    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "clear_cache", {"device_id": station_device})
    assert err.value.translation_key == "invalid_device"


async def test_charger_password_is_never_stored_in_plain_text(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    charger: HaCharger,
    station_device: str,
    hass_storage: dict[str, Any],
) -> None:
    await _call(hass, "set_charger_password", {"device_id": station_device, "password": PASSWORD})
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()

    assert PASSWORD not in str(hass_storage[f"{DOMAIN}.{init_integration.entry_id}"])
