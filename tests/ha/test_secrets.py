"""The charger's password stays out of the integration's log and out of service answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from homeassistant.helpers import device_registry as dr

from custom_components.ev_charging_expert.const import DOMAIN

from .conftest import basic_auth, open_websocket

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    import pytest

    from custom_components.ev_charging_expert.hub import EvChargingHub

    from .conftest import ConnectCharger

PASSWORD = "s3cret-key-of-20-ch"


def device_id(hass: HomeAssistant, station_id: str) -> str:
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, station_id)})
    assert device is not None
    return device.id


async def test_setting_a_password_with_the_integration_at_debug_logs_no_secret(
    hass: HomeAssistant,
    hub: EvChargingHub,
    connect_charger: ConnectCharger,
    port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.ev_charging_expert")
    charger = await connect_charger("CP1")
    charger.logger = logging.getLogger("tests.peer")  # the peer's own log is not ours

    await hass.services.async_call(
        DOMAIN,
        "set_charger_password",
        {"device_id": device_id(hass, "CP1"), "password": PASSWORD},
        blocking=True,
    )
    ws = await open_websocket(port, "CP1", additional_headers=basic_auth("CP1", PASSWORD))
    await ws.close()

    ours = [r for r in caplog.records if r.name.startswith("custom_components.")]
    assert any("AuthorizationKey" in r.getMessage() for r in ours)
    text = "\n".join(r.getMessage() for r in ours)
    assert PASSWORD not in text
    assert basic_auth("CP1", PASSWORD)["Authorization"].split()[1] not in text


async def test_get_configuration_answer_redacts_a_reported_authorization_key(
    hass: HomeAssistant, hub: EvChargingHub, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    charger.configuration["AuthorizationKey"] = PASSWORD

    answer = await hass.services.async_call(
        DOMAIN,
        "get_configuration",
        {"device_id": device_id(hass, "CP1"), "keys": ["AuthorizationKey", "HeartbeatInterval"]},
        blocking=True,
        return_response=True,
    )

    assert answer["configuration_key"] == [
        {"key": "AuthorizationKey", "readonly": False, "value": "**REDACTED**"},
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
    ]
