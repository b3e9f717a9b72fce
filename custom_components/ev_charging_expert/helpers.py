"""Turn evcore errors into translated Home Assistant errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .evcore.errors import (
    ChargerCallError,
    ChargerNotConnectedError,
    ChargerRejectedError,
    ChargerTimeoutError,
    EvcoreError,
    UnknownStationError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def call_charger[T](request: Callable[[], Awaitable[T]]) -> T:
    """Run a charger request; raise HomeAssistantError with a translation key on failure."""
    try:
        return await request()
    except UnknownStationError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_station",
            translation_placeholders={"station_id": err.station_id},
        ) from err
    except ChargerNotConnectedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="not_connected",
            translation_placeholders={"station_id": err.station_id},
        ) from err
    except ChargerTimeoutError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="timeout",
            translation_placeholders={
                "station_id": err.station_id,
                "action": err.action,
                "timeout": f"{err.timeout:g}",
            },
        ) from err
    except ChargerRejectedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="rejected",
            translation_placeholders={
                "station_id": err.station_id,
                "action": err.action,
                "status": err.status,
            },
        ) from err
    except ChargerCallError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="call_error",
            translation_placeholders={
                "station_id": err.station_id,
                "action": err.action,
                "code": err.code,
                "description": err.description,
            },
        ) from err
    except EvcoreError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="unexpected",
            translation_placeholders={"error": str(err)},
        ) from err
